"""Views: published versions (digest, counts, runs), the diff between two versions, publishing a query."""

from __future__ import annotations

from urllib.parse import urlencode

import polars as pl
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from .. import params
from ..auth import check_csrf, require_user
from ._shared import dataset, plain, render, store_of

DIFF_ROWS = 200


def views_page(request: Request) -> Response:
    store = store_of(request)
    rows = pl.from_arrow(store.views()).sort(["name", "created_at"]).to_dicts()
    runs = pl.from_arrow(store.runs())
    for row in rows:
        mine = runs.filter((pl.col("view") == row["name"]) & (pl.col("version") == row["version"])) if runs.height else runs
        row["runs"] = [plain(r) for r in mine.to_dicts()]
    return render(request, "views.html", {"views": [plain(r) for r in rows]})


def diff_page(request: Request) -> Response:
    qp = request.query_params
    name = params.required(qp, "name", max_len=200)
    old = params.required(qp, "old", max_len=50)
    new = params.required(qp, "new", max_len=50)
    view = store_of(request).view(name, new)
    diff = view.diff(old)
    parts = {k: [plain(r) for r in getattr(diff, k).head(DIFF_ROWS).to_dicts()]
             for k in ("added", "removed", "relabeled", "revised")}
    return render(request, "view_diff.html", {"name": name, "diff": diff, "counts": diff.counts, "parts": parts,
                                              "limit": DIFF_ROWS})


async def publish(request: Request) -> Response:
    """Publish the browsed query of one dataset as a version of view `name` (its draft is redefined first)."""
    form = await request.form()
    check_csrf(request, form)
    author = require_user(request)
    ds = dataset(request, form)
    name = params.required(form, "name", max_len=200)
    q = params.text(form, "q", default="TRUE", max_len=4000)
    version = params.text(form, "version", max_len=50)
    message = params.text(form, "message", default="", max_len=2000)

    def run():
        store = store_of(request)
        store.create_view(name, q, datasets=[ds.name], message=message or "published from the web app")
        return store.view(name, "draft").publish(version, message=message or None, author=author)

    published = await run_in_threadpool(run)
    return RedirectResponse("/browse?" + urlencode({"view": name, "version": published.version}), status_code=303)


routes = [
    Route("/views", views_page),
    Route("/views/diff", diff_page),
    Route("/views/publish", publish, methods=["POST"]),
]
