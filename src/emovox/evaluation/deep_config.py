"""The settings of a deep training run (``emovox train``): :class:`DeepConfig`, built from a
TOML config file plus overrides, with every key and value checked.

A config file has four sections (every key optional except ``[experiment] model``)::

    [experiment]   # name, model ("cnn" | "resnet34"), corpora, labels, protocol, k, folds, seed,
                   # pretrained, paper_augment_first, copies, val_fraction, n_jobs, roots, ...
    [model]        # keyword arguments of the network (EmotionCNN or resnet34)
    [train]        # TrainConfig fields (epochs, lr, crop_seconds, n_mels, ...)
    [augment]      # AugmentConfig fields (training-time augmentation, training clips only)
    [preprocess]   # Preprocess fields (trim, normalize, denoise, ...), optional

Unknown sections or keys are errors (:class:`ConfigError`) that name the key and the file.
"""

from __future__ import annotations

import dataclasses
import hashlib
import inspect
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from emovox.audio import Preprocess
from emovox.evaluation.config import ConfigError, read_config
from emovox.io import corpora_root, listify

#: ``[experiment] model`` values and the network each builds
MODELS: dict[str, str] = {"cnn": "emotion_cnn", "resnet34": "resnet34"}
#: the sections a config file may have
SECTIONS = ("experiment", "model", "train", "augment", "preprocess")
#: settings that do not change what a fold learns: a finished fold is re-used across them
RESULT_FREE = frozenset(
    {"folds", "name", "roots", "n_jobs", "threads", "device", "eval_batch_size", "workers"}
)

__all__ = [
    "MODELS",
    "RESULT_FREE",
    "SECTIONS",
    "ConfigError",
    "DeepConfig",
    "build_config",
    "load_config",
    "validate_config",
]


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
            from emovox.deep.config import TrainConfig

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
        from emovox.deep.config import ADDED_DEFAULTS

        written = list(ADDED_DEFAULTS)[: known or 0]
        d = self.to_dict()
        d = {k: v for k, v in d.items() if k not in RESULT_FREE | {"source"}}
        d["train"] = {
            k: v
            for k, v in d["train"].items()
            if k not in RESULT_FREE
            and (k in written or k not in ADDED_DEFAULTS or v != ADDED_DEFAULTS[k])
        }
        return hashlib.sha1(json.dumps(d, sort_keys=True).encode()).hexdigest()[:16]

    def digests(self) -> set[str]:
        """This config's digest as every emovox version would have written it."""
        from emovox.deep.config import ADDED_DEFAULTS

        return {self.digest(i) for i in range(len(ADDED_DEFAULTS) + 1)}


#: the ``[experiment]`` keys: the :class:`DeepConfig` fields a file may set
EXPERIMENT_KEYS = {
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
    from emovox.deep.config import TrainConfig

    for section, table in data.items():
        if section not in SECTIONS:
            raise ConfigError(
                f"unknown section [{section}] in {source or 'the config'}; "
                f"known sections: {', '.join(f'[{s}]' for s in SECTIONS)}"
            )
        if not isinstance(table, Mapping):
            raise ConfigError(f"{section} in {source or 'the config'} must be a [table]")
    exp_known = {k: v for k, v in _defaults(DeepConfig).items() if k in EXPERIMENT_KEYS}
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
    validate_config(cfg)
    return cfg


def validate_config(cfg: DeepConfig) -> None:
    """Check the settings that depend on each other; raises :class:`ConfigError`."""
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
    return build_config(read_config(path), overrides, source=path)
