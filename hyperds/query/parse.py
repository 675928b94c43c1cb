"""Parse query text with sqlglot into our own AST (names and types are resolved later, in validate).

Accepts a bare boolean expression (empty means all frames) or `SELECT cols FROM ds WHERE …
[ORDER BY …] [LIMIT n [OFFSET m]]`; anything else is a positioned QueryError.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import sqlglot
from sqlglot import exp

from ..errors import QueryError
from . import ast as a

_COMPARE = {exp.EQ: "=", exp.NEQ: "!=", exp.LT: "<", exp.LTE: "<=", exp.GT: ">", exp.GTE: ">="}
_FLIP = {"=": "=", "!=": "!=", "<": ">", "<=": ">=", ">": "<", ">=": "<="}
_ANN_KIND = {"any_annotation": "any", "all_annotations": "all"}
_INT64_MAX = 2**63 - 1
_QUOTE_NAMES = 'double-quote dataset names containing - or ., e.g. FROM "camera-traps"'
_DASHED_FROM = re.compile(r"(?i)\b(?:FROM|JOIN)\s+\w+[-.]")


@dataclass(frozen=True)
class OrderKey:
    column: a.Column
    descending: bool = False


@dataclass(frozen=True)
class Statement:
    """A parsed query: the predicate plus the optional SELECT parts."""

    where: a.Node | None
    select: tuple[a.Column, ...] | None = None  # None: every column
    order: tuple[OrderKey, ...] = ()
    limit: int | None = None
    offset: int = 0
    table: str | None = None  # FROM name, None for a bare expression
    table_pos: int = 0

    @property
    def is_select(self) -> bool:
        """Written as SELECT … FROM (not a bare expression)."""
        return self.table is not None


def parse(text: str) -> Statement:
    """Parse `text` (see module doc); raises QueryError with the position of the problem."""
    _require_text(text)
    if not text.strip():
        return Statement(where=None)
    tree = parse_tree(text)
    if isinstance(tree, exp.Select):
        return _select(tree, text)
    if isinstance(tree, exp.Query):
        raise QueryError("unsupported statement: only SELECT … FROM <dataset> or a boolean expression", text, 0)
    return Statement(where=_Builder(text).expr(tree))


def parse_tree(text: str) -> exp.Expression:
    """sqlglot's tree for one statement; syntax errors become positioned QueryErrors."""
    _require_text(text)
    try:
        trees = sqlglot.parse(text)
    except sqlglot.errors.ParseError as exc:
        err = exc.errors[0] if exc.errors else {}
        highlight = err.get("highlight") or ""
        pos = _offset(text, err.get("line"), err.get("col"), highlight)
        raise QueryError(f"syntax error: {_syntax_problem(text, err.get('description') or str(exc), highlight)}",
                         text, pos) from exc
    except sqlglot.errors.TokenError as exc:
        raise QueryError(f"syntax error: {_token_problem(text)}", text, _open_quote(text)) from exc
    trees = [t for t in trees if t is not None]
    if not trees:
        raise QueryError("the query is empty; write e.g. SELECT * FROM <dataset> LIMIT 10", text, 0)
    if len(trees) != 1:
        raise QueryError("syntax error: expected exactly one statement (drop the ';')", text, max(text.find(";"), 0))
    return trees[0]


def _require_text(text: object) -> None:
    if not isinstance(text, str):
        raise QueryError(f"a query string is needed, got {type(text).__name__}; write e.g. \"site = 'S1'\"")


def _syntax_problem(text: str, description: str, highlight: str) -> str:
    """sqlglot's description in plain words, with a hint for the usual causes."""
    if description.startswith("Required keyword"):  # e.g. `width > 3 AND`, `site =`
        return (f"incomplete expression at {highlight!r}: a value or condition is missing after it; "
                "complete it, e.g. width > 100 AND site = 'S1'")
    if _DASHED_FROM.search(text):
        return f"{description}; {_QUOTE_NAMES}"
    return description


def dotted_name_error(table: exp.Table, text: str) -> QueryError:
    """FROM a.b: sqlglot reads a qualified name, but dataset names are one (quoted) name."""
    name = ".".join(p.name for p in table.parts)
    return QueryError(f"{name!r} reads as a qualified name; {_QUOTE_NAMES}", text, _pos(table))


def _offset(text: str, line: int | None, col: int | None, highlight: str) -> int:
    """sqlglot reports the line and the 1-based column of the END of the offending token."""
    if not line or not col:
        return 0
    lines = text.split("\n")
    start = sum(len(s) + 1 for s in lines[: line - 1])
    return max(0, min(len(text) - 1, start + col - max(len(highlight), 1)))


def _open_quote(text: str) -> int:
    """Position of a string literal or quoted name left open (tokeniser errors carry none)."""
    opened, quote = None, ""
    for i, ch in enumerate(text):
        if opened is None and ch in "'\"`":
            opened, quote = i, ch
        elif opened is not None and ch == quote:
            opened = None  # a doubled quote closes then reopens: same result
    return opened if opened is not None else 0


def _token_problem(text: str) -> str:
    if _open_quote(text) or text[:1] in "'\"`":
        return "a quoted string or name is not closed; close it with the same quote"
    return "cannot read the query text"


def _pos(node: exp.Expression) -> int:
    starts = [n.meta["start"] for n in node.walk() if "start" in n.meta]
    return min(starts) if starts else 0


def _select(tree: exp.Select, text: str) -> Statement:
    build = _Builder(text)
    for key in ("group", "having", "joins", "with_", "with", "distinct", "windows", "qualify"):
        part = tree.args.get(key)
        if part:
            node = part[0] if isinstance(part, list) else part
            raise QueryError(
                f"unsupported in dataset queries: {key.rstrip('_').upper()}; use store.sql() for analytic queries",
                text,
                _pos(node) if isinstance(node, exp.Expression) else 0,
            )
    source = tree.args.get("from_") or tree.args.get("from")
    if source is None or not isinstance(source.this, exp.Table):
        raise QueryError("SELECT needs FROM <dataset>", text, _pos(tree))
    if source.this.args.get("db"):
        raise dotted_name_error(source.this, text)
    table = source.this
    select: tuple[a.Column, ...] | None = None
    if not (len(tree.expressions) == 1 and isinstance(tree.expressions[0], exp.Star)):
        select = tuple(build.column(e, "SELECT") for e in tree.expressions)
    order = ()
    if tree.args.get("order"):
        order = tuple(
            OrderKey(build.column(o.this, "ORDER BY"), bool(o.args.get("desc"))) for o in tree.args["order"].expressions
        )
    where = tree.args.get("where")
    return Statement(
        where=build.expr(where.this) if where else None,
        select=select,
        order=order,
        limit=build.count(tree.args.get("limit"), "LIMIT"),
        offset=build.count(tree.args.get("offset"), "OFFSET") or 0,
        table=table.name,
        table_pos=_pos(table),
    )


class _Builder:
    """sqlglot expression → AST node, one method per family of constructs."""

    def __init__(self, text: str):
        self.text = text

    def fail(self, message: str, node: exp.Expression) -> QueryError:
        return QueryError(message, self.text, _pos(node))

    def unsupported(self, node: exp.Expression) -> QueryError:
        return self.fail(
            f"unsupported construct {node.sql()!r}: use comparisons, AND/OR/NOT, IN, BETWEEN, LIKE, IS NULL, "
            "label tests (array_has(labels, 'x')) and annotation functions (any_annotation, all_annotations, "
            "count_annotations)",
            node,
        )

    def count(self, node: exp.Expression | None, what: str) -> int | None:
        if node is None:
            return None
        value = node.expression if isinstance(node, (exp.Limit, exp.Offset)) else node
        if isinstance(value, exp.Literal) and not value.is_string and value.this.isdigit():
            return self.integer(value)
        raise self.fail(f"{what} takes a non-negative integer", value)

    def integer(self, node: exp.Literal, most: int = _INT64_MAX) -> int:
        """An integer literal's value; beyond int64 it would only fail later, deep in Arrow."""
        value = int(node.this)
        if value > most:
            raise self.fail(f"number too large: {node.this}; integer columns hold at most 2**63-1", node)
        return value

    def column(self, node: exp.Expression, where: str) -> a.Column:
        if isinstance(node, exp.Column) and not node.table:
            return a.Column(node.name, pos=_pos(node))
        raise self.fail(f"{where} takes plain column names here, not {node.sql()!r}", node)

    def expr(self, node: exp.Expression) -> a.Node:
        pos = _pos(node)
        match node:
            case exp.Paren():
                return self.expr(node.this)
            case exp.And():
                return a.And((self.expr(node.this), self.expr(node.expression)), pos=pos)
            case exp.Or():
                return a.Or((self.expr(node.this), self.expr(node.expression)), pos=pos)
            case exp.Not():
                return a.Not(self.expr(node.this), pos=pos)
            case exp.Column():
                if node.table:
                    raise self.fail(f"qualified name {node.sql()!r}: write the bare column name", node)
                return a.Column(node.name, quoted=bool(node.this.args.get("quoted")), pos=pos)
            case exp.Literal() | exp.Boolean() | exp.Null() | exp.Neg() | exp.Cast():
                return self.literal(node)
            case exp.Is():
                if not isinstance(node.expression, exp.Null):
                    raise self.unsupported(node)
                return a.IsNull(self.expr(node.this), pos=pos)
            case exp.In():
                if node.args.get("query") or node.args.get("unnest") or node.args.get("field"):
                    raise self.fail("IN takes a list of literal values, not a subquery", node)
                if not node.expressions:
                    raise self.fail("IN () is empty: list at least one value, e.g. site IN ('S1')", node)
                inner = a.In(self.expr(node.this), tuple(self.literal(v) for v in node.expressions), pos=pos)
                return a.Not(inner, pos=pos) if node.args.get("negate") else inner
            case exp.Between():
                return a.Between(
                    self.expr(node.this), self.expr(node.args["low"]), self.expr(node.args["high"]), pos=pos
                )
            case exp.Like():
                inner = a.Like(self.expr(node.this), self.literal(node.expression), pos=pos)
                return a.Not(inner, pos=pos) if node.args.get("negate") else inner
            case exp.ArrayContains():
                return self.labels_has(node, node.this, [node.expression], "any")
            case exp.ArrayContainsAll():
                return self.labels_has(node, node.this, self.array(node.expression), "all")
            case exp.Anonymous():
                return self.function(node)
        for kind, op in _COMPARE.items():
            if type(node) is kind:
                return self.compare(node, op)
        if isinstance(node, exp.Func):
            raise self.unknown_function(node.sql_name().lower(), node)
        raise self.unsupported(node)

    def compare(self, node: exp.Expression, op: str) -> a.Node:
        left, right = node.this, node.expression
        if isinstance(left, exp.Any) or isinstance(right, exp.Any):
            if op != "=":
                raise self.fail("ANY(labels) supports only '=': write 'lion' = ANY(labels)", node)
            value, any_ = (right, left) if isinstance(left, exp.Any) else (left, right)
            target = any_.this.this if isinstance(any_.this, exp.Paren) else any_.this
            return self.labels_has(node, target, [value], "any")
        lhs, rhs = self.expr(left), self.expr(right)
        if isinstance(lhs, a.Literal) and not isinstance(rhs, a.Literal):
            return a.Compare(_FLIP[op], rhs, lhs, pos=_pos(node))
        return a.Compare(op, lhs, rhs, pos=_pos(node))

    def function(self, node: exp.Anonymous) -> a.Node:
        name = str(node.this).lower()
        args = node.expressions
        pos = _pos(node)
        if name in _ANN_KIND:
            if len(args) != 1:
                raise self.fail(f"{name}() takes one condition on annotation fields, e.g. {name}(label = 'lion')", node)
            return a.AnnotationPredicate(_ANN_KIND[name], self.expr(args[0]), pos=pos)
        if name == "count_annotations":
            if len(args) > 1:
                raise self.fail("count_annotations() takes at most one condition on annotation fields", node)
            return a.AnnotationCount(self.expr(args[0]) if args else None, pos=pos)
        if name in ("array_has_any", "array_has_all"):
            if len(args) != 2:
                raise self.fail(f"{name}(labels, ['a', 'b']) takes two arguments", node)
            return self.labels_has(node, args[0], self.array(args[1]), name.removeprefix("array_has_"))
        raise self.unknown_function(name, node)

    def unknown_function(self, name: str, node: exp.Expression) -> QueryError:
        return self.fail(
            f"unknown function {name}(); functions are any_annotation, all_annotations, count_annotations, "
            "array_has, array_has_any, array_has_all",
            node,
        )

    def array(self, node: exp.Expression) -> list[exp.Expression]:
        if isinstance(node, (exp.Array, exp.Tuple)):
            return list(node.expressions)
        raise self.fail(f"expected a list of labels like ['lion', 'zebra'], got {node.sql()!r}", node)

    def labels_has(self, node: exp.Expression, target: exp.Expression, values: list, mode: str) -> a.Node:
        col = self.expr(target)
        if not (isinstance(col, a.Column) and col.name.lower() == "labels"):
            raise self.fail(
                "list tests apply to the labels column only, e.g. array_has(labels, 'lion'); for annotation "
                "fields use any_annotation(label = 'lion')",
                target,
            )
        lits = [self.literal(v) for v in values]
        bad = [v for v in lits if v.type != a.STRING]
        if bad or not lits:
            raise QueryError("labels holds strings: compare it with string literals like 'lion'", self.text,
                             bad[0].pos if bad else _pos(node))
        return a.LabelsHas(tuple(v.value for v in lits), mode, pos=_pos(node))

    def literal(self, node: exp.Expression) -> a.Literal:
        pos = _pos(node)
        match node:
            case exp.Literal(is_string=True):
                return a.Literal(node.this, a.STRING, pos=pos)
            case exp.Literal():
                if node.this.isdigit():
                    return a.Literal(self.integer(node), a.INT, pos=pos)
                return a.Literal(float(node.this), a.FLOAT, pos=pos)
            case exp.Neg() if isinstance(node.this, exp.Literal) and not node.this.is_string:
                if node.this.this.isdigit():
                    return a.Literal(-self.integer(node.this, _INT64_MAX + 1), a.INT, pos=pos)
                return a.Literal(-float(node.this.this), a.FLOAT, pos=pos)
            case exp.Boolean():
                return a.Literal(bool(node.this), a.BOOL, pos=pos)
            case exp.Null():
                return a.Literal(None, a.NULL, pos=pos)
            case exp.Cast() if isinstance(node.this, exp.Literal) and node.this.is_string and (
                node.to.is_type(*exp.DataType.TEMPORAL_TYPES)
            ):
                # TIMESTAMP '…' / DATE '…': kept as text, read as a UTC instant by validate
                return a.Literal(node.this.this, a.TIMESTAMP, pos=pos)
        raise self.fail(f"expected a literal value here, got {node.sql()!r}", node)
