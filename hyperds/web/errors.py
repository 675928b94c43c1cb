"""How the web layer answers bad requests and hyperds errors: a 4xx page (or JSON) that says what was wrong.

Every hyperds error maps to a status here, in one place; nothing reaches the client as a 500 with a traceback.
"""

from __future__ import annotations

import logging

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ..errors import (
    ConflictError,
    CorrectionError,
    DatasetNotFoundError,
    FrameNotFoundError,
    HyperdsError,
    QueryError,
    ViewError,
    ViewExistsError,
    ViewImmutableError,
    ViewNotFoundError,
)

log = logging.getLogger(__name__)


class BadRequest(HyperdsError):
    """A request the web app cannot act on (missing or malformed field); answered with `status`."""

    def __init__(self, message: str, status: int = 400):
        self.status = status
        super().__init__(message)


def status_of(exc: HyperdsError) -> int:
    """The HTTP status for a hyperds error."""
    if isinstance(exc, BadRequest):
        return exc.status
    if isinstance(exc, (DatasetNotFoundError, FrameNotFoundError, ViewNotFoundError)):
        return 404
    if isinstance(exc, (ConflictError, ViewExistsError, ViewImmutableError)):
        return 409
    if isinstance(exc, (QueryError, CorrectionError, ViewError)):
        return 400
    return 400


def wants_json(request: Request) -> bool:
    return request.url.path.startswith("/api/") or "application/json" in request.headers.get("accept", "")


async def hyperds_error(request: Request, exc: Exception) -> Response:
    """Exception handler: the error's own message (it names what was wrong and what to do), as a page or JSON."""
    assert isinstance(exc, HyperdsError)
    status = status_of(exc)
    log.info("%s %s -> %d: %s", request.method, request.url.path, status, type(exc).__name__)
    if wants_json(request):
        return JSONResponse({"error": str(exc), "kind": type(exc).__name__}, status_code=status)
    templates = request.app.state.templates
    return templates.TemplateResponse(
        request, "error.html", {"status": status, "message": str(exc), "kind": type(exc).__name__}, status_code=status
    )
