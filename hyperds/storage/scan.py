"""Scans of one opened table version: read with a filter, stream batches, count, top-k, nearest, explain.

Filters are Lance (DataFusion SQL) text rendered by hyperds.query.lance_sql; nothing else writes them.
"""

from __future__ import annotations

import contextlib
import contextvars
import math
from collections.abc import Iterator
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..query.lance_sql import all_of, ge, le

from .errors import lance_errors
from .handle import Handle


# Lance's own scan counters (rows_scanned, fragments_scanned, …) of the scans run inside `counting()`.
_SINK: contextvars.ContextVar[list[dict[str, int]] | None] = contextvars.ContextVar("hyperds_scan_stats", default=None)


@contextlib.contextmanager
def counting() -> Iterator[list[dict[str, int]]]:
    """Collect Lance's scan statistics (one dict of counters per scan; `rows_taken` per take by id)
    of the kernel reads made inside the block, in this thread: what a query really read."""
    sink: list[dict[str, int]] = []
    token = _SINK.set(sink)
    try:
        yield sink
    finally:
        _SINK.reset(token)


def rows_read(stats: list[dict[str, int]]) -> int:
    """Rows scanned plus rows taken by id, over the statistics `counting()` collected."""
    return sum(s.get("rows_scanned", 0) + s.get("rows_taken", 0) for s in stats)


def _scanner(handle: Handle, **kwargs: Any) -> Any:
    sink = _SINK.get()
    if sink is not None:
        kwargs["scan_stats_callback"] = lambda stats: sink.append(dict(stats.all_counts))
    return handle.scanner(**{k: v for k, v in kwargs.items() if v is not None})


def read(handle: Handle, columns: list[str] | None = None, filter: str | None = None,
         limit: int | None = None, with_row_id: bool = False) -> pa.Table:
    """Rows passing `filter` (all columns, or `columns`); `limit` stops the scan after that many rows."""
    with lance_errors(handle.uri, "reading rows"):
        return _scanner(handle, columns=columns, filter=filter, limit=limit, with_row_id=with_row_id or None).to_table()


def batches(handle: Handle, columns: list[str] | None = None, filter: str | None = None,
            batch_size: int = 65_536) -> tuple[pa.Schema, Iterator[pa.RecordBatch]]:
    """(projected schema, record batches) of the rows passing `filter`, streamed in storage order."""
    with lance_errors(handle.uri, "opening a scan"):
        scanner = _scanner(handle, columns=columns, filter=filter, batch_size=batch_size)
        schema = scanner.projected_schema

    def stream() -> Iterator[pa.RecordBatch]:
        with lance_errors(handle.uri, "scanning rows"):
            yield from scanner.to_batches()

    return schema, stream()


def count(handle: Handle, filter: str | None = None) -> int:
    """Rows passing `filter` (answered from indices / metadata where Lance can)."""
    with lance_errors(handle.uri, "counting rows"):
        return handle.count_rows(filter=filter)


def _ordering(key: str, descending: bool) -> Any:
    from lance.dataset import ColumnOrdering

    return ColumnOrdering(key, ascending=not descending, nulls_first=not descending)  # NULLs sort smallest


def top_row_ids(handle: Handle, key: str, n: int, filter: str | None = None, descending: bool = False) -> pa.Array:
    """Row ids of the `n` rows passing `filter` with the smallest (largest) `key`, in that order; `key` is
    unique, non-null and BTREE-indexed (frame_id).

    Keyset probe, so the rows read do not grow with the table: read the key of the first m matching rows
    (m ~ sqrt(n x rows), any order); if fewer match, they are all there is. Otherwise their n-th smallest
    key X bounds the answer (n matching rows have a key <= X), and a Lance top-k over `filter AND key <= X`
    reads, through the key's index, only the rows up to X: about n x rows / m for a table not ordered by key.
    """
    total = count(handle)
    probe = max(8 * n, math.isqrt(n * total), 1024)
    with lance_errors(handle.uri, "reading the first rows"):
        sample = read(handle, [key], filter, limit=probe, with_row_id=True)
        order = pc.sort_indices(sample, sort_keys=[(key, "descending" if descending else "ascending")])
        if sample.num_rows < probe or n >= sample.num_rows:
            return sample.column("_rowid").take(order[:n]).combine_chunks()
        bound = sample.column(key)[order[n - 1].as_py()].as_py()
        narrowed = all_of(filter, (ge if descending else le)(key, bound))
        found = _scanner(handle, columns=[key], filter=narrowed, limit=n, with_row_id=True,
                         order_by=[_ordering(key, descending)]).to_table()
    return found.column("_rowid").combine_chunks()


def take_row_ids(handle: Handle, row_ids: pa.Array | list[int], columns: list[str] | None = None) -> pa.Table:
    """Rows by stable row id, in the order given (pylance's private `_take_rows`; pinned by a kernel test)."""
    ids = row_ids.to_pylist() if isinstance(row_ids, pa.Array) else list(row_ids)
    sink = _SINK.get()
    if sink is not None:
        sink.append({"rows_taken": len(ids)})
    with lance_errors(handle.uri, "taking rows by id"):
        if not ids:
            schema = pa.schema([handle.schema.field(c) for c in columns]) if columns else handle.schema
            return schema.empty_table()
        return handle._take_rows(ids, columns=columns)


def take_positions(handle: Handle, positions: list[int] | np.ndarray, columns: list[str] | None = None) -> pa.Table:
    """Rows by position (0..count-1) in the version read."""
    with lance_errors(handle.uri, "taking rows"):
        return handle.take(positions, columns=columns)


def nearest(handle: Handle, column: str, vector: np.ndarray, k: int, refine_factor: int | None = None,
            columns: list[str] | None = None) -> pa.Table:
    """The `k` rows nearest to `vector` in `column` (squared L2 in `_distance`), via the vector index if any."""
    query = {"column": column, "q": vector, "k": k}
    if refine_factor is not None:
        query["refine_factor"] = refine_factor
    with lance_errors(handle.uri, "searching nearest vectors"):
        return handle.to_table(columns=columns or ["_distance"], nearest=query)


def explain(handle: Handle, columns: list[str] | None = None, filter: str | None = None) -> str:
    """Lance's physical plan for a scan (no data read)."""
    with lance_errors(handle.uri, "planning a scan"):
        return handle.scanner(filter=filter, columns=columns).explain_plan(verbose=False)


def analyze(handle: Handle, columns: list[str] | None = None, filter: str | None = None, limit: int | None = None,
            order_by: str | None = None, with_row_id: bool = False) -> str:
    """Lance's plan of a scan, run, with its counters (rows_scanned, output_rows, bytes_read per operator)."""
    order = [_ordering(order_by, False)] if order_by is not None else None
    with lance_errors(handle.uri, "analyzing a scan"):
        return _scanner(handle, columns=columns, filter=filter, limit=limit, order_by=order,
                        with_row_id=with_row_id or None).analyze_plan()


def arrow_dataset(handle: Handle) -> Any:
    """The handle as a pyarrow-dataset-like source (for polars.scan_pyarrow_dataset)."""
    return handle
