"""Time annotation commits on large synthetic datasets: 1k and 100k corrections, bytes written per commit.

Usage: python benchmarks/commits.py [--sizes 1000000 10000000] [--changes 1000 100000] [--repeat 3]
Commits go to a fresh shallow clone (benchmarks/.data/commits/) of synth.py's dataset in benchmarks/.data/store.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

import hyperds
from hyperds.dataset import Dataset
from hyperds.frames.table import FrameTable

sys.path.insert(0, str(Path(__file__).resolve().parent))
from synth import SPECIES as LABELS  # noqa: E402
from synth import make_dataset  # noqa: E402

DATA = Path(__file__).resolve().parent / ".data" / "commits"
SHARED_STORE = Path(__file__).resolve().parent / ".data" / "store"


def _dataset(store: hyperds.Store, n: int, seed: int) -> Dataset:
    """A fresh shallow clone (no data copied) of the shared synthetic dataset, so commits never touch it."""
    name = f"frames_{n}"
    shared = hyperds.connect(SHARED_STORE)
    if name in shared.datasets() and len(shared.dataset(name)) != n:
        raise SystemExit(f"{SHARED_STORE}/{name} is incomplete (being written?); retry later")
    base = make_dataset(shared, name, n, seed)
    if name in store.datasets():
        store.drop_dataset(name)
    base.lance().shallow_clone(store.table_uri(name), base.version)
    return store.dataset(name)


def _tree_bytes(path: str) -> int:
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, files in os.walk(path) for f in files)


def _changes(ds: Dataset, k: int, rng: np.random.Generator) -> list[dict]:
    """k corrections on k distinct random frames: relabels, reviews, box moves and adds."""
    n = len(ds)
    picks = rng.choice(n, size=k, replace=False)
    ids = ds.to_arrow(columns=["frame_id"]).column("frame_id").take(picks).to_pylist()
    anns = ds.lance().take(picks, columns=["annotations"]).column("annotations").to_pylist()
    out = []
    for i, (fid, frame_anns) in enumerate(zip(ids, anns, strict=True)):
        kind = i % 10
        if not frame_anns or kind == 9:
            out.append({"op": "add", "frame_id": fid, "label": LABELS[i % len(LABELS)], "bbox": [0.1, 0.1, 0.2, 0.2]})
            continue
        ann = frame_anns[0]["ann_id"]
        if kind < 4:
            out.append({"op": "relabel", "frame_id": fid, "ann_id": ann, "label": LABELS[(i + 3) % len(LABELS)]})
        elif kind < 7:
            status = ("accept", "reject", "correct")[kind - 4]
            label = LABELS[i % len(LABELS)] if status == "correct" else None
            out.append({"op": "review", "frame_id": fid, "ann_id": ann, "status": status, "label": label,
                        "note": "bench"})
        else:
            out.append({"op": "move", "frame_id": fid, "ann_id": ann, "bbox": [0.2, 0.2, 0.3, 0.3]})
    return out


def _timed_refresh(spent: list[float]) -> None:
    """Record how long index refreshes take (the post-commit one is part of the commit's time)."""
    original = FrameTable.refresh_indices

    def refresh(table: FrameTable, merge: bool = True) -> None:
        t = time.perf_counter()
        original(table, merge)
        spent.append(time.perf_counter() - t)

    FrameTable.refresh_indices = refresh


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000_000])
    parser.add_argument("--changes", type=int, nargs="+", default=[1_000, 100_000])
    parser.add_argument("--repeat", type=int, default=3, help="commits per (size, changes) pair")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    DATA.mkdir(parents=True, exist_ok=True)
    store = hyperds.connect(DATA / "store")
    rng = np.random.default_rng(args.seed)
    spent: list[float] = []
    _timed_refresh(spent)
    print("| frames | changes | commit s | index refresh s | frames bytes written | history bytes written | attempts |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for n in args.sizes:
        t = time.perf_counter()
        ds = _dataset(store, n, args.seed)
        print(f"<!-- dataset of {n:,} frames ready in {time.perf_counter() - t:.1f} s -->", flush=True)
        for k in args.changes:
            if k > n:
                continue
            for _ in range(args.repeat if k <= 10_000 else 1):
                changes = _changes(ds, k, rng)
                spent.clear()
                frames_before = _tree_bytes(ds.uri)
                history_before = sum(_tree_bytes(store.table_uri(c)) for c in ("_commits", "_events")
                                     if os.path.exists(store.table_uri(c)))
                t = time.perf_counter()
                res = ds.commit(changes, author="bench", message=f"{k} corrections")
                elapsed = time.perf_counter() - t
                frames_written = _tree_bytes(ds.uri) - frames_before
                history_written = sum(_tree_bytes(store.table_uri(c)) for c in ("_commits", "_events")) - history_before
                print(f"| {n:,} | {k:,} | {elapsed:.3f} | {sum(spent):.3f} | {frames_written:,} | "
                      f"{history_written:,} | {res.attempts} |", flush=True)


if __name__ == "__main__":
    main()
