"""A writer process for the crash test: commits marker relabels in a loop until it is killed.

Usage: commit_crasher.py STORE DATASET. Commit k relabels annotation `<frame>:0` of every frame to `c<k>`.
"""

from __future__ import annotations

import sys

import hyperds


def main(store_uri: str, name: str) -> None:
    ds = hyperds.connect(store_uri).dataset(name)
    print("ready", flush=True)
    while True:
        rows = ds.to_arrow(columns=["frame_id", "revision", "annotations"]).to_pylist()
        label = rows[0]["annotations"][0]["label"]
        k = int(label[1:]) + 1 if label.startswith("c") else 1
        changes = [{"op": "relabel", "frame_id": r["frame_id"], "ann_id": f"{r['frame_id']}:0", "label": f"c{k}",
                    "revision": r["revision"]} for r in rows]
        ds.commit(changes, author="crasher", message=f"c{k}")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
