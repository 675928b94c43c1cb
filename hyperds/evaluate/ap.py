"""Average precision from matches, as pycocotools' `accumulate` and `summarize` compute it.

Per class, kept predictions are ranked by descending score (ties: image order, then rank in the image);
cumulative TP/FP give precision and recall; precision is made monotone from the right and read at the
101 recall thresholds (0 past the last recall reached). A class without truth boxes has no AP (-1 in the
precision array, left out of every mean); a class with truth but no predictions has AP 0.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from .matching import RECALL_THRESHOLDS, Boxes, Matches


@dataclasses.dataclass(frozen=True)
class Curves:
    """precision[t, r, k] at IoU threshold t, recall threshold r, class k (-1: class has no truth)."""

    precision: np.ndarray
    recall: np.ndarray  # [t, k]: the final recall (-1: no truth)
    tp: np.ndarray  # [t, k]: matched predictions
    predicted: np.ndarray  # [k]: kept predictions
    truth: np.ndarray  # [k]: truth boxes
    thresholds: np.ndarray

    def ap(self, t: int | None = None) -> np.ndarray:
        """AP per class at threshold index t, or averaged over all thresholds (NaN: no truth)."""
        p = self.precision if t is None else self.precision[t : t + 1]
        valid = p > -1
        counts = valid.sum(axis=(0, 1))
        sums = np.where(valid, p, 0.0).sum(axis=(0, 1))
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)

    def mean_ap(self, t: int | None = None) -> float:
        """COCO's summary: the mean of every precision entry > -1 (NaN when none)."""
        p = self.precision if t is None else self.precision[t : t + 1]
        valid = p[p > -1]
        return float(np.mean(valid)) if valid.size else float("nan")


def accumulate(pred: Boxes, truth: Boxes, m: Matches, n_classes: int) -> Curves:
    """Precision/recall curves per IoU threshold and class from `match`'s result."""
    n_t, n_r = len(m.thresholds), len(RECALL_THRESHOLDS)
    cls = pred.cls[m.kept]
    order = np.lexsort((m.rank, pred.image[m.kept], -pred.score[m.kept], cls))
    cls = cls[order]
    bounds = np.searchsorted(cls, np.arange(n_classes + 1))
    npig = np.bincount(truth.cls, minlength=n_classes)
    precision = np.full((n_t, n_r, n_classes), -1.0)
    recall = np.full((n_t, n_classes), -1.0)
    tp_count = np.zeros((n_t, n_classes), dtype=np.int64)
    eps = np.spacing(1)
    for t in range(n_t):
        hit = m.truth[t][order] >= 0
        for k in range(n_classes):
            a, b = bounds[k], bounds[k + 1]
            tp_count[t, k] = int(hit[a:b].sum())
            if npig[k] == 0:
                continue
            tps = np.cumsum(hit[a:b]).astype(float)
            fps = np.cumsum(~hit[a:b]).astype(float)
            rc = tps / npig[k]
            pr = tps / (fps + tps + eps)
            recall[t, k] = rc[-1] if len(rc) else 0.0
            pr = np.maximum.accumulate(pr[::-1])[::-1]
            idx = np.searchsorted(rc, RECALL_THRESHOLDS, side="left")
            q = np.zeros(n_r)
            inside = idx < len(pr)
            q[inside] = pr[idx[inside]]
            precision[t, :, k] = q
    predicted = np.diff(bounds)
    return Curves(precision, recall, tp_count, predicted, npig, m.thresholds)
