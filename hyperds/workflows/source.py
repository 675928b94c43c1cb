"""The one place the field workflows read a Dataset, Query, View or Arrow table (until FrameSource lands).

Everything else in hyperds.workflows calls `read_rows`, so switching to the FrameSource protocol
(`to_batches`, `roots()`, `pins`) is a change here alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pyarrow as pa


def columns_of(source: Any) -> list[str]:
    """The column names the source's rows carry."""
    if isinstance(source, pa.Table):
        return source.column_names
    from ..export.source import available_columns

    return available_columns(source)


def read_rows(source: Any, columns: Sequence[str]) -> pa.Table:
    """The source's rows with those of `columns` it has (others are left out, not errors)."""
    have = set(columns_of(source))
    wanted = [c for c in dict.fromkeys(columns) if c in have]
    if isinstance(source, pa.Table):
        return source.select(wanted)
    return source.to_arrow(columns=wanted)
