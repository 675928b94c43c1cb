"""COCO-style greedy matching of predicted to truth boxes, vectorised over every image and class at once.

The rules are pycocotools' `evaluateImg` (area range "all", no crowd boxes): per (image, class) the
predictions are taken in descending score (ties: input order), at most `max_dets` of them; each takes the
unmatched truth box of highest IoU >= the threshold (ties: the later truth box). Greedy matching is
sequential only within one (image, class), so it runs in rounds: round k handles the k-th prediction of
every group at once, with numpy over the candidate pairs; no Python object per box.
"""

from __future__ import annotations

import dataclasses

import numpy as np
from tqdm import tqdm

# COCO's thresholds, built exactly as pycocotools builds them (the values must match bit for bit).
IOU_THRESHOLDS = np.linspace(0.5, 0.95, int(np.round((0.95 - 0.5) / 0.05)) + 1, endpoint=True)
RECALL_THRESHOLDS = np.linspace(0.0, 1.00, int(np.round((1.00 - 0.0) / 0.01)) + 1, endpoint=True)


@dataclasses.dataclass(frozen=True)
class Boxes:
    """Boxes of one side: image index, class index, [x, y, w, h] (any unit, both sides alike), score."""

    image: np.ndarray  # int64
    cls: np.ndarray  # int64
    box: np.ndarray  # float64 (n, 4)
    score: np.ndarray | None = None  # float64; predictions only

    def __post_init__(self) -> None:
        n = len(self.image)
        if len(self.cls) != n or self.box.shape != (n, 4) or (self.score is not None and len(self.score) != n):
            raise ValueError("Boxes: image, cls, box (n x 4) and score must have one entry per box")

    def __len__(self) -> int:
        return len(self.image)


@dataclasses.dataclass(frozen=True)
class Matches:
    """Result of `match`: the kept predictions and, per IoU threshold, the truth box each one matched."""

    kept: np.ndarray  # indices into the predictions: at most max_dets per (image, class)
    rank: np.ndarray  # position of each kept prediction in its (image, class), by descending score
    truth: np.ndarray  # int64 (thresholds, len(kept)): index of the matched truth box, -1 when none
    thresholds: np.ndarray


def iou_xywh(d: np.ndarray, g: np.ndarray) -> np.ndarray:
    """Row-wise IoU of [x, y, w, h] boxes, in the operation order of pycocotools' bbIou (same floats)."""
    ow = np.minimum(d[:, 0] + d[:, 2], g[:, 0] + g[:, 2]) - np.maximum(d[:, 0], g[:, 0])
    oh = np.minimum(d[:, 1] + d[:, 3], g[:, 1] + g[:, 3]) - np.maximum(d[:, 1], g[:, 1])
    hit = (ow > 0) & (oh > 0)
    inter = np.where(hit, ow * oh, 0.0)
    union = d[:, 2] * d[:, 3] + g[:, 2] * g[:, 3] - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(hit, inter / np.where(hit, union, 1.0), 0.0)


def group_order(image: np.ndarray, cls: np.ndarray, score: np.ndarray | None = None) -> np.ndarray:
    """Stable order by (class, image[, descending score]): one contiguous run per (image, class) group."""
    keys = [np.arange(len(image))]
    if score is not None:
        keys.append(-score)
    return np.lexsort((*keys, image, cls))


def match(pred: Boxes, truth: Boxes, thresholds: np.ndarray = IOU_THRESHOLDS, max_dets: int | None = 100) -> Matches:
    """Greedy COCO matching at every IoU threshold (see the module docstring)."""
    n_img = int(max(pred.image.max(initial=-1), truth.image.max(initial=-1))) + 1
    order = group_order(pred.image, pred.cls, pred.score)
    pkey = pred.cls[order] * n_img + pred.image[order]
    first = np.r_[True, pkey[1:] != pkey[:-1]] if len(pkey) else np.zeros(0, bool)
    starts = np.flatnonzero(first)
    rank = np.arange(len(pkey)) - np.repeat(starts, np.diff(np.r_[starts, len(pkey)]))
    keep = rank < max_dets if max_dets is not None else np.ones(len(rank), bool)
    kept, rank, pkey = order[keep], rank[keep], pkey[keep]

    gorder = group_order(truth.image, truth.cls)
    gkey = truth.cls[gorder] * n_img + truth.image[gorder]
    lo = np.searchsorted(gkey, pkey, "left")
    n = np.searchsorted(gkey, pkey, "right") - lo
    pd = np.repeat(np.arange(len(kept)), n)  # pair -> kept prediction (sorted by group, then rank)
    pg = np.repeat(lo, n) + (np.arange(len(pd)) - np.repeat(np.cumsum(n) - n, n))  # pair -> sorted truth
    iou = iou_xywh(pred.box[kept[pd]], truth.box[gorder[pg]])

    # Rounds: pairs ordered by (rank, prediction, truth); each round is one prediction per group.
    by_rank = np.argsort(rank[pd], kind="stable")
    pd, pg, iou = pd[by_rank], pg[by_rank], iou[by_rank]
    bounds = np.searchsorted(rank[pd], np.arange(int(rank.max(initial=-1)) + 2))
    out = np.full((len(thresholds), len(kept)), -1, dtype=np.int64)
    bar = tqdm(thresholds, desc="matching boxes", unit="IoU", leave=False, disable=len(pd) < 500_000)
    for ti, t in enumerate(bar):
        t_eff = min(float(t), 1 - 1e-10)
        taken = np.zeros(len(gkey), bool)
        for r in range(len(bounds) - 1):
            a, b = bounds[r], bounds[r + 1]
            if a == b:
                continue
            d, g, v = pd[a:b], pg[a:b], iou[a:b]
            ok = (v >= t_eff) & ~taken[g]
            if not ok.any():
                continue
            idx = np.flatnonzero(ok)
            d, g, v = d[idx], g[idx], v[idx]
            head = np.flatnonzero(np.r_[True, d[1:] != d[:-1]])
            best = np.maximum.reduceat(v, head)
            is_best = v == np.repeat(best, np.diff(np.r_[head, len(d)]))
            cand = np.flatnonzero(is_best)
            last = cand[np.r_[d[cand][1:] != d[cand][:-1], True]]  # ties: the later truth box
            out[ti, d[last]] = g[last]
            taken[g[last]] = True
    # Map sorted-truth positions back to the caller's truth indices.
    mapped = np.where(out >= 0, gorder[np.maximum(out, 0)], -1) if len(gorder) else out
    return Matches(kept=kept, rank=rank, truth=mapped, thresholds=np.asarray(thresholds, dtype=np.float64))
