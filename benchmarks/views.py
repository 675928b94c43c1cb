"""Views at scale: open a published view, resolve its frame ids vs the same pinned Lance query, diff versions.

Median of --repeat warm runs (3x as many, alternating with Lance, for resolving frame ids).
Ratio = hyperds time / Lance time (target <= 1.2 for resolving frame ids). The equivalent Lance
query returns the same array: the view's filter at the pinned version, ordered by frame_id as the
view is (Lance `order_by`); the unordered scan alone is shown below it. Uses its own store (it
appends frames).

    python benchmarks/views.py --n 1000000 [--store benchmarks/.data/views] [--repeat 5]
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import lance
import pyarrow as pa

import hyperds

sys.path.insert(0, str(Path(__file__).resolve().parent))
from synth import DATA, frames_batch, make_dataset  # noqa: E402

VIEWS = {
    # name: (view query, the equivalent hand-written Lance filter)
    "sites_2024": ("site IN ('S01', 'S02', 'S03', 'S04') AND captured_at >= '2024-01-01T00:00:00Z'",
                   "site IN ('S01', 'S02', 'S03', 'S04') AND captured_at >= TIMESTAMP '2024-01-01 00:00:00'"),
    "lions": ("array_has(labels, 'lion')", "array_has_any(labels, ['lion'])"),
}


def _median_ms(fn: Callable[[], object], repeat: int) -> tuple[float, object]:
    out = fn()  # warm-up
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times), out


def _paired(a: Callable[[], object], b: Callable[[], object], repeat: int) -> tuple[tuple[float, object], ...]:
    """Medians of a and b measured alternately, so load changes on a shared machine hit both alike."""
    out = [a(), b()]
    times: list[list[float]] = [[], []]
    for _ in range(repeat):
        for i, fn in enumerate((a, b)):
            t = time.perf_counter()
            out[i] = fn()
            times[i].append((time.perf_counter() - t) * 1000)
    return (statistics.median(times[0]), out[0]), (statistics.median(times[1]), out[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--store", default=str(DATA / "views"))
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    store = hyperds.connect(args.store)
    name = f"frames_{args.n}"
    # once versions are pinned, reopen as is (make_dataset would rebuild a table whose row count changed)
    ds = store.dataset(name) if name in store.datasets() else make_dataset(store, name, args.n)
    rows: list[tuple[str, str, float, float | None]] = []

    for view_name, (sql, lance_filter) in VIEWS.items():
        full = f"{view_name}_{args.n}"
        if full in set(store.views().column("name").to_pylist()):
            v1 = store.view(full, "1.0")
        else:
            t = time.perf_counter()
            # empty="keep": the Lance filter below keeps frames without a class too (issue 18: views drop them by default)
            v1 = store.create_view(full, sql, datasets=[name], empty="keep").publish("1.0", message="benchmark")
            rows.append((full, "publish 1.0 (resolve + digest + tags)", (time.perf_counter() - t) * 1000, None))
        pin = v1.pins[name]
        open_ms, _ = _median_ms(lambda full=full: hyperds.view(full, "1.0", store=args.store), args.repeat)
        rows.append((full, "open published view (one catalog row)", open_ms, None))
        uri = store.table_uri(name)
        fresh = iter([store.view(full, "1.0") for _ in range(3 * args.repeat + 1)])  # each opens its dataset anew
        (ids_ms, ids), (lance_ms, lance_ids) = _paired(
            lambda fresh=fresh: next(fresh).frame_ids(),
            lambda f=lance_filter: lance.dataset(uri, version=pin).to_table(columns=["frame_id"], filter=f,
                                                                            order_by=["frame_id"]).column("frame_id"),
            3 * args.repeat,
        )
        assert ids.equals(lance_ids.combine_chunks()), "view and Lance disagree"
        assert len(ids) == v1.frame_count
        rows.append((full, f"resolve frame ids, fresh view ({len(ids)} frames) | open + query", ids_ms, lance_ms))
        opened, handle = store.view(full, "1.0"), lance.dataset(uri, version=pin)
        (again_ms, _), (lance_again_ms, _) = _paired(
            opened.frame_ids,
            lambda f=lance_filter: handle.to_table(columns=["frame_id"], filter=f, order_by=["frame_id"]),
            3 * args.repeat,
        )
        rows.append((full, "resolve frame ids again, same view | same handle", again_ms, lance_again_ms))
        scan_ms, _ = _median_ms(lambda f=lance_filter: handle.to_table(columns=["frame_id"], filter=f), args.repeat)
        rows.append((full, "  (same handle, Lance scan unordered: the floor)", scan_ms, None))
        manifest_ms, _ = _median_ms(lambda full=full: store.view(full, "1.0").to_arrow(), 1)
        rows.append((full, "resolve full manifest (all columns)", manifest_ms, None))
        verify_ms, report = _median_ms(lambda full=full: store.view(full, "1.0").verify(), 1)
        assert report.ok, str(report)
        rows.append((full, "verify (re-resolve + SHA-256 digest)", verify_ms, None))

    # diff: 1% new frames, 0.1% deleted, then a new version of each view
    if ds.version == store.view(f"lions_{args.n}", "1.0").pins[name]:
        ds.add_frames(frames_batch(args.n, args.n // 100, seed=1))  # ids n .. n + 1% are new
        ds.lance().delete(f"frame_id < '{args.n // 1000:010d}'")
    for view_name in VIEWS:
        full = f"{view_name}_{args.n}"
        if "1.1" not in store.view(full, "1.0").versions():
            store.view(full, "draft").publish("1.1")
        diff_ms, d = _median_ms(lambda full=full: store.view(full, "1.1").diff("1.0"), 1)
        rows.append((full, f"diff 1.1 vs 1.0 ({d})", diff_ms, None))

    print(f"\nviews benchmark, N = {args.n:,} frames (median of {args.repeat} warm runs; 1 run for the slow rows)")
    print(f"{'view':<20} {'operation':<66} {'hyperds ms':>11} {'lance ms':>9} {'ratio':>6}")
    for view, op, ms, base in rows:
        ratio = f"{ms / base:6.2f}" if base else ""
        print(f"{view:<20} {op:<66} {ms:11.1f} {'' if base is None else f'{base:9.1f}':>9} {ratio:>6}")


if __name__ == "__main__":
    pa.set_cpu_count(2)
    main()
