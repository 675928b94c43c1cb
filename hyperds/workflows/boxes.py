"""Vectorised box geometry for the field workflows: model detections flattened out of frame rows, IoU,
and grouping of overlapping boxes per camera (connected components of the IoU >= t graph).

Boxes are normalised [x, y, w, h] (float64 here, from the stored float32).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc

# Annotation fields the workflows read (not the whole struct: 1M detections stay cheap).
DETECTION_FIELDS = ("ann_id", "label", "bbox", "confidence", "count", "source_kind", "source", "review_status",
                    "reviewed_by", "level")


def flatten(rows: pa.Table, frame_columns: tuple[str, ...] = (), fields: tuple[str, ...] = DETECTION_FIELDS,
            keep: Callable[[pa.StructArray], pa.Array] | None = None) -> pl.DataFrame:
    """One row per annotation of `rows`: `_f` (row index), `frame_columns`, `fields` (bbox as x, y, w, h).

    `keep(annotations) -> boolean mask` drops annotations in Arrow, before anything is copied into polars."""
    ann = rows.column("annotations").combine_chunks()
    flat = pc.list_flatten(ann)
    parents = pc.list_parent_indices(ann).cast(pa.int64())
    if keep is not None:
        mask = pc.fill_null(keep(flat), False)
        flat, parents = flat.filter(mask), parents.filter(mask)
    cols: dict[str, pa.Array] = {"_f": parents}
    for name in frame_columns:
        cols[name] = rows.column(name).combine_chunks().take(parents)
    for name in fields:
        if name == "bbox":
            box = flat.field("bbox")
            for i, part in enumerate(("x", "y", "w", "h")):
                cols[part] = pc.list_element(box, i).cast(pa.float64())
        else:
            cols[name] = flat.field(name)
    return pl.from_arrow(pa.table(cols))


def iou_pairs(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of box rows a[i] and b[i] (n x 4, [x, y, w, h]); 0 where the union is empty."""
    return _iou(a[:, 0], a[:, 1], a[:, 2], a[:, 3], b[:, 0], b[:, 1], b[:, 2], b[:, 3])


def _iou(ax, ay, aw, ah, bx, by, bw, bh) -> np.ndarray:  # noqa: ANN001 - eight float arrays
    ix = np.minimum(ax + aw, bx + bw) - np.maximum(ax, bx)
    iy = np.minimum(ay + ah, by + bh) - np.maximum(ay, by)
    inter = np.clip(ix, 0, None) * np.clip(iy, 0, None)
    union = aw * ah + bw * bh - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(union > 0, inter / union, 0.0)


def overlap_components(key: np.ndarray, box: np.ndarray, iou: float) -> np.ndarray:
    """Connected component of each box (a node index in it) in the graph linking boxes with the same `key` and
    IoU >= `iou` (0 < iou <= 1).

    IoU >= t needs an intersection of at least t * area of either box, so its width is >= t * w and its height
    >= t * h of each: x_right - x_left <= (1 - t) * w_left and |y_i - y_j| <= (1 - t) * max(h) = D. Boxes are
    cut into horizontal bands 2D high, twice (the second cut shifted by D, so every close pair shares a band in
    one of them), and in each band a sweep sorted by x compares a box only with the boxes to its right within
    its reach. Pairs already in one component are not compared again: a static box seen in 500 frames costs
    about 500 comparisons per step, not 500^2 / 2 edges.
    """
    n = len(key)
    label = np.arange(n)
    if n < 2:
        return label
    reach_d = (1.0 - iou) * float(box[:, 3].max()) * 1.001 + 1e-9
    shifts = (0.0, reach_d) if reach_d < 0.25 else (None,)
    for shift in shifts:
        band = (np.zeros(n, np.int64) if shift is None
                else np.floor((box[:, 1] + shift) / (2 * reach_d)).astype(np.int64))
        order = np.lexsort((box[:, 0], band, key))
        k, bd = key[order], band[order]
        x, y, w, h = (np.ascontiguousarray(box[order, c]) for c in range(4))
        # a hair more than the bound, so rounding never drops a pair
        reach = x + (1.0 - iou) * w + 1e-9
        active = np.arange(n - 1)
        step = 1
        while active.size:
            active = active[active + step < n]
            other = active + step
            near = (k[other] == k[active]) & (bd[other] == bd[active]) & (x[other] <= reach[active])
            active, other = active[near], other[near]
            apart = _roots(label, order[active]) != _roots(label, order[other])
            first, second = active[apart], other[apart]
            if first.size:
                hit = _iou(x[first], y[first], w[first], h[first], x[second], y[second], w[second], h[second]) >= iou
                if hit.any():
                    _merge(label, order[first[hit]], order[second[hit]])
            step += 1
    return _roots(label, np.arange(n))


def _roots(label: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """The root of each node `idx` in the union-find forest `label`; the nodes then point straight at it."""
    root = label[idx]
    while True:
        up = label[root]
        if np.array_equal(up, root):
            break
        root = up
    label[idx] = root
    return root


def _merge(label: np.ndarray, i: np.ndarray, j: np.ndarray) -> None:
    """Union, in place, the components of each pair (i, j): the larger root points at the smaller."""
    while True:
        ri, rj = _roots(label, i), _roots(label, j)
        differ = ri != rj
        if not differ.any():
            return
        np.minimum.at(label, np.maximum(ri[differ], rj[differ]), np.minimum(ri[differ], rj[differ]))
