"""Split a validated predicate into a Lance pushdown filter and an exact residual.

Top-level AND terms that Lance evaluates exactly (scalar frame columns against literals, label
list tests) go into the Lance filter, where the BTREE/BITMAP/LABEL_LIST indices serve them; the
rest stays as a residual for residual.py. `labels` lists the labels of annotations not rejected, the
same annotations a function sees under the rejected-annotations rule (rules.py): so
`any_annotation(label = 'x')` / `label IN (…)` over those annotations IS `array_has_any(labels, […])` and
is pushed as that (exact, LABEL_LIST index); any other annotation term that fixes a label over annotations
not rejected adds `array_has_any(labels, …)` as a prefilter (it stays in the residual).
"""

from __future__ import annotations

import datetime as dt
import operator
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from . import ast as a
from .lance_sql import all_of, sql_literal
from .rules import excludes_rejected, is_not_rejected_test, not_rejected_filter

# SQL words a column may be named after; such names are quoted in Lance filters
_KEYWORDS = set(
    "ALL AND ANY ARRAY AS ASC BETWEEN BY CASE CAST DATE DESC DISTINCT ELSE END EXISTS FALSE FROM GROUP HAVING IN "
    "INTERVAL IS JOIN LIKE LIMIT NOT NULL OFFSET ON OR ORDER SELECT TABLE THEN TIME TIMESTAMP TRUE UNION USER "
    "WHEN WHERE WITH".split()
)


@dataclass(frozen=True)
class SideTerm:
    """A residual AND term the annotation side table answers: frames with (count of annotations where
    `filter` holds) `op` `n`; any_annotation(c) is count >= 1."""

    term: a.Node
    filter: str | None  # Lance filter over the side table (None: every annotation)
    op: str = ">="
    n: int = 1


@dataclass(frozen=True)
class Plan:
    """What Lance filters (None: nothing) and what is checked afterwards (None: nothing)."""

    pushdown: str | None
    residual: a.Node | None
    prefilter: str | None = None  # the label-index prefilter part of `pushdown`, if any
    side: tuple[SideTerm, ...] = ()  # residual terms the side table can answer when it matches the version
    via_labels: tuple[tuple[a.Node, str], ...] = ()  # annotation terms pushed exactly as a `labels` test
    exact: str | None = None  # `pushdown` without the prefilters (what Lance filters when the side table answers)

    def without_side(self) -> a.Node | None:
        """The residual left once the side terms are answered by the side table."""
        done = {id(t.term) for t in self.side}
        return a.conjoin([t for t in a.conjuncts(self.residual) if id(t) not in done])


def plan(where: a.Node | None) -> Plan:
    """Split `where` (validated) into Lance filter + residual."""
    pushed: list[str] = []
    residual: list[a.Node] = []
    prefilters: list[str] = []
    sides: list[SideTerm] = []
    via_labels: list[tuple[a.Node, str]] = []
    for term in a.conjuncts(where):
        if isinstance(term, a.Literal) and term.value is True:
            continue
        text = lance_filter(term)
        if text is not None:
            pushed.append(text)
            continue
        counted = _count_term(term)
        exact = _labels_exact(*counted) if counted is not None else None
        if exact:
            text = _labels_any(exact)
            pushed.append(text)
            via_labels.append((term, text))
            continue
        residual.append(term)
        if counted is None:
            continue
        side_term = _side_term(term, *counted)
        if side_term is not None:
            sides.append(side_term)
        labels = _label_prefilter(*counted[:2])
        if labels:
            prefilters.append(_labels_any(labels))
    parts = pushed + prefilters
    return Plan(
        pushdown=" AND ".join(f"({p})" if len(parts) > 1 else p for p in parts) or None,
        residual=a.conjoin(residual),
        prefilter=" AND ".join(prefilters) or None,
        side=tuple(sides),
        via_labels=tuple(via_labels),
        exact=" AND ".join(f"({p})" if len(pushed) > 1 else p for p in pushed) or None,
    )


def _labels_any(labels: list[str]) -> str:
    return f"array_has_any(labels, [{', '.join(sql_literal(x) for x in labels)}])"


def lance_filter(node: a.Node) -> str | None:
    """The Lance (DataFusion SQL) form of `node`, or None when Lance cannot evaluate it exactly.

    Columns of either scope render as plain names: frame columns for the frames table,
    annotation fields for the annotation side table.
    """
    match node:
        case a.Column(type=a.BOOL) if _pushable_column(node):
            return _name(node)
        case a.Literal(type=a.BOOL, value=v):
            return "true" if v else "false"
        case a.And(args=args) | a.Or(args=args):
            parts = [lance_filter(x) for x in args]
            if any(p is None for p in parts):
                return None
            joiner = " AND " if isinstance(node, a.And) else " OR "
            return joiner.join(f"({p})" for p in parts)
        case a.Not(arg=x):
            inner = lance_filter(x)
            return None if inner is None else f"NOT ({inner})"
        case a.IsNull(expr=a.Column() as col) if _pushable_column(col):
            return f"{_name(col)} IS NULL"
        case a.Compare(op=op, left=a.Column() as col, right=right) if _pushable_column(col):
            value = _operand(right, col)
            return None if value is None else _nan_false(col, op, f"{_name(col)} {op} {value}")
        case a.In(expr=a.Column() as col, values=values) if _pushable_column(col):
            items = [_operand(v, col) for v in values]
            return None if None in items else f"{_name(col)} IN ({', '.join(items)})"
        case a.Between(expr=a.Column() as col, low=lo, high=hi) if _pushable_column(col):
            low, high = _operand(lo, col), _operand(hi, col)
            return None if None in (low, high) else f"{_name(col)} BETWEEN {low} AND {high}"
        case a.LabelsHas(values=values, mode=mode):
            return f"array_has_{mode}(labels, [{', '.join(sql_literal(v) for v in values)}])"
    return None


def _nan_false(col: a.Column, op: str, text: str) -> str:
    """`text` with NaN made false, as in the residual and Python (IEEE 754): Lance (DataFusion) orders
    NaN above every number, so only > and >= would let it through."""
    if col.type == a.FLOAT and op in (">", ">="):
        return f"{text} AND NOT isnan({_name(col)})"
    return text


def _pushable_column(col: a.Column) -> bool:
    if "`" in col.name:
        return False
    if col.type == a.FLOAT:
        return pa.types.is_float64(col.arrow_type) or pa.types.is_float32(col.arrow_type)
    return col.type in (a.STRING, a.INT, a.BOOL, a.TIMESTAMP)


def _name(col: a.Column) -> str:
    plain = col.name.isidentifier() and col.name.isascii() and col.name.upper() not in _KEYWORDS
    return col.name if plain else f"`{col.name}`"


def _operand(node: a.Node, col: a.Column) -> str | None:
    """A literal or same-typed column Lance compares exactly with `col`; None otherwise."""
    if isinstance(node, a.Column):  # float columns: Lance's NaN = NaN and NaN > x are true, IEEE's false
        same = _pushable_column(node) and node.arrow_type == col.arrow_type and col.type != a.FLOAT
        return _name(node) if same else None
    if not isinstance(node, a.Literal) or node.value is None or node.type != col.type:
        return None
    if node.type == a.INT:
        bits = col.arrow_type.bit_width
        signed = pa.types.is_signed_integer(col.arrow_type)
        lo, hi = (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) if signed else (0, 2**bits - 1)
        # -2**63 has no SQL literal: DataFusion reads it as -(2**63), and 2**63 overflows to a float
        return str(node.value) if lo <= node.value <= hi and node.value != -(2**63) else None
    if node.type == a.STRING:
        return sql_literal(node.value)
    if node.type == a.TIMESTAMP:
        if col.arrow_type.tz is None or col.arrow_type.unit != "us":
            return None
        utc = node.value.astimezone(dt.UTC)  # the year in 4 digits: strftime writes 999, not 0999
        return f"TIMESTAMP '{utc.year:04d}-" + utc.strftime("%m-%d %H:%M:%S.%f") + "'"
    if node.type == a.BOOL:
        return "true" if node.value else "false"
    value = float(np.float32(node.value)) if pa.types.is_float32(col.arrow_type) else float(node.value)
    # the float32 nearest the literal, written exactly; an infinite one has no SQL form (residual)
    return repr(value) if np.isfinite(value) else None


def _count_term(term: a.Node) -> tuple[a.Node | None, bool, str, int] | None:
    """(cond, skip_rejected, op, n) when `term` is "(count of annotations where cond holds) op n" and is
    false for a count of 0, so only frames with a matching annotation can pass; any_annotation(c) is c, >=, 1."""
    match term:
        case a.AnnotationPredicate(kind="any", cond=cond, skip_rejected=skip):
            return cond, skip, ">=", 1
        case a.Compare(
            left=a.AnnotationCount(cond=cond, skip_rejected=skip), op=op, right=a.Literal(type=a.INT, value=n)
        ) if not _OPS[op](0, n):
            return cond, skip, op, n
    return None


def _labels_exact(cond: a.Node | None, skip_rejected: bool, op: str, n: int) -> list[str] | None:
    """The labels L when the term is exactly "some annotation not rejected has a label in L", i.e. L ∩ labels ≠ ∅.

    That is: at least one match counts (`>= 1`), the condition is `label = 'x'` / `label IN (…)` and
    nothing else but "not rejected" tests, and rejected annotations are out (by the rule or by the condition).
    """
    if cond is None or (op, n) not in _AT_LEAST_ONE:
        return None
    parts = a.conjuncts(cond)
    status = [p for p in parts if is_not_rejected_test(p)]
    rest = [p for p in parts if not is_not_rejected_test(p)]
    if len(rest) != 1 or not (skip_rejected or status):
        return None
    values = _fixed_values(rest[0])
    if values is None or values[0] != "label" or not values[1] or None in values[1]:
        return None
    return sorted(values[1])


def _label_prefilter(cond: a.Node | None, skip_rejected: bool) -> list[str] | None:
    """Labels one of which a frame must list to have an annotation meeting `cond`, when `labels` can prove it.

    `labels` lists the labels of annotations that are not rejected, so only a condition that fixes the
    label over annotations not rejected (skipped by the rule, or excluded by the condition) may use it.
    """
    if cond is None or not (skip_rejected or excludes_rejected(cond)):
        return None
    labels = None
    for part in a.conjuncts(cond):
        values = _fixed_values(part)
        if values is not None and values[0] == "label" and values[1] is not None:
            labels = values[1]
    return sorted(labels) if labels and None not in labels else None


def _fixed_values(part: a.Node) -> tuple[str, set | None, set | None] | None:
    """(field, values it must take, values it must not take) for simple annotation-field tests."""
    match part:
        case a.Compare(op="=", left=a.Column(name=f), right=a.Literal(type=a.STRING, value=v)):
            return f, {v}, None
        case a.Compare(op="!=", left=a.Column(name=f), right=a.Literal(type=a.STRING, value=v)):
            return f, None, {v}
        case a.In(expr=a.Column(name=f), values=vs) if all(v.type == a.STRING for v in vs):
            return f, {v.value for v in vs}, None
        case a.Not(arg=a.In(expr=a.Column(name=f), values=vs)) if all(v.type == a.STRING for v in vs):
            return f, None, {v.value for v in vs}
    return None


def _side_term(term: a.Node, cond: a.Node | None, skip_rejected: bool, op: str, n: int) -> SideTerm | None:
    """`term` (counting annotations where `cond` holds) as a side-table question, when Lance can filter `cond`.

    The side table holds every annotation, rejected ones too: a function that skips them filters them out.
    """
    text = None if cond is None else lance_filter(cond)
    if cond is not None and text is None:
        return None
    if skip_rejected:
        text = all_of(not_rejected_filter(), text)
    return SideTerm(term, text, op, n)


_AT_LEAST_ONE = {(">=", 1), (">", 0), ("!=", 0)}  # count op n is exactly "count >= 1"
_OPS = {"=": operator.eq, "!=": operator.ne, "<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}
