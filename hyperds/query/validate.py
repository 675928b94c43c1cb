"""Check a parsed query against a dataset's schema before any data is read.

Resolves every name to a frame column or (inside an annotation function) an annotation field,
types every expression, reads timestamp literals as UTC instants; each problem is a QueryError.
"""

from __future__ import annotations

import datetime as dt
import difflib
from dataclasses import replace

import pyarrow as pa

from ..errors import QueryError
from ..frames.schema import ANNOTATION_TYPE
from . import ast as a
from .parse import OrderKey, Statement

# Frame columns a query may not compare directly (they have their own functions).
_SPECIAL = {"annotations": "use any_annotation(...), all_annotations(...) or count_annotations(...)",
            "labels": "use array_has(labels, 'x'), array_has_any/array_has_all, or 'x' = ANY(labels)"}
_NUMERIC = (a.INT, a.FLOAT)


def type_of(t: pa.DataType) -> str:
    """The query language's type for an Arrow type."""
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return a.STRING
    if pa.types.is_integer(t):
        return a.INT
    if pa.types.is_floating(t):
        return a.FLOAT
    if pa.types.is_boolean(t):
        return a.BOOL
    if pa.types.is_timestamp(t):
        return a.TIMESTAMP
    if pa.types.is_list(t) and (pa.types.is_string(t.value_type) or pa.types.is_large_string(t.value_type)):
        return a.LABELS
    return a.OTHER


def parse_instant(text: str) -> dt.datetime:
    """ISO-8601 text as an aware UTC datetime; a value without offset is read as UTC."""
    value = dt.datetime.fromisoformat(text.strip())
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC)


class Validator:
    """Resolves and types one query against one schema."""

    def __init__(self, schema: pa.Schema, query: str):
        self.query = query
        self.frame = {f.name: f.type for f in schema}
        self.ann = {f.name: f.type for f in ANNOTATION_TYPE}

    def fail(self, message: str, node: a.Node, suggestions: list[str] = ()) -> QueryError:
        return QueryError(message, self.query, node.pos, suggestions)

    # -- statements ------------------------------------------------------------------------
    def statement(self, stmt: Statement, dataset: str) -> Statement:
        if stmt.table is not None and stmt.table != dataset and stmt.table.lower() != dataset.lower():
            raise QueryError(
                f"FROM names {stmt.table!r} but this query runs on dataset {dataset!r}; write FROM {dataset}",
                self.query, stmt.table_pos,
            )
        select = tuple(self.plain_column(c, "SELECT", allow_nested=True) for c in stmt.select) if stmt.select else None
        order = tuple(OrderKey(self.plain_column(k.column, "ORDER BY"), k.descending) for k in stmt.order)
        where = self.predicate(stmt.where, a.FRAME) if stmt.where is not None else None
        return replace(stmt, where=where, select=select, order=order, table=dataset if stmt.table else None)

    def plain_column(self, col: a.Column, clause: str, allow_nested: bool = False) -> a.Column:
        resolved = self.column(col, a.FRAME)
        if not allow_nested and resolved.type in (a.OTHER, a.LABELS):
            raise self.fail(f"{clause} needs a scalar column; {resolved.name!r} is {resolved.arrow_type}", col)
        return resolved

    # -- expressions -----------------------------------------------------------------------
    def predicate(self, node: a.Node, scope: str) -> a.Node:
        out, t = self.expr(node, scope)
        if t not in (a.BOOL, a.NULL):
            raise self.fail(f"expected a condition (true/false), got {a.to_sql(out)!r} of type {t}", node)
        return out

    def expr(self, node: a.Node, scope: str) -> tuple[a.Node, str]:
        match node:
            case a.Column():
                col = self.column(node, scope)
                return col, col.type
            case a.Literal():
                return node, node.type
            case a.And(args=args) | a.Or(args=args):
                return replace(node, args=tuple(self.predicate(x, scope) for x in args)), a.BOOL
            case a.Not(arg=x):
                return replace(node, arg=self.predicate(x, scope)), a.BOOL
            case a.IsNull(expr=x):
                inner, _ = self.expr(x, scope)
                return replace(node, expr=inner), a.BOOL
            case a.Compare():
                return self.compare(node, scope), a.BOOL
            case a.In(expr=x, values=values):
                inner, t = self.operand(x, scope)
                return replace(node, expr=inner, values=tuple(self.coerce(v, t, inner) for v in values)), a.BOOL
            case a.Between(expr=x, low=lo, high=hi):
                inner, t = self.operand(x, scope)
                return replace(node, expr=inner, low=self.against(lo, t, inner, scope),
                               high=self.against(hi, t, inner, scope)), a.BOOL
            case a.Like(expr=x, pattern=p):
                inner, t = self.operand(x, scope)
                if t not in (a.STRING, a.NULL):
                    raise self.fail(f"type mismatch: LIKE needs a string, {a.to_sql(inner)!r} is {t}", x)
                if p.type != a.STRING:
                    raise self.fail(f"type mismatch: LIKE pattern must be a string literal, got {p.type}", p)
                return replace(node, expr=inner), a.BOOL
            case a.LabelsHas():
                if scope == a.ANNOTATION:
                    raise self.fail("labels is a frame column and cannot be used inside an annotation function; "
                                    "use label = '…' there", node)
                return node, a.BOOL
            case a.AnnotationPredicate(cond=cond):
                self.outside_annotations(node, scope)
                return replace(node, cond=self.predicate(cond, a.ANNOTATION)), a.BOOL
            case a.AnnotationCount(cond=cond):
                self.outside_annotations(node, scope)
                return replace(node, cond=self.predicate(cond, a.ANNOTATION) if cond is not None else None), a.INT
        raise self.fail(f"unsupported construct {type(node).__name__}", node)

    def outside_annotations(self, node: a.Node, scope: str) -> None:
        if scope == a.ANNOTATION:
            raise self.fail("annotation functions cannot be nested; combine conditions inside one function", node)

    def operand(self, node: a.Node, scope: str) -> tuple[a.Node, str]:
        out, t = self.expr(node, scope)
        if isinstance(out, a.Column) and out.type in (a.LABELS, a.OTHER):
            hint = _SPECIAL.get(out.name, "only IS NULL applies to it")
            raise self.fail(f"type mismatch: column {out.name!r} is {out.arrow_type}, which cannot be compared; {hint}",
                            node)
        return out, t

    def compare(self, node: a.Compare, scope: str) -> a.Node:
        left, lt = self.operand(node.left, scope)
        right = self.against(node.right, lt, left, scope)
        if left.__class__ is a.AnnotationCount and not isinstance(right, a.Literal):
            raise self.fail("count_annotations(...) compares with a number, e.g. count_annotations(...) >= 2",
                            node.right)
        return replace(node, left=left, right=right)

    def against(self, node: a.Node, t: str, other: a.Node, scope: str) -> a.Node:
        """`node` typed and checked as comparable with `other` (of type `t`)."""
        if isinstance(node, a.Literal):
            return self.coerce(node, t, other)
        out, ot = self.operand(node, scope)
        if not _compatible(t, ot):
            raise self.fail(
                f"type mismatch: cannot compare {a.to_sql(other)!r} ({t}) with {a.to_sql(out)!r} ({ot})", node
            )
        return out

    def coerce(self, lit: a.Literal, t: str, other: a.Node) -> a.Literal:
        if lit.type == a.NULL or t == a.NULL:
            return lit
        if t == a.TIMESTAMP and lit.type in (a.STRING, a.TIMESTAMP):
            try:
                return replace(lit, value=parse_instant(lit.value), type=a.TIMESTAMP)
            except ValueError:
                raise self.fail(
                    f"cannot read {lit.value!r} as a timestamp; use ISO-8601 such as '2024-03-01' or "
                    "'2024-03-01T06:30:00+02:00'", lit,
                ) from None
        if lit.type == a.TIMESTAMP:
            raise self.fail(f"type mismatch: cannot compare {a.to_sql(other)!r} ({t}) with a timestamp", lit)
        if not _compatible(t, lit.type):
            raise self.fail(
                f"type mismatch: cannot compare {a.to_sql(other)!r} ({t}) with {a.to_sql(lit)} ({lit.type})", lit
            )
        return lit

    def column(self, col: a.Column, scope: str) -> a.Column:
        names = self.ann if scope == a.ANNOTATION else self.frame
        name = _resolve(col.name, names)
        if name is None:
            other = self.frame if scope == a.ANNOTATION else self.ann
            if _resolve(col.name, other) is not None:
                raise self.fail(self._wrong_scope(col.name, scope), col)
            close = difflib.get_close_matches(col.name, list(names), n=3, cutoff=0.6)
            where = "annotation field" if scope == a.ANNOTATION else "column"
            hint = f"; write strings in single quotes: {a.literal_sql(col.name, a.STRING)}" if col.quoted else ""
            raise self.fail(f"unknown {where} {col.name!r}{hint}", col, close)
        arrow_type = names[name]
        return a.Column(name, scope, type_of(arrow_type), arrow_type, pos=col.pos)

    def _wrong_scope(self, name: str, scope: str) -> str:
        if scope == a.ANNOTATION:
            return (f"frame column {name!r} used inside an annotation function, which sees only annotation fields "
                    f"({', '.join(self.ann)}); move the test on {name!r} outside the function")
        return (f"annotation field {name!r} used outside an annotation function; write e.g. "
                f"any_annotation({name} = …) so every condition applies to the same annotation")


def _resolve(name: str, names: dict) -> str | None:
    if name in names:
        return name
    folded = [n for n in names if n.lower() == name.lower()]
    return folded[0] if len(folded) == 1 else None


def _compatible(t1: str, t2: str) -> bool:
    if a.NULL in (t1, t2) or t1 == t2:
        return True
    return t1 in _NUMERIC and t2 in _NUMERIC


def validate(stmt: Statement, schema: pa.Schema, dataset: str, query: str) -> Statement:
    """The statement with every name resolved and typed; raises QueryError on the first problem."""
    return Validator(schema, query).statement(stmt, dataset)
