"""The one place the web layer reads rows from a Dataset, Query or View.

Until the FrameSource protocol lands (hyperds/source.py) everything goes through their existing
public `to_arrow(columns=...)`; switching to the protocol is a change here only.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pyarrow as pa


def read_rows(source: Any, columns: Sequence[str] | None = None) -> pa.Table:
    """Rows of a Dataset, Query or View (only `columns` when given)."""
    return source.to_arrow(columns=list(columns) if columns is not None else None)
