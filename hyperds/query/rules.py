"""The rejected-annotations rule: a rejected annotation is not a label of its frame.

Rule versions (stored with every view, so a published view resolves under the rule it was published with):

- 1 (hyperds before the rule; a `_views` row without a rule): annotation functions see every annotation,
  rejected ones included; `labels` (and so a view's classes) lists only annotations not rejected.
- 2 (current): annotation functions (`any_annotation`, `all_annotations`, `count_annotations`) range over
  the annotations that are not rejected, like `labels` does, unless their condition names `review_status`:
  then they see every annotation and the condition alone decides, so
  `any_annotation(review_status = 'rejected' AND source = 'MDv5a')` audits a detector's false positives.

Why a condition on `review_status` and not a variant function or an option: a query that names the review
state is already deciding about it (under an implicit filter `review_status = 'rejected'` could never be
true, a silent empty answer), the grammar stays SQL with three functions, and the text of every existing
query keeps its meaning except that rejected annotations stop counting as labels. "Not rejected" is
`review_status != 'rejected'` in SQL three-valued logic (a NULL status is not counted, as in `labels`).
"""

from __future__ import annotations

from dataclasses import replace

from ..errors import QueryError
from . import ast as a
from .lance_sql import ne

RULE_SEES_REJECTED = 1
RULE_SKIPS_REJECTED = 2
CURRENT_RULE = RULE_SKIPS_REJECTED
RULES = (RULE_SEES_REJECTED, RULE_SKIPS_REJECTED)

REJECTED = "rejected"
STATUS_FIELD = "review_status"


def not_rejected_filter() -> str:
    """The Lance (side table) filter "this annotation is not rejected", rendered by query.lance_sql (a
    function, not a constant: the renderer compiles through plan.py, which imports this module)."""
    return ne(STATUS_FIELD, REJECTED)


def names_review_status(cond: a.Node | None) -> bool:
    """Does the condition read `review_status` anywhere (then the function sees rejected annotations)?"""
    return cond is not None and any(
        isinstance(n, a.Column) and n.scope == a.ANNOTATION and n.name == STATUS_FIELD for n in a.walk(cond)
    )


def apply_rule(node: a.Node | None, rule: int = CURRENT_RULE) -> a.Node | None:
    """`node` (validated) with every annotation function marked to skip rejected annotations where `rule` says so."""
    if node is None:
        return None
    match node:
        case a.AnnotationPredicate(cond=c) | a.AnnotationCount(cond=c):
            return replace(node, skip_rejected=rule >= RULE_SKIPS_REJECTED and not names_review_status(c))
        case a.And(args=args) | a.Or(args=args):
            return replace(node, args=tuple(apply_rule(x, rule) for x in args))
        case a.Not(arg=x):
            return replace(node, arg=apply_rule(x, rule))
        case a.IsNull(expr=x):
            return replace(node, expr=apply_rule(x, rule))
        case a.Compare(left=x, right=y):
            return replace(node, left=apply_rule(x, rule), right=apply_rule(y, rule))
        case a.In(expr=x):
            return replace(node, expr=apply_rule(x, rule))
        case a.Between(expr=x, low=lo, high=hi):
            return replace(node, expr=apply_rule(x, rule), low=apply_rule(lo, rule), high=apply_rule(hi, rule))
    return node


def _status_test(part: a.Node) -> tuple[str, set] | None:
    """(kind, values) for `review_status = / != 'v'` and `review_status [NOT] IN (…)`; None otherwise."""
    match part:
        case a.Compare(op="=" | "!=" as op, left=a.Column(name=name), right=a.Literal(type=a.STRING, value=v)):
            return (op, {v}) if name == STATUS_FIELD else None
        case a.In(expr=a.Column(name=name), values=vs):
            return ("=", {v.value for v in vs}) if name == STATUS_FIELD else None
        case a.Not(arg=a.In(expr=a.Column(name=name), values=vs)) if all(v.value is not None for v in vs):
            return ("!=", {v.value for v in vs}) if name == STATUS_FIELD else None
    return None


def is_not_rejected_test(part: a.Node) -> bool:
    """Is `part` exactly "this annotation is not rejected" (`review_status != 'rejected'` or `NOT IN ('rejected')`)?"""
    return _status_test(part) == ("!=", {REJECTED})


def excludes_rejected(cond: a.Node) -> bool:
    """Is `cond` (an annotation condition) false for every rejected annotation, by one of its AND terms?"""
    for part in a.conjuncts(cond):
        test = _status_test(part)
        if test is not None and (REJECTED in test[1]) == (test[0] == "!="):
            return True
    return False


def check_rule(rule: int) -> int:
    if rule not in RULES:
        raise QueryError(f"unknown rejected-annotations rule {rule!r} (known: {', '.join(map(str, RULES))}); "
                         "it was written by a newer hyperds: upgrade hyperds to read it")
    return rule
