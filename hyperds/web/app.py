"""The ASGI app factory: routes of every page, sessions, templates, error pages, the image service.

Where to add a page: a module under hyperds/web/pages/ exposing `routes` (a list of Starlette
Route), a template under templates/, and its name in PAGES below.
"""

from __future__ import annotations

import importlib
import logging
import secrets
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from ..errors import HyperdsError
from ..store import Store
from . import auth
from .errors import hyperds_error
from .images import ImageService
from .state import DatasetNames, ReviewLists

log = logging.getLogger(__name__)

HERE = Path(__file__).resolve().parent
PAGES = ("home", "browse", "frame", "images", "review", "views")


def create_app(
    store: Store,
    token: str | None = None,
    cache_dir: str | None = None,
    cache_bytes: int = 512 << 20,
    secret_key: str | None = None,
) -> Starlette:
    """The web app for `store`.

    `token`: when set, every page needs a signed-in session, and signing in needs the token (use it
    for any bind other than 127.0.0.1). `cache_dir`/`cache_bytes`: the disk cache of thumbnails and
    display images (default: a folder under the system temp dir, 512 MiB). `secret_key` signs session
    cookies (default: random per process, so sessions end when the server restarts; give one when
    running several workers).
    """
    routes: list[Any] = [
        Route("/signin", auth.signin_page, methods=["GET"]),
        Route("/signin", auth.signin, methods=["POST"]),
        Route("/signout", auth.signout, methods=["POST"]),
        Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
    ]
    for name in PAGES:
        routes += importlib.import_module(f"{__package__}.pages.{name}").routes
    middleware = [
        Middleware(SessionMiddleware, secret_key=secret_key or secrets.token_hex(32), session_cookie="hyperds_session",
                   same_site="strict", max_age=12 * 3600),
        Middleware(auth.RequireSignIn),
    ]
    app = Starlette(routes=routes, middleware=middleware, exception_handlers={HyperdsError: hyperds_error})
    templates = Jinja2Templates(directory=str(HERE / "templates"))
    templates.env.globals.update(csrf_token=auth.csrf_token, current_user=auth.user)
    app.state.templates = templates
    app.state.store = store
    app.state.token = token
    app.state.images = ImageService(store, cache_dir, cache_bytes)
    app.state.lists = ReviewLists()
    app.state.names = DatasetNames(store)
    app.state.datasets = {}  # name -> Dataset, for image lookups (pages/images.py)
    return app
