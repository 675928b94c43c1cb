"""Summaries of a dataset: frames, annotations by source kind and by label."""

from __future__ import annotations

import polars as pl

from .table import FrameTable

__all__ = ["explode_annotations", "summarize"]


def explode_annotations(frames: pl.LazyFrame | pl.DataFrame) -> pl.LazyFrame | pl.DataFrame:
    """One row per annotation of `frames` (eager or lazy): frame_id plus every annotation field."""
    return frames.select("frame_id", "annotations").explode("annotations").drop_nulls("annotations").unnest(
        "annotations"
    )


def annotations_frame(table: FrameTable) -> pl.DataFrame:
    """One row per annotation of the table: frame_id plus every annotation field."""
    return explode_annotations(table.to_polars(columns=["frame_id", "annotations"]))


def summarize(table: FrameTable) -> dict[str, pl.DataFrame]:
    """Titled tables: overview, annotations by source_kind, by label (top 20; rejected ones are no label)."""
    anns = annotations_frame(table)
    overview = pl.DataFrame(
        {
            "dataset": [table.name],
            "frames": [len(table)],
            "annotations": [anns.height],
            "version": [table.version],
        }
    )
    by_kind = anns.group_by("source_kind").agg(pl.len().alias("annotations")).sort("source_kind")
    # a rejected annotation is not a label of its frame (hyperds.query.rules): counted in the overview only
    by_label = anns.filter(pl.col("review_status") != "rejected").group_by("label").agg(pl.len().alias("annotations")).sort(["annotations", "label"], descending=[True, False]).head(20)
    return {"overview": overview, "annotations by source_kind": by_kind, "annotations by label": by_label}
