"""Species presence, what camera-trap studies count: does the image (or sequence) hold species s?

A unit (frame, or sequence: a sequence holds a species if any of its frames does) is predicted to hold s
when a prediction of s on it has confidence >= the threshold (no confidence counts as sure). Per species:
TP = units predicted and truly holding s, FP = predicted only, FN = truly only. Blank vs non-blank
accuracy: the share of units where "no species predicted" agrees with "no species in the truth".
"""

from __future__ import annotations

import dataclasses

import numpy as np
import polars as pl

from .select import BLANK_LABELS


@dataclasses.dataclass(frozen=True)
class Presence:
    table: pl.DataFrame  # species, tp, fp, fn, precision, recall, f1
    units: int
    blank_accuracy: float | None


def species_pairs(df: pl.DataFrame, unit: np.ndarray, threshold: float | None) -> pl.DataFrame:
    """Distinct (unit, species) of annotations `df` (with `_frame`); blank labels and unit -1 left out."""
    if threshold is not None:
        df = df.filter(pl.col("confidence").is_null() | (pl.col("confidence") >= threshold))
    df = df.filter(pl.col("label").is_not_null() & ~pl.col("label").str.to_lowercase().is_in(list(BLANK_LABELS)))
    units = pl.Series("unit", unit[df["_frame"].to_numpy()], dtype=pl.Int64)
    return pl.DataFrame({"unit": units, "species": df["label"]}).filter(pl.col("unit") >= 0).unique()


def presence(pred: pl.DataFrame, truth: pl.DataFrame, units: int) -> Presence:
    """Per-species metrics from distinct (unit, species) pairs of both sides over `units` judged units."""
    pairs = pl.concat([
        pred.with_columns(p=pl.lit(1), t=pl.lit(0)), truth.with_columns(p=pl.lit(0), t=pl.lit(1))
    ]).group_by("unit", "species").agg(pl.col("p").max(), pl.col("t").max())
    table = (
        pairs.group_by("species")
        .agg(
            tp=((pl.col("p") == 1) & (pl.col("t") == 1)).sum(),
            fp=((pl.col("p") == 1) & (pl.col("t") == 0)).sum(),
            fn=((pl.col("p") == 0) & (pl.col("t") == 1)).sum(),
        )
        .sort("species")
        .with_columns(pl.col("tp", "fp", "fn").cast(pl.Int64))
    )
    tp, fp, fn = (pl.col(c).cast(pl.Float64) for c in ("tp", "fp", "fn"))
    table = table.with_columns(
        precision=pl.when(tp + fp > 0).then(tp / (tp + fp)),
        recall=pl.when(tp + fn > 0).then(tp / (tp + fn)),
        f1=pl.when(2 * tp + fp + fn > 0).then(2 * tp / (2 * tp + fp + fn)),
    )
    if units == 0:
        return Presence(table, 0, None)
    has_p = np.zeros(units, bool)
    has_t = np.zeros(units, bool)
    has_p[pred["unit"].to_numpy()] = True
    has_t[truth["unit"].to_numpy()] = True
    return Presence(table, units, float(np.mean(has_p == has_t)))


def sequence_units(frames: pl.DataFrame, judged: np.ndarray) -> tuple[np.ndarray, int]:
    """Per source frame, its sequence's unit number among sequences with a judged frame (-1: none).

    A frame without seq_id is a sequence of its own; seq_ids are per dataset.
    """
    key = pl.when(pl.col("seq_id").is_null()).then(
        pl.concat_str([pl.lit("\x1ff\x1f"), pl.col("dataset"), pl.lit("\x1f"), pl.col("frame_id")])
    ).otherwise(pl.concat_str([pl.lit("\x1fs\x1f"), pl.col("dataset"), pl.lit("\x1f"), pl.col("seq_id")]))
    keys = frames.select(key.alias("k"))["k"]
    judged_keys = keys.filter(pl.Series(judged)).unique(maintain_order=True)
    lookup = pl.DataFrame({"k": judged_keys, "u": np.arange(len(judged_keys), dtype=np.int64)})
    units = pl.DataFrame({"k": keys}).join(lookup, on="k", how="left", maintain_order="left")["u"]
    return units.fill_null(-1).to_numpy(), len(judged_keys)
