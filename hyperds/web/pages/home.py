"""Home: datasets (frames, version, annotations by source_kind and review_status) and views."""

from __future__ import annotations

import polars as pl
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ._shared import render, store_of


def summary(store, name: str) -> list[dict]:
    """Annotation counts by (source_kind, review_status), through store.sql's annotations relation."""
    counts = store.sql(
        f'SELECT source_kind, review_status, count(*) AS n FROM "{name}__annotations" GROUP BY 1, 2'
    )
    return counts.sort(["source_kind", "review_status"]).to_dicts()


def home(request: Request) -> Response:
    store = store_of(request)
    datasets = []
    for name in store.datasets():
        ds = store.dataset(name)
        datasets.append({"name": name, "frames": len(ds), "version": ds.version, "annotations": summary(store, name)})
    views = pl.from_arrow(store.views()).sort(["name", "created_at"]).to_dicts()
    return render(request, "home.html", {"datasets": datasets, "views": views})


routes = [Route("/", home)]
