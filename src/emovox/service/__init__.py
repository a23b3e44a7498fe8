"""The emovox web service (``emovox serve``; needs ``pip install 'emovox[serve]'``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__all__ = ["create_app"]

if TYPE_CHECKING:
    from emovox.service.app import create_app


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from emovox.service.app import create_app

        return create_app
    raise AttributeError(f"module 'emovox.service' has no attribute {name!r}")
