"""The fast path for short clips: Whisper's encoder on the clip plus a few seconds of silence
instead of a full 30 s window, one decode (greedy by default), word times from the same encoder
output.

faster-whisper always pads audio to 30 s, so a 2.5 s clip costs a 30 s encoder pass. Here the
window is the clip plus :data:`PAD_SECONDS` of silence (at most 30 s): on CREMA-D clips a word
error rate close to the full window's at several times the speed (``docs/text.md``). Less
padding made tiny.en repeat itself. The result is only kept when the decoder was sure of it:
mean token log-probability at least :data:`FIT_MIN_LOGPROB` and no repetition (gzip compression
ratio at most :data:`MAX_COMPRESSION_RATIO`); otherwise :func:`fitted_segment` returns None and
the caller runs the full faster-whisper path (temperature fallback, its calibrated not-English
check).
Uses faster-whisper's public pieces: the model's feature extractor, CTranslate2 model, tokenizer
and ``find_alignment``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from emovox.audio.decode import SAMPLE_RATE
from emovox.text.segments import TextSegment, Word

#: seconds of silence after the clip in the encoder window
PAD_SECONDS = 10.0
#: clips longer than this take the full 30 s windows of faster-whisper
FIT_MAX_SECONDS = 20.0
#: a fitted result under this mean token log-probability is redone by the full path (most English
#: clips score above it, Spanish and Korean speech below; how many are redone: docs/text.md)
FIT_MIN_LOGPROB = -0.6
#: gzip compression ratio above which the text is a repetition loop (faster-whisper's default)
MAX_COMPRESSION_RATIO = 2.4
#: decoded tokens allowed per second of audio (speech runs at 3 to 5), plus a fixed 20
TOKENS_PER_SECOND = 8


def fitted_segment(
    model: Any, y: np.ndarray, *, offset: float = 0.0, word_times: bool = True, beam_size: int = 1
) -> TextSegment | None:
    """Transcribe ``y`` (16 kHz mono float32, at most :data:`FIT_MAX_SECONDS`) in a window
    fitted to it with ``model`` (a ``faster_whisper.WhisperModel``); None when the decoder was
    unsure (see the module notes) or heard nothing. ``word_times``: align each word."""
    seconds = len(y) / SAMPLE_RATE
    return decode_window(
        model, encode_window(model, y), seconds, offset=offset, word_times=word_times,
        beam_size=beam_size,
    )  # fmt: skip


def encode_window(model: Any, y: np.ndarray) -> Any:
    """The encoder output (a ``ctranslate2.StorageView``) of ``y`` plus :data:`PAD_SECONDS` of
    silence, with ``model`` (a ``faster_whisper.WhisperModel``)."""
    import ctranslate2

    padded = np.pad(y.astype(np.float32, copy=False), (0, int(PAD_SECONDS * SAMPLE_RATE)))
    mel = model.feature_extractor(padded)
    frames = min(3000, mel.shape[-1] - 1)
    frames -= frames % 2  # the encoder's convolution halves the frames
    features = ctranslate2.StorageView.from_array(np.ascontiguousarray(mel[None, :, :frames]))
    return model.model.encode(features)


def decode_window(
    model: Any,
    encoded: Any,
    seconds: float,
    *,
    offset: float = 0.0,
    word_times: bool = True,
    beam_size: int = 1,
) -> TextSegment | None:
    """Decode an encoder output of a fitted window holding ``seconds`` of audio (see
    :func:`fitted_segment`, which this finishes; None when the decoder was unsure)."""
    from faster_whisper.tokenizer import Tokenizer
    from faster_whisper.transcribe import get_compression_ratio, merge_punctuations

    tok = Tokenizer(
        model.hf_tokenizer, model.model.is_multilingual, task="transcribe", language="en"
    )
    prompt = [*tok.sot_sequence, tok.no_timestamps]
    result = model.model.generate(
        encoded,
        [prompt],
        beam_size=beam_size,
        max_length=min(448, len(prompt) + 20 + int(TOKENS_PER_SECOND * seconds)),
        suppress_blank=True,
        suppress_tokens=[-1],
        return_scores=True,
        return_no_speech_prob=True,
    )[0]
    tokens = [t for t in result.sequences_ids[0] if t < tok.eot]
    text = tok.decode(tokens).strip()
    if not tokens or not text:
        return None
    logprob = float(result.scores[0]) * len(tokens) / (len(tokens) + 1)  # as faster-whisper
    if logprob < FIT_MIN_LOGPROB or get_compression_ratio(text) > MAX_COMPRESSION_RATIO:
        return None
    aligned = []
    if word_times:
        aligned = model.find_alignment(tok, [tokens], encoded, int(seconds * 100))[0]
    merge_punctuations(aligned, "\"'“¿([{-", "\"'.。,，!！?？:：”)]}、")
    words = tuple(
        Word(
            round(min(float(w["start"]), seconds) + offset, 3),
            round(min(float(w["end"]), seconds) + offset, 3),
            w["word"],
            round(float(w["probability"]), 4),
        )
        for w in aligned
        if w["word"]
    )
    return TextSegment(
        start=words[0].start if words else round(offset, 3),
        end=words[-1].end if words else round(seconds + offset, 3),
        text=text,
        words=words,
        avg_logprob=round(logprob, 4),
        no_speech_prob=round(float(result.no_speech_prob), 4),
    )
