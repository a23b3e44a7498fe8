"""The settings of a classical or embedding evaluation run (``emovox evaluate``):
:class:`ExperimentConfig`, built from options or from a TOML config file, with its names checked
before any audio is read.

>>> cfg = ExperimentConfig(model="svm", corpora=["ravdess"])
>>> cfg.run_name()
'svm-ravdess-speaker-kfold'
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from emovox.data import corpora as corpus_loaders
from emovox.data.labels import label_set
from emovox.evaluation.adaptation import ADAPT_CHOICES
from emovox.evaluation.config import ConfigError, read_config
from emovox.evaluation.splits import PROTOCOLS
from emovox.features import FeatureConfig
from emovox.features.embeddings import encoder_names, is_embedding_spec
from emovox.io import corpora_root, listify
from emovox.models import CLASSICAL, FRAME_MODELS, SEQUENCE_MODELS

#: Training-clip weightings for ``ExperimentConfig.balance``: ``none`` (the model's own class
#: balance) or ``corpus`` (each training corpus the same total weight, classes balanced within it).
BALANCE_CHOICES = ("none", "corpus")


@dataclass
class ExperimentConfig:
    """Everything that defines one evaluation run (written to config.json)."""

    model: str = "svm"
    corpora: list[str] = field(default_factory=list)  # empty: every corpus found
    roots: list[str] = field(default_factory=lambda: [str(corpora_root())])
    labels: str = "auto"  # a LABEL_SETS name, a comma list, or auto
    protocol: str = "speaker-kfold"
    k: int = 5
    seed: int = 0
    test_speakers: list[str] = field(default_factory=list)
    train_corpora: list[str] = field(default_factory=list)
    test_corpora: list[str] = field(default_factory=list)  # loco: those held out (default: all)
    features: str = FeatureConfig().groups
    tune: bool = False
    params: dict[str, object] = field(default_factory=dict)  # model settings, e.g. {"C": 1e-3}
    denoise: bool = False  # spectral-gating noise reduction before features
    train_views: list[str] = field(default_factory=list)  # e.g. ["speed:0.9"]: training rows only
    layers: list[int] = field(default_factory=list)  # encoder hidden layers to pool (empty: all)
    adapt: str = "none"  # "speaker" | "corpus": standardise features per group (no labels used)
    balance: str = "none"  # "corpus": each training corpus the same total weight (BALANCE_CHOICES)
    n_jobs: int = -1
    name: str | None = None
    out_dir: str = "runs"

    def run_name(self) -> str:
        corp = "+".join(self.corpora) if self.corpora else "all"
        return self.name or f"{self.model}-{corp}-{self.protocol}"


#: fields that hold lists (a config file may give one string instead)
LIST_KEYS = (
    "corpora",
    "roots",
    "test_speakers",
    "train_corpora",
    "test_corpora",
    "train_views",
    "layers",
)


def load_experiment_config(path: str | Path, **overrides: object) -> ExperimentConfig:
    """An :class:`ExperimentConfig` from a TOML file's ``[experiment]`` table (the same field
    names as the class), with non-None ``overrides`` on top. Unknown sections or keys, and a
    missing or malformed file, raise :class:`emovox.evaluation.config.ConfigError` (a
    ``ValueError``)."""
    data = read_config(path)
    unknown_sections = set(data) - {"experiment"}
    if unknown_sections:
        raise ConfigError(
            f"{path}: unknown section(s) {', '.join(sorted(unknown_sections))}; an evaluation "
            "config has one [experiment] table"
        )
    table = dict(data.get("experiment", {}))
    known = set(ExperimentConfig.__dataclass_fields__)
    bad = sorted(set(table) - known)
    if bad:
        raise ConfigError(
            f"{path}: unknown key(s) {', '.join(bad)} in [experiment]; "
            f"known: {', '.join(sorted(known))}"
        )
    table.update({k: v for k, v in overrides.items() if v is not None})
    listify(table, LIST_KEYS)
    if isinstance(table.get("layers"), int):
        table["layers"] = [table["layers"]]
    try:
        cfg = ExperimentConfig(**table)
    except TypeError as exc:
        raise ConfigError(f"{path}: {exc}") from exc
    check_config(cfg, str(path))
    return cfg


def check_config(cfg: ExperimentConfig, source: str = "config") -> None:
    """Check the names a run uses (protocol, model, labels, features, adaptation, balance,
    corpora) before any audio is read; raises :class:`emovox.evaluation.config.ConfigError` naming
    ``source`` and the key."""

    def bad(key: str, why: str) -> ConfigError:
        return ConfigError(f"{source}: {key} {getattr(cfg, key)!r} {why}")

    if cfg.protocol not in PROTOCOLS:
        raise bad("protocol", f"is not one of {', '.join(PROTOCOLS)}")
    models = CLASSICAL | SEQUENCE_MODELS | FRAME_MODELS
    if cfg.model.lower() not in models:
        raise bad("model", f"is not one of {', '.join(sorted(models))}")
    if cfg.adapt not in ADAPT_CHOICES:
        raise bad("adapt", f"is not one of {', '.join(ADAPT_CHOICES)}")
    if cfg.balance not in BALANCE_CHOICES:
        raise bad("balance", f"is not one of {', '.join(BALANCE_CHOICES)}")
    if cfg.k < 2:
        raise bad("k", "must be at least 2")
    try:
        if cfg.labels != "auto":
            label_set(cfg.labels)
        if is_embedding_spec(cfg.features):
            encoder_names(cfg.features)
        else:
            FeatureConfig(groups=cfg.features)
    except ValueError as exc:
        raise ConfigError(f"{source}: {exc}") from exc
    if cfg.layers and (not is_embedding_spec(cfg.features) or cfg.model in SEQUENCE_MODELS):
        raise bad("layers", "picks pooled encoder layers: use it with --features whisper:...")
    if any(not isinstance(i, int) or i < 0 for i in cfg.layers):
        raise bad("layers", "must be hidden-layer numbers from 0 (the stem)")
    if cfg.protocol == "loco" and cfg.train_corpora:
        raise bad("train_corpora", "is for cross-corpus; loco trains on all but the held-out")
    named = {corpus_loaders.generic.corpus_name(c) for c in cfg.corpora}
    outside = sorted({corpus_loaders.generic.corpus_name(c) for c in cfg.test_corpora} - named)
    if cfg.protocol == "loco" and named and outside:
        raise bad("test_corpora", f"names corpora not in corpora ({', '.join(outside)})")
