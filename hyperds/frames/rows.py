"""Frame rows by frame_id: the storage kernel's row reads (hyperds.storage.rows), named where frames code looks.

`sql_literal` is the Lance string literal of the one filter renderer (hyperds.query.lance_sql).
"""

from __future__ import annotations

from ..query.lance_sql import sql_literal
from ..storage.rows import Snapshot, locate_rows, read_rows, take_rows

__all__ = ["Snapshot", "locate_rows", "read_rows", "sql_literal", "take_rows"]
