"""Vectorised box geometry for the field workflows: model detections flattened out of frame rows, IoU,
and grouping of overlapping boxes per camera (connected components of the IoU >= t graph).

Boxes are normalised [x, y, w, h] (float64 here, from the stored float32).
"""

from __future__ import annotations

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc

# Annotation fields the workflows read (not the whole struct: 1M detections stay cheap).
DETECTION_FIELDS = ("ann_id", "label", "bbox", "confidence", "count", "source_kind", "source", "review_status",
                    "reviewed_by", "level")


def flatten(rows: pa.Table, frame_columns: tuple[str, ...] = ()) -> pl.DataFrame:
    """One row per annotation of `rows`: `_f` (row index), `frame_columns`, DETECTION_FIELDS (bbox as x, y, w, h)."""
    ann = rows.column("annotations").combine_chunks()
    flat = pc.list_flatten(ann)
    parents = pc.list_parent_indices(ann).cast(pa.int64())
    cols: dict[str, pa.Array] = {"_f": parents}
    for name in frame_columns:
        cols[name] = rows.column(name).combine_chunks().take(parents)
    for name in DETECTION_FIELDS:
        if name == "bbox":
            box = flat.field("bbox")
            for i, part in enumerate(("x", "y", "w", "h")):
                cols[part] = pc.list_element(box, i).cast(pa.float64())
        else:
            cols[name] = flat.field(name)
    return pl.from_arrow(pa.table(cols))


def iou_pairs(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of box rows a[i] and b[i] (n x 4, [x, y, w, h]); 0 where the union is empty."""
    ix = np.minimum(a[:, 0] + a[:, 2], b[:, 0] + b[:, 2]) - np.maximum(a[:, 0], b[:, 0])
    iy = np.minimum(a[:, 1] + a[:, 3], b[:, 1] + b[:, 3]) - np.maximum(a[:, 1], b[:, 1])
    inter = np.clip(ix, 0, None) * np.clip(iy, 0, None)
    union = a[:, 2] * a[:, 3] + b[:, 2] * b[:, 3] - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(union > 0, inter / union, 0.0)


def overlap_edges(key: np.ndarray, box: np.ndarray, iou: float) -> tuple[np.ndarray, np.ndarray]:
    """All pairs (i, j), i < j in input order, with the same `key` and IoU >= `iou` (0 < iou <= 1).

    A sweep over boxes sorted by (key, x): IoU >= t needs |x_i - x_j| <= (1 - t) * max(w) <= (1 - t) / t * w_left
    (the widths of such boxes differ by at most a factor t), so each box is compared only with the boxes to
    its right within that distance: the work follows the pairs that could overlap, not n^2 per camera.
    """
    n = len(key)
    if n < 2:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    order = np.lexsort((box[:, 0], key))
    k, b = key[order], box[order]
    reach = b[:, 0] + (1.0 - iou) / iou * b[:, 2]
    firsts, seconds = [], []
    active = np.arange(n - 1)
    step = 1
    while active.size:
        other = active + step
        inside = other < n
        active, other = active[inside], other[inside]
        near = (k[other] == k[active]) & (b[other, 0] <= reach[active])
        active, other = active[near], other[near]
        if active.size:
            hit = iou_pairs(b[active], b[other]) >= iou
            firsts.append(active[hit])
            seconds.append(other[hit])
        step += 1
    if not firsts:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    i, j = order[np.concatenate(firsts)], order[np.concatenate(seconds)]
    return np.minimum(i, j), np.maximum(i, j)


def components(n: int, i: np.ndarray, j: np.ndarray) -> np.ndarray:
    """Connected component of each of `n` nodes given edges (i, j): the smallest node index in it."""
    label = np.arange(n)
    if len(i) == 0:
        return label
    while True:
        low = np.minimum(label[i], label[j])
        new = label.copy()
        np.minimum.at(new, i, low)
        np.minimum.at(new, j, low)
        while True:  # pointer jumping: every node points at its root
            jumped = new[new]
            if np.array_equal(jumped, new):
                break
            new = jumped
        if np.array_equal(new, label):
            return label
        label = new
