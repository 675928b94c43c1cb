"""Sequence (burst) labels: frame labels rolled up to `seq_id`, and smoothing proposals from a confident majority.

A camera trap fires a burst; the animal is the same in all its frames, but a per-frame model is not. Camera-trap
practice (MegaDetector's sequence smoothing) takes the burst's majority. Here that is a *proposal*: nothing is
written until the user commits it, and then only as model-kind suggestions from `rule:sequence-smoothing`,
unreviewed, which people accept or reject like any detection. A frame a person labelled or reviewed is never
proposed, so no human decision is ever overridden.

Definitions (the tests' plain-Python reference follows them):
- annotations counted: not rejected, level `media` (Camtrap DP event-level copies are the burst's own label);
  labels in `empty_labels` mean "nothing here" and drop out of a burst's roll-up when it has any other label.
- a frame is *decided by a person* if it has an annotation made by a person (`source_kind='human'`) or one
  reviewed by a person (review status not `unreviewed`, reviewer not `auto:…`/`rule:…`).
- a frame's label: a person's label if decided (confidence 1), else its most confident model label (ties: the
  smaller label); none if it has only empty labels or none (an *empty* frame).
- the burst majority: the label most frames carry (ties: larger summed confidence, then the smaller label); it
  is *confident* if its best frame confidence >= `min_confidence` and its share of labelled frames > `min_share`.
- proposed: every frame of a burst with a confident majority that no person decided, holds no open suggestion
  already, and whose label differs from the majority (reason `disagrees`) or that is empty (reason `empty`).
"""

from __future__ import annotations

import dataclasses
import logging
from typing import TYPE_CHECKING, Any

import polars as pl

from ..errors import WorkflowError
from .boxes import flatten
from ..source import read_present

if TYPE_CHECKING:
    from ..dataset import Dataset
    from ..versioning.commits import CommitResult

log = logging.getLogger(__name__)

SOURCE = "rule:sequence-smoothing"
EMPTY_LABELS = ("blank", "empty")
_RULE_PREFIXES = ("auto:", "rule:")
_PROPOSAL_COLUMNS = {"frame_id": pl.String, "seq_id": pl.String, "revision": pl.Int64, "current": pl.String,
                     "proposed": pl.String, "reason": pl.String, "share": pl.Float64, "confidence": pl.Float32}


def _annotations(source: Any, empty_labels: tuple[str, ...]) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(frames: frame_id, seq_id, revision; live media-level annotations with `_empty` and `_person` flags)."""
    rows = read_present(source, ["frame_id", "seq_id", "revision", "annotations"])
    if "seq_id" not in rows.column_names:
        raise WorkflowError("the frames have no seq_id column: sequences need bursts (import them, or ingest "
                            "with burst detection)")
    frames = pl.from_arrow(rows.select(["frame_id", "seq_id", "revision"])).with_row_index("_f")
    frames = frames.with_columns(pl.col("_f").cast(pl.Int64))
    anns = flatten(rows).filter(pl.col("level").fill_null("media") == "media")
    by_rule = pl.any_horizontal([pl.col("reviewed_by").fill_null("").str.starts_with(p) for p in _RULE_PREFIXES])
    anns = anns.with_columns(
        _person=(pl.col("source_kind") == "human")
        | ((pl.col("review_status") != "unreviewed") & pl.col("reviewed_by").is_not_null() & ~by_rule),
        _empty=pl.col("label").is_in(list(empty_labels)) | pl.col("label").is_null(),
        _suggested=(pl.col("source") == SOURCE) & (pl.col("review_status") == "unreviewed"),
    )
    return frames, anns


def _check(empty_labels: Any) -> tuple[str, ...]:
    if isinstance(empty_labels, str):
        return (empty_labels,)
    return tuple(str(x) for x in empty_labels)


def sequence_labels(source: Any, empty_labels: tuple[str, ...] = EMPTY_LABELS) -> pl.DataFrame:
    """One row per (seq_id, label): frames (with the label), seq_frames, count (the most individuals in one
    frame: per source the sum of its annotation counts, one without a count counting 1, and the largest of those
    sums), confidence (the best model confidence; null if only people gave it), by_person (a person gave or
    confirmed it)."""
    empty_labels = _check(empty_labels)
    frames, anns = _annotations(source, empty_labels)
    live = anns.filter(pl.col("review_status") != "rejected").join(frames.select("_f", "seq_id"), on="_f")
    live = live.filter(pl.col("seq_id").is_not_null() & pl.col("label").is_not_null())
    seq_frames = frames.filter(pl.col("seq_id").is_not_null()).group_by("seq_id").agg(
        pl.len().cast(pl.Int64).alias("seq_frames"))
    # Each source counts the individuals in a frame on its own (a person's count, a detector's boxes): the
    # frame's count is the largest of those sums, not their total.
    per_source = live.group_by("seq_id", "label", "_f", "source").agg(
        pl.col("count").cast(pl.Int64).fill_null(1).sum().alias("_n"))
    per_frame = live.group_by("seq_id", "label", "_f").agg(
        pl.col("confidence").filter(pl.col("source_kind") == "model").max().alias("_c"),
        pl.col("_person").any().alias("_p"),
        pl.col("_empty").first().alias("_e"),
    ).join(per_source.group_by("seq_id", "label", "_f").agg(pl.col("_n").max()), on=["seq_id", "label", "_f"])
    out = per_frame.group_by("seq_id", "label").agg(
        pl.len().cast(pl.Int64).alias("frames"),
        pl.col("_n").max().alias("count"),
        pl.col("_c").max().alias("confidence"),
        pl.col("_p").any().alias("by_person"),
        pl.col("_e").first().alias("_empty"),
    )
    # Empty labels drop out of a burst that saw anything else.
    out = out.filter(~pl.col("_empty") | pl.col("_empty").all().over("seq_id")).drop("_empty")
    return out.join(seq_frames, on="seq_id").select(
        "seq_id", "label", "frames", "seq_frames", "count", "confidence", "by_person"
    ).sort(["seq_id", "frames", "label"], descending=[False, True, False])


@dataclasses.dataclass
class SmoothingProposals:
    """Proposed suggestions (nothing written yet): `table` one row per frame, `changes` in ds.commit's format."""

    dataset: Any
    version: int
    min_confidence: float
    min_share: float
    table: pl.DataFrame
    view: Any = None

    def __len__(self) -> int:
        return self.table.height

    @property
    def changes(self) -> pl.DataFrame:
        """The proposals as `add` changes (label, confidence, note naming the burst, frame revision seen)."""
        return self.table.select(
            op=pl.lit("add"), frame_id="frame_id", label="proposed", confidence="confidence",
            note=pl.format("sequence {}: {}% of its labelled frames say {} ({})", "seq_id",
                           (pl.col("share") * 100).round(0).cast(pl.Int64), "proposed", "reason"),
            revision="revision",
        )

    def commit(self, author: str, frame_ids: Any = None, message: str = "") -> CommitResult | None:
        """Write the proposals (or those of `frame_ids`) as unreviewed model suggestions from
        `rule:sequence-smoothing`, one commit; `author` (who chose to) is named in its message. People then
        accept or reject each suggestion with an ordinary review commit. None when there is nothing to write."""
        from ..versioning.commits import commit

        if not isinstance(author, str) or not author.strip():
            raise WorkflowError("author is empty; pass the name of the person committing the proposals")
        changes = self.changes
        if frame_ids is not None:
            changes = changes.filter(pl.col("frame_id").is_in([str(f) for f in frame_ids]))
        if changes.height == 0:
            return None
        text = message or (f"sequence smoothing: {changes.height} suggestion(s) at confidence >= "
                           f"{self.min_confidence:g}, share > {self.min_share:g}")
        return commit(self.dataset, changes.to_arrow(), author=SOURCE, message=f"{text} (committed by {author.strip()})",
                      source_kind="model")


def propose(source: Any, min_confidence: float = 0.8, min_share: float = 0.5,
            empty_labels: tuple[str, ...] = EMPTY_LABELS) -> pl.DataFrame:
    """The proposals table of `source`'s rows (see the module docstring)."""
    for name, value in (("min_confidence", min_confidence), ("min_share", min_share)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
            raise WorkflowError(f"{name} must be a number in [0, 1], not {value!r}")
    empty_labels = _check(empty_labels)
    frames, anns = _annotations(source, empty_labels)
    frames = frames.filter(pl.col("seq_id").is_not_null())
    live = anns.filter((pl.col("review_status") != "rejected") & ~pl.col("_empty") & ~pl.col("_suggested"))
    flags = anns.group_by("_f").agg(pl.col("_person").any().alias("_decided"),
                                    pl.col("_suggested").any().alias("_open"))
    voted = live.with_columns(
        _rank=pl.when(pl.col("_person")).then(0).otherwise(1),
        _conf=pl.when(pl.col("_person")).then(1.0).otherwise(pl.col("confidence").cast(pl.Float64).fill_null(0.0)),
    )
    decided = flags.filter(pl.col("_decided")).select("_f")
    # A decided frame votes with its people's label; other frames with their most confident model label.
    voted = voted.join(decided.with_columns(_d=pl.lit(True)), on="_f", how="left").filter(
        pl.col("_d").is_null() | pl.col("_person"))
    best = voted.sort(["_f", "_rank", "_conf", "label"], descending=[False, False, True, False]).group_by(
        "_f", maintain_order=True).first().select("_f", pl.col("label").alias("current"), "_conf")
    frames = frames.join(best, on="_f", how="left").join(flags, on="_f", how="left")
    votes = frames.filter(pl.col("current").is_not_null()).group_by("seq_id", "current").agg(
        pl.len().alias("_k"), pl.col("_conf").sum().alias("_sum"), pl.col("_conf").max().alias("_max"),
        pl.col("_conf").mean().alias("_mean"))
    totals = votes.group_by("seq_id").agg(pl.col("_k").sum().alias("_votes"))
    majority = votes.sort(["seq_id", "_k", "_sum", "current"], descending=[False, True, True, False]).group_by(
        "seq_id", maintain_order=True).first().join(totals, on="seq_id")
    majority = majority.with_columns(share=pl.col("_k") / pl.col("_votes")).filter(
        (pl.col("_max") >= min_confidence) & (pl.col("share") > min_share))
    proposals = frames.join(
        majority.select("seq_id", pl.col("current").alias("proposed"), "share", pl.col("_mean").alias("confidence")),
        on="seq_id",
    ).filter(
        ~pl.col("_decided").fill_null(False) & ~pl.col("_open").fill_null(False)
        & (pl.col("current").is_null() | (pl.col("current") != pl.col("proposed")))
    ).with_columns(reason=pl.when(pl.col("current").is_null()).then(pl.lit("empty")).otherwise(pl.lit("disagrees")))
    return proposals.select(list(_PROPOSAL_COLUMNS)).cast(_PROPOSAL_COLUMNS).sort(["seq_id", "frame_id"])


def smooth_sequences(
    ds: Dataset,
    min_confidence: float = 0.8,
    min_share: float = 0.5,
    where: str | None = None,
    empty_labels: tuple[str, ...] = EMPTY_LABELS,
    view: bool = False,
    name: str | None = None,
) -> SmoothingProposals:
    """Proposals for frames that disagree with (or are empty inside) a burst with a confident majority.

    Nothing is written; `proposals.commit(author)` writes them as suggestions for review. With `view`, the
    proposed frames are also stored as the draft view `name` (default `<dataset>-smoothing`).
    """
    version = ds.version
    table = propose(ds.query(where) if where else ds, min_confidence, min_share, empty_labels)
    out = SmoothingProposals(ds, version, float(min_confidence), float(min_share), table)
    if view and table.height:
        from ..frames.rows import sql_literal
        from ..workflows.review import draft_view, view_name

        chosen = view_name(ds, name, "smoothing")
        ids = ", ".join(sql_literal(f) for f in table["frame_id"].to_list())
        out.view = draft_view(ds, chosen, f"frame_id IN ({ids})",
                              f"sequence smoothing proposals at confidence >= {min_confidence:g}")
    log.info("%s: %d sequence-smoothing proposal(s)", ds.name, table.height)
    return out
