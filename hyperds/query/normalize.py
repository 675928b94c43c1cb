"""Bring a validated predicate to a normal form before it is planned, and keep parsing bounded.

- AND/OR chains are flattened (a OR b OR … is one node, not a 47-deep tree that Lance's SQL parser
  refuses), NOT is pushed down to the atoms (De Morgan holds in three-valued logic) and double
  negations cancel, so 40 nested NOTs cost nothing to plan. NOT is never folded into an atom's
  operator: NOT (x > 3) is true for NaN, x <= 3 is not.
- Comparisons of two literals (NULL = NULL, 1 < 2) are folded to TRUE, FALSE or NULL (unknown).
- Nesting deeper than MAX_DEPTH parentheses is a positioned QueryError; up to it, parsing and
  validating run with room enough on Python's stack (see bounded()).
"""

from __future__ import annotations

import contextlib
import dataclasses
import operator
import sys
from collections.abc import Iterator

from ..errors import QueryError
from . import ast as a

MAX_DEPTH = 64
# Python frames the parser and the validator use per nesting level, with room to spare
_FRAMES_PER_LEVEL = 60

_OPS = {"=": operator.eq, "!=": operator.ne, "<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}


def normalize(node: a.Node | None) -> a.Node | None:
    """`node` in negation normal form with flat AND/OR and literal comparisons folded."""
    return None if node is None else _norm(node, False)


def _norm(node: a.Node, negate: bool) -> a.Node:
    match node:
        case a.Not(arg=x):
            return _norm(x, not negate)
        case a.And(args=args) | a.Or(args=args):
            is_and = isinstance(node, a.And) != negate  # De Morgan: NOT (a AND b) = NOT a OR NOT b
            kind = a.And if is_and else a.Or
            flat: list[a.Node] = []
            for arg in args:
                n = _norm(arg, negate)
                flat.extend(n.args if isinstance(n, kind) else [n])
            return flat[0] if len(flat) == 1 else kind(tuple(flat), pos=node.pos)
        case a.Compare(op=op, left=a.Literal() as lhs, right=a.Literal() as rhs):
            return _literal(_compare(op, lhs.value, rhs.value), negate, node.pos)
        case a.Between(expr=a.Literal() as x, low=a.Literal() as lo, high=a.Literal() as hi):
            low, high = _compare(">=", x.value, lo.value), _compare("<=", x.value, hi.value)
            both = False if False in (low, high) else (None if None in (low, high) else True)
            return _literal(both, negate, node.pos)
        case a.Literal(type=a.BOOL | a.NULL, value=v):
            return _literal(v, negate, node.pos)
        case a.AnnotationPredicate(cond=c):
            inner = dataclasses.replace(node, cond=_norm(c, False))
            return a.Not(inner, pos=node.pos) if negate else inner
        case a.AnnotationCount(cond=c) if c is not None:
            return dataclasses.replace(node, cond=_norm(c, False))
        case a.Compare(left=a.AnnotationCount() as count):
            inner = dataclasses.replace(node, left=_norm(count, False))
            return a.Not(inner, pos=node.pos) if negate else inner
    return a.Not(node, pos=node.pos) if negate else node


def _compare(op: str, left: object, right: object) -> bool | None:
    if left is None or right is None:
        return None
    try:
        return bool(_OPS[op](left, right))
    except TypeError:  # validation lets only comparable literals through; stay unknown otherwise
        return None


def _literal(value: bool | None, negate: bool, pos: int) -> a.Literal:
    if value is None:
        return a.Literal(None, a.NULL, pos=pos)
    return a.Literal((not value) if negate else bool(value), a.BOOL, pos=pos)


def nesting_problem(text: str) -> int | None:
    """Position of the first '(' nested deeper than MAX_DEPTH outside quotes, or None."""
    depth, quote, i = 0, None, 0
    while i < len(text):
        ch = text[i]
        if quote:
            if ch == quote:
                if text[i + 1 : i + 2] == quote:  # doubled quote inside a literal
                    i += 1
                else:
                    quote = None
        elif ch in "'\"`":
            quote = ch
        elif ch == "(":
            depth += 1
            if depth > MAX_DEPTH:
                return i
        elif ch == ")":
            depth = max(depth - 1, 0)
        i += 1
    return None


@contextlib.contextmanager
def bounded(text: str) -> Iterator[None]:
    """Parse/validate `text` inside: too deep a nesting or too long a chain is a QueryError, not a crash."""
    pos = nesting_problem(text) if isinstance(text, str) else None  # parse() names a non-text query
    if pos is not None:
        raise QueryError(
            f"the query nests parentheses more than {MAX_DEPTH} deep; remove redundant parentheses", text, pos
        )
    old = sys.getrecursionlimit()
    need = MAX_DEPTH * _FRAMES_PER_LEVEL + 1000
    if old < need:
        sys.setrecursionlimit(need)
    try:
        yield
    except RecursionError as exc:
        raise QueryError(
            "the query is too deeply nested or too long to plan; split it into shorter conditions "
            "(e.g. site IN ('S1', 'S2', …) instead of a long OR chain)", text, 0,
        ) from exc
    finally:
        if old < need:
            sys.setrecursionlimit(old)
