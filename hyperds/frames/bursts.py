"""Bursts: group a camera's frames into sequences (seq_id, frame_num) by gaps in capture time.

Camera traps fire several frames per trigger; a gap longer than the threshold starts a new burst.
"""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl

DEFAULT_GAP_S = 60.0


def assign_bursts(df: pl.DataFrame, by: Sequence[str] = ("site", "camera"), gap_s: float = DEFAULT_GAP_S) -> pl.DataFrame:
    """Fill `seq_id`/`frame_num` where `seq_id` is null, from `captured_at` per group of `by` columns.

    Frames of one group less than `gap_s` seconds after the previous one join its burst; ties in
    time are ordered by `uri`. seq_id is `<group values>/<first frame's UTC time>`, frame_num counts
    from 1. Frames without a capture time or a group keep seq_id null. Row order is kept.
    """
    if gap_s < 0:
        raise ValueError(f"burst gap must be >= 0 seconds, got {gap_s}")
    by = list(by)
    df = df.with_columns(
        pl.col("seq_id").cast(pl.String) if "seq_id" in df.columns else pl.lit(None, pl.String).alias("seq_id"),
        pl.col("frame_num").cast(pl.Int32) if "frame_num" in df.columns else pl.lit(None, pl.Int32).alias("frame_num"),
    ).with_row_index("_row")
    key = pl.concat_str([pl.col(c) for c in by], separator="/", ignore_nulls=True)
    todo = df.filter(
        pl.col("seq_id").is_null() & pl.col("captured_at").is_not_null() & pl.any_horizontal(pl.col(by).is_not_null())
    ).with_columns(key.alias("_key"))
    if todo.height == 0:
        return df.drop("_row")
    gap = pl.duration(microseconds=int(round(gap_s * 1e6)))
    todo = todo.sort(["_key", "captured_at", "uri"]).with_columns(
        (pl.col("_key").ne_missing(pl.col("_key").shift(1)) | (pl.col("captured_at").diff() > gap))
        .fill_null(True)
        .cum_sum()
        .alias("_burst")
    )
    start = pl.col("captured_at").first().over("_burst").dt.convert_time_zone("UTC").dt.strftime("%Y%m%dT%H%M%S")
    bursts = todo.select(
        "_row",
        pl.concat_str([pl.col("_key"), start], separator="/").alias("_seq"),
        (pl.int_range(pl.len()).over("_burst") + 1).cast(pl.Int32).alias("_num"),
    )
    return (
        df.join(bursts, on="_row", how="left")
        .sort("_row")
        .with_columns(
            pl.when(pl.col("_seq").is_not_null()).then(pl.col("_num")).otherwise(pl.col("frame_num")).alias("frame_num"),
            pl.coalesce("seq_id", "_seq").alias("seq_id"),
        )
        .drop("_row", "_seq", "_num")
    )
