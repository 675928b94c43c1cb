"""AP and mAP of hyperds.evaluate's matcher against pycocotools on generated images, plus hand-worked cases."""

from __future__ import annotations

import contextlib
import io

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hyperds.evaluate.ap import accumulate
from hyperds.evaluate.matching import IOU_THRESHOLDS, Boxes, match

pycocotools = pytest.importorskip("pycocotools")
from pycocotools.coco import COCO  # noqa: E402
from pycocotools.cocoeval import COCOeval  # noqa: E402


def coco_eval(pred: Boxes, truth: Boxes, n_img: int, n_cls: int) -> COCOeval:
    """pycocotools on the same boxes: image i -> id i+1, class k -> category k+1, truth j -> ann id j+1."""
    images = [{"id": i + 1} for i in range(n_img)]
    cats = [{"id": k + 1, "name": str(k)} for k in range(n_cls)]
    gt_anns = [
        {"id": j + 1, "image_id": int(truth.image[j]) + 1, "category_id": int(truth.cls[j]) + 1,
         "bbox": truth.box[j].tolist(), "area": float(truth.box[j, 2] * truth.box[j, 3]), "iscrowd": 0}
        for j in range(len(truth))
    ]
    dets = [
        {"image_id": int(pred.image[j]) + 1, "category_id": int(pred.cls[j]) + 1, "bbox": pred.box[j].tolist(),
         "score": float(pred.score[j])}
        for j in range(len(pred))
    ]
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO()
        gt.dataset = {"images": images, "categories": cats, "annotations": gt_anns}
        gt.createIndex()
        if dets:
            dt = gt.loadRes(dets)
        else:  # loadRes cannot take an empty list
            dt = COCO()
            dt.dataset = {"images": images, "categories": cats, "annotations": []}
            dt.createIndex()
        ev = COCOeval(gt, dt, "bbox")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return ev


def ours(pred: Boxes, truth: Boxes, n_cls: int):
    return accumulate(pred, truth, match(pred, truth), n_cls)


@st.composite
def scenes(draw):
    """Images with 0-10 boxes on each side, on a coarse grid (IoU ties and exact boundaries happen)."""
    n_img = draw(st.integers(1, 6))
    n_cls = draw(st.integers(1, 3))

    def side(scored: bool) -> Boxes:
        per_image = [draw(st.integers(0, 10)) for _ in range(n_img)]
        n = sum(per_image)
        image = np.repeat(np.arange(n_img), per_image)
        cls = np.array(draw(st.lists(st.integers(0, n_cls - 1), min_size=n, max_size=n)), dtype=np.int64)
        xy = np.array(draw(st.lists(st.integers(0, 8), min_size=2 * n, max_size=2 * n)), float).reshape(-1, 2)
        wh = np.array(draw(st.lists(st.integers(1, 6), min_size=2 * n, max_size=2 * n)), float).reshape(-1, 2)
        box = np.hstack([xy, wh]) / 4.0 if n else np.zeros((0, 4))
        score = (np.array(draw(st.lists(st.integers(0, 8), min_size=n, max_size=n)), float) / 8.0) if scored else None
        return Boxes(image.astype(np.int64), cls, box, score)

    return side(True), side(False), n_img, n_cls


@settings(max_examples=60)
@given(scenes())
def test_ap_and_map_equal_pycocotools(scene):
    pred, truth, n_img, n_cls = scene
    ref = coco_eval(pred, truth, n_img, n_cls)
    got = ours(pred, truth, n_cls)
    np.testing.assert_allclose(got.precision, ref.eval["precision"][:, :, :, 0, 2], rtol=0, atol=1e-6)
    np.testing.assert_allclose(got.recall, ref.eval["recall"][:, :, 0, 2], rtol=0, atol=1e-6)
    for ours_value, ref_value in ((got.mean_ap(), ref.stats[0]), (got.mean_ap(0), ref.stats[1]),
                                  (got.mean_ap(5), ref.stats[2])):
        if ref_value == -1:  # no class has truth: pycocotools reports -1
            assert np.isnan(ours_value)
        else:
            assert abs(ours_value - ref_value) <= 1e-6


def _one_image(pred_boxes, scores, truth_boxes, pred_cls=None, truth_cls=None) -> tuple[Boxes, Boxes]:
    np_ = len(pred_boxes)
    nt = len(truth_boxes)
    pred = Boxes(np.zeros(np_, np.int64), np.asarray(pred_cls or [0] * np_, np.int64),
                 np.asarray(pred_boxes, float).reshape(-1, 4), np.asarray(scores, float))
    truth = Boxes(np.zeros(nt, np.int64), np.asarray(truth_cls or [0] * nt, np.int64),
                  np.asarray(truth_boxes, float).reshape(-1, 4))
    return pred, truth


def test_hand_worked_true_positive_first_is_perfect():
    # The hit ranks above the miss: precision 1 at every recall up to 1.
    pred, truth = _one_image([[0, 0, 10, 10], [50, 50, 5, 5]], [0.9, 0.8], [[0, 0, 10, 10]])
    c = ours(pred, truth, 1)
    assert c.mean_ap() == pytest.approx(1.0, abs=1e-12)


def test_hand_worked_false_positive_first_halves_ap():
    # Ranked: miss (P=0, R=0), hit (P=1/2, R=1). Interpolated precision is 1/2 at every recall point.
    pred, truth = _one_image([[50, 50, 5, 5], [0, 0, 10, 10]], [0.9, 0.8], [[0, 0, 10, 10]])
    c = ours(pred, truth, 1)
    assert c.mean_ap(0) == pytest.approx(1 / 2, abs=1e-12)
    assert c.tp[0, 0] == 1 and c.predicted[0] == 2


def test_hand_worked_half_recall():
    # One of two truth boxes found: precision 1 at the 51 recall points 0, 0.01, ..., 0.50; 0 at the other 50.
    pred, truth = _one_image([[0, 0, 10, 10]], [0.7], [[0, 0, 10, 10], [40, 40, 10, 10]])
    c = ours(pred, truth, 1)
    assert c.mean_ap(0) == pytest.approx(51 / 101, abs=1e-12)
    assert c.recall[0, 0] == pytest.approx(0.5)


def test_hand_worked_iou_decides_the_thresholds():
    # A 10x6.4 box inside a 10x10 truth box: IoU 64/100. It matches at thresholds <= 0.64 only.
    pred, truth = _one_image([[0, 0, 10, 6.4]], [0.5], [[0, 0, 10, 10]])
    c = ours(pred, truth, 1)
    iou = (10 * 6.4) / (10 * 10)
    matched = int(np.sum(IOU_THRESHOLDS <= iou))
    assert matched == 3
    assert c.mean_ap(0) == pytest.approx(1.0)
    assert c.mean_ap() == pytest.approx(matched / len(IOU_THRESHOLDS), abs=1e-12)


def test_hand_worked_class_mismatch_and_empty_truth_image():
    # Image 0: a "cat" truth box predicted as "dog" (no hit for either); image 1: no truth, one confident
    # "cat" box. cat: truth 1, its only prediction is the false positive of image 1 -> AP 0.
    # dog: no truth -> no AP, left out of the mean.
    pred = Boxes(np.array([0, 1]), np.array([1, 0]), np.array([[0, 0, 4, 4], [0, 0, 4, 4]], float),
                 np.array([0.9, 0.95]))
    truth = Boxes(np.array([0]), np.array([0]), np.array([[0, 0, 4, 4]], float))
    c = ours(pred, truth, 2)
    ap = c.ap(0)
    assert ap[0] == 0.0 and np.isnan(ap[1])
    assert c.mean_ap(0) == 0.0


def test_max_dets_keeps_the_best_scored_boxes_per_image_and_class():
    # 3 boxes on one truth box with max_dets=2: the lowest-scored one is not kept.
    pred, truth = _one_image([[0, 0, 4, 4]] * 3, [0.2, 0.9, 0.5], [[0, 0, 4, 4]])
    m = match(pred, truth, max_dets=2)
    assert sorted(m.kept.tolist()) == [1, 2]
    assert m.truth[0, m.kept.tolist().index(1)] == 0  # the 0.9 box took the truth box
