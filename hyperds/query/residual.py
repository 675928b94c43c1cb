"""Evaluate a validated predicate over Arrow data, vectorised, with SQL three-valued logic.

Annotation functions flatten the annotations list once, evaluate their condition per annotation
(so all its parts hold on the same annotation) and fold the result back per frame with the
parent indices: any = some annotation TRUE; all = every annotation TRUE (TRUE for none); count.
A function marked `skip_rejected` (rules.py) folds only the annotations that are not rejected.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from . import ast as a
from .rules import REJECTED, STATUS_FIELD

_UTC = pa.timestamp("us", tz="UTC")
CMP: dict[str, Callable] = {
    "=": pc.equal, "!=": pc.not_equal, "<": pc.less, "<=": pc.less_equal, ">": pc.greater, ">=": pc.greater_equal,
}


def evaluate(node: a.Node, data: pa.Table | pa.RecordBatch) -> pa.Array:
    """Boolean array (nulls = SQL UNKNOWN), one value per row of `data`."""
    return _Evaluator(lambda name: _column(data, name), data.num_rows).predicate(node)


def mask(node: a.Node, data: pa.Table | pa.RecordBatch) -> pa.Array:
    """Rows where the predicate is TRUE (UNKNOWN counts as not selected, as in WHERE)."""
    return pc.fill_null(evaluate(node, data), False)


def _column(data: pa.Table | pa.RecordBatch, name: str) -> pa.Array:
    col = data.column(name)
    return col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col


class _Evaluator:
    """Evaluates nodes against columns supplied by `get` (frame columns or annotation fields)."""

    def __init__(self, get: Callable[[str], pa.Array], n: int):
        self.get = get
        self.n = n

    def predicate(self, node: a.Node) -> pa.Array:
        out = self.broadcast(self.value(node))
        return out if out.type == pa.bool_() else out.cast(pa.bool_())

    def value(self, node: a.Node) -> pa.Array | pa.Scalar:
        match node:
            case a.Column(name=name):
                return self.get(name)
            case a.Literal(value=v):
                return _scalar(node)
            case a.And(args=args):
                out = self.predicate(args[0])
                for x in args[1:]:
                    out = pc.and_kleene(out, self.predicate(x))
                return out
            case a.Or(args=args):
                out = self.predicate(args[0])
                for x in args[1:]:
                    out = pc.or_kleene(out, self.predicate(x))
                return out
            case a.Not(arg=x):
                return pc.invert(self.predicate(x))
            case a.IsNull(expr=x):
                return pc.is_null(self.broadcast(self.value(x)))
            case a.Compare(op=op, left=l, right=r):
                return self.broadcast(CMP[op](*self.pair(l, r)))
            case a.Between(expr=x, low=lo, high=hi):
                return pc.and_kleene(
                    self.broadcast(pc.greater_equal(*self.pair(x, lo))),
                    self.broadcast(pc.less_equal(*self.pair(x, hi))),
                )
            case a.In():
                return self.in_list(node)
            case a.Like(expr=x, pattern=p):
                v = self.broadcast(self.value(x))
                return pc.match_like(v if v.type != pa.null() else v.cast(pa.string()), p.value)
            case a.LabelsHas():
                return _labels_has(self.get("labels"), node.values, node.mode)
            case a.AnnotationPredicate() | a.AnnotationCount():
                return _annotation_fold(node, self.get("annotations"))
        raise TypeError(f"cannot evaluate {node!r}")

    def pair(self, left: a.Node, right: a.Node) -> tuple[pa.Array | pa.Scalar, pa.Array | pa.Scalar]:
        """Both operands; a number meeting a float32 column is read at float32 precision, as stored."""
        lv, rv = self.value(left), self.value(right)
        if isinstance(rv, pa.Scalar) and not isinstance(lv, pa.Scalar):
            rv = _as_width_of(rv, lv.type)
        elif isinstance(lv, pa.Scalar) and not isinstance(rv, pa.Scalar):
            lv = _as_width_of(lv, rv.type)
        return lv, rv

    def broadcast(self, out: pa.Array | pa.Scalar) -> pa.Array:
        if isinstance(out, pa.Scalar):
            return pa.repeat(out if out.type != pa.null() else pa.scalar(None, pa.bool_()), self.n)
        return out

    def in_list(self, node: a.In) -> pa.Array:
        v = self.broadcast(self.value(node.expr))
        values = [x.value for x in node.values if x.value is not None]
        if pa.types.is_null(v.type):
            return pa.nulls(self.n, pa.bool_())
        ts = any(x.type == a.TIMESTAMP for x in node.values)
        value_set = pa.array(values, _UTC if ts else (None if values else v.type))
        if value_set.type != v.type:
            narrow = _lossless(value_set, v.type) or (pa.types.is_floating(v.type) and _is_number(value_set.type))
            value_set = value_set.cast(v.type) if narrow else value_set
            v = v if value_set.type == v.type else v.cast(value_set.type)
        found = pc.is_in(v, value_set=value_set, skip_nulls=True)
        found = pc.if_else(pc.is_null(v), pa.scalar(None, pa.bool_()), found)
        if len(values) < len(node.values):  # x IN (…, NULL) is UNKNOWN unless x matches
            found = pc.if_else(found, True, pa.scalar(None, pa.bool_()))
        return found


def _is_number(t: pa.DataType) -> bool:
    return pa.types.is_integer(t) or pa.types.is_floating(t)


def _as_width_of(value: pa.Scalar, column_type: pa.DataType) -> pa.Scalar:
    if pa.types.is_float32(column_type) and _is_number(value.type) and value.is_valid:
        return pa.scalar(value.as_py(), pa.float32())
    return value


def _lossless(values: pa.Array, target: pa.DataType) -> bool:
    try:
        return values.cast(target).cast(values.type).equals(values)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return False


def _scalar(lit: a.Literal) -> pa.Scalar:
    if lit.type == a.TIMESTAMP:
        return pa.scalar(lit.value, _UTC)
    if lit.type == a.NULL:
        return pa.scalar(None, pa.null())
    return pa.scalar(lit.value)


def _labels_has(labels: pa.Array, values: tuple[str, ...], mode: str) -> pa.Array:
    """Per row: does the list hold any / all of `values` (null list → UNKNOWN)."""
    n = len(labels)
    flat = pc.list_flatten(labels)
    parents = np.asarray(pc.list_parent_indices(labels))
    hits = np.zeros(n, dtype=np.int64)
    for value in dict.fromkeys(values):
        found = np.asarray(pc.fill_null(pc.equal(flat, value), False), dtype=bool)
        hits += np.bincount(parents[found], minlength=n) > 0
    ok = hits > 0 if mode == "any" else hits == len(set(values))
    return pc.if_else(pc.is_null(labels), pa.scalar(None, pa.bool_()), pa.array(ok))


def _annotation_fold(node: a.AnnotationPredicate | a.AnnotationCount, annotations: pa.Array) -> pa.Array:
    n = len(annotations)
    flat = pc.list_flatten(annotations)
    parents = np.asarray(pc.list_parent_indices(annotations))
    if node.cond is None:
        true = np.ones(len(flat), dtype=bool)
    else:
        fields = _Evaluator(lambda name: pc.struct_field(flat, name), len(flat))
        true = np.asarray(pc.fill_null(fields.predicate(node.cond), False), dtype=bool)
    if node.skip_rejected:  # the function ranges over the annotations not rejected, as `labels` does
        live = pc.not_equal(pc.struct_field(flat, STATUS_FIELD), REJECTED)
        live = np.asarray(pc.fill_null(live, False), dtype=bool)
        true &= live
        if isinstance(node, a.AnnotationPredicate) and node.kind == "all":
            return pa.array(np.bincount(parents[~true & live], minlength=n) == 0)
    if isinstance(node, a.AnnotationCount):
        return pa.array(np.bincount(parents[true], minlength=n).astype(np.int64))
    if node.kind == "any":
        return pa.array(np.bincount(parents[true], minlength=n) > 0)
    return pa.array(np.bincount(parents[~true], minlength=n) == 0)
