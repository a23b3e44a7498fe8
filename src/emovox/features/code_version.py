"""Versions of the code that computes cached values, derived from its source text, so a code
change (not only a settings change) moves a cache to a fresh namespace instead of re-using
stale vectors."""

from __future__ import annotations

import hashlib
import inspect
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

_PACKAGE = Path(__file__).resolve().parents[1]  # src/emovox


def module_source(name: str) -> bytes | None:
    """The source bytes of an ``emovox.*`` module, read from the package folder without
    importing it; None when the module does not exist (yet) or cannot be read."""
    parts = name.split(".")
    if parts[0] != "emovox":
        raise ValueError(f"not an emovox module: {name!r}")
    base = _PACKAGE.joinpath(*parts[1:])
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        try:
            return path.read_bytes()
        except OSError:
            continue
    return None


def source_version(modules: Iterable[str], functions: Iterable[Callable[..., Any]] = ()) -> str:
    """A 12-character hash of the source of ``modules`` (``emovox.*`` names; a missing one
    counts as absent, so it changes the version once it appears) and of ``functions``."""
    h = hashlib.sha1()
    for name in modules:
        src = module_source(name)
        h.update(f"\0module {name}\0".encode())
        h.update(b"<absent>" if src is None else src)
    for fn in functions:
        try:
            src_text = inspect.getsource(fn)
        except (OSError, TypeError):  # no source available (e.g. a compiled install)
            src_text = f"<no source: {getattr(fn, '__module__', '')}.{fn.__qualname__}>"
        h.update(f"\0function {fn.__qualname__}\0{src_text}".encode())
    return h.hexdigest()[:12]
