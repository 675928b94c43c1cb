"""Threshold sweep: precision and recall of the boxes at or above each confidence, and the review load.

Matching is COCO's at one IoU; greedy matching goes in score order, so keeping the boxes >= t keeps their
matches. The review share at t follows the review-queue rule (a frame goes to people if any of its
predictions is below t): frames of the whole source with such a prediction, over all its frames.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import polars as pl

GRID = np.round(np.linspace(0.0, 1.0, 101), 2)


@dataclasses.dataclass(frozen=True)
class Sweep:
    table: pl.DataFrame  # threshold, predictions, tp, precision, recall, review_frames, review_share
    target_precision: float
    threshold: float | None  # the lowest confidence whose boxes reach target_precision (None: none does)
    review_share: float | None  # share of the source's frames that go to review at that threshold


def sweep(score: np.ndarray, hit: np.ndarray, n_truth: int, frame_min: np.ndarray, n_frames: int,
          target_precision: float = 0.98, thresholds: np.ndarray | None = None) -> Sweep:
    """`score`/`hit`: kept boxes and whether each matched; `frame_min`: each predicted frame's lowest score.

    `thresholds` None: every distinct score (exact); else those values only (the JSON report's grid).
    """
    order = np.argsort(-score, kind="stable")
    s, tp = score[order], np.cumsum(hit[order])
    exact = thresholds is None
    cuts = np.unique(s)[::-1] if exact else np.asarray(thresholds, dtype=np.float64)
    # boxes with score >= t: positions before the first score < t in the descending order
    n = np.searchsorted(-s, -cuts, side="right")
    tps = np.where(n > 0, tp[np.maximum(n - 1, 0)], 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = np.where(n > 0, tps / np.maximum(n, 1), np.nan)
        recall = tps / n_truth if n_truth else np.full(len(cuts), np.nan)
    mins = np.sort(frame_min)
    review = np.searchsorted(mins, cuts, side="left")
    table = pl.DataFrame({
        "threshold": cuts, "predictions": n.astype(np.int64), "tp": tps.astype(np.int64),
        "precision": precision, "recall": recall, "review_frames": review.astype(np.int64),
        "review_share": review / n_frames if n_frames else np.full(len(cuts), np.nan),
    }).with_columns(pl.col("precision", "recall", "review_share").fill_nan(None))
    if not exact:
        return Sweep(table, target_precision, None, None)
    ok = np.flatnonzero(precision >= target_precision)
    if not len(ok):
        return Sweep(table, target_precision, None, None)
    best = ok[-1]  # cuts descend: the last one reaching the target is the lowest threshold
    return Sweep(table, target_precision, float(cuts[best]), float(review[best] / n_frames) if n_frames else None)
