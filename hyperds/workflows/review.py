"""Human-in-the-loop review: the queue of uncertain model detections, and auto-accepting the rest.

A frame is decided per frame: if any of its open (unreviewed) model detections is below the
threshold (or has no confidence), the whole frame goes to people; otherwise a rule accepts them all.
So the queue and the auto-accepted frames never overlap, and together they are every frame with
an open model detection.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import TYPE_CHECKING, Any

import polars as pl

from ..errors import SelectionError, ViewError
from ..query import ast as a
from ..views.catalog import check_view_name

if TYPE_CHECKING:
    from ..dataset import Dataset

log = logging.getLogger(__name__)

DEFAULT_THRESHOLD = 0.98
# Reviews recorded by a rule (auto_accept) carry this prefix in `reviewed_by`; they are not human reviews.
AUTO_REVIEWER_PREFIX = "auto:"


@dataclasses.dataclass(frozen=True)
class AcceptResult:
    """What auto_accept() did: frames and detections accepted, and the commit (None: nothing to accept)."""

    frames: int
    annotations: int
    version: int
    commit: Any | None
    reviewer: str


def reviewer(threshold: float) -> str:
    """The `reviewed_by` of rule-made reviews: says a rule, not a person, decided (`auto:threshold=0.98`)."""
    return f"{AUTO_REVIEWER_PREFIX}threshold={_num(threshold)}"


def _num(threshold: float) -> str:
    """The threshold as exact, short SQL/text (0.98 -> '0.98')."""
    return repr(float(threshold))


def _open(model: str | None) -> str:
    cond = "source_kind = 'model' AND review_status = 'unreviewed'"
    return cond + (" AND " + a.to_sql(a.Compare("=", a.Column("source"), a.Literal(model, a.STRING))) if model is not None else "")


def _uncertain(threshold: float, model: str | None) -> str:
    return f"{_open(model)} AND (confidence IS NULL OR confidence < {_num(threshold)})"


def queue_query(threshold: float = DEFAULT_THRESHOLD, model: str | None = None, where: str | None = None) -> str:
    """SQL of the review queue: frames with an open model detection below `threshold` (and `where`)."""
    _check_threshold(threshold)
    sql = f"any_annotation({_uncertain(threshold, model)})"
    from ..query.combine import and_where

    return and_where(sql, where)


def accept_query(threshold: float = DEFAULT_THRESHOLD, model: str | None = None) -> str:
    """SQL of the frames auto_accept decides: open model detections, none below `threshold`."""
    _check_threshold(threshold)
    return f"any_annotation({_open(model)}) AND NOT any_annotation({_uncertain(threshold, model)})"


def review_queue(
    ds: Dataset,
    threshold: float = DEFAULT_THRESHOLD,
    model: str | None = None,
    where: str | None = None,
    name: str | None = None,
) -> Any:
    """A draft view of the frames people should review (see queue_query); validated before it is stored."""
    name = view_name(ds, name, "review-queue")
    sql = queue_query(threshold, model, where)
    return draft_view(ds, name, sql, f"review queue: model detections below {_num(threshold)}")


def auto_accept(ds: Dataset, threshold: float = DEFAULT_THRESHOLD, model: str | None = None) -> AcceptResult:
    """Accept every open model detection of the frames with none below `threshold`, as one commit.

    `reviewed_by` is `auto:threshold=<t>`. With nothing left to accept (e.g. a rerun) it commits
    nothing and returns frames=0, commit=None at the unchanged version.
    """
    from ..versioning.changes import flatten_annotations

    ds.require_writable()
    base = ds.version
    rows = ds.query(accept_query(threshold, model)).to_arrow(["frame_id", "revision", "annotations"])
    who = reviewer(threshold)
    if rows.num_rows == 0:
        log.info("%s: auto-accept at %g: nothing to accept", ds.name, threshold)
        return AcceptResult(0, 0, base, None, who)
    flat = flatten_annotations(rows)
    # The annotations carry their own `revision`; the commit needs the frame's, so it is renamed before joining.
    frames = pl.from_arrow(rows.select(["frame_id", "revision"])).rename({"revision": "_frame_revision"})
    frames = frames.with_row_index("_f")
    opened = (pl.col("source_kind") == "model") & (pl.col("review_status") == "unreviewed")
    if model is not None:
        opened &= pl.col("source") == model
    changes = (
        flat.filter(opened)
        .join(frames.with_columns(pl.col("_f").cast(flat.schema["_f"])), on="_f")
        .sort(["frame_id", "_pos"])
        .select(
            op=pl.lit("review"),
            frame_id="frame_id",
            ann_id="ann_id",
            status=pl.lit("accept"),
            note=pl.lit(f"model confidence >= {_num(threshold)}"),
            revision="_frame_revision",
        )
    )
    message = f"auto-accept {changes.height} model detection(s) on {rows.num_rows} frame(s) at confidence >= {_num(threshold)}"
    commit = ds.commit(changes.to_arrow(), author=who, message=message)
    log.info("%s: %s", ds.name, message)
    return AcceptResult(rows.num_rows, changes.height, ds.version, commit, who)


def view_name(ds: Dataset, name: str | None, default: str) -> str:
    """`name`, else `<dataset>-<default>`; checked before anything is computed (a dataset name may not make one)."""
    chosen = name or f"{ds.name}-{default}"
    try:
        check_view_name(chosen)
    except ViewError as exc:
        if name:
            raise
        raise ViewError(f"{exc}. {chosen!r} is the default name from dataset {ds.name!r}; pass name= (--name)") from None
    return chosen


def draft_view(ds: Dataset, name: str, sql: str, message: str) -> Any:
    """Create (or redefine) the draft view `name` over `ds` with query `sql`.

    It keeps frames without a class (`empty="keep"`): these views are work lists for people, and a frame
    to review or label may have no label that is not rejected (e.g. a selected frame without detections).
    """
    return ds.store.create_view(name, sql, datasets=[ds.name], message=message, empty="keep")


def _check_threshold(threshold: float) -> None:
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not (0 <= threshold <= 1):
        raise SelectionError(f"threshold must be a confidence in [0, 1], not {threshold!r}")

