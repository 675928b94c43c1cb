"""Repeat detections: a rock or a branch that a detector calls an animal in hundreds of frames of one camera.

`find_repeats` groups the open model detections of each camera (or deployment, site) whose boxes overlap at
IoU >= `iou` (connected components of that overlap graph) and keeps groups seen in at least `min_frames`
frames, ranked by frames. Nothing is written but, by default, a draft view of the affected frames.
`reject_repeats` rejects the detections of chosen groups as ONE commit whose reviewer is the rule
(`rule:repeat-detection iou=… min_frames=…`) and whose notes name each group, and stores the groups in the
`_repeat_groups` catalog so later ingests and model runs can be checked against them (`check_repeats`).
`undo_repeats` reopens what one rejection commit rejected, as a later commit; history keeps both.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc

from .. import storage
from ..errors import WorkflowError
from ..query.lance_sql import eq
from ..frames.rows import sql_literal
from ..frames.schema import BBOX_TYPE, UTC_US
from .boxes import flatten, iou_pairs, overlap_components

if TYPE_CHECKING:
    from ..dataset import Dataset
    from ..versioning.commits import CommitResult

log = logging.getLogger(__name__)

PER = ("camera", "deployment", "site")
RULE = "rule:repeat-detection"
GROUPS = "_repeat_groups"
GROUPS_SCHEMA = pa.schema(
    [
        ("dataset", pa.string()),
        ("group", pa.string()),
        ("per", pa.string()),
        ("key", pa.string()),
        ("label", pa.string()),
        ("bbox", BBOX_TYPE),
        ("iou", pa.float64()),
        ("min_frames", pa.int64()),
        ("frames", pa.int64()),
        ("detections", pa.list_(pa.struct([("frame_id", pa.string()), ("ann_id", pa.string())]))),
        ("status", pa.string()),  # rejected | undone (the latest row of a group decides)
        ("commit_id", pa.string()),
        ("author", pa.string()),
        ("created_at", UTC_US),
    ]
)
_GROUP_COLUMNS = {"group": pl.String, "key": pl.String, "label": pl.String, "frames": pl.Int64,
                  "detections": pl.Int64, "bbox": pl.List(pl.Float64), "confidence": pl.Float64,
                  "first_seen": pl.Datetime("us", "UTC"), "last_seen": pl.Datetime("us", "UTC"),
                  "examples": pl.List(pl.String)}
_DETECTION_COLUMNS = {"group": pl.String, "key": pl.String, "frame_id": pl.String, "ann_id": pl.String,
                      "revision": pl.Int64, "label": pl.String, "confidence": pl.Float32,
                      "x": pl.Float64, "y": pl.Float64, "w": pl.Float64, "h": pl.Float64}


def rule_name(iou: float, min_frames: int) -> str:
    """The reviewer recorded on rejected detections: says which rule, with which parameters, decided."""
    return f"{RULE} iou={float(iou)!r} min_frames={int(min_frames)}"


@dataclasses.dataclass
class RepeatGroups:
    """Groups of repeated model detections: `groups` (one row per group, ranked by frames) and `detections`
    (one row per detection, with the frame revision it was read at), the rule's parameters and the draft view."""

    dataset: str
    version: int
    per: str
    iou: float
    min_frames: int
    groups: pl.DataFrame
    detections: pl.DataFrame
    view: Any = None
    unkeyed: int = 0  # open model detections left out because their frame has no `per` value

    @property
    def rule(self) -> str:
        return rule_name(self.iou, self.min_frames)

    def __len__(self) -> int:
        return self.groups.height

    def select(self, ids: Sequence[str]) -> RepeatGroups:
        """Only the groups `ids` (WorkflowError naming unknown ones)."""
        ids = [ids] if isinstance(ids, str) else list(ids)
        unknown = sorted(set(ids) - set(self.groups["group"].to_list()))
        if unknown:
            shown = ", ".join(self.groups["group"].head(10).to_list()) or "none"
            raise WorkflowError(f"unknown repeat group(s) {unknown}; groups found: {shown}")
        keep = pl.col("group").is_in(ids)
        return dataclasses.replace(self, groups=self.groups.filter(keep), detections=self.detections.filter(keep),
                                   view=None)


@dataclasses.dataclass(frozen=True)
class RepeatRejection:
    """What reject_repeats wrote: the commit (reviewer = the rule), the groups and detections it rejected."""

    commit: CommitResult
    groups: list[str]
    detections: int
    reviewer: str


def check_params(per: str, iou: float, min_frames: int) -> None:
    if per not in PER:
        raise WorkflowError(f"per must be one of {PER} (the frame column that names one camera), not {per!r}")
    if isinstance(iou, bool) or not isinstance(iou, (int, float)) or not 0 < iou <= 1:
        raise WorkflowError(f"iou must be a number in (0, 1], e.g. 0.85, not {iou!r}")
    if isinstance(min_frames, bool) or not isinstance(min_frames, (int, np.integer)) or min_frames < 2:
        raise WorkflowError(f"min_frames must be a whole number >= 2, not {min_frames!r}")


def open_detections(ds: Dataset, per: str, where: str | None = None, frame_ids: pa.Array | None = None
                    ) -> tuple[pl.DataFrame, int]:
    """Open (unreviewed) model detections with a box, with their frame's `per` key, frame_id, revision and time;
    and how many were left out for a null key."""
    if per not in ds.schema.names:
        raise WorkflowError(f"dataset {ds.name!r} has no {per!r} column; use per= one of "
                            f"{[p for p in PER if p in ds.schema.names]}")
    columns = ["frame_id", "revision", "captured_at", per, "annotations"]
    rows = ds.query(where).to_arrow(columns) if where else ds.to_arrow(columns=columns)
    if frame_ids is not None:
        rows = rows.filter(pc.is_in(rows.column("frame_id"), value_set=frame_ids))
    dets = flatten(rows, ("frame_id", "revision", "captured_at", per), _FIELDS, keep=_open_box).rename({per: "key"})
    unkeyed = dets.filter(pl.col("key").is_null()).height
    return dets.filter(pl.col("key").is_not_null()), unkeyed


_FIELDS = ("ann_id", "label", "bbox", "confidence")


def _open_box(ann: pa.StructArray) -> pa.Array:
    """Open (unreviewed) model detections with a box."""
    return pc.and_(pc.and_(pc.equal(ann.field("source_kind"), "model"), pc.equal(ann.field("review_status"), "unreviewed")),
                   pc.is_valid(ann.field("bbox")))


def find_repeats(
    ds: Dataset,
    per: str = "camera",
    iou: float = 0.85,
    min_frames: int = 10,
    where: str | None = None,
    view: bool = True,
    name: str | None = None,
    examples: int = 5,
) -> RepeatGroups:
    """Groups of open model detections repeated at IoU >= `iou` in >= `min_frames` frames of one `per` value.

    `where` narrows the frames (SQL). With `view`, the affected frames are stored as the draft view `name`
    (default `<dataset>-repeats`) for review; nothing else is written.
    """
    check_params(per, iou, min_frames)
    version = ds.version
    dets, unkeyed = open_detections(ds, per, where)
    grouped = group_detections(dets, iou, min_frames)
    groups, detections = summarise(grouped, examples)
    result = RepeatGroups(ds.name, version, per, float(iou), int(min_frames), groups, detections, unkeyed=unkeyed)
    if unkeyed:
        log.info("%s: %d open model detection(s) have no %s and were not grouped", ds.name, unkeyed, per)
    if view and groups.height:
        result.view = frames_view(ds, result, name)
    return result


def group_detections(dets: pl.DataFrame, iou: float, min_frames: int) -> pl.DataFrame:
    """`dets` with a `_component` per detection, only those in components seen in >= `min_frames` frames."""
    if dets.height == 0:
        return dets.with_columns(_component=pl.lit(0, pl.Int64)).clear()
    key = dets["key"].cast(pl.Categorical).to_physical().to_numpy().astype(np.int64)
    box = dets.select("x", "y", "w", "h").to_numpy().astype(np.float64)
    comp = overlap_components(key, box, float(iou))
    out = dets.with_columns(_component=pl.Series(comp, dtype=pl.Int64))
    frames = out.group_by("_component").agg(pl.col("frame_id").n_unique().alias("_frames"))
    big = frames.filter(pl.col("_frames") >= min_frames)
    return out.join(big, on="_component", how="inner")


def summarise(grouped: pl.DataFrame, examples: int = 5) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(groups, detections) tables of grouped detections; groups ranked by frames, named `<key>#<rank in key>`."""
    if grouped.height == 0:
        return pl.DataFrame(schema=_GROUP_COLUMNS), pl.DataFrame(schema=_DETECTION_COLUMNS)
    per_group = grouped.group_by("_component").agg(
        pl.col("key").first(),
        pl.col("label").mode().sort().first().alias("label"),
        pl.col("frame_id").n_unique().alias("frames"),
        pl.len().cast(pl.Int64).alias("detections"),
        pl.concat_list(pl.col(c).median() for c in ("x", "y", "w", "h")).alias("bbox"),
        pl.col("confidence").cast(pl.Float64).mean().alias("confidence"),
        pl.col("captured_at").min().alias("first_seen"),
        pl.col("captured_at").max().alias("last_seen"),
        pl.col("frame_id").unique().sort().head(examples).alias("examples"),
        pl.col("x").min().alias("_x"), pl.col("y").min().alias("_y"),
    )
    ranked = per_group.sort(["frames", "detections", "key", "_x", "_y"], descending=[True, True, False, False, False])
    ranked = ranked.with_columns(
        (pl.col("key") + "#" + (pl.int_range(pl.len()).over("key") + 1).cast(pl.String)).alias("group")
    )
    groups = ranked.select(list(_GROUP_COLUMNS)).cast(_GROUP_COLUMNS)
    detections = (
        grouped.join(ranked.select("_component", "group"), on="_component")
        .select(list(_DETECTION_COLUMNS)).cast(_DETECTION_COLUMNS)
        .join(groups.select("group").with_row_index("_rank"), on="group")
        .sort(["_rank", "frame_id", "ann_id"]).drop("_rank")
    )
    return groups, detections


def frames_view(ds: Dataset, result: RepeatGroups, name: str | None = None) -> Any:
    """The draft view `name` (default `<dataset>-repeats`) of exactly the frames the groups touch."""
    from ..workflows.review import draft_view, view_name

    name = view_name(ds, name, "repeats")
    ids = ", ".join(sql_literal(f) for f in result.detections["frame_id"].unique().sort().to_list())
    message = (f"repeat detections: {result.groups.height} group(s) at iou >= {result.iou:g} in >= "
               f"{result.min_frames} frames per {result.per}")
    return draft_view(ds, name, f"frame_id IN ({ids})", message)


def _note(groups: pl.DataFrame) -> pl.DataFrame:
    """group -> the note each rejected detection carries (names its group, its size and box)."""
    return groups.select(
        "group",
        pl.format("repeat detection group {}: {} frames, box [{}] ({} detections)", "group", "frames",
                  pl.col("bbox").list.eval(pl.element().round(3).cast(pl.String)).list.join(", "),
                  "detections").alias("note"),
    )


def reject_repeats(
    ds: Dataset, groups: RepeatGroups, author: str, ids: Sequence[str] | None = None, message: str = ""
) -> RepeatRejection:
    """Reject every detection of `groups` (or of groups `ids`) as one commit reviewed by the rule.

    Each change carries the frame revision find_repeats read, so a frame changed since is a ConflictError
    and nothing is written. `author` (the person who chose the groups) is named in the commit message.
    """
    if not isinstance(author, str) or not author.strip():
        raise WorkflowError("author is empty; pass the name of the person who chose the groups (--author)")
    if groups.dataset != ds.name:
        raise WorkflowError(f"these repeat groups were found in dataset {groups.dataset!r}, not {ds.name!r}")
    chosen = groups.select(ids) if ids is not None else groups
    if chosen.groups.height == 0:
        raise WorkflowError("no repeat group to reject; find_repeats found none (or ids= chose none)")
    reviewer = chosen.rule
    changes = chosen.detections.join(_note(chosen.groups), on="group").select(
        op=pl.lit("review"), frame_id="frame_id", ann_id="ann_id", status=pl.lit("reject"), note="note",
        revision="revision",
    )
    names = chosen.groups["group"].to_list()
    text = message or (f"reject {changes.height} repeat detection(s) in {len(names)} group(s): "
                       f"{', '.join(names[:20])}{' …' if len(names) > 20 else ''}")
    record = _rows(ds, chosen, author.strip())  # built before the commit: a bad row fails before any write
    commit = ds.commit(changes.to_arrow(), author=reviewer, message=f"{text} (chosen by {author.strip()})")
    record = record.set_column(record.schema.get_field_index("commit_id"), "commit_id",
                               pa.repeat(pa.scalar(commit.commit_id), record.num_rows))
    storage.writes.append(ds.store.catalog(GROUPS, GROUPS_SCHEMA), record)
    log.info("%s: %s", ds.name, text)
    return RepeatRejection(commit, names, changes.height, reviewer)


def _rows(ds: Dataset, chosen: RepeatGroups, author: str) -> pa.Table:
    """The `_repeat_groups` rows recording `chosen` as rejected (commit_id filled in after the commit)."""
    dets = chosen.detections.group_by("group", maintain_order=True).agg(
        pl.struct("frame_id", "ann_id").alias("members"))
    rows = chosen.groups.join(dets, on="group").select(
        pl.lit(ds.name).alias("dataset"), "group", pl.lit(chosen.per).alias("per"), "key", "label", "bbox",
        pl.lit(chosen.iou).alias("iou"), pl.lit(chosen.min_frames, pl.Int64).alias("min_frames"), "frames",
        pl.col("members").alias("detections"), pl.lit("rejected").alias("status"),
        pl.lit("").alias("commit_id"), pl.lit(author).alias("author"),
        pl.lit(dt.datetime.now(dt.UTC)).alias("created_at"),
    )
    return pa.Table.from_pylist(rows.to_dicts(), schema=GROUPS_SCHEMA)


def stored_groups(ds: Dataset, active: bool = True) -> pl.DataFrame:
    """The `_repeat_groups` rows of `ds`: with `active`, the latest row of each group if it is still rejected."""
    handle = ds.store.existing(GROUPS)
    if handle is None:
        return pl.from_arrow(GROUPS_SCHEMA.empty_table())
    rows = pl.from_arrow(storage.scan.read(handle, filter=eq("dataset", ds.name)))
    if active:
        rows = rows.with_row_index("_order").sort("_order").group_by("group", maintain_order=True).last()
        rows = rows.filter(pl.col("status") == "rejected").drop("_order")
    return rows


def undo_repeats(ds: Dataset, commit_id: str, author: str, message: str = "") -> CommitResult | None:
    """Reopen the detections rejection commit `commit_id` rejected and that are still rejected by the rule,
    as one commit by `author`; the groups stop being checked. None when nothing is left to reopen."""
    rows = stored_groups(ds, active=False).filter(
        (pl.col("commit_id") == commit_id) & (pl.col("status") == "rejected"))
    if rows.height == 0:
        raise WorkflowError(f"no repeat rejection commit {commit_id!r} in dataset {ds.name!r}; see ds.commits()")
    anns = rows.select("group", "detections").explode("detections").unnest("detections")
    current = flatten(ds.to_arrow(columns=["frame_id", "revision", "annotations"]), ("frame_id", "revision"))
    still = current.join(anns, on=["frame_id", "ann_id"]).filter(
        (pl.col("review_status") == "rejected") & pl.col("reviewed_by").str.starts_with(RULE))
    result = None
    if still.height:
        changes = still.select(op=pl.lit("review"), frame_id="frame_id", ann_id="ann_id", status=pl.lit("reopen"),
                               note=pl.format("undo repeat rejection {}", pl.lit(commit_id[:12])),
                               revision="revision")
        result = ds.commit(changes.to_arrow(), author=author,
                           message=message or f"undo repeat rejection {commit_id[:12]} ({still.height} detection(s))")
    _record_undone(ds, rows, result.commit_id if result else commit_id, author)
    return result


def _record_undone(ds: Dataset, rows: pl.DataFrame, commit_id: str, author: str) -> None:
    out = rows.with_columns(status=pl.lit("undone"), commit_id=pl.lit(commit_id), author=pl.lit(author),
                            created_at=pl.lit(dt.datetime.now(dt.UTC)))
    table = pa.Table.from_pylist(out.select(GROUPS_SCHEMA.names).to_dicts(), schema=GROUPS_SCHEMA)
    storage.writes.append(ds.store.catalog(GROUPS, GROUPS_SCHEMA), table)


def check_repeats(ds: Dataset, frames: Any = None, iou: float | None = None) -> RepeatGroups:
    """Open model detections of `frames` (frame ids, a Query/View/Dataset, or None: every frame) that fall on a
    stored rejected group: same `per` value and IoU >= the group's iou (or `iou`) with its box.

    The result names the stored groups, so `reject_repeats(ds, ds.check_repeats(new), author=...)` rejects them.
    """
    stored = stored_groups(ds)
    version = ds.version
    frame_ids = _frame_ids(frames)
    if stored.height == 0:
        return RepeatGroups(ds.name, version, "camera", iou or 0.85, 2, pl.DataFrame(schema=_GROUP_COLUMNS),
                            pl.DataFrame(schema=_DETECTION_COLUMNS))
    found = []
    for per in stored["per"].unique().sort().to_list():
        groups = stored.filter(pl.col("per") == per)
        dets, _ = open_detections(ds, per, frame_ids=frame_ids)
        pairs = dets.join(groups.select("group", "key", pl.col("bbox").alias("_gbox"), pl.col("iou").alias("_t")),
                          on="key")
        if pairs.height == 0:
            continue
        a = pairs.select("x", "y", "w", "h").to_numpy().astype(np.float64)
        b = np.asarray(pairs["_gbox"].to_list(), dtype=np.float32).astype(np.float64)
        threshold = pairs["_t"].to_numpy() if iou is None else np.full(pairs.height, float(iou))
        found.append(pairs.filter(pl.Series(iou_pairs(a, b) >= threshold)))
    per = stored["per"][0]
    t = float(iou if iou is not None else stored["iou"].min())
    if not found or sum(f.height for f in found) == 0:
        return RepeatGroups(ds.name, version, per, t, int(stored["min_frames"].min()),
                            pl.DataFrame(schema=_GROUP_COLUMNS), pl.DataFrame(schema=_DETECTION_COLUMNS))
    hits = pl.concat(found, how="diagonal_relaxed").unique(["frame_id", "ann_id"], keep="first", maintain_order=True)
    detections = hits.select(list(_DETECTION_COLUMNS)).cast(_DETECTION_COLUMNS).sort(["group", "frame_id", "ann_id"])
    counts = detections.group_by("group").agg(pl.col("frame_id").n_unique().alias("_n"), pl.len().alias("_d"))
    groups = (stored.join(counts, on="group")
              .with_columns(pl.col("_n").alias("frames"), pl.col("_d").cast(pl.Int64).alias("detections"),
                            pl.col("bbox").cast(pl.List(pl.Float64)), pl.lit(None, pl.Float64).alias("confidence"),
                            pl.lit(None, pl.Datetime("us", "UTC")).alias("first_seen"),
                            pl.lit(None, pl.Datetime("us", "UTC")).alias("last_seen"),
                            pl.lit([], pl.List(pl.String)).alias("examples"))
              .select(list(_GROUP_COLUMNS)).cast(_GROUP_COLUMNS).sort(["frames", "group"], descending=[True, False]))
    return RepeatGroups(ds.name, version, per, t, int(stored["min_frames"].min()), groups, detections)


def _frame_ids(frames: Any) -> pa.Array | None:
    if frames is None:
        return None
    if isinstance(frames, str):
        return pa.array([frames], pa.string())
    if isinstance(frames, (pa.Array, pa.ChunkedArray)):
        return pa.array(frames.to_pylist(), pa.string())
    if isinstance(frames, pa.Table):
        return frames.column("frame_id").combine_chunks()
    if isinstance(frames, (list, tuple, set)):
        return pa.array([str(f) for f in frames], pa.string())
    return frames.to_arrow(columns=["frame_id"]).column("frame_id").combine_chunks()  # a FrameSource
