"""Sign-in and CSRF: who is making a change, and that the change came from one of our own pages.

People sign in with a display name (it becomes the commit author) and, when the app has a token
(any bind other than 127.0.0.1), with that token. The session is a signed cookie (SameSite=Strict)
holding the name, a CSRF secret and the undo stack; it never holds the token. Every POST must carry
the session's CSRF secret as the form field `csrf` (or header X-CSRF-Token).
"""

from __future__ import annotations

import hmac
import secrets
from urllib.parse import quote

from starlette.datastructures import FormData
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from . import params
from .errors import BadRequest

OPEN_PATHS = ("/signin", "/static/")


def csrf_token(request: Request) -> str:
    """This session's CSRF secret (made on first use)."""
    token = request.session.get("csrf")
    if not token:
        token = request.session["csrf"] = secrets.token_urlsafe(24)
    return token


def check_csrf(request: Request, form: FormData) -> None:
    sent = form.get("csrf") or request.headers.get("x-csrf-token") or ""
    expected = request.session.get("csrf") or ""
    if not expected or not isinstance(sent, str) or not hmac.compare_digest(sent.encode(), expected.encode()):
        raise BadRequest("the form's CSRF check failed: reload the page and try again (were you signed out?)", 403)


def user(request: Request) -> str | None:
    return request.session.get("user")


def require_user(request: Request) -> str:
    name = user(request)
    if not name:
        raise BadRequest("sign in first (/signin): changes are recorded under your name", 401)
    return name


def safe_next(target: str | None) -> str:
    """Only a path on this site (no scheme, no //host) may be a redirect target."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


async def signin_page(request: Request) -> Response:
    templates = request.app.state.templates
    ctx = {"next": safe_next(request.query_params.get("next")), "needs_token": request.app.state.token is not None,
           "error": None}
    return templates.TemplateResponse(request, "signin.html", ctx)


async def signin(request: Request) -> Response:
    form = await request.form()
    check_csrf(request, form)
    needs_token = request.app.state.token is not None
    name = params.text(form, "name", max_len=100)
    error = None
    if not name:
        error = "give your name: it is recorded as the author of your decisions"
    elif needs_token:
        given = params.text(form, "token", default="", max_len=200) or ""
        if not hmac.compare_digest(given.encode(), request.app.state.token.encode()):
            error = "wrong token: use the one `hyperds serve` printed when it started"
    if error:
        templates = request.app.state.templates
        ctx = {"next": safe_next(params.text(form, "next")), "needs_token": needs_token, "error": error}
        return templates.TemplateResponse(request, "signin.html", ctx, status_code=400)
    request.session["user"] = name
    request.session["signed_in"] = True
    request.session["csrf"] = secrets.token_urlsafe(24)  # a new secret per sign-in
    return RedirectResponse(safe_next(params.text(form, "next")), status_code=303)


async def signout(request: Request) -> Response:
    form = await request.form()
    check_csrf(request, form)
    request.session.clear()
    return RedirectResponse("/signin", status_code=303)


class RequireSignIn(BaseHTTPMiddleware):
    """With a token, every page but sign-in and static files needs a signed-in session."""

    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        if request.app.state.token is None or request.url.path.startswith(OPEN_PATHS):
            return await call_next(request)
        if not request.session.get("signed_in"):
            if request.method == "GET" and not request.url.path.startswith(("/api/", "/image/")):
                target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
                return RedirectResponse(f"/signin?next={quote(target)}", status_code=303)
            return Response("sign in first", status_code=401, media_type="text/plain")
        return await call_next(request)
