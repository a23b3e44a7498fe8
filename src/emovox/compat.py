"""Old import paths, kept working for one release with a :class:`DeprecationWarning`.

The package was regrouped into pipeline folders (``audio``, ``data``, ``features``,
``encoders``, ``models``, ``deep``, ``evaluation``, ``inference``, ...). ``import emovox.api`` and
the other old paths still give the new module itself (the same object, so classes compare
equal), found by a meta-path finder installed by ``import emovox``.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys
import warnings
from types import ModuleType

#: old dotted path -> new dotted path (a package maps its submodules too)
MOVED: dict[str, str] = {
    "emovox.api": "emovox.inference.recognizer",
    "emovox.bundle": "emovox.inference.bundle",
    "emovox.longform": "emovox.inference.timeline",
    "emovox.inference.longform": "emovox.inference.timeline",
    "emovox.build_model": "emovox.inference.build",
    "emovox.demo": "emovox.inference.demo",
    "emovox.manifest": "emovox.data.manifest",
    "emovox.labels": "emovox.data.labels",
    "emovox.corpora": "emovox.data.corpora",
    "emovox.corpora._common": "emovox.data.corpora.common",
    "emovox.embeddings": "emovox.features.embeddings",
    "emovox.features.whisper_mel": "emovox.encoders.mel",
    "emovox.backbones": "emovox.encoders",
    "emovox.runtime": "emovox.encoders.runtime",
    "emovox.splits": "emovox.evaluation.splits",
    "emovox.adaptation": "emovox.evaluation.adaptation",
    "emovox.metrics": "emovox.evaluation.metrics",
    "emovox.experiment": "emovox.evaluation.experiment",
    "emovox.deep_experiment": "emovox.evaluation.deep_experiment",
    "emovox.fusion": "emovox.evaluation.fusion",
    "emovox.reports": "emovox.evaluation.reports",
    "emovox.deep.train": "emovox.deep",
}


def new_name(old: str) -> str | None:
    """The module that replaced ``old``, or None when ``old`` did not move."""
    if old in MOVED:
        return MOVED[old]
    head, _, tail = old.rpartition(".")
    while head:
        if head in MOVED:
            return f"{MOVED[head]}.{old[len(head) + 1 :]}"
        head, _, _ = head.rpartition(".")
    return None


class MovedModuleFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Answers an old import path with the module now at its new path."""

    def __init__(self) -> None:
        self._specs: dict[str, object] = {}

    def find_spec(self, fullname, path=None, target=None):  # noqa: ANN001
        if not fullname.startswith("emovox.") or new_name(fullname) is None:
            return None
        return importlib.util.spec_from_loader(fullname, self)

    def create_module(self, spec) -> ModuleType:  # noqa: ANN001
        new = new_name(spec.name)
        warnings.warn(
            f"{spec.name} moved to {new}; the old path will be removed in the next release",
            DeprecationWarning,
            stacklevel=2,
        )
        module = importlib.import_module(new)
        self._specs[module.__name__] = module.__spec__
        return module

    def exec_module(self, module: ModuleType) -> None:
        # the import system stamped the old spec on the real module: put its own back
        module.__spec__ = self._specs.pop(module.__name__, module.__spec__)


def install() -> None:
    """Put the finder on ``sys.meta_path`` once (called by ``import emovox``)."""
    if not any(isinstance(f, MovedModuleFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, MovedModuleFinder())
