"""Difference between two resolved views: frames added, removed, relabelled (classes changed), revised.

Frames are matched on (dataset, frame_id); "revised" counts frames in both whose row revision changed
while their classes did not (e.g. a box moved). Of the removed frames, those that left because their
labels were rejected are also listed as "removed (rejected)": the frame still exists, and an annotation
that gave one of its old classes was not rejected in the old version and is rejected in the new one (or,
when the old version resolved under the rule before the rejected-annotations rule, whose queries still
saw rejected annotations, the frame has rejected annotations in the new one).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import polars as pl
import pyarrow as pa
import pyarrow.compute as pc

from .. import storage
from ..query.rules import REJECTED
from .labelmap import LabelMap

DIFF_COLUMNS = ["dataset", "frame_id", "uri", "revision", "classes"]
_KEY = ["dataset", "frame_id"]


@dataclass(frozen=True)
class ViewDiff:
    """`new` compared with `old` (view versions): rows of each kind of change, and their counts."""

    old: str
    new: str
    added: pl.DataFrame  # dataset, frame_id, uri, classes
    removed: pl.DataFrame  # dataset, frame_id, uri, classes
    relabeled: pl.DataFrame  # dataset, frame_id, classes_old, classes_new
    revised: pl.DataFrame  # dataset, frame_id, revision_old, revision_new
    # the removed frames that left because their labels were rejected (a subset of `removed`)
    removed_rejected: pl.DataFrame = field(default_factory=lambda: pl.DataFrame())

    @property
    def counts(self) -> dict[str, int]:
        out = {k: getattr(self, k).height for k in ("added", "removed", "relabeled", "revised")}
        out["removed (rejected)"] = self.removed_rejected.height
        return out

    @property
    def empty(self) -> bool:
        return not any(self.counts.values())

    def __str__(self) -> str:
        c = self.counts
        rejected = f" ({c['removed (rejected)']} rejected)" if c["removed (rejected)"] else ""
        return (
            f"{self.old} -> {self.new}: {c['added']} added, {c['removed']} removed{rejected}, "
            f"{c['relabeled']} relabeled, {c['revised']} revised"
        )


def diff_manifests(old: pa.Table, new: pa.Table, old_name: str, new_name: str) -> ViewDiff:
    """Compare two manifests holding DIFF_COLUMNS."""
    a = pl.from_arrow(old.select(DIFF_COLUMNS))
    b = pl.from_arrow(new.select(DIFF_COLUMNS))
    shown = ["dataset", "frame_id", "uri", "classes"]
    added = b.join(a, on=_KEY, how="anti").select(shown)
    removed = a.join(b, on=_KEY, how="anti").select(shown)
    both = a.join(b, on=_KEY, how="inner", suffix="_new").rename({"classes": "classes_old", "revision": "revision_old"})
    label_changed = pl.col("classes_old").ne_missing(pl.col("classes_new"))
    relabeled = both.filter(label_changed).select(*_KEY, "classes_old", "classes_new")
    revised = both.filter(~label_changed & pl.col("revision_old").ne_missing(pl.col("revision_new"))).select(
        *_KEY, "revision_old", "revision_new"
    )
    return ViewDiff(old_name, new_name, added, removed, relabeled.sort(_KEY), revised.sort(_KEY), removed.clear())


def mark_rejected(diff: ViewDiff, old: Mapping[str, Any], new: Mapping[str, Any], label_map: LabelMap | None,
                  old_saw_rejected: bool = False) -> ViewDiff:
    """`diff` with `removed_rejected` filled in: removed frames that left because their labels were rejected.

    `old` / `new` map each dataset to its Lance dataset at the old / new view's pin; `label_map` is the
    old view's (an annotation counts when its old label gave one of the frame's old classes);
    `old_saw_rejected`: the old version resolved under rule 1 and the new one does not.
    """
    if diff.removed.height == 0:
        return diff
    mapping = label_map.as_dict() if label_map is not None else None
    keep_unknown = label_map is None or label_map.unknown == "keep"
    to_class: Callable[[str], str | None] = lambda lab: lab if mapping is None else mapping.get(lab, lab if keep_unknown else None)  # noqa: E731
    flagged: list[tuple[str, str]] = []
    for (dataset,), group in diff.removed.group_by(["dataset"], maintain_order=True):
        if dataset not in old or dataset not in new:
            continue
        ids = group["frame_id"].to_list()
        was_live = {(f, a["ann_id"]): a["label"] for f, a in _annotations(old[dataset], ids) if a["review_status"] != REJECTED}
        now_rejected = {(f, a["ann_id"]) for f, a in _annotations(new[dataset], ids) if a["review_status"] == REJECTED}
        classes = dict(zip(ids, group["classes"].to_list(), strict=True))
        hit = {f for (f, ann), lab in was_live.items()
               if (f, ann) in now_rejected and lab is not None and to_class(lab) in (classes[f] or [])}
        if old_saw_rejected:  # the old queries still counted rejected annotations as labels
            hit |= {f for f, _ in now_rejected}
        flagged += [(dataset, f) for f in ids if f in hit]
    keys = pl.DataFrame(flagged, schema={"dataset": pl.String, "frame_id": pl.String}, orient="row")
    rejected = diff.removed.join(keys, on=_KEY, how="semi").sort(_KEY)
    return replace(diff, removed_rejected=rejected)


def _annotations(handle: Any, frame_ids: list[str]) -> list[tuple[str, dict]]:
    """(frame_id, annotation) pairs of `frame_ids` in a table version (frames no longer there give none)."""
    table = storage.rows.read_rows(handle, frame_ids, columns=["frame_id", "annotations"])
    ann = table.column("annotations").combine_chunks()
    flat = pc.list_flatten(ann)
    frames = pc.take(table.column("frame_id").combine_chunks(), pc.list_parent_indices(ann)).to_pylist()
    fields = {name: pc.struct_field(flat, name).to_pylist() for name in ("ann_id", "label", "review_status")}
    return [(f, {k: v[i] for k, v in fields.items()}) for i, f in enumerate(frames)]
