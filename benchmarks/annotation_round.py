"""Time one annotation round's operations on synthetic frames: auto-accept, queue, selection, similarity.

Usage: python benchmarks/annotation_round.py --n 100000 [--embedded 20000 --dim 64 --k 100]
Data goes under benchmarks/.data/ (git-ignored); prints one table row per operation.
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
from hyperds.workflows.review import queue_query
from hyperds.workflows.select import select_frames

DATA = Path(__file__).resolve().parent / ".data" / "annotation_round"


def _frames(n: int, seed: int = 0) -> pa.Table:
    """n frames over 50 sites x 4 cameras and a year, each with 0-3 model detections of uniform confidence."""
    rng = np.random.default_rng(seed)
    per = rng.integers(0, 4, n)
    m = int(per.sum())
    offsets = np.concatenate([[0], np.cumsum(per)]).astype(np.int32)
    parent = np.repeat(np.arange(n), per)
    pos = np.arange(m) - offsets[:-1][parent]
    ids = np.char.add("f", np.arange(n).astype(str)).astype(object)
    xy = rng.uniform(0, 0.5, (m, 2))
    wh = rng.uniform(0.01, 0.5, (m, 2))
    bbox = pa.FixedSizeListArray.from_arrays(pa.array(np.hstack([xy, wh]).ravel(), pa.float32()), 4)
    now = pa.scalar(dt.datetime(2024, 1, 1, tzinfo=dt.UTC), pa.timestamp("us", tz="UTC"))
    cols = {f.name: pa.nulls(m, f.type) for f in ANNOTATION_TYPE}
    cols.update(
        ann_id=pa.array(np.char.add(np.char.add(ids[parent].astype(str), ":"), pos.astype(str)).astype(object)),
        label=pa.array(np.full(m, "animal", dtype=object)),
        bbox=bbox.cast(ANNOTATION_TYPE.field("bbox").type),
        confidence=pa.array(rng.uniform(0.01, 1.0, m).astype(np.float32)),
        source_kind=pa.array(np.full(m, "model", dtype=object)),
        source=pa.array(np.full(m, "md5a", dtype=object)),
        created_at=pa.array(np.full(m, now.as_py()), pa.timestamp("us", tz="UTC")),
        review_status=pa.array(np.full(m, "unreviewed", dtype=object)),
        revision=pa.array(np.zeros(m, np.int64)),
        level=pa.array(np.full(m, "media", dtype=object)),
    )
    ann = pa.StructArray.from_arrays([cols[f.name] for f in ANNOTATION_TYPE], fields=list(ANNOTATION_TYPE))
    site = rng.integers(0, 50, n)
    t0 = np.datetime64("2024-01-01T00:00:00", "us")
    return pa.table(
        {
            "frame_id": pa.array(ids, pa.string()),
            "uri": pa.array(np.char.add(ids.astype(str), ".jpg").astype(object), pa.string()),
            "site": pa.array(np.char.add("S", site.astype(str)).astype(object)),
            "camera": pa.array(np.char.add(np.char.add("S", site.astype(str)), np.char.add("-C", rng.integers(0, 4, n).astype(str))).astype(object)),
            "captured_at": pa.array(t0 + rng.integers(0, 365 * 86400, n) * 1_000_000, pa.timestamp("us", tz="UTC")),
            "annotations": pa.ListArray.from_arrays(pa.array(offsets), ann),
        }
    )


def _time(fn):
    t = time.perf_counter()
    out = fn()
    return time.perf_counter() - t, out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--n", type=int, default=100_000, help="frames (default 100k)")
    p.add_argument("--embedded", type=int, default=20_000, help="frames given an embedding (default 20k)")
    p.add_argument("--dim", type=int, default=64)
    p.add_argument("--k", type=int, default=100)
    args = p.parse_args()
    shutil.rmtree(DATA, ignore_errors=True)
    store = hyperds.connect(DATA)
    ds = store.create_dataset("bench")
    rows: list[tuple[str, float, str]] = []
    secs, _ = _time(lambda: ds.add_frames(_frames(args.n)))
    rows.append(("build frames (add_frames)", secs, f"{args.n:,} frames"))
    secs, res = _time(lambda: ds.auto_accept(0.98))
    rows.append(("auto_accept(0.98): query + one commit", secs, f"{res.frames:,} frames, {res.annotations:,} detections"))
    secs, res = _time(lambda: ds.auto_accept(0.98))
    rows.append(("auto_accept rerun (nothing to do)", secs, f"{res.frames} frames, commit={res.commit}"))
    secs, n = _time(lambda: ds.query(queue_query(0.98)).count())
    rows.append(("review queue count (0.98)", secs, f"{n:,} frames"))
    for strategy in ("uncertainty", "random", "diverse"):
        secs, out = _time(lambda s=strategy: select_frames(ds, k=args.k, strategy=s, seed=0))
        label = "diverse (sites/cameras/time)" if strategy == "diverse" else strategy
        rows.append((f"select k={args.k} {label}", secs, f"{out.num_rows} frames"))
    rng = np.random.default_rng(1)
    ids = [f"f{i}" for i in rng.choice(args.n, args.embedded, replace=False)]
    vecs = rng.standard_normal((args.embedded, args.dim)).astype(np.float32)
    secs, res = _time(lambda: ds.add_embeddings(ids, vecs, model="bench", index=False))
    rows.append(("add_embeddings (one commit, no index)", secs, f"{args.embedded:,} x {args.dim}"))
    secs, _ = _time(lambda: [ds.similar(ids[i], k=10) for i in range(20)])
    rows.append(("similar k=10, flat scan (per query)", secs / 20, "exact"))
    secs, res = _time(lambda: ds.add_embeddings(ids[:1], vecs[:1], model="bench"))
    rows.append(("build IVF_PQ index (via add_embeddings)", secs, f"indexed={res.indexed}"))
    secs, _ = _time(lambda: [ds.similar(ids[i], k=10) for i in range(20)])
    rows.append(("similar k=10, IVF_PQ + refine (per query)", secs / 20, "approximate, re-ranked"))
    secs, out = _time(lambda: select_frames(ds, k=args.k, strategy="diverse", seed=0))
    rows.append((f"select k={args.k} diverse (k-center)", secs, f"over {args.embedded:,} vectors"))
    width = max(len(r[0]) for r in rows)
    print(f"\n{'operation':<{width}}  {'seconds':>9}  detail")
    print("-" * (width + 40))
    for name, secs, detail in rows:
        print(f"{name:<{width}}  {secs:9.3f}  {detail}")


if __name__ == "__main__":
    main()
