"""Evaluation speed: 1M predicted boxes against 500k truth boxes over 300k frames (issue 16).

Rows:
  core       hyperds' COCO matching + AP (arrays in), the same work as COCOeval evaluate + accumulate
  faster     faster-coco-eval (COCOeval_faster evaluate/accumulate/summarize) on the same boxes; building
             its COCO objects from the in-memory dicts (its "JSON loading") is not timed
  end-to-end hyperds.evaluate on a dataset holding the same boxes as annotations (truth as accepted
             model boxes plus people's boxes, predictions as the model's): read, select, detection,
             presence per frame and sequence, confusion, sweep (--store-frames 0 skips it)
Both AP computations must agree (mAP within 1e-6); the target is core <= 30 s and <= 1.5x faster-coco-eval.

    python benchmarks/eval.py [--frames 300000 --truth 500000 --preds 1000000 --classes 10 --store-frames 300000]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import logging
import tempfile
import time

import numpy as np
import pyarrow as pa

import hyperds
from hyperds.evaluate.ap import accumulate
from hyperds.evaluate.matching import Boxes, match
from hyperds.frames.schema import ANNOTATION_TYPE

W, H = 1920.0, 1080.0
MODEL = "bench-detector@1.0"


def synth(n_frames: int, n_truth: int, n_preds: int, n_classes: int, seed: int = 0) -> tuple[Boxes, Boxes]:
    """Truth boxes spread over frames; ~60% of predictions jitter a truth box (some relabelled), the rest are noise."""
    rng = np.random.default_rng(seed)
    t_img = np.sort(rng.integers(0, n_frames, n_truth))
    t_cls = rng.integers(0, n_classes, n_truth)
    wh = rng.uniform(40, 400, (n_truth, 2))
    xy = rng.uniform(0, 1, (n_truth, 2)) * ([W, H] - wh)
    t_box = np.hstack([xy, wh])
    n_near = int(n_preds * 0.6)
    src = rng.integers(0, n_truth, n_near)
    jitter = t_box[src] * (1 + rng.normal(0, 0.08, (n_near, 4)))
    jitter[:, 2:] = np.maximum(jitter[:, 2:], 4)
    near_cls = np.where(rng.random(n_near) < 0.1, rng.integers(0, n_classes, n_near), t_cls[src])
    n_far = n_preds - n_near
    fwh = rng.uniform(20, 300, (n_far, 2))
    fxy = rng.uniform(0, 1, (n_far, 2)) * ([W, H] - fwh)
    p_img = np.r_[t_img[src], rng.integers(0, n_frames, n_far)]
    p_cls = np.r_[near_cls, rng.integers(0, n_classes, n_far)]
    p_box = np.clip(np.vstack([jitter, np.hstack([fxy, fwh])]), 0, None)
    p_box[:, 0] = np.minimum(p_box[:, 0], W - 4)
    p_box[:, 1] = np.minimum(p_box[:, 1], H - 4)
    p_box[:, 2] = np.minimum(p_box[:, 2], W - p_box[:, 0])
    p_box[:, 3] = np.minimum(p_box[:, 3], H - p_box[:, 1])
    score = np.round(np.r_[rng.beta(5, 2, n_near), rng.beta(2, 5, n_far)], 4)
    order = np.lexsort((np.arange(n_preds), p_img))
    pred = Boxes(p_img[order], p_cls[order], p_box[order], score[order])
    return pred, Boxes(t_img, t_cls, t_box)


def time_core(pred: Boxes, truth: Boxes, n_classes: int) -> tuple[float, float, float, float]:
    t0, c0 = time.perf_counter(), time.process_time()
    curves = accumulate(pred, truth, match(pred, truth), n_classes)
    return time.perf_counter() - t0, time.process_time() - c0, curves.mean_ap(), curves.mean_ap(0)


def time_faster(pred: Boxes, truth: Boxes, n_frames: int, n_classes: int) -> tuple[float, ...] | None:
    try:
        from faster_coco_eval import COCO, COCOeval_faster
    except ImportError:
        return None
    images = [{"id": i + 1, "width": int(W), "height": int(H)} for i in range(n_frames)]
    cats = [{"id": k + 1, "name": str(k)} for k in range(n_classes)]
    gt_anns = [{"id": j + 1, "image_id": int(i) + 1, "category_id": int(c) + 1, "bbox": b, "area": b[2] * b[3],
                "iscrowd": 0} for j, (i, c, b) in enumerate(zip(truth.image, truth.cls, truth.box.tolist()))]
    dets = [{"image_id": int(i) + 1, "category_id": int(c) + 1, "bbox": b, "score": float(s)}
            for i, c, b, s in zip(pred.image, pred.cls, pred.box.tolist(), pred.score)]
    gt = COCO()
    gt.dataset = {"images": images, "categories": cats, "annotations": gt_anns}
    gt.createIndex()
    dt = gt.loadRes(dets)
    t0, c0 = time.perf_counter(), time.process_time()
    ev = COCOeval_faster(gt, dt, "bbox", print_function=lambda *a: None)
    with contextlib.redirect_stdout(io.StringIO()):
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return time.perf_counter() - t0, time.process_time() - c0, float(ev.stats[0]), float(ev.stats[1])


def store_dataset(store: hyperds.Store, pred: Boxes, truth: Boxes, n_frames: int) -> hyperds.Dataset:
    """Frames whose annotations are the truth (model boxes reviewed as accepted) and the model's predictions."""
    ds = store.create_dataset("bench_eval")
    n_t, n_p = len(truth), len(pred)
    frame = np.r_[truth.image, pred.image]
    order = np.argsort(frame, kind="stable")
    scale = np.array([W, H, W, H])
    box = np.vstack([truth.box, pred.box]) / scale
    box[:, 2] = np.maximum(np.minimum(box[:, 2], 1 - box[:, 0]) - 1e-6, 0)  # float32 rounding stays inside
    box[:, 3] = np.maximum(np.minimum(box[:, 3], 1 - box[:, 1]) - 1e-6, 0)
    labels = np.array([f"species_{k}" for k in range(int(max(truth.cls.max(), pred.cls.max())) + 1)], dtype=object)
    n = n_t + n_p
    is_truth = np.r_[np.ones(n_t, bool), np.zeros(n_p, bool)]
    ann = {
        "ann_id": pa.array([f"a{i}" for i in range(n)]),
        "label": pa.array(labels[np.r_[truth.cls, pred.cls]]),
        "bbox": pa.FixedSizeListArray.from_arrays(pa.array(box.ravel(), pa.float32()), 4),
        "confidence": pa.array(np.where(is_truth, 1.0, np.r_[np.zeros(n_t), pred.score]), pa.float32()),
        "source_kind": pa.array(np.where(is_truth, "human", "model")),
        "source": pa.array(np.where(is_truth, "alice", MODEL)),
        "review_status": pa.array(np.where(is_truth, "accepted", "unreviewed")),
        "level": pa.array(["media"] * n),
        "revision": pa.array(np.zeros(n, np.int64)),
    }
    taken = [a.take(pa.array(order)) for a in ann.values()]
    taken = [a.combine_chunks() if isinstance(a, pa.ChunkedArray) else a for a in taken]
    flat = pa.StructArray.from_arrays(taken, names=list(ann))
    flat = pa.StructArray.from_arrays(
        [flat.field(f.name).cast(f.type) if f.name in ann else pa.nulls(n, f.type) for f in ANNOTATION_TYPE],
        fields=list(ANNOTATION_TYPE),
    )
    offsets = np.zeros(n_frames + 1, np.int32)
    np.cumsum(np.bincount(frame, minlength=n_frames), out=offsets[1:])
    ids = pa.array([f"f{i:07d}" for i in range(n_frames)])
    rows = pa.table({
        "frame_id": ids, "uri": pa.array([f"s3://bench/{i}.jpg" for i in range(n_frames)]),
        "seq_id": pa.array([f"s{i // 5}" for i in range(n_frames)]),
        "annotations": pa.ListArray.from_arrays(pa.array(offsets), flat),
    })
    for start in range(0, n_frames, 100_000):
        ds.add_frames(rows.slice(start, 100_000))
    return ds


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, default=300_000)
    ap.add_argument("--truth", type=int, default=500_000)
    ap.add_argument("--preds", type=int, default=1_000_000)
    ap.add_argument("--classes", type=int, default=10)
    ap.add_argument("--no-faster", action="store_true", help="skip faster-coco-eval (about 9 min at the default size)")
    ap.add_argument("--store-frames", type=int, default=300_000, help="frames for the end-to-end row (0: skip)")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    pred, truth = synth(args.frames, args.truth, args.preds, args.classes)
    print(f"{len(pred):,} predicted boxes, {len(truth):,} truth boxes, {args.frames:,} frames, {args.classes} classes")
    core = time_core(pred, truth, args.classes)
    faster = None if args.no_faster else time_faster(pred, truth, args.frames, args.classes)
    # CPU seconds next to wall seconds: on a shared machine the wall clock mostly measures the neighbours.
    print(f"{'row':<12}{'seconds':>9}{'cpu s':>9}{'mAP':>10}{'mAP@0.5':>10}")
    print(f"{'core':<12}{core[0]:>9.2f}{core[1]:>9.2f}{core[2]:>10.6f}{core[3]:>10.6f}")
    if faster is None and not args.no_faster:
        print("faster      (faster-coco-eval not installed: pip install 'hyperds[bench]')")
    elif faster is not None:
        print(f"{'faster':<12}{faster[0]:>9.2f}{faster[1]:>9.2f}{faster[2]:>10.6f}{faster[3]:>10.6f}")
        print(f"core / faster-coco-eval: {core[0] / faster[0]:.3f}x wall, {core[1] / faster[1]:.3f}x cpu;  "
              f"|mAP diff| {abs(core[2] - faster[2]):.2e}, |mAP@0.5 diff| {abs(core[3] - faster[3]):.2e}")
    if args.store_frames:
        keep_p, keep_t = pred.image < args.store_frames, truth.image < args.store_frames
        sub_p = Boxes(pred.image[keep_p], pred.cls[keep_p], pred.box[keep_p], pred.score[keep_p])
        sub_t = Boxes(truth.image[keep_t], truth.cls[keep_t], truth.box[keep_t])
        with tempfile.TemporaryDirectory() as tmp:
            store = hyperds.connect(tmp)
            t0 = time.perf_counter()
            ds = store_dataset(store, sub_p, sub_t, args.store_frames)
            built = time.perf_counter() - t0
            t0, c0 = time.perf_counter(), time.process_time()
            report = hyperds.evaluate(ds, MODEL, frames="all")
            took, cpu = time.perf_counter() - t0, time.process_time() - c0
            summary = report.summary
            print(f"{'end-to-end':<12}{took:>9.2f}{cpu:>9.2f}{summary['map']:>10.6f}{summary['map50']:>10.6f}"
                  f"   ({len(sub_p):,} + {len(sub_t):,} boxes on {args.store_frames:,} frames; store built in "
                  f"{built:.0f} s, not timed)")


if __name__ == "__main__":
    main()
