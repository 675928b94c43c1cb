"""Analytic SQL across datasets (GROUP BY, joins, aggregates) through polars' SQL engine.

Each dataset named in the query is exposed lazily under three relation names:
`<ds>` (frames), `<ds>__annotations` (one row per annotation: frame_id plus every annotation
field) and `<ds>__labels` (one row per frame and derived label: frame_id, label).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import polars as pl
from sqlglot import exp

from ..errors import QueryError
from .parse import parse_tree

if TYPE_CHECKING:
    from ..store import Store

RELATIONS = ("__annotations", "__labels")


def run_sql(store: Store, sql: str) -> pl.DataFrame:
    """Run one analytic SELECT over the store's datasets; the result is collected eagerly."""
    tree = parse_tree(sql)
    if not isinstance(tree, exp.Query):
        raise QueryError("store.sql() runs SELECT queries only", sql, 0)
    ctes = {c.alias_or_name for c in tree.find_all(exp.CTE)}
    ctx = pl.SQLContext()
    for table in tree.find_all(exp.Table):
        if table.name and table.name not in ctes:
            ctx.register(table.name, _relation(store, table.name, sql, table))
    try:
        return ctx.execute(sql, eager=True)
    except pl.exceptions.PolarsError as exc:
        raise QueryError(f"cannot run the analytic query: {str(exc).splitlines()[0]}", sql, None) from exc


def _relation(store: Store, name: str, sql: str, node: exp.Table) -> pl.LazyFrame:
    base, suffix = name, ""
    for rel in RELATIONS:
        if name.endswith(rel):
            base, suffix = name.removesuffix(rel), rel
    if base not in store.datasets():
        from difflib import get_close_matches

        known = store.datasets()
        names = known + [d + r for d in known for r in RELATIONS]
        start = min((n.meta["start"] for n in node.walk() if "start" in n.meta), default=None)
        raise QueryError(f"unknown dataset or relation {name!r}", sql, start,
                         get_close_matches(name, names, n=3, cutoff=0.6))
    frames = pl.scan_pyarrow_dataset(store.dataset(base).lance())
    if suffix == "__annotations":
        return frames.select("frame_id", "annotations").explode("annotations").drop_nulls("annotations").unnest(
            "annotations"
        )
    if suffix == "__labels":
        return frames.select("frame_id", pl.col("labels").alias("label")).explode("label").drop_nulls("label")
    return frames
