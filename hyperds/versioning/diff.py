"""Difference between two resolved views: frames added, removed, relabelled (classes changed), revised.

Frames are matched on (dataset, frame_id); "revised" counts frames in both whose row revision changed
while their classes did not (e.g. a box moved).
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl
import pyarrow as pa

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

    @property
    def counts(self) -> dict[str, int]:
        return {k: getattr(self, k).height for k in ("added", "removed", "relabeled", "revised")}

    @property
    def empty(self) -> bool:
        return not any(self.counts.values())

    def __str__(self) -> str:
        c = self.counts
        return (
            f"{self.old} -> {self.new}: {c['added']} added, {c['removed']} removed, "
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
    return ViewDiff(old_name, new_name, added, removed, relabeled.sort(_KEY), revised.sort(_KEY))
