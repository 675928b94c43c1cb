"""A writer process for the crash test: commits marker relabels in a loop until it is killed.

Usage: commit_crasher.py STORE DATASET. Commit k relabels annotation `<frame>:0` of every frame to `c<k>`.
After its first commit it prints `ready <seconds that commit took>`, so the killer can aim inside commits.
"""

from __future__ import annotations

import sys
import time

import hyperds


def _commit_next(ds: hyperds.Dataset) -> None:
    rows = ds.to_arrow(columns=["frame_id", "revision", "annotations"]).to_pylist()
    label = rows[0]["annotations"][0]["label"]
    k = int(label[1:]) + 1 if label.startswith("c") else 1
    changes = [{"op": "relabel", "frame_id": r["frame_id"], "ann_id": f"{r['frame_id']}:0", "label": f"c{k}",
                "revision": r["revision"]} for r in rows]
    ds.commit(changes, author="crasher", message=f"c{k}")


def main(store_uri: str, name: str) -> None:
    ds = hyperds.connect(store_uri).dataset(name)
    start = time.perf_counter()
    _commit_next(ds)
    print(f"ready {time.perf_counter() - start:.4f}", flush=True)
    while True:
        _commit_next(ds)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
