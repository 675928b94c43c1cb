"""Daily use: 1k-change commits interleaved with Q2/Q3/Q4; do the fast paths survive the writes?

Each round commits k corrections (relabels, reviews, moves, adds on k random frames, as
benchmarks/commits.py makes them), then times Q2, Q3 and Q4 (benchmarks/query.py) and checks each answer
against the same query with the side tables hidden (a scan of the nested lists). The first row is the
state right after a full `optimize()`; later rows give each query's ratio to it (target: within 1.5x),
and each commit's time and the bytes it wrote under the frames table's folder (frames, indices and side
tables; target: under 1 s and 5 MB at 10M frames).

Usage: python benchmarks/daily.py [--n 1000000] [--rounds 5] [--changes 1000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

import hyperds
from hyperds.query import analytic, query as query_mod

sys.path.insert(0, str(Path(__file__).resolve().parent))
from commits import DATA, _changes, _dataset, _tree_bytes  # noqa: E402
from query import canonical, queries, run_hyperds  # noqa: E402

NAMES = ("Q2 site+month+lion", "Q3 confident model lion", "Q4 frames per label")


def _scan_answer(store: hyperds.Store, ds, text: str):
    """The answer with no side table visible: what the fast path must equal."""
    saved = query_mod.open_annotation_table, analytic.open_annotation_table
    query_mod.open_annotation_table = analytic.open_annotation_table = lambda *a, **k: None
    try:
        return canonical(run_hyperds(store, ds, text))
    finally:
        query_mod.open_annotation_table, analytic.open_annotation_table = saved


def _times(store: hyperds.Store, ds, texts: dict[str, str], repeat: int) -> dict[str, float]:
    out = {}
    for name, text in texts.items():
        got = canonical(run_hyperds(store, ds, text))  # warm, and checked
        if got != _scan_answer(store, ds, text):
            raise SystemExit(f"{name}: the fast path's answer differs from the scan's after the writes")
        spent = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            run_hyperds(store, ds, text)
            spent.append(time.perf_counter() - t0)
        out[name] = statistics.median(spent) * 1000
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--changes", type=int, default=1_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    DATA.mkdir(parents=True, exist_ok=True)
    store = hyperds.connect(DATA / "store")
    rng = np.random.default_rng(args.seed)
    ds = _dataset(store, args.n, args.seed)
    t0 = time.perf_counter()
    ds.optimize()
    print(f"<!-- {args.n:,} frames; optimize() {time.perf_counter() - t0:.1f} s -->")
    point = ds.to_arrow(["frame_id"]).column("frame_id")[0].as_py()
    texts = {name: spec["hyperds"] for name, spec in queries(ds.name, point).items() if name in NAMES}
    base = _times(store, ds, texts, args.repeat)
    print("| round | commit s | bytes written | " + " | ".join(f"{n.split()[0]} ms (x)" for n in NAMES) + " |")
    print("|---:|---:|---:|" + "---:|" * len(NAMES))
    print("| optimize | - | - | " + " | ".join(f"{base[n]:.1f} (1.00)" for n in NAMES) + " |", flush=True)
    for r in range(1, args.rounds + 1):
        changes = _changes(ds, args.changes, rng)
        before = _tree_bytes(ds.uri)
        t0 = time.perf_counter()
        ds.commit(changes, author="bench", message=f"round {r}")
        spent = time.perf_counter() - t0
        written = _tree_bytes(ds.uri) - before
        now = _times(store, ds, texts, args.repeat)
        cells = " | ".join(f"{now[n]:.1f} ({now[n] / base[n]:.2f})" for n in NAMES)
        print(f"| {r} | {spent:.3f} | {written:,} | {cells} |", flush=True)


if __name__ == "__main__":
    main()
