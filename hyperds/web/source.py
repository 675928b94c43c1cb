"""The one place the web layer reads rows from a FrameSource (a Dataset, Query or View)."""

from __future__ import annotations

from collections.abc import Sequence

import pyarrow as pa

from ..source import FrameSource


def read_rows(source: FrameSource, columns: Sequence[str] | None = None) -> pa.Table:
    """Rows of `source` (only `columns` when given), at the versions it pins."""
    return source.to_arrow(columns=list(columns) if columns is not None else None)
