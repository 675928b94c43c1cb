"""Scans of one opened table version: read with a filter, stream batches, count, top-k, nearest, explain.

Filters are Lance (DataFusion SQL) text rendered by hyperds.query.lance_sql; nothing else writes them.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pyarrow as pa

from .errors import lance_errors
from .handle import Handle


def read(handle: Handle, columns: list[str] | None = None, filter: str | None = None,
         limit: int | None = None, with_row_id: bool = False) -> pa.Table:
    """Rows passing `filter` (all columns, or `columns`); `limit` stops the scan after that many rows."""
    with lance_errors(handle.uri, "reading rows"):
        return handle.to_table(columns=columns, filter=filter, limit=limit, with_row_id=with_row_id or None)


def batches(handle: Handle, columns: list[str] | None = None, filter: str | None = None,
            batch_size: int = 65_536) -> tuple[pa.Schema, Iterator[pa.RecordBatch]]:
    """(projected schema, record batches) of the rows passing `filter`, streamed in storage order."""
    with lance_errors(handle.uri, "opening a scan"):
        scanner = handle.scanner(columns=columns, filter=filter, batch_size=batch_size)
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
    """Row ids of the `n` rows passing `filter` with the smallest (largest) `key`, in that order.

    Lance runs it as a TopK over the `key` column alone: only that column is read for every row,
    and the caller then takes whole rows for these `n` ids (take_row_ids).
    """
    with lance_errors(handle.uri, "reading the first rows"):
        found = handle.to_table(columns=[key], filter=filter, limit=n, with_row_id=True,
                                order_by=[_ordering(key, descending)])
    return found.column("_rowid").combine_chunks()


def take_row_ids(handle: Handle, row_ids: pa.Array | list[int], columns: list[str] | None = None) -> pa.Table:
    """Rows by stable row id, in the order given (pylance's private `_take_rows`; pinned by a kernel test)."""
    ids = row_ids.to_pylist() if isinstance(row_ids, pa.Array) else list(row_ids)
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
    kwargs: dict[str, Any] = {"columns": columns, "filter": filter, "limit": limit}
    if order_by is not None:
        kwargs["order_by"] = [_ordering(order_by, False)]
    if with_row_id:
        kwargs["with_row_id"] = True
    with lance_errors(handle.uri, "analyzing a scan"):
        return handle.scanner(**kwargs).analyze_plan()


def arrow_dataset(handle: Handle) -> Any:
    """The handle as a pyarrow-dataset-like source (for polars.scan_pyarrow_dataset)."""
    return handle
