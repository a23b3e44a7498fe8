"""emovox: speech emotion recognition with honest, speaker-independent evaluation.

``emovox.load()`` gives a ready-to-use :class:`emovox.inference.api.Predictor` (imported on first
use, so
``import emovox`` stays cheap).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from emovox import compat

__version__ = "0.1.0"

compat.install()

__all__ = ["Prediction", "Predictor", "__version__", "load"]

if TYPE_CHECKING:
    from emovox.inference.api import Prediction, Predictor, load


def __getattr__(name: str) -> Any:
    if name in ("load", "Predictor", "Prediction"):
        from emovox.inference import api

        return getattr(api, name)
    raise AttributeError(f"module 'emovox' has no attribute {name!r}")
