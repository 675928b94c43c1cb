"""Rows a LIMIT query reads (Lance's own scan counters) and its time, against the whole table: LIMIT pushdown.

Usage: python benchmarks/limit.py --n 10000000 [--store DIR]
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import hyperds  # noqa: E402
from hyperds import storage  # noqa: E402
from synth import make_dataset  # noqa: E402

QUERIES = [
    ("SELECT * LIMIT 100", "SELECT * FROM {ds} LIMIT 100"),
    ("site = 'S07' LIMIT 100", "SELECT * FROM {ds} WHERE site = 'S07' LIMIT 100"),
    ("ORDER BY frame_id LIMIT 100 OFFSET 1000", "SELECT frame_id FROM {ds} ORDER BY frame_id LIMIT 100 OFFSET 1000"),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--store", default="benchmarks/.data/limit")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    store = hyperds.connect(args.store)
    name = f"frames_{args.n}"
    ds = store.dataset(name) if name in store.datasets() else make_dataset(store, name, args.n)
    print(f"| query | table rows | rows read | rows returned | median ms |\n|---|---:|---:|---:|---:|")
    for label, text in QUERIES:
        query = ds.query(text.format(ds=name))
        with storage.scan.counting() as stats:
            out = query.to_arrow()
        times = []
        for _ in range(args.repeat):
            start = time.perf_counter()
            query.to_arrow()
            times.append((time.perf_counter() - start) * 1e3)
        print(f"| {label} | {len(ds):,} | {storage.scan.rows_read(stats):,} | {out.num_rows} | "
              f"{statistics.median(times):.1f} |")


if __name__ == "__main__":
    main()
