"""Query layer: SQL over a dataset's frames and annotations (parse → validate → plan → run).

`Dataset.query(sql)` returns a lazy `Query`; `Store.sql(sql)` runs analytic SELECTs (analytic.py).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .query import Query

__all__ = ["Query"]


def __getattr__(name: str) -> object:
    # Query is imported on first use: the pure modules here (ast, plan, lance_sql) sit below the storage
    # kernel, which imports them, while query.py runs on top of it.
    if name == "Query":
        from .query import Query

        return Query
    raise AttributeError(f"module 'hyperds.query' has no attribute {name!r}")
