"""Reading run configs: the one TOML reader behind both ``emovox evaluate --config`` (the
classical :func:`emovox.evaluation.experiment_config.load_experiment_config`) and ``emovox train``
(:func:`emovox.evaluation.deep_config.load_config`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from emovox.io import read_toml


class ConfigError(ValueError):
    """A config file (or override) that cannot be used, naming the file and the key."""


def read_config(path: str | Path) -> dict[str, Any]:
    """The parsed TOML tables of a config file; a missing or malformed file raises
    :class:`ConfigError` naming it."""
    try:
        return read_toml(path)
    except ValueError as exc:
        raise ConfigError(str(exc)) from exc
