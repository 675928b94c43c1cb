"""Read whole frame rows by frame_id from one Lance version: index lookups for few ids, one scan for many.

Cost follows the number of ids asked for, plus one frame_id column scan above `_LOOKUP_LIMIT` ids.
"""

from __future__ import annotations

from collections.abc import Sequence

import lance
import pyarrow as pa
import pyarrow.compute as pc

from ..frames.table import sql_literal

_LOOKUP_LIMIT = 2_000  # up to here one `frame_id IN (...)` filter served by the BTREE index


def read_rows(ds: lance.LanceDataset, frame_ids: Sequence[str]) -> pa.Table:
    """The rows of `ds` whose frame_id is in `frame_ids` (each at most once; unknown ids are absent)."""
    ids = sorted(set(frame_ids))
    if not ids:
        return ds.schema.empty_table()
    if len(ids) <= _LOOKUP_LIMIT:
        return ds.to_table(filter="frame_id IN (" + ", ".join(sql_literal(i) for i in ids) + ")")
    keys = ds.to_table(columns=["frame_id"], with_row_id=True)
    mask = pc.is_in(keys.column("frame_id"), pa.array(ids, pa.string()))
    row_ids = pc.filter(keys.column("_rowid"), mask)
    return ds._take_rows(row_ids)
