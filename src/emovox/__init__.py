"""emovox: speech emotion recognition with honest, speaker-independent evaluation.

``emovox.load()`` gives a ready-to-use :class:`emovox.inference.recognizer.Recognizer` (imported
on first use, so ``import emovox`` stays cheap). ``emovox.Predictor``, its former name, still
works with a :class:`DeprecationWarning`.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any

from emovox import compat

__version__ = "0.1.0"

compat.install()

__all__ = ["Prediction", "Recognizer", "__version__", "load"]

if TYPE_CHECKING:
    from emovox.inference.loading import load
    from emovox.inference.recognizer import Prediction, Recognizer


def __getattr__(name: str) -> Any:
    if name == "load":
        from emovox.inference.loading import load

        return load
    if name in ("Recognizer", "Prediction"):
        from emovox.inference import recognizer

        return getattr(recognizer, name)
    if name == "Predictor":
        from emovox.inference import recognizer

        warnings.warn(
            "emovox.Predictor was renamed emovox.Recognizer; the old name will be removed in "
            "the next release",
            DeprecationWarning,
            stacklevel=2,
        )
        return recognizer.Recognizer
    raise AttributeError(f"module 'emovox' has no attribute {name!r}")
