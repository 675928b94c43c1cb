"""The one renderer of Lance filter text (DataFusion SQL), for the query planner and every internal filter.

`plan.lance_filter` compiles a query AST to the Lance dialect (typed columns, exact literals, quoted
names); the helpers here build the small filters other modules need (by frame_id, dataset, version …)
as AST nodes and render them through that same compiler, so no module writes filter text by hand.
Pure: no I/O, and no import of the storage kernel (which imports this).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

import pyarrow as pa

from . import ast as a

_TYPES: dict[type, tuple[str, pa.DataType]] = {
    bool: (a.BOOL, pa.bool_()),
    int: (a.INT, pa.int64()),
    float: (a.FLOAT, pa.float64()),
    str: (a.STRING, pa.string()),
}


def sql_literal(value: str) -> str:
    """A string as a quoted SQL literal for Lance filters."""
    return "'" + value.replace("'", "''") + "'"


def render(node: a.Node) -> str:
    """Lance filter text for `node`; ValueError when Lance cannot evaluate it exactly."""
    from .plan import lance_filter  # plan imports sql_literal from here

    text = lance_filter(node)
    if text is None:
        raise ValueError(f"no exact Lance filter for {a.to_sql(node)}")
    return text


def column(name: str, value: Any) -> a.Column:
    """A column typed after the Python value it is compared with."""
    if isinstance(value, dt.datetime):
        return a.Column(name, type=a.TIMESTAMP, arrow_type=pa.timestamp("us", tz="UTC"))
    kind, arrow = _TYPES[type(value)]
    return a.Column(name, type=kind, arrow_type=arrow)


def literal(value: Any) -> a.Literal:
    if isinstance(value, dt.datetime):
        return a.Literal(value, a.TIMESTAMP)
    return a.Literal(value, _TYPES[type(value)][0])


def compare(name: str, op: str, value: Any) -> a.Node:
    return a.Compare(op, column(name, value), literal(value))


def eq(name: str, value: Any) -> str:
    """`name = value`."""
    return render(compare(name, "=", value))


def ne(name: str, value: Any) -> str:
    """`name != value` (SQL three-valued: a null `name` does not pass)."""
    return render(compare(name, "!=", value))


def le(name: str, value: Any) -> str:
    return render(compare(name, "<=", value))


def ge(name: str, value: Any) -> str:
    return render(compare(name, ">=", value))


def gt(name: str, value: Any) -> str:
    return render(compare(name, ">", value))


def isin(name: str, values: Iterable[Any]) -> str:
    """`name IN (values)`; `false` for no values."""
    values = list(values)
    if not values:
        return "false"
    return render(a.In(column(name, values[0]), tuple(literal(v) for v in values)))


def not_null(name: str) -> str:
    """`name IS NOT NULL` (any column type)."""
    return render(a.Not(a.IsNull(a.Column(name, type=a.STRING, arrow_type=pa.string()))))


def starts_with(name: str, prefix: str) -> str:
    """Rows whose string `name` starts with `prefix` (Lance's starts_with; no LIKE escaping needed)."""
    col = render(a.IsNull(a.Column(name, type=a.STRING, arrow_type=pa.string()))).removesuffix(" IS NULL")
    return f"starts_with({col}, {sql_literal(prefix)})"


def all_of(*filters: str | None) -> str | None:
    """The AND of rendered filters (None ones skipped); None when none is left."""
    parts = [f for f in filters if f]
    if len(parts) <= 1:
        return parts[0] if parts else None
    return " AND ".join(f"({p})" for p in parts)
