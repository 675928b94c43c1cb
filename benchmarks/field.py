"""Time the field workflows on synthetic data: repeat detections and sequence smoothing.

Usage: python benchmarks/field.py --detections 1000000 --cameras 2000 --frames 1000000 --sequences 300000
Targets (issue 17): find_repeats over 1M model detections from 2,000 cameras within 30 s; smooth_sequences over
1M frames in 300k sequences within 30 s. Data goes under benchmarks/.data/field (git-ignored); prints one table
row per operation.
"""

from __future__ import annotations

import argparse
import datetime as dt
import shutil
import time
from pathlib import Path

import numpy as np
import pyarrow as pa

import hyperds
from hyperds.frames.schema import ANNOTATION_TYPE

DATA = Path(__file__).resolve().parent / ".data" / "field"
SPECIES = np.array(["zebra", "wildebeest", "gazelle", "lion", "impala", "buffalo", "elephant", "giraffe"], dtype=object)


def _frames(ids: np.ndarray, per: np.ndarray, box: np.ndarray, label: np.ndarray, conf: np.ndarray,
            extra: dict[str, pa.Array]) -> pa.Table:
    """Frame rows with `per[i]` model annotations each (boxes, labels, confidences flattened in order)."""
    n, m = len(ids), int(per.sum())
    offsets = np.concatenate([[0], np.cumsum(per)]).astype(np.int32)
    parent = np.repeat(np.arange(n), per)
    pos = np.arange(m) - offsets[:-1][parent]
    now = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
    cols = {f.name: pa.nulls(m, f.type) for f in ANNOTATION_TYPE}
    cols.update(
        ann_id=pa.array(np.char.add(np.char.add(ids[parent].astype(str), ":"), pos.astype(str)).astype(object)),
        label=pa.array(label, pa.string()),
        bbox=pa.FixedSizeListArray.from_arrays(pa.array(box.ravel(), pa.float32()), 4),
        confidence=pa.array(conf.astype(np.float32)),
        source_kind=pa.array(np.full(m, "model", dtype=object)),
        source=pa.array(np.full(m, "md@5a", dtype=object)),
        created_at=pa.array(np.full(m, now), pa.timestamp("us", tz="UTC")),
        review_status=pa.array(np.full(m, "unreviewed", dtype=object)),
        revision=pa.array(np.zeros(m, np.int64)),
        level=pa.array(np.full(m, "media", dtype=object)),
    )
    ann = pa.StructArray.from_arrays([cols[f.name] for f in ANNOTATION_TYPE], fields=list(ANNOTATION_TYPE))
    return pa.table({"frame_id": pa.array(ids, pa.string()),
                     "uri": pa.array(np.char.add(ids.astype(str), ".jpg").astype(object), pa.string()),
                     **extra, "annotations": pa.ListArray.from_arrays(pa.array(offsets), ann)})


def repeat_frames(detections: int, cameras: int, seed: int = 0) -> tuple[pa.Table, int]:
    """Frames of `cameras` cameras holding ~`detections` model detections: moving animals at random boxes, and on
    every 10th camera a static box (+-0.002) in 60% of its frames. Returns (frames, planted groups)."""
    rng = np.random.default_rng(seed)
    n = int(detections / 1.3)
    cam = rng.integers(0, cameras, n)
    planted = (cam % 10 == 0) & (rng.random(n) < 0.6)
    moving = rng.integers(1, 2, n) + (rng.random(n) < 0.3 - planted * 0.3)
    per = moving + planted
    m = int(per.sum())
    wh = rng.uniform(0.05, 0.3, (m, 2))
    xy = rng.uniform(0, 1, (m, 2)) * (1 - wh)
    box = np.hstack([xy, wh])
    first = np.concatenate([[0], np.cumsum(per)[:-1]])
    static = first[planted]  # the first annotation of a planted frame is the static box
    anchor = np.random.default_rng(seed + 1).uniform(0.1, 0.6, (cameras, 2))
    box[static, :2] = anchor[cam[planted]] + rng.uniform(-0.002, 0.002, (len(static), 2))
    box[static, 2:] = (0.12, 0.08)
    ids = np.char.add("r", np.arange(n).astype(str)).astype(object)
    t0 = np.datetime64("2024-01-01T00:00:00", "us")
    extra = {"camera": pa.array(np.char.add("cam", cam.astype(str)).astype(object)),
             "captured_at": pa.array(t0 + rng.integers(0, 365 * 86400, n) * 1_000_000, pa.timestamp("us", tz="UTC"))}
    label = np.full(m, "animal", dtype=object)
    return _frames(ids, per, box, label, rng.uniform(0.05, 0.99, m), extra), int(np.unique(cam[planted]).size)


def sequence_frames(frames: int, sequences: int, seed: int = 0) -> pa.Table:
    """`frames` frames in `sequences` bursts: each burst one species; 15% of frames the model calls something
    else, 10% nothing at all."""
    rng = np.random.default_rng(seed)
    seq = np.sort(rng.integers(0, sequences, frames))
    truth = rng.integers(0, len(SPECIES), sequences)[seq]
    noise = rng.random(frames)
    label = np.where(noise < 0.15, rng.integers(0, len(SPECIES), frames), truth)
    per = (noise >= 0.05).astype(np.int64) * 1 + (noise < 0.05) * 0
    ids = np.char.add("s", np.arange(frames).astype(str)).astype(object)
    m = int(per.sum())
    box = np.tile([0.2, 0.2, 0.3, 0.3], (m, 1))
    extra = {"seq_id": pa.array(np.char.add("q", seq.astype(str)).astype(object))}
    return _frames(ids, per, box, SPECIES[label[per > 0]], rng.uniform(0.5, 1.0, m), extra)


def _time(fn):
    t = time.perf_counter()
    out = fn()
    return time.perf_counter() - t, out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--detections", type=int, default=1_000_000, help="model detections for find_repeats (default 1M, the target size)")
    p.add_argument("--cameras", type=int, default=2_000)
    p.add_argument("--frames", type=int, default=1_000_000, help="frames for smooth_sequences (default 1M, the target size)")
    p.add_argument("--sequences", type=int, default=300_000)
    args = p.parse_args()
    shutil.rmtree(DATA, ignore_errors=True)
    store = hyperds.connect(DATA)
    rows: list[tuple[str, float, str]] = []

    table, planted = repeat_frames(args.detections, args.cameras)
    ds = store.create_dataset("repeats")
    secs, _ = _time(lambda: ds.add_frames(table))
    n_det = sum(len(a) for a in table.column("annotations").to_pylist()) if table.num_rows <= 200_000 else None
    n_det = n_det or int(np.diff(table.column("annotations").combine_chunks().offsets.to_numpy()).sum())
    rows.append(("build repeats dataset (add_frames)", secs, f"{table.num_rows:,} frames, {n_det:,} detections"))
    secs, found = _time(lambda: ds.find_repeats(iou=0.85, min_frames=10, view=False))
    rows.append(("find_repeats (iou 0.85, min 10), table only", secs,
                 f"{len(found):,} groups ({planted} planted), {found.detections.height:,} detections"))
    secs, found = _time(lambda: ds.find_repeats(iou=0.85, min_frames=10))
    rows.append(("find_repeats + draft view of affected frames", secs, f"{found.detections['frame_id'].n_unique():,} frames"))
    top = found.groups["group"][0]
    secs, done = _time(lambda: ds.reject_repeats(found, author="bench", ids=[top]))
    rows.append(("reject_repeats one group (one commit)", secs, f"{done.detections} detections"))

    table = sequence_frames(args.frames, args.sequences)
    ds = store.create_dataset("bursts")
    secs, _ = _time(lambda: ds.add_frames(table))
    rows.append(("build bursts dataset (add_frames)", secs, f"{table.num_rows:,} frames, {args.sequences:,} sequences"))
    secs, labels = _time(lambda: ds.sequence_labels())
    rows.append(("sequence_labels", secs, f"{labels.height:,} (sequence, label) rows"))
    secs, proposals = _time(lambda: ds.smooth_sequences(min_confidence=0.8))
    rows.append(("smooth_sequences (min_confidence 0.8)", secs, f"{len(proposals):,} proposals"))

    width = max(len(r[0]) for r in rows)
    print(f"\n{'operation':<{width}}  {'seconds':>9}  detail")
    print("-" * (width + 50))
    for name, secs, detail in rows:
        print(f"{name:<{width}}  {secs:9.3f}  {detail}")


if __name__ == "__main__":
    main()
