"""The REST API (``/api/v1``) and the app that also serves the web pages.

Build it with :func:`create_app`; nothing is created at import time, and FastAPI itself is only
imported when an app is built (so the CLI stays quick to start).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cswb.api.app import create_app

__all__ = ["create_app"]


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from cswb.api.app import create_app

        return create_app
    raise AttributeError(f"module 'cswb.api' has no attribute {name!r}")
