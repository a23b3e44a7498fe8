"""The API behind ``emovox train``: a TOML config → corpora → waveforms → folds → deep models →
the same scores and run reports as the classical path.

>>> from emovox.evaluation.deep_experiment import load_config, train_and_evaluate
>>> cfg = load_config("configs/paper-model2.toml", {"folds": 1, "threads": 2})  # doctest: +SKIP
>>> metrics = train_and_evaluate(cfg, "runs", resume=True)                     # doctest: +SKIP
>>> metrics["ua"], metrics["leaky"]                                            # doctest: +SKIP

A config file has four sections (every key optional except ``[experiment] model``)::

    [experiment]   # name, model ("cnn" | "resnet34"), corpora, labels, protocol, k, folds, seed,
                   # pretrained, paper_augment_first, copies, val_fraction, n_jobs, roots, ...
    [model]        # keyword arguments of the network (EmotionCNN or resnet34)
    [train]        # TrainConfig fields (epochs, lr, crop_seconds, n_mels, ...)
    [augment]      # AugmentConfig fields (training-time augmentation, training clips only)
    [preprocess]   # Preprocess fields (trim, normalize, denoise, ...), optional

Unknown sections or keys are errors that name the key and the file.

Each run writes ``<out>/<name>-<protocol>/``: the classical run files (``config.json``,
``metrics.json``, ``predictions.csv``, ``confusion.png``, ``summary.md``, ``skipped.csv``) plus
one folder per fold with the trainer's files (``model.safetensors``, ``model.json``,
``checkpoint.safetensors``, ``history.json``, ``curves.png``) and ``fold_result.json``, which
marks the fold as finished so ``resume=True`` re-uses it instead of training again.
"""

from __future__ import annotations

import dataclasses
import hashlib
import inspect
import json
import math
import os
import re
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from emovox.audio import AudioError, Preprocess, content_hash, decode, preprocess
from emovox.data.manifest import Clip
from emovox.io import atomic_write_json, corpora_root, listify
from emovox.progress import progress_bar, resolve_jobs

MODELS: dict[str, str] = {"cnn": "emotion_cnn", "resnet34": "resnet34"}
FOLD_RESULT = "fold_result.json"
SECTIONS = ("experiment", "model", "train", "augment", "preprocess")
# settings that do not change what a fold learns: a finished fold is re-used across them
_RESULT_FREE = {"folds", "name", "roots", "n_jobs", "threads", "device", "eval_batch_size"}
_RESULT_FREE |= {"workers"}

Log = Callable[[str], None]


class ConfigError(ValueError):
    """A config file (or override) that cannot be used, naming the file and the key."""


# --------------------------------------------------------------------------- config


@dataclass
class DeepConfig:
    """Everything that defines one deep training run (written to ``config.json``)."""

    model: str = "cnn"  # "cnn" (EmotionCNN) or "resnet34"
    name: str | None = None  # run folder: <out>/<name>-<protocol>; default: the config's stem
    corpora: list[str] = field(default_factory=list)  # empty: every corpus found
    roots: list[str] = field(default_factory=lambda: [str(corpora_root())])
    labels: str = "paper7"  # a LABEL_SETS name, a comma list, or auto
    protocol: str = "speaker-kfold"
    k: int = 5
    folds: int | None = None  # run only the first N of the k folds (None: all)
    seed: int = 0
    test_speakers: list[str] = field(default_factory=list)
    train_corpora: list[str] = field(default_factory=list)
    test_corpora: list[str] = field(default_factory=list)
    val_fraction: float = 0.15  # validation: this share of the TRAINING speakers
    pretrained: str | None = None  # a .pth/.safetensors path, or "imagenet"
    paper_augment_first: bool = False  # the paper's LEAKY protocol (protocol "random" only)
    copies: int = 2  # augmented copies per clip with paper_augment_first
    n_jobs: int = -1  # processes decoding audio (-1: all cores)
    model_kwargs: dict[str, Any] = field(default_factory=dict)
    train: Any = None  # TrainConfig (typed Any so this module imports without torch)
    preprocess: Preprocess = field(default_factory=Preprocess)
    source: str | None = None  # the config file read

    def __post_init__(self) -> None:
        if self.train is None:
            from emovox.deep.train import TrainConfig

            self.train = TrainConfig()

    def run_name(self) -> str:
        base = self.name or (Path(self.source).stem if self.source else None)
        if not base:
            base = f"{self.model}-{'+'.join(self.corpora) if self.corpora else 'all'}"
        return f"{base}-{self.protocol}"

    @property
    def leaky(self) -> bool:
        from emovox.evaluation.splits import LEAKY_PROTOCOLS

        return self.protocol in LEAKY_PROTOCOLS or self.paper_augment_first

    def to_dict(self) -> dict[str, Any]:
        d = {f.name: getattr(self, f.name) for f in fields(self)}
        d["train"] = self.train.to_dict()
        d["preprocess"] = dataclasses.asdict(self.preprocess)
        return json.loads(json.dumps(d))  # tuples as lists

    def digest(self, known: int | None = None) -> str:
        """Hash of every setting that changes what a fold learns (not threads, device, folds).

        Train settings added later (``ADDED_DEFAULTS``, in the order they were added) count
        only when they differ from the value runs had before them, so older runs keep their
        digest; ``known=i`` hashes as the version that knew the first ``i`` of them did.
        """
        from emovox.deep.train import ADDED_DEFAULTS

        written = list(ADDED_DEFAULTS)[: known or 0]
        d = self.to_dict()
        d = {k: v for k, v in d.items() if k not in _RESULT_FREE | {"source"}}
        d["train"] = {
            k: v
            for k, v in d["train"].items()
            if k not in _RESULT_FREE
            and (k in written or k not in ADDED_DEFAULTS or v != ADDED_DEFAULTS[k])
        }
        return hashlib.sha1(json.dumps(d, sort_keys=True).encode()).hexdigest()[:16]

    def digests(self) -> set[str]:
        """This config's digest as every emovox version would have written it."""
        from emovox.deep.train import ADDED_DEFAULTS

        return {self.digest(i) for i in range(len(ADDED_DEFAULTS) + 1)}


_EXPERIMENT_KEYS = {
    f.name for f in fields(DeepConfig) if f.name not in ("model_kwargs", "train", "preprocess")
} - {"source"}


def _where(path: str | Path | None, section: str) -> str:
    return f"[{section}] of {path}" if path else f"[{section}]"


def _check_value(key: str, value: Any, default: Any, where: str) -> Any:
    """Reject values whose type cannot be what the field expects (bools, numbers, strings)."""
    if value is None or default is None:
        return value
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise ConfigError(f"{key} in {where} must be true or false, got {value!r}")
    elif isinstance(default, (int, float)):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{key} in {where} must be a number, got {value!r}")
        if isinstance(default, int) and not isinstance(default, bool) and isinstance(value, float):
            if not value.is_integer():
                raise ConfigError(f"{key} in {where} must be a whole number, got {value!r}")
            value = int(value)
    elif isinstance(default, str):
        if not isinstance(value, str):
            raise ConfigError(f"{key} in {where} must be a string, got {value!r}")
    elif isinstance(default, (list, tuple)) and not isinstance(value, (list, tuple)):
        raise ConfigError(f"{key} in {where} must be a list, got {value!r}")
    return value


def _check_keys(
    table: Mapping[str, Any], known: dict[str, Any], section: str, path: str | Path | None
) -> dict[str, Any]:
    where = _where(path, section)
    out = {}
    for key, value in table.items():
        if key not in known:
            raise ConfigError(
                f"unknown key {key!r} in {where}; known keys: {', '.join(sorted(known))}"
            )
        out[key] = _check_value(key, value, known[key], where)
    return out


def _defaults(cls: type) -> dict[str, Any]:
    out = {}
    for f in fields(cls):
        if f.default is not dataclasses.MISSING:
            out[f.name] = f.default
        elif f.default_factory is not dataclasses.MISSING:
            out[f.name] = f.default_factory()
        else:
            out[f.name] = None
    return out


def _model_params(model: str) -> dict[str, Any]:
    from emovox.deep.nets import ARCHITECTURES

    sig = inspect.signature(ARCHITECTURES[MODELS[model]])
    return {
        n: (None if p.default is inspect.Parameter.empty else p.default)
        for n, p in sig.parameters.items()
        if n != "n_classes"
    }


def _read_toml(path: Path) -> dict[str, Any]:
    from emovox.io import read_toml

    try:
        return read_toml(path)
    except ValueError as exc:
        raise ConfigError(str(exc)) from exc


def build_config(
    data: Mapping[str, Any],
    overrides: Mapping[str, Any] | None = None,
    source: str | Path | None = None,
) -> DeepConfig:
    """A :class:`DeepConfig` from parsed TOML tables, with ``overrides`` applied on top.

    ``overrides`` keys are ``[experiment]`` or ``[train]`` field names (``protocol``,
    ``folds``, ``epochs``, ``threads``, ``device``, ...) or ``section.key``; ``None`` values
    are ignored.
    """
    from emovox.deep.augment import AugmentConfig
    from emovox.deep.train import TrainConfig

    for section, table in data.items():
        if section not in SECTIONS:
            raise ConfigError(
                f"unknown section [{section}] in {source or 'the config'}; "
                f"known sections: {', '.join(f'[{s}]' for s in SECTIONS)}"
            )
        if not isinstance(table, Mapping):
            raise ConfigError(f"{section} in {source or 'the config'} must be a [table]")
    exp_known = {k: v for k, v in _defaults(DeepConfig).items() if k in _EXPERIMENT_KEYS}
    train_known = {k: v for k, v in _defaults(TrainConfig).items() if k != "augment"}
    aug_known = _defaults(AugmentConfig)
    pre_known = _defaults(Preprocess)
    tables = {
        "experiment": dict(data.get("experiment", {})),
        "train": dict(data.get("train", {})),
        "augment": dict(data.get("augment", {})),
        "preprocess": dict(data.get("preprocess", {})),
        "model": dict(data.get("model", {})),
    }
    for key, value in (overrides or {}).items():
        if value is None:
            continue
        if "." in key:
            section, sub = key.split(".", 1)
            if section not in tables:
                raise ConfigError(f"unknown override section in {key!r}")
            tables[section][sub] = value
        elif key in exp_known:
            tables["experiment"][key] = value
        elif key in train_known:
            tables["train"][key] = value
        else:
            raise ConfigError(f"unknown override {key!r}")
    exp = _check_keys(tables["experiment"], exp_known, "experiment", source)
    train = _check_keys(tables["train"], train_known, "train", source)
    aug = _check_keys(tables["augment"], aug_known, "augment", source)
    pre = _check_keys(tables["preprocess"], pre_known, "preprocess", source)

    model = exp.get("model", "cnn")
    if model not in MODELS:
        raise ConfigError(
            f"model {model!r} in {_where(source, 'experiment')} is not one of {', '.join(MODELS)}"
        )
    model_kwargs = _check_keys(tables["model"], _model_params(model), "model", source)
    train.setdefault("seed", exp.get("seed", 0))  # one seed for the whole run unless split
    listify(exp, ("corpora", "test_speakers", "train_corpora", "test_corpora", "roots"))
    try:
        train_cfg = TrainConfig(**train, augment=AugmentConfig(**aug))
        pre_cfg = Preprocess(**pre)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{source or 'config'}: {exc}") from exc
    cfg = DeepConfig(
        **exp,
        model_kwargs=model_kwargs,
        train=train_cfg,
        preprocess=pre_cfg,
        source=str(source) if source else None,
    )
    _validate(cfg)
    return cfg


def _validate(cfg: DeepConfig) -> None:
    from emovox.evaluation.splits import PROTOCOLS

    where = _where(cfg.source, "experiment")
    if cfg.protocol not in PROTOCOLS:
        raise ConfigError(
            f"protocol {cfg.protocol!r} in {where} is not one of {', '.join(PROTOCOLS)}"
        )
    if cfg.paper_augment_first and cfg.protocol != "random":
        raise ConfigError(
            f"paper_augment_first (in {where}) builds augmented copies of every clip BEFORE "
            "splitting, so copies of one recording land in training and test; it is only "
            f"allowed with protocol 'random' (LEAKY), not {cfg.protocol!r}. Set "
            "paper_augment_first = false for a speaker-independent run, or use --protocol random."
        )
    if cfg.paper_augment_first and not cfg.train.augment.waveform_enabled:
        raise ConfigError(
            f"paper_augment_first (in {where}) makes its copies with the waveform augmentations, "
            "and every one of them is off in [augment] (p_speed, p_pitch, p_reverb, p_noise, "
            "p_gain, p_shift), so the copies would be identical clips; turn one on"
        )
    if cfg.k < 2:
        raise ConfigError(f"k in {where} must be at least 2, got {cfg.k}")
    if cfg.folds is not None and cfg.folds < 1:
        raise ConfigError(f"folds in {where} must be at least 1, got {cfg.folds}")
    if cfg.copies < 1:
        raise ConfigError(f"copies in {where} must be at least 1, got {cfg.copies}")
    if not 0.0 <= cfg.val_fraction < 1.0:
        raise ConfigError(f"val_fraction in {where} must be in [0, 1), got {cfg.val_fraction}")
    if cfg.name is not None and not re.fullmatch(r"[A-Za-z0-9._+=-]+", cfg.name):
        raise ConfigError(f"name {cfg.name!r} in {where}: use letters, digits and . _ + = -")


def load_config(path: str | Path, overrides: Mapping[str, Any] | None = None) -> DeepConfig:
    """Read a TOML config file; ``overrides`` (e.g. from the command line) win over the file."""
    path = Path(path)
    return build_config(_read_toml(path), overrides, source=path)


# --------------------------------------------------------------------------- audio


class Waveforms(NamedTuple):
    """Decoded, preprocessed clips: ``wavs`` holds the usable ones in input order."""

    wavs: list[np.ndarray]  # float32, one per usable clip
    ok: np.ndarray  # (n,) bool over the input clips
    errors: list[tuple[str, str]]  # (path, reason) for each clip that could not be used
    hashes: list[str | None]  # (n,) content hash of the decoded audio (None: not decodable)


def _load_one(path: str, pre: Preprocess) -> tuple[np.ndarray | None, str | None, str | None]:
    try:
        y = decode(path, pre.sample_rate, pre.max_seconds)
    except AudioError as exc:
        return None, None, exc.reason
    except Exception as exc:  # noqa: BLE001 - anything a decoder throws is the clip's problem
        return None, None, f"decoding failed: {type(exc).__name__}: {exc}"
    h = content_hash(y)
    try:
        return preprocess(y, pre, path), h, None
    except AudioError as exc:
        return None, h, exc.reason
    except Exception as exc:  # noqa: BLE001 - one clip's bug must not end the run
        return None, h, f"preprocessing failed: {type(exc).__name__}: {exc}"


def _load_chunk(
    items: list[tuple[int, str]], pre: Preprocess, worker: bool = False
) -> list[tuple[int, Any, Any, Any]]:
    if worker:  # one BLAS thread per worker process (never in the caller's process)
        try:
            from threadpoolctl import threadpool_limits

            threadpool_limits(limits=1, user_api="blas")
        except ImportError:  # pragma: no cover - threadpoolctl ships with scikit-learn
            pass
    return [(i, *_load_one(p, pre)) for i, p in items]


def load_waveforms(
    clips: Sequence[Clip | str | os.PathLike[str]],
    pre: Preprocess | None = None,
    n_jobs: int = -1,
    progress: bool = True,
) -> Waveforms:
    """Decode and preprocess clips (or paths) in ``n_jobs`` processes; never raises per clip.

    Every clip that fails is listed in ``errors`` with its reason (nothing is dropped silently).
    Returns :class:`Waveforms` ``(wavs, ok, errors, hashes)``.
    """
    pre = pre or Preprocess()
    paths = [c.path if isinstance(c, Clip) else os.fspath(c) for c in clips]
    n = len(paths)
    jobs = resolve_jobs(n_jobs)
    items = list(enumerate(paths))
    size = max(8, min(64, math.ceil(n / (8 * jobs)) if n else 8))
    chunks = [items[i : i + size] for i in range(0, n, size)]
    got: list[np.ndarray | None] = [None] * n
    hashes: list[str | None] = [None] * n
    reasons: dict[int, str] = {}

    def results() -> Iterator[list[tuple[int, Any, Any, Any]]]:
        if jobs == 1 or len(chunks) <= 1:
            for ch in chunks:
                yield _load_chunk(ch, pre)
            return
        from joblib import Parallel, delayed

        par = Parallel(n_jobs=jobs, backend="loky", return_as="generator_unordered")
        yield from par(delayed(_load_chunk)(ch, pre, True) for ch in chunks)

    with progress_bar(progress) as bar:
        task = bar.add_task("audio", total=n)
        for chunk in results():
            for i, y, h, reason in chunk:
                got[i], hashes[i] = y, h
                if reason is not None:
                    reasons[i] = reason
            bar.advance(task, len(chunk))
    ok = np.array([y is not None for y in got], dtype=bool)
    errors = [(paths[i], reasons.get(i, "unknown error")) for i in range(n) if not ok[i]]
    wavs = [y for y in got if y is not None]
    return Waveforms(wavs, ok, errors, hashes)


def augmented_pool(
    wavs: Sequence[np.ndarray], copies: int, augment: Any, seed: int = 0, sr: int = 16_000
) -> tuple[list[np.ndarray], list[int], list[int]]:
    """The paper's augment-first pool: each clip plus ``copies`` augmented copies (seeded per
    clip and copy). Returns ``(wavs, source index per item, copy number per item (0 = original))``.
    """
    from emovox.deep.augment import augment_waveform

    out: list[np.ndarray] = []
    src: list[int] = []
    copy: list[int] = []
    for i, y in enumerate(wavs):
        out.append(y)
        src.append(i)
        copy.append(0)
        for c in range(1, copies + 1):
            rng = np.random.default_rng([seed, 7, i, c])
            out.append(augment_waveform(y, sr, rng, augment))
            src.append(i)
            copy.append(c)
    return out, src, copy


# --------------------------------------------------------------------------- training


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._=+-]+", "_", name).strip("._") or "fold"


def build_net(cfg: DeepConfig, n_classes: int) -> Any:
    """The configured network for ``n_classes`` (EmotionCNN gets ``n_mels`` from ``[train]``)."""
    from emovox.deep.nets import build_model

    kwargs = dict(cfg.model_kwargs)
    if cfg.model == "cnn":
        kwargs.setdefault("n_mels", cfg.train.n_mels)
    return build_model(MODELS[cfg.model], n_classes=n_classes, **kwargs)


def speaker_validation(
    fold: Any,
    speakers: Sequence[str],
    corpora: Sequence[str],
    fraction: float = 0.15,
    seed: int = 0,
    leaky: bool = False,
) -> Any:
    """Carve validation speakers out of the training side, corpus by corpus.

    Each corpus with at least 3 training speakers gives ``round(fraction x its speakers)``
    (at least 1) of them, drawn at random; corpora with fewer training speakers (TESS has two
    in all) stay in training. Unlike :func:`emovox.evaluation.splits.with_validation`, which draws
    ``fraction`` of ALL training speakers, this keeps validation near ``fraction`` of the
    clips when speakers differ a lot in size (a TESS speaker has 1400 clips, a CREMA-D one
    about 80) and gives every large corpus a share. Never touches the test side. For a leaky
    protocol (or when no corpus has 3 training speakers) it falls back to ``with_validation``.
    """
    from emovox.evaluation.splits import Fold, with_validation

    if leaky or fraction <= 0:
        return with_validation(fold, speakers, fraction, seed, leaky) if fraction > 0 else fold
    train = np.asarray(fold.train)
    spk = np.asarray(speakers, dtype=object)[train]
    corp = np.asarray(corpora, dtype=object)[train]
    rng = np.random.default_rng([seed, 11])
    val_spk: set[str] = set()
    for c in sorted(set(corp)):
        uniq = sorted(set(spk[corp == c]))
        if len(uniq) < 3:
            continue
        n_val = max(1, int(round(fraction * len(uniq))))
        val_spk.update(rng.permutation(np.array(uniq, dtype=object))[:n_val].tolist())
    if not val_spk:
        return with_validation(fold, speakers, fraction, seed, leaky)
    is_val = np.array([s in val_spk for s in spk], dtype=bool)
    return Fold(fold.name, train[~is_val], fold.test, train[is_val])


def _digest_ids(ids: Sequence[str]) -> str:
    return hashlib.sha1("\n".join(ids).encode()).hexdigest()[:16]


def _read_fold_result(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def train_and_evaluate(
    cfg: DeepConfig,
    out_dir: str | Path = "runs",
    resume: bool = False,
    progress: bool = True,
    log: Log | None = None,
    on_epoch_end: Callable[[str, dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Train and test the configured network on each fold (up to ``cfg.folds``) and score the
    pooled test predictions; writes ``<out_dir>/<run name>/`` and returns the metrics.

    ``resume=True`` re-uses finished folds (``fold_result.json`` with the same settings) and
    continues an interrupted fold from its checkpoint. ``log`` receives one-line messages;
    ``on_epoch_end(fold_name, record)`` is called after every epoch (an exception there stops
    training with the checkpoint intact).
    """
    import torch

    from emovox.deep.augment import AugmentConfig
    from emovox.deep.nets import load_torchvision_weights, n_parameters
    from emovox.deep.train import Trainer, predict_proba
    from emovox.evaluation.experiment import ExperimentConfig, resolve_labels, scan
    from emovox.evaluation.metrics import score
    from emovox.evaluation.reports import write_run
    from emovox.evaluation.splits import Split, make_split

    say: Log = log or (lambda _msg: None)
    t0 = time.perf_counter()
    _validate(cfg)
    run_dir = Path(out_dir) / cfg.run_name()

    manifest = scan(ExperimentConfig(corpora=list(cfg.corpora), roots=list(cfg.roots)))
    labels = resolve_labels(cfg.labels, manifest)
    kept, excluded = manifest.restrict(labels)
    say(f"{len(kept.clips)} clips of {', '.join(sorted({c.corpus for c in kept.clips}))}")
    loaded = load_waveforms(kept.clips, cfg.preprocess, cfg.n_jobs, progress)
    if loaded.errors:
        say(f"{len(loaded.errors)} clip(s) skipped (listed in skipped.csv)")
    ok = np.flatnonzero(loaded.ok)
    clips = [kept.clips[i] for i in ok]
    wavs = loaded.wavs
    hashes = [loaded.hashes[i] for i in ok]
    if not clips:
        raise ValueError("no usable clips: every clip failed to load (see the reasons above)")
    present = {c.emotion for c in clips}
    labels = tuple(lab for lab in labels if lab in present)
    if len(labels) < 2:
        raise ValueError(f"need at least 2 emotions to classify, found {list(labels)}")
    index = {lab: i for i, lab in enumerate(labels)}
    ids = [c.id for c in clips]
    copy_no = [0] * len(clips)
    train_cfg = cfg.train

    if cfg.paper_augment_first:
        say(f"paper_augment_first: {cfg.copies} augmented copies of every clip BEFORE splitting")
        wavs, src, copy_no = augmented_pool(
            wavs, cfg.copies, train_cfg.augment, cfg.seed, cfg.preprocess.sample_rate
        )
        clips = [clips[s] for s in src]
        hashes = [hashes[s] for s in src]  # copies keep their source's hash: the audit sees them
        ids = [c.id if k == 0 else f"{c.id}#aug{k}" for c, k in zip(clips, copy_no, strict=True)]
        train_cfg = dataclasses.replace(train_cfg, augment=AugmentConfig.none())

    y = np.array([c.emotion for c in clips], dtype=object)
    y_idx = np.array([index[e] for e in y], dtype=np.int64)
    speakers = np.array([c.speaker for c in clips], dtype=object)
    corpora = [c.corpus for c in clips]
    split = make_split(
        cfg.protocol,
        y,
        speakers,
        corpora,
        k=cfg.k,
        seed=cfg.seed,
        test_speakers=cfg.test_speakers,
        train_corpora=cfg.train_corpora,
        test_corpora=cfg.test_corpora,
        hashes=hashes,
        texts=[c.text for c in clips],
    )
    leaky = split.leaky or cfg.paper_augment_first
    n_run = len(split.folds) if cfg.folds is None else min(cfg.folds, len(split.folds))
    digest, digests = cfg.digest(), cfg.digests()

    predictions: list[dict[str, Any]] = []
    fold_info: list[dict[str, Any]] = []
    for fi, fold0 in enumerate(split.folds[:n_run]):
        fold = speaker_validation(fold0, speakers, corpora, cfg.val_fraction, cfg.seed, leaky)
        fold_dir = run_dir / _safe(fold.name)
        result_path = fold_dir / FOLD_RESULT
        test_ids = _digest_ids([ids[i] for i in fold.test])
        done = _read_fold_result(result_path) if resume else None
        if done is not None:
            if done.get("config_digest") not in digests or done.get("test_ids") != test_ids:
                raise ValueError(
                    f"{result_path} was written with other settings or data; run without "
                    "--resume to train again, or choose another run name (--name)"
                )
            say(
                f"{fold.name}: already done, re-using it (UA {done['ua']:.3f}, "
                f"{done['epochs_run']} epochs)"
            )
            predictions.extend(done["predictions"])
            fold_info.append({k: v for k, v in done.items() if k != "predictions"})
            continue
        if not resume:
            result_path.unlink(missing_ok=True)
        say(
            f"{fold.name} ({fi + 1}/{n_run}): {len(fold.train)} training, {len(fold.val)} "
            f"validation, {len(fold.test)} test clips"
        )
        tf = time.perf_counter()
        torch.manual_seed(cfg.seed * 1000 + fi)
        net = build_net(cfg, len(labels))
        if cfg.pretrained:
            rep = load_torchvision_weights(net, cfg.pretrained)
            say(
                f"pretrained {cfg.pretrained}: {len(rep['loaded'])} tensors loaded, "
                f"{len(rep['adapted'])} adapted, {len(rep['skipped']) + len(rep['missing'])} "
                "left at their initial values"
            )

        def hook(rec: dict[str, Any], _name: str = fold.name) -> None:
            if not progress:  # the trainer's progress bar prints these lines itself
                ua = "" if rec["val_ua"] is None else f"  val UA {rec['val_ua']:.3f}"
                say(
                    f"{_name} epoch {rec['epoch']}/{train_cfg.epochs}  loss "
                    f"{rec['train_loss']:.4f}{ua}  {rec['seconds']:.0f}s"
                )
            if on_epoch_end is not None:
                on_epoch_end(_name, rec)

        fold_train_cfg = train_cfg
        if not cfg.pretrained and train_cfg.freeze_epochs:
            # freezing a randomly initialised body only wastes epochs
            fold_train_cfg = dataclasses.replace(train_cfg, freeze_epochs=0)
            if fi == 0:
                say("no pretrained weights: freeze_epochs ignored (the body trains from the start)")
        trainer = Trainer(fold_train_cfg, on_epoch_end=hook)
        fit = trainer.fit(
            [wavs[i] for i in fold.train],
            y_idx[fold.train],
            [wavs[i] for i in fold.val],
            y_idx[fold.val],
            net,
            run_dir=fold_dir,
            resume=resume,
            progress=progress,
            labels=list(labels),
        )
        probs = predict_proba(net, [wavs[i] for i in fold.test], train_cfg)
        pred_idx = probs.argmax(axis=1)
        rows = []
        for i, p, pr in zip(fold.test, pred_idx, probs, strict=True):
            c = clips[i]
            row = {
                "id": ids[i],
                "corpus": c.corpus,
                "speaker": c.speaker,
                "fold": fold.name,
                "true": c.emotion,
                "pred": labels[int(p)],
                "path": c.path,
            }
            row.update({f"p_{lab}": round(float(v), 4) for lab, v in zip(labels, pr, strict=True)})
            rows.append(row)
        fold_scores = score([r["true"] for r in rows], [r["pred"] for r in rows], labels)
        info = {
            "fold": fold.name,
            "ua": fold_scores["ua"],
            "wa": fold_scores["wa"],
            "n_train": len(fold.train),
            "n_val": len(fold.val),
            "n_test": len(fold.test),
            "epochs_run": fit.epochs_run,
            "best_epoch": fit.best_epoch,
            "val_ua": fit.best_ua,
            "stopped_early": fit.stopped_early,
            "seconds": round(time.perf_counter() - tf, 1),
            "n_parameters": n_parameters(net),
            "config_digest": digest,
            "test_ids": test_ids,
        }
        atomic_write_json(result_path, info | {"predictions": rows})
        say(
            f"{fold.name}: test UA {info['ua']:.3f}  WA {info['wa']:.3f}  (best val UA "
            f"{'n/a' if fit.best_ua is None else f'{fit.best_ua:.3f}'} at epoch "
            f"{fit.best_epoch}, {info['seconds']:.0f}s)"
        )
        predictions.extend(rows)
        fold_info.append(info)

    metrics = score([p["true"] for p in predictions], [p["pred"] for p in predictions], labels)
    run_audit = Split(
        split.protocol, split.folds[:n_run], leaky, split.description, split.audits[:n_run]
    )
    metrics.update(
        model=cfg.model,
        corpora=sorted({c.corpus for c in clips}),
        protocol=cfg.protocol,
        leaky=leaky,
        folds=n_run,
        folds_total=len(split.folds),
        fold_ua=[f["ua"] for f in fold_info],
        leakage=run_audit.audit_summary(),
        skipped=len(loaded.errors),
        excluded=dict(excluded),
        wall_s=round(time.perf_counter() - t0, 2),
        paper_augment_first=cfg.paper_augment_first,
        fold_details=[{k: v for k, v in f.items() if k != "test_ids"} for f in fold_info],
        train_seconds=round(sum(f["seconds"] for f in fold_info), 1),
    )
    if cfg.paper_augment_first:
        metrics["copies"] = cfg.copies
    config = cfg.to_dict() | {
        "name": cfg.run_name(),
        "labels_resolved": list(labels),
        "corpora": metrics["corpora"],
        "clip_counts": dict(Counter(c.corpus for c in clips)),
    }
    write_run(run_dir, config, metrics, predictions, loaded.errors)
    metrics["run_dir"] = str(run_dir)
    return metrics
