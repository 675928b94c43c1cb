"""Find and read frame rows by frame_id in one Lance version, at a cost that follows the ids asked for.

Few ids: BTREE lookups, `_CHUNK` ids per query (one long IN list plans slowly) on a few threads. Many ids
(relative to the table): one frame_id column scan. Rows are then taken by row id, in chunks on threads.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

import pyarrow as pa
import pyarrow.compute as pc

from ..query.lance_sql import isin
from .errors import lance_errors
from .handle import Handle
from .scan import take_row_ids

_CHUNK = 250
_THREADS = 4
_ROWS_PER_LOOKUP = 300  # one index lookup costs about as much as scanning this many frame_ids


def _chunked(fn: Callable[[list], pa.Table], items: list, schema: pa.Schema, size: int = _CHUNK) -> pa.Table:
    chunks = [items[i : i + size] for i in range(0, len(items), size)]
    if len(chunks) <= 1:
        return fn(chunks[0]) if chunks else schema.empty_table()
    with ThreadPoolExecutor(min(_THREADS, len(chunks))) as pool:
        return pa.concat_tables(list(pool.map(fn, chunks)))


def locate_rows(ds: Handle, frame_ids: Sequence[str]) -> pa.Table:
    """frame_id, _rowid and _rowaddr of the rows whose frame_id is in `frame_ids`, sorted by frame_id."""
    ids = sorted(set(frame_ids))
    options = {"columns": ["frame_id"], "with_row_id": True, "with_row_address": True}
    with lance_errors(ds.uri, "locating rows by frame_id"):
        if len(ids) * _ROWS_PER_LOOKUP <= ds.count_rows():

            def lookup(chunk: list[str]) -> pa.Table:
                return ds.to_table(filter=isin("frame_id", chunk), **options)

            schema = pa.schema([("frame_id", pa.string()), ("_rowid", pa.uint64()), ("_rowaddr", pa.uint64())])
            keys = _chunked(lookup, ids, schema)
        else:
            keys = ds.to_table(**options)
            keys = keys.filter(pc.is_in(keys.column("frame_id"), pa.array(ids, pa.string())))
    return keys.sort_by("frame_id")


def take_rows(ds: Handle, where: pa.Table, columns: list[str] | None = None) -> pa.Table:
    """The rows `locate_rows` found (whole, or only `columns`), in its order."""
    row_ids = where.column("_rowid").combine_chunks().to_pylist() if where.num_rows else []
    schema = pa.schema([ds.schema.field(c) for c in columns]) if columns else ds.schema

    def take(chunk: list[int]) -> pa.Table:
        return take_row_ids(ds, chunk, columns=columns)

    return _chunked(take, row_ids, schema, max(_CHUNK, -(-len(row_ids) // _THREADS)))


def read_rows(ds: Handle, frame_ids: Sequence[str], columns: list[str] | None = None) -> pa.Table:
    """The rows of `ds` whose frame_id is in `frame_ids` (whole, or only `columns`), sorted by frame_id."""
    return take_rows(ds, locate_rows(ds, frame_ids), columns)


@dataclasses.dataclass(frozen=True)
class Snapshot:
    """Whole frame rows and their addresses (`locate_rows`) as read at `ds.version`: a commit can be based on them."""

    ds: Handle
    where: pa.Table
    rows: pa.Table

    @classmethod
    def read(cls, ds: Handle, frame_ids: Sequence[str]) -> Snapshot:
        where = locate_rows(ds, frame_ids)
        return cls(ds, where, take_rows(ds, where))

    def only(self, frame_ids: Sequence[str]) -> Snapshot:
        """The same snapshot restricted to `frame_ids`."""
        ids = pa.array(sorted(set(frame_ids)), pa.string())
        return Snapshot(
            self.ds,
            self.where.filter(pc.is_in(self.where.column("frame_id"), ids)),
            self.rows.filter(pc.is_in(self.rows.column("frame_id"), ids)),
        )
