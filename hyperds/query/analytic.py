"""Analytic SQL across datasets (GROUP BY, joins, aggregates) through polars' SQL engine.

Each dataset named in the query is exposed lazily under three relation names:
`<ds>` (frames), `<ds>__annotations` (one row per annotation: frame_id plus every annotation
field), `<ds>__labels` (one row per frame and derived label: frame_id, label) and
`<ds>__label_counts` (label, frames: frames listing each label; read from the side table when one
was built for the current version, else computed from `labels`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import polars as pl
from sqlglot import exp

from ..errors import QueryError
from .parse import parse_tree
from .sidecar import open_annotation_table

if TYPE_CHECKING:
    from ..store import Store

RELATIONS = ("__annotations", "__labels", "__label_counts")


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
    ds = store.dataset(base)
    lds = ds.lance()
    if suffix == "__label_counts":
        stats = open_annotation_table(ds, lds.version, "label_counts")
        if stats is not None:
            return pl.scan_pyarrow_dataset(stats)
        labels = pl.scan_pyarrow_dataset(lds).select(pl.col("labels").alias("label")).explode("label")
        return labels.drop_nulls().group_by("label").agg(pl.len().cast(pl.Int64).alias("frames"))
    frames = pl.scan_pyarrow_dataset(lds)
    if suffix == "__annotations":
        return frames.select("frame_id", "annotations").explode("annotations").drop_nulls("annotations").unnest(
            "annotations"
        )
    if suffix == "__labels":
        return frames.select("frame_id", pl.col("labels").alias("label")).explode("label").drop_nulls("label")
    return frames
