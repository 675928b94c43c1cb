"""Detection metrics per class: precision and recall at one IoU and confidence, AP@0.5 and COCO mAP@[.5:.95].

Inputs are the boxed predictions and truth of the judged frames as arrays; `match` and `accumulate` do
the COCO work, this module turns their result into the per-class table.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import polars as pl

from .ap import Curves, accumulate
from .matching import IOU_THRESHOLDS, Boxes, Matches, match


@dataclasses.dataclass(frozen=True)
class Detection:
    """Per-class table, the COCO curves, and the matches at `iou` (for the threshold sweep)."""

    table: pl.DataFrame
    curves: Curves
    matches: Matches
    iou_index: int  # row of `matches.truth` at the requested IoU
    map50: float
    map: float


def thresholds_with(iou: float) -> tuple[np.ndarray, int]:
    """COCO's IoU thresholds plus `iou` when it is not one of them, and the index of `iou`."""
    hit = np.flatnonzero(np.isclose(IOU_THRESHOLDS, iou, rtol=0, atol=1e-12))
    if len(hit):
        return IOU_THRESHOLDS, int(hit[0])
    return np.r_[IOU_THRESHOLDS, iou], len(IOU_THRESHOLDS)


def detect(pred: Boxes, truth: Boxes, classes: list[str], iou: float = 0.5, threshold: float = 0.5,
           max_dets: int | None = 100) -> Detection:
    """Match, accumulate and tabulate (see the module docstring)."""
    thresholds, ti = thresholds_with(iou)
    m = match(pred, truth, thresholds, max_dets)
    coco = Matches(m.kept, m.rank, m.truth[: len(IOU_THRESHOLDS)], IOU_THRESHOLDS)
    curves = accumulate(pred, truth, coco, len(classes))
    k = len(classes)
    cls = pred.cls[m.kept]
    above = pred.score[m.kept] >= threshold
    hit = m.truth[ti] >= 0
    tp = np.bincount(cls, weights=(hit & above), minlength=k).astype(np.int64)
    called = np.bincount(cls, weights=above, minlength=k).astype(np.int64)
    n_truth = curves.truth
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = np.where(called > 0, tp / np.maximum(called, 1), np.nan)
        recall = np.where(n_truth > 0, tp / np.maximum(n_truth, 1), np.nan)
    table = pl.DataFrame(
        {
            "class": classes,
            "truth": n_truth.astype(np.int64),
            "predicted": np.bincount(pred.cls, minlength=k).astype(np.int64),
            "tp": tp,
            "fp": called - tp,
            "fn": n_truth - tp,
            "precision": precision,
            "recall": recall,
            "ap50": curves.ap(0),
            "ap": curves.ap(),
        }
    ).with_columns(pl.col("precision", "recall", "ap50", "ap").fill_nan(None))
    return Detection(table, curves, m, ti, curves.mean_ap(0), curves.mean_ap())
