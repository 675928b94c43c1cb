"""A writer process for the concurrency tests: random annotation commits on shared and private frames.

Usage: commit_worker.py STORE DATASET WORKER N_COMMITS SEED OUT_JSON SHARED,IDS PRIVATE,IDS [STORAGE_OPTIONS_JSON]
Writes one JSON record per attempted commit: the changes and commit id, or the conflict it raised.
"""

from __future__ import annotations

import json
import random
import sys

import hyperds
from hyperds.errors import ConflictError
from hyperds.frames.table import sql_literal

LABELS = ["lion", "zebra", "gnu", "impala", "buffalo"]


def _changes(rng: random.Random, rows: list[dict], tag: str) -> list[dict]:
    changes = []
    for j, row in enumerate(rows):
        anns = [a["ann_id"] for a in row["annotations"]]
        base = {"frame_id": row["frame_id"], "revision": row["revision"]}
        kinds = ["add", "relabel", "move", "review"] + (["delete"] if len(anns) > 1 else [])
        op = rng.choice(kinds if anns else ["add"])
        if op == "add":
            changes.append({**base, "op": op, "ann_id": f"{row['frame_id']}:{tag}-{j}", "label": rng.choice(LABELS)})
            continue
        ann = rng.choice(anns)
        if op == "relabel":
            changes.append({**base, "op": op, "ann_id": ann, "label": rng.choice(LABELS)})
        elif op == "move":
            x, y = rng.random() * 0.5, rng.random() * 0.5
            changes.append({**base, "op": op, "ann_id": ann, "bbox": [x, y, 0.25, 0.25]})
        elif op == "review":
            status = rng.choice(["accept", "reject", "correct"])
            label = rng.choice(LABELS) if status == "correct" else None
            changes.append({**base, "op": op, "ann_id": ann, "status": status, "label": label, "note": tag})
        else:
            changes.append({**base, "op": op, "ann_id": ann})
    return changes


def main(store_uri: str, name: str, worker: int, n: int, seed: int, out: str, shared: str, private: str,
         options: dict | None = None) -> None:
    rng = random.Random(seed)
    ds = hyperds.connect(store_uri, options).dataset(name)
    shared_ids, private_ids = shared.split(","), private.split(",")
    records = []
    for i in range(n):
        disjoint = rng.random() < 0.3
        frames = rng.sample(private_ids, 1) if disjoint else rng.sample(shared_ids, rng.randint(1, 3))
        snapshot = ds.lance()
        flt = "frame_id IN (" + ", ".join(sql_literal(f) for f in frames) + ")"
        rows = sorted(snapshot.to_table(filter=flt).to_pylist(), key=lambda r: r["frame_id"])
        changes = _changes(rng, rows, f"w{worker}-{i}")
        record = {"worker": worker, "i": i, "disjoint": disjoint, "read_version": snapshot.version,
                  "seen": {r["frame_id"]: r["revision"] for r in rows}, "changes": changes}
        try:
            res = ds.commit(changes, author=f"w{worker}", message=f"w{worker}-{i}")
            record.update(ok=True, commit_id=res.commit_id, version=res.version, attempts=res.attempts)
        except ConflictError as exc:
            record.update(ok=False, conflict=exc.frame_ids, latest_after=ds.lance().version)
        except Exception as exc:  # noqa: BLE001 - reported to the test, which fails on it
            record.update(ok=False, error=repr(exc))
        records.append(record)
    with open(out, "w") as fh:
        json.dump(records, fh)


if __name__ == "__main__":
    a = sys.argv[1:]
    main(a[0], a[1], int(a[2]), int(a[3]), int(a[4]), a[5], a[6], a[7], json.loads(a[8]) if len(a) > 8 else None)
