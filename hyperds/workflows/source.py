"""The one place the field workflows read their input: a FrameSource (Dataset, Query, View) or an Arrow table.

Everything else in hyperds.workflows calls `read_rows`; only the FrameSource protocol is used.
"""

from __future__ import annotations

from collections.abc import Sequence
import pyarrow as pa

from ..source import FrameSource


def columns_of(source: FrameSource | pa.Table) -> list[str]:
    """The column names the source's rows carry."""
    if isinstance(source, pa.Table):
        return source.column_names
    from ..export.source import available_columns, describe

    return available_columns(source, describe(source))


def read_rows(source: FrameSource | pa.Table, columns: Sequence[str]) -> pa.Table:
    """The source's rows with those of `columns` it has (others are left out, not errors)."""
    have = set(columns_of(source))
    wanted = [c for c in dict.fromkeys(columns) if c in have]
    if isinstance(source, pa.Table):
        return source.select(wanted)
    return source.to_arrow(columns=wanted)
