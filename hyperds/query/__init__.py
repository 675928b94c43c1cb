"""Query layer: SQL over a dataset's frames and annotations (parse → validate → plan → run).

`Dataset.query(sql)` returns a lazy `Query`; `Store.sql(sql)` runs analytic SELECTs (analytic.py).
Public: `Query` (also `hyperds.Query`); the modules are internal.
"""

from .query import Query

__all__ = ["Query"]
