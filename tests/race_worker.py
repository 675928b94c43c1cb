"""One racing writer for tests/test_races.py: a single write of one kind, released on a signal.

Usage: race_worker.py SPEC_JSON, where SPEC is {"store", "storage_options", "dataset", "kind", ...}.
It opens the store, prints "ready", waits for one line on stdin (so all racers start together),
does its write and prints one JSON line: {"ok": true, ...what it wrote} or {"ok": false, "error":
class name, "hyperds": whether it is a HyperdsError, "message"}.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
import traceback

import numpy as np

import hyperds
from hyperds.errors import HyperdsError


def _write(store: hyperds.Store, spec: dict) -> dict:
    kind = spec["kind"]
    if kind == "publish":
        view = store.view(spec["view"], "draft").publish(spec["version"], author=spec["author"])
        return {"version": view.version, "digest": view.digest, "pins": view.pins}
    if kind == "cleanup":
        res = store.cleanup(older_than=dt.timedelta(seconds=spec.get("older_than_s", 0)))
        return {"versions_removed": res.versions_removed}
    ds = store.dataset(spec["dataset"])
    if kind == "commit":
        res = ds.commit(spec["changes"], author=spec["author"], message=spec["message"])
        return {"commit_id": res.commit_id, "version": res.version}
    if kind == "predict":
        res = ds.add_predictions(spec["rows"], model=spec["model"], run_id=spec["run_id"])
        return {"commit_id": res.commit.commit_id if res.commit else None, "added": res.added}
    if kind == "embed":
        ids = spec["frame_ids"]
        res = ds.add_embeddings(ids, np.full((len(ids), spec["dim"]), spec["value"], np.float32),
                                model=spec["model"], index=False)
        return {"version": res.version}
    if kind == "add_frames":
        res = ds.add_frames(spec["rows"])
        return {"inserted": res.inserted}
    if kind == "ingest":
        res = ds.ingest(spec["uri"], layout=spec.get("layout"), storage_options=spec.get("source_options"),
                        progress=False)
        return {"ingested": res.ingested}
    raise ValueError(kind)


def main(spec: dict) -> None:
    store = hyperds.connect(spec["store"], spec.get("storage_options"))
    store.datasets()  # the connection is opened before the start signal
    print("ready", flush=True)
    sys.stdin.readline()
    try:
        out = {"ok": True, **_write(store, spec)}
    except HyperdsError as exc:
        out = {"ok": False, "error": type(exc).__name__, "hyperds": True, "message": str(exc)}
    except Exception as exc:  # noqa: BLE001 - a raw exception is a failure the test reports
        out = {"ok": False, "error": type(exc).__name__, "hyperds": False, "message": traceback.format_exc()}
    print(json.dumps(out, default=str), flush=True)


if __name__ == "__main__":
    main(json.loads(sys.argv[1]))
