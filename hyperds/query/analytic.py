"""Analytic SQL across datasets (GROUP BY, joins, aggregates) through polars' SQL engine.

Each dataset named in the query is exposed lazily under these relation names:
`<ds>` (frames), `<ds>__annotations` (one row per annotation: frame_id plus every annotation
field), `<ds>__labels` (one row per frame and derived label: frame_id, label) and
`<ds>__label_counts` (label, frames: frames listing each label; read from the side table when one
was built for the current version, else computed from `labels`). All relations of one dataset
read the same snapshot: the dataset is opened once per query.
"""

from __future__ import annotations

import difflib
from typing import TYPE_CHECKING

import polars as pl
import pyarrow as pa
from sqlglot import exp

from .. import storage
from ..errors import QueryError
from ..frames.summary import explode_annotations
from ..frames.table import FrameTable
from .parse import _pos, dotted_name_error, parse_tree
from .sidecar import open_annotation_table

if TYPE_CHECKING:
    from ..storage import Handle
    from ..store import Store

RELATIONS = ("__annotations", "__labels", "__label_counts")
_TYPE_HINT = "compare each column with a value of its type, e.g. width > 100, site = 'S1'"


def run_sql(store: Store, sql: str) -> pl.DataFrame:
    """Run one analytic SELECT over the store's datasets; the result is collected eagerly."""
    tree = parse_tree(sql)
    if not isinstance(tree, exp.Query):
        raise QueryError("store.sql() runs SELECT queries only", sql, 0)
    ctes = {c.alias_or_name for c in tree.find_all(exp.CTE)}
    refs: dict[str, exp.Table] = {}
    for table in tree.find_all(exp.Table):
        if table.args.get("db"):
            raise dotted_name_error(table, sql)
        if table.name and table.name not in ctes:
            refs.setdefault(table.name, table)
    known = store.datasets()
    opened: dict[str, tuple[FrameTable, Handle]] = {}
    ctx = pl.SQLContext()
    for name, node in refs.items():
        base, suffix = _split(name)
        if base not in known:
            raise _unknown(name, known, sql, node)
        if base not in opened:
            table = FrameTable(store, base)
            opened[base] = (table, table.handle())
        ctx.register(name, _relation(*opened[base], suffix))
    try:
        return ctx.execute(sql, eager=True)
    except (pl.exceptions.PolarsError, pa.ArrowException) as exc:
        problem = str(exc).splitlines()[0]
        hint = f"; {_TYPE_HINT}" if isinstance(exc, pa.ArrowException) or "compare" in problem else ""
        raise QueryError(f"cannot run the analytic query: {problem}{hint}", sql, None) from exc


def _split(name: str) -> tuple[str, str]:
    """(dataset, relation suffix) of a relation name; the suffix is '' for the frames."""
    for rel in RELATIONS:
        if name.endswith(rel):
            return name.removesuffix(rel), rel
    return name, ""


def _unknown(name: str, known: list[str], sql: str, node: exp.Table) -> QueryError:
    names = known + [d + r for d in known for r in RELATIONS]
    folded = {n.lower(): n for n in names}
    close = [folded[n] for n in difflib.get_close_matches(name.lower(), list(folded), n=3, cutoff=0.6)]
    listed = ", ".join(sorted(known)) or "none yet"
    return QueryError(
        f"unknown dataset or relation {name!r}; datasets: {listed}; each is also readable as "
        f"<dataset>{', <dataset>'.join(RELATIONS)}",
        sql, _pos(node), close,
    )


def _relation(table: FrameTable, lds: Handle, suffix: str) -> pl.LazyFrame:
    if suffix == "__label_counts":
        stats = open_annotation_table(table, storage.version(lds), "label_counts")
        if stats is not None:
            return pl.scan_pyarrow_dataset(storage.scan.arrow_dataset(stats))
        labels = pl.scan_pyarrow_dataset(storage.scan.arrow_dataset(lds)).select(pl.col("labels").alias("label")).explode("label")
        return labels.drop_nulls().group_by("label").agg(pl.len().cast(pl.Int64).alias("frames"))
    frames = pl.scan_pyarrow_dataset(storage.scan.arrow_dataset(lds))
    if suffix == "__annotations":
        return explode_annotations(frames)
    if suffix == "__labels":
        return frames.select("frame_id", pl.col("labels").alias("label")).explode("label").drop_nulls("label")
    return frames
