"""Confusion matrix over species from boxes: which truth class each confident prediction landed on.

Boxes are matched greedily by score regardless of class (COCO rules, one IoU threshold), so a box the
model called "animal" on a truth "deer" counts in row deer, column animal. A truth box nothing matched is
in column "(missed)"; a prediction that matched no truth box is in row "(spurious)".
"""

from __future__ import annotations

import numpy as np
import polars as pl

from .matching import Boxes, match

MISSED = "(missed)"
SPURIOUS = "(spurious)"


def confusion(pred: Boxes, truth: Boxes, classes: list[str], iou: float, threshold: float) -> pl.DataFrame:
    """Rows: truth class, then (spurious); columns: `truth`, each predicted class, then (missed)."""
    k = len(classes)
    above = np.flatnonzero(pred.score >= threshold)
    agnostic = Boxes(pred.image[above], np.zeros(len(above), np.int64), pred.box[above], pred.score[above])
    m = match(agnostic, Boxes(truth.image, np.zeros(len(truth), np.int64), truth.box), np.array([iou]), None)
    p_cls = pred.cls[above][m.kept]
    g = m.truth[0]
    cells = np.zeros((k + 1, k + 1), np.int64)
    hit = g >= 0
    np.add.at(cells, (truth.cls[g[hit]], p_cls[hit]), 1)
    np.add.at(cells, (np.full((~hit).sum(), k), p_cls[~hit]), 1)
    matched = np.zeros(len(truth), bool)
    matched[g[hit]] = True
    np.add.at(cells, (truth.cls[~matched], np.full((~matched).sum(), k)), 1)
    data = {"truth": [*classes, SPURIOUS]}
    data.update({c: cells[:, j] for j, c in enumerate([*classes, MISSED])})
    return pl.DataFrame(data)
