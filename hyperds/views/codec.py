"""A view version as a `_views` row, and back: the spec, its pins and who made it (see views.catalog for
the schema). A published row is never updated, so `spec_from_row` must read every row ever written:
rows from before the rejected-annotations rule have no `rule` and resolve under rule 1.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from ..errors import ViewError
from ..query.rules import CURRENT_RULE, RULE_SEES_REJECTED, RULES
from . import catalog as cat
from .labelmap import LabelMap
from .spec import SubQuery, ViewSpec
from .splits import SplitSpec


def now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def to_row(name: str, version: str, status: str, spec: ViewSpec, pins: dict[str, int], parent: str | None,
         message: str | None, author: str | None = None) -> dict[str, Any]:
    lm, sp = spec.label_map, spec.split
    return {
        "name": name,
        "version": version,
        "status": status,
        "queries": [{"name": q.name, "sql": q.sql, "weight": q.weight} for q in spec.queries],
        "datasets": [{"dataset": d, "version": pins.get(d)} for d in spec.datasets],
        "label_map": [{"source": s, "target": t} for s, t in lm.mapping] if lm else None,
        "unknown_labels": lm.unknown if lm else None,
        "split_by": sp.by if sp else None,
        "split_fractions": [{"name": n, "fraction": f} for n, f in sp.fractions] if sp else None,
        "split_seed": sp.seed if sp else None,
        "frame_count": None,
        "digest": None,
        "parts": None,
        "parent": parent,
        "created_by": author or cat.current_user(),
        "created_at": now(),
        "message": message or "",
        "empty": spec.empty,
        "rule": spec.rule,
    }


def spec_from_row(row: dict[str, Any]) -> ViewSpec:
    lm = None
    if row["label_map"]:
        lm = LabelMap(tuple((e["source"], e["target"]) for e in row["label_map"]), row["unknown_labels"] or "drop")
    sp = None
    if row["split_by"]:
        sp = SplitSpec(row["split_by"], tuple((e["name"], e["fraction"]) for e in row["split_fractions"]),
                       row["split_seed"] or 0)
    queries = tuple(SubQuery(q["name"], q["sql"], q["weight"]) for q in row["queries"])
    return ViewSpec(queries, tuple(d["dataset"] for d in row["datasets"]), lm, sp, row.get("empty") or "drop",
                    rule_of(row))


def rule_of(row: dict[str, Any]) -> int:
    """The rejected-annotations rule a row resolves under: a published row keeps the one it was published with
    (none recorded: rule 1, published before the rule existed); a draft follows the current rule."""
    if row["status"] != cat.PUBLISHED:
        return CURRENT_RULE
    rule = row.get("rule")
    if rule is None:
        return RULE_SEES_REJECTED
    if rule not in RULES:
        raise ViewError(f"view {row['name']!r} {row['version']} was published under rejected-annotations rule {rule}, "
                        f"which this hyperds does not know (it knows {', '.join(map(str, RULES))}); upgrade hyperds")
    return rule
