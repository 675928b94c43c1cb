"""Browse a dataset (optionally through a SQL condition) or a view version: a thumbnail grid.

Paging is by keyset on frame_id (`after=`), never by offset: each page asks for the frames after
the last one shown, so page 1,000 costs what page 1 costs. Label facets come from a separate JSON
request (/api/facets) so the grid does not wait for a count over the whole selection.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ...errors import QueryError
from .. import params
from ..errors import BadRequest
from ..source import read_rows
from ._shared import dataset, render, sql_literal, store_of

PAGE = 100
GRID_COLUMNS = ["frame_id", "uri", "labels", "annotations", "revision", "site", "captured_at"]


def selection(request: Request):
    """What the request browses: (dataset or None, view or None, query text or None, source to read)."""
    q = params.text(request.query_params, "q", max_len=4000)
    view_name = params.text(request.query_params, "view", max_len=200)
    if view_name:
        version = params.text(request.query_params, "version", max_len=50)
        view = store_of(request).view(view_name, version)
        return None, view, None, view
    ds = dataset(request)
    return ds, None, q, (ds.query(q) if q else ds)


def dataset_page(ds, q: str | None, after: str | None, n: int) -> tuple[list[str], bool]:
    """The next n frame_ids (sorted) of the dataset or its query after `after`, and whether more follow."""
    if q is not None:
        query = ds.query(q)  # QueryError here points into the user's own text
        if query.sql.startswith("SELECT "):  # a SELECT of their own: page its result in memory
            ids = query.frame_ids()
            ids = ids.filter(pc.greater(ids, after)) if after else ids
            return ids.slice(0, n).to_pylist(), len(ids) > n
        cond = f"({q})"
    else:
        cond = "TRUE"
    if after:
        cond += f" AND frame_id > {sql_literal(after)}"
    ids = ds.query(cond).frame_ids()
    return ids.slice(0, n).to_pylist(), len(ids) > n


def frames_by_id(ds, frame_ids: list[str]) -> list[dict]:
    if not frame_ids:
        return []
    listed = ", ".join(sql_literal(f) for f in frame_ids)
    rows = read_rows(ds.query(f"frame_id IN ({listed})"), GRID_COLUMNS).to_pylist()
    return sorted(rows, key=lambda r: r["frame_id"])


def view_page(view, after_ds: str | None, after: str | None, n: int) -> tuple[list[dict], bool]:
    table = read_rows(view, ["dataset"] + GRID_COLUMNS)
    if after_ds is not None and after is not None:
        later = pc.or_(pc.greater(table["dataset"], after_ds),
                       pc.and_(pc.equal(table["dataset"], after_ds), pc.greater(table["frame_id"], after)))
        table = table.filter(later)
    table = table.sort_by([("dataset", "ascending"), ("frame_id", "ascending")])
    return table.slice(0, n).to_pylist(), table.num_rows > n


def browse(request: Request) -> Response:
    qp = request.query_params
    after = params.text(qp, "after", max_len=2000)
    boxes = params.text(qp, "boxes", default="1") != "0"
    ctx = {"boxes": boxes, "error": None, "frames": [], "more": False, "q": params.text(qp, "q", max_len=4000)}
    try:
        ds, view, q, _ = selection(request)
    except QueryError as exc:
        ds = dataset(request)
        ctx.update(dataset=ds, view=None, error=exc)
        return render(request, "browse.html", ctx, status=400)
    ctx.update(dataset=ds, view=view)
    if view is not None:
        frames, more = view_page(view, params.text(qp, "after_dataset", max_len=200), after, PAGE)
    else:
        try:
            ids, more = dataset_page(ds, q, after, PAGE)
        except QueryError as exc:
            ctx["error"] = exc
            return render(request, "browse.html", ctx, status=400)
        frames = frames_by_id(ds, ids)
        for f in frames:
            f["dataset"] = ds.name
    ctx.update(frames=frames, more=more)
    return render(request, "browse.html", ctx)


def facets(request: Request) -> Response:
    """Label counts (frames per label) over the whole current selection."""
    try:
        _, _, _, source = selection(request)
    except QueryError as exc:
        raise BadRequest(str(exc)) from exc
    labels = read_rows(source, ["labels"]).column("labels")
    flat = pc.list_flatten(labels.combine_chunks() if labels.num_chunks else pa.array([], labels.type))
    counts = pc.value_counts(flat).to_pylist() if len(flat) else []
    counts.sort(key=lambda c: (-c["counts"], c["values"]))
    return JSONResponse({"frames": len(labels), "labels": [[c["values"], c["counts"]] for c in counts[:50]]})


routes = [Route("/browse", browse), Route("/api/facets", facets)]
