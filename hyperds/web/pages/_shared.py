"""Helpers every page uses: open what a request names (dataset, view) and render a template."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response

from ...frames.rows import sql_literal
from .. import params

if TYPE_CHECKING:
    from ...dataset import Dataset
    from ...store import Store

__all__ = ["sql_literal", "store_of", "dataset", "render", "plain", "frame_json"]


def store_of(request: Request) -> Store:
    return request.app.state.store


def dataset(request: Request, fields: Any = None, name: str = "dataset") -> Dataset:
    """The dataset named by field `name` (DatasetNotFoundError -> 404 lists the ones there are)."""
    fields = request.query_params if fields is None else fields
    return store_of(request).dataset(params.required(fields, name, max_len=200))


def render(request: Request, template: str, ctx: dict[str, Any], status: int = 200) -> Response:
    return request.app.state.templates.TemplateResponse(request, template, ctx, status_code=status)


def plain(value: Any) -> Any:
    """A value made JSON-friendly (datetimes as ISO text, nested lists and dicts too)."""
    if isinstance(value, dt.datetime):
        return value.isoformat(timespec="seconds")
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value


def frame_json(ds: Dataset, frame: dict[str, Any]) -> dict[str, Any]:
    keep = ("frame_id", "uri", "width", "height", "captured_at", "site", "camera", "seq_id", "frame_num",
            "revision", "labels", "annotations")
    return {"dataset": ds.name, "version": ds.version, **{k: plain(frame.get(k)) for k in keep}}
