"""Query: a parsed, validated, planned selection of a dataset's frames, run lazily.

Construction reads only the schema (so errors come before any data is read); every result method
runs the Lance scan with the pushed filter, then the exact residual, then order and limit.
"""

from __future__ import annotations

import difflib
from typing import TYPE_CHECKING

import polars as pl
import pyarrow as pa

from ..errors import QueryError
from . import ast as a
from .parse import Statement, parse
from .plan import Plan, plan
from .residual import mask
from .validate import validate

if TYPE_CHECKING:
    import lance

    from ..frames.table import FrameTable


class Query:
    """Frames of `table` selected by `text` (a boolean expression or SELECT … FROM <dataset> …)."""

    def __init__(self, table: FrameTable, text: str):
        self.table = table
        self.text = text
        self.statement: Statement = validate(parse(text), table.schema, table.name, text)
        self.plan: Plan = plan(self.statement.where)

    def __repr__(self) -> str:
        return f"Query({self.table.name!r}, {self.sql!r})"

    # -- text --------------------------------------------------------------------------------
    @property
    def sql(self) -> str:
        """Canonical text of the query: the same for the same query whatever its spacing or case."""
        st = self.statement
        where = a.to_sql(st.where) if st.where is not None else ""
        if not st.is_select:
            return where or "TRUE"
        cols = ", ".join(a.to_sql(c) for c in st.select) if st.select else "*"
        text = f"SELECT {cols} FROM {a.to_sql(a.Column(self.table.name))}"
        text += f" WHERE {where}" if where else ""
        if st.order:
            text += " ORDER BY " + ", ".join(a.to_sql(k.column) + (" DESC" if k.descending else "") for k in st.order)
        text += f" LIMIT {st.limit}" if st.limit is not None else ""
        text += f" OFFSET {st.offset}" if st.offset else ""
        return text

    @property
    def output_columns(self) -> list[str]:
        """Columns to_arrow() returns by default: the SELECT list, or every column."""
        if self.statement.select:
            return [c.name for c in self.statement.select]
        return list(self.table.schema.names)

    # -- running -------------------------------------------------------------------------------
    def to_arrow(self, columns: list[str] | None = None) -> pa.Table:
        """Matching frames, ordered by ORDER BY (then frame_id), or by frame_id; LIMIT/OFFSET applied."""
        out = list(columns) if columns is not None else self.output_columns
        self._check_columns(out)
        st = self.statement
        order = [k.column.name for k in st.order]
        needed = _unique(out + ["frame_id"] + order + self._residual_columns())
        table = self._scan(needed)
        table = table.take(_order(table, st)) if table.num_rows else table
        if st.offset or st.limit is not None:
            table = table.slice(st.offset, st.limit)
        return table.select(out)

    def to_polars(self, columns: list[str] | None = None) -> pl.DataFrame:
        return pl.from_arrow(self.to_arrow(columns))

    def frame_ids(self) -> pa.Array:
        """frame_id of every matching frame, in result order."""
        return self.to_arrow(["frame_id"]).column("frame_id").combine_chunks()

    def count(self) -> int:
        """Number of matching frames (after LIMIT/OFFSET)."""
        st = self.statement
        if self.plan.residual is None and st.limit is None and not st.offset:
            return self._lance().count_rows(filter=self.plan.pushdown)
        return len(self.frame_ids())

    def explain(self) -> str:
        """The pushed Lance filter, the residual and Lance's physical plan."""
        p = self.plan
        residual = a.to_sql(p.residual) if p.residual is not None else "(none)"
        needed = _unique(["frame_id"] + self._residual_columns())
        lance_plan = self._lance().scanner(filter=p.pushdown, columns=needed).explain_plan(verbose=False)
        lines = [
            f"query:     {self.sql}",
            f"pushdown:  {p.pushdown or '(none: full scan)'}",
            f"prefilter: {p.prefilter or '(none)'}",
            f"residual:  {residual}",
            "lance plan:",
            *("  " + line for line in lance_plan.strip().splitlines()),
        ]
        return "\n".join(lines)

    # -- internals -----------------------------------------------------------------------------
    def _check_columns(self, names: list[str]) -> None:
        have = self.table.schema.names
        unknown = [n for n in names if n not in have]
        if unknown:
            close = difflib.get_close_matches(unknown[0], have, n=3, cutoff=0.6)
            raise QueryError(f"unknown column {unknown[0]!r} asked for; columns are {', '.join(have)}",
                             suggestions=close)

    def _residual_columns(self) -> list[str]:
        return sorted(a.frame_columns(self.plan.residual)) if self.plan.residual is not None else []

    def _lance(self) -> lance.LanceDataset:
        return self.table.lance()

    def _scan(self, columns: list[str]) -> pa.Table:
        """Rows passing the pushed filter and the residual, filtered batch by batch as they stream."""
        lds = self._lance()
        if self.plan.residual is None:
            return lds.to_table(columns=columns, filter=self.plan.pushdown)
        scanner = lds.scanner(columns=columns, filter=self.plan.pushdown)
        kept = [b.filter(mask(self.plan.residual, b)) for b in scanner.to_batches()]
        return pa.Table.from_batches(kept, schema=scanner.projected_schema)


def _unique(names: list[str]) -> list[str]:
    return list(dict.fromkeys(names))


def _order(table: pa.Table, st: Statement) -> pa.Array:
    """Row order: ORDER BY keys (NULLs sort as the smallest value), then frame_id."""
    keys = dict.fromkeys(k.column.name for k in st.order)
    desc = {}
    for k in st.order:
        desc.setdefault(k.column.name, k.descending)
    keys.setdefault("frame_id")
    names = list(keys)
    flags = [desc.get(n, False) for n in names]
    df = pl.from_arrow(table.select(names)).with_row_index("__row")
    return df.sort(names, descending=flags, nulls_last=flags)["__row"].to_arrow()
