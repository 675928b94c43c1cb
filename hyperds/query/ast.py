"""The query AST: small immutable nodes, plus their canonical SQL text.

Parsing builds these from sqlglot's tree; validation resolves names and types in place of the
placeholders; the planner, the residual evaluator and the Lance filter writer all walk them.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

# Value types the language knows; anything else in a schema is "other" (only IS NULL allowed).
STRING, INT, FLOAT, BOOL, TIMESTAMP, LABELS, NULL, OTHER = (
    "string", "int", "float", "bool", "timestamp", "list<string>", "null", "other",
)

# Scope of a column: a frame column, or an annotation field inside an annotation function.
FRAME, ANNOTATION = "frame", "annotation"


@dataclass(frozen=True)
class Node:
    """Base: every node remembers where it starts in the query text (for error carets)."""

    pos: int = field(default=0, compare=False, kw_only=True)


@dataclass(frozen=True)
class Column(Node):
    name: str
    scope: str = FRAME
    type: str = OTHER
    arrow_type: Any = field(default=None, compare=False)
    quoted: bool = field(default=False, compare=False)  # written "name": maybe a string meant as 'name'


@dataclass(frozen=True)
class Literal(Node):
    value: Any  # str, int, float, bool, datetime (UTC) or None
    type: str


@dataclass(frozen=True)
class Compare(Node):
    op: str
    left: Node
    right: Node


@dataclass(frozen=True)
class And(Node):
    args: tuple[Node, ...]


@dataclass(frozen=True)
class Or(Node):
    args: tuple[Node, ...]


@dataclass(frozen=True)
class Not(Node):
    arg: Node


@dataclass(frozen=True)
class In(Node):
    expr: Node
    values: tuple[Literal, ...]


@dataclass(frozen=True)
class Between(Node):
    expr: Node
    low: Node
    high: Node


@dataclass(frozen=True)
class Like(Node):
    expr: Node
    pattern: Literal


@dataclass(frozen=True)
class IsNull(Node):
    expr: Node


@dataclass(frozen=True)
class LabelsHas(Node):
    """`labels` holds any (mode 'any') or all (mode 'all') of `values`."""

    values: tuple[str, ...]
    mode: str = "any"


@dataclass(frozen=True)
class AnnotationPredicate(Node):
    """any_annotation(cond) / all_annotations(cond): `cond` is evaluated per annotation."""

    kind: str  # "any" | "all"
    cond: Node
    # True: the function ranges over the frame's annotations that are not rejected (set by rules.apply_rule)
    skip_rejected: bool = field(default=False, kw_only=True)


@dataclass(frozen=True)
class AnnotationCount(Node):
    """count_annotations(cond): the number of the frame's annotations where `cond` is TRUE."""

    cond: Node | None
    skip_rejected: bool = field(default=False, kw_only=True)  # as in AnnotationPredicate


def children(node: Node) -> tuple[Node, ...]:
    """Direct sub-expressions of a node (annotation conditions included)."""
    match node:
        case Compare(left=a, right=b):
            return (a, b)
        case And(args=args) | Or(args=args):
            return args
        case Not(arg=a) | IsNull(expr=a):
            return (a,)
        case In(expr=e, values=vs):
            return (e, *vs)
        case Between(expr=e, low=lo, high=hi):
            return (e, lo, hi)
        case Like(expr=e, pattern=p):
            return (e, p)
        case AnnotationPredicate(cond=c):
            return (c,)
        case AnnotationCount(cond=c):
            return (c,) if c is not None else ()
    return ()


def walk(node: Node):
    """Every node of the tree, depth first."""
    yield node
    for child in children(node):
        yield from walk(child)


def frame_columns(node: Node) -> set[str]:
    """Frame columns a predicate reads (`annotations` for annotation functions, `labels` for label tests)."""
    cols: set[str] = set()
    for n in walk(node):
        if isinstance(n, Column) and n.scope == FRAME:
            cols.add(n.name)
        elif isinstance(n, (AnnotationPredicate, AnnotationCount)):
            cols.add("annotations")
        elif isinstance(n, LabelsHas):
            cols.add("labels")
    return cols


def conjoin(parts: list[Node]) -> Node | None:
    """AND of `parts` (None when empty)."""
    if not parts:
        return None
    return parts[0] if len(parts) == 1 else And(tuple(parts), pos=parts[0].pos)


def conjuncts(node: Node | None) -> list[Node]:
    """Top-level AND terms of a predicate, flattened."""
    if node is None:
        return []
    if isinstance(node, And):
        return [t for a in node.args for t in conjuncts(a)]
    return [node]


# -- canonical text ------------------------------------------------------------------------
def to_sql(node: Node) -> str:
    """Canonical SQL for a node: upper-case keywords, single spaces, UTC timestamps."""
    match node:
        case Column(name=name):
            return _ident(name)
        case Literal():
            return literal_sql(node.value, node.type)
        case Compare(op=op, left=a, right=b):
            return f"{_operand(a)} {op} {_operand(b)}"
        case And(args=args):
            return " AND ".join(_wrap(a, (Or,)) for a in args)
        case Or(args=args):
            return " OR ".join(_wrap(a, (And,)) for a in args)
        case Not(arg=IsNull(expr=e)):
            return f"{_operand(e)} IS NOT NULL"
        case Not(arg=In() | Between() | Like() as inner):
            return _infix(inner, "NOT ")
        case Not(arg=a):
            return f"NOT {_wrap(a, (And, Or, Compare, In, Between, Like, IsNull))}"
        case In() | Between() | Like():
            return _infix(node, "")
        case IsNull(expr=e):
            return f"{_operand(e)} IS NULL"
        case LabelsHas(values=vs, mode=mode):
            items = ", ".join(literal_sql(v, STRING) for v in vs)
            return f"array_has_{mode}(labels, [{items}])"
        case AnnotationPredicate(kind=kind, cond=c):
            return f"{'any_annotation' if kind == 'any' else 'all_annotations'}({to_sql(c)})"
        case AnnotationCount(cond=c):
            return f"count_annotations({to_sql(c) if c is not None else ''})"
    raise TypeError(f"no SQL form for {node!r}")


def _infix(node: In | Between | Like, negation: str) -> str:
    match node:
        case In(expr=e, values=vs):
            return f"{_operand(e)} {negation}IN ({', '.join(to_sql(v) for v in vs)})"
        case Between(expr=e, low=lo, high=hi):
            return f"{_operand(e)} {negation}BETWEEN {_operand(lo)} AND {_operand(hi)}"
        case Like(expr=e, pattern=p):
            return f"{_operand(e)} {negation}LIKE {to_sql(p)}"
    raise TypeError(node)


def literal_sql(value: Any, type_: str) -> str:
    if value is None:
        return "NULL"
    if type_ == BOOL:
        return "TRUE" if value else "FALSE"
    if type_ == TIMESTAMP:
        return "'" + value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ") + "'"
    if type_ == STRING:
        return "'" + str(value).replace("'", "''") + "'"
    return repr(value)


def _ident(name: str) -> str:
    return name if name.isidentifier() and name.isascii() else '"' + name.replace('"', '""') + '"'


def _operand(node: Node) -> str:
    return _wrap(node, (And, Or, Not, Compare, In, Between, Like, IsNull))


def _wrap(node: Node, kinds: tuple[type, ...]) -> str:
    text = to_sql(node)
    return f"({text})" if isinstance(node, kinds) else text
