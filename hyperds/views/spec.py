"""What a view selects: named sub-queries over datasets, a label map, a split and what to do with frames
left without a class. `build_spec` validates a definition against every dataset before anything is stored.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..errors import ViewError
from ..query.rules import CURRENT_RULE, RULE_SKIPS_REJECTED
from .labelmap import LabelMap
from .splits import SplitSpec

if TYPE_CHECKING:
    from ..store import Store

DEFAULT_SUBQUERY = "default"
EMPTY_POLICIES = ("drop", "keep")


@dataclass(frozen=True)
class SubQuery:
    """One sub-query of a view: its name, normalised SQL, and sampling weight."""

    name: str
    sql: str
    weight: float = 1.0


@dataclass(frozen=True)
class ViewSpec:
    """What a view selects: sub-queries over datasets, a label map and a split."""

    queries: tuple[SubQuery, ...]
    datasets: tuple[str, ...]
    label_map: LabelMap | None = None
    split: SplitSpec | None = None
    empty: str = "drop"  # frames left without a class: "drop" them or "keep" them (rule 2)
    rule: int = CURRENT_RULE  # the rejected-annotations rule it resolves under (hyperds.query.rules)

    @property
    def keeps_empty(self) -> bool:
        """Does the view keep frames left without a class? (Rule 1: only when it has no label map.)"""
        if self.rule < RULE_SKIPS_REJECTED:
            return self.label_map is None
        return self.empty == "keep"


def build_spec(
    store: Store,
    query: str | Mapping[str, str],
    datasets: Sequence[str],
    label_map: Mapping[str, str] | None,
    unknown_labels: str,
    weights: Mapping[str, float] | None,
    split: SplitSpec | Mapping[str, Any] | None,
    empty: str = "drop",
) -> ViewSpec:
    """The spec of a definition as create_view takes it; every sub-query is parsed and validated against every
    dataset here (a positioned QueryError), so a bad definition is refused before anything is stored."""
    if empty not in EMPTY_POLICIES:
        raise ViewError(f"empty must be one of {', '.join(EMPTY_POLICIES)} (frames left without a class), not {empty!r}")
    if isinstance(datasets, str):
        datasets = [datasets]
    names = list(dict.fromkeys(datasets or []))
    if not names:
        raise ViewError("a view needs at least one dataset: pass datasets=['name', ...]")
    handles = [store.dataset(n) for n in names]  # DatasetNotFoundError lists the existing ones
    if not isinstance(query, (str, Mapping)):
        raise ViewError(f"query must be SQL text, or a dict of sub-query name -> SQL text; got {type(query).__name__}")
    texts = {DEFAULT_SUBQUERY: query} if isinstance(query, str) else dict(query)
    if not texts or any(not isinstance(k, str) or not k or not isinstance(v, str) for k, v in texts.items()):
        raise ViewError("query must be SQL text, or a non-empty dict of sub-query name -> SQL text")
    weights = dict(weights or {})
    unknown = sorted(set(weights) - set(texts))
    if unknown:
        raise ViewError(f"weights name unknown sub-queries {unknown}; sub-queries are {sorted(texts)}")
    bad = {k: w for k, w in weights.items()
           if not isinstance(w, (int, float)) or isinstance(w, bool) or not 0 < w < float("inf")}
    if bad:
        raise ViewError(f"weights must be positive finite numbers, got {bad}")
    subs = []
    for sub_name, text in texts.items():
        first = handles[0].query(text)  # QueryError, positioned, before anything is stored
        if len(handles) > 1 and first.statement.is_select:
            raise ViewError(
                f"sub-query {sub_name!r}: a view over several datasets takes a boolean expression, not SELECT … FROM"
            )
        for other in handles[1:]:
            other.query(text)
        subs.append(SubQuery(sub_name, first.sql, float(weights.get(sub_name, 1.0))))
    return ViewSpec(tuple(subs), tuple(names), LabelMap.parse(label_map, unknown_labels), SplitSpec.parse(split),
                    empty)
