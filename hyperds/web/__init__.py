"""The reviewers' web app: browse, review, correct and audit frames in a browser (`hyperds serve`).

A consumer of hyperds' public API only (Store, Dataset, Query, View, commits, history); it opens no
Lance table of its own. Needs the `web` extra (Starlette, uvicorn, Jinja2).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from starlette.applications import Starlette

    from ..store import Store

__all__ = ["create_app"]


def create_app(store: Store, token: str | None = None, **options: Any) -> Starlette:
    """The ASGI app serving `store` (see hyperds.web.app.create_app for the options)."""
    from .app import create_app as _create

    return _create(store, token=token, **options)
