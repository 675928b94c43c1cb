"""Concurrent and crashing writers (slow: real subprocesses, ~30-60 s each on 2 cores).

8 writer processes commit at random on overlapping frames: no update is lost (the table equals a serial
replay of the commits that succeeded), conflicts are real, disjoint commits never conflict. A writer killed
with SIGKILL at random points leaves the store at a whole commit with history to match.
"""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from commit_reference import comparable, replay

import hyperds
from hyperds.versioning.history import PROP, reconcile

HERE = Path(__file__).parent
pytestmark = pytest.mark.slow

WORKERS, COMMITS = 8, 30


def _initial(shared: list[str], private: list[str]) -> list[dict]:
    return [
        {"frame_id": f, "uri": f"file:///img/{f}.jpg",
         "annotations": [{"ann_id": f"{f}:0", "label": "lion", "source_kind": "model", "source": "md",
                          "confidence": 0.5},
                         {"ann_id": f"{f}:1", "label": "zebra", "bbox": [0.1, 0.1, 0.3, 0.3]}]}
        for f in shared + private
    ]


def race_commits(store: hyperds.Store, tmp_path: Path, workers: int, commits: int) -> tuple[list[dict], list[dict]]:
    """`workers` commit_worker.py processes, `commits` commits each, on shared and private frames of a new
    dataset "cams" in `store`; returns (initial frames, every worker's records)."""
    shared = [f"s{i}" for i in range(10)]
    private = {w: [f"p{w}a", f"p{w}b"] for w in range(workers)}
    frames = _initial(shared, [f for p in private.values() for f in p])
    store.create_dataset("cams").add_frames(frames)
    options = json.dumps(store.storage_options or {})
    procs = []
    for w in range(workers):
        out = tmp_path / f"w{w}.json"
        args = [store.uri, "cams", w, commits, 1000 + w, out, ",".join(shared), ",".join(private[w]), options]
        procs.append((out, subprocess.Popen([sys.executable, str(HERE / "commit_worker.py"), *map(str, args)])))
    for _, p in procs:
        assert p.wait(timeout=300) == 0
    records = [r for out, _ in procs for r in json.loads(out.read_text())]
    assert len(records) == workers * commits
    return frames, records


def check_no_lost_update(store: hyperds.Store, frames: list[dict], records: list[dict]) -> None:
    """The invariants of a commit race: no raw errors, real conflicts only, history = the successful commits."""
    assert [r["error"] for r in records if "error" in r] == []
    ok = [r for r in records if r["ok"]]
    conflicts = [r for r in records if not r["ok"]]
    ds = store.dataset("cams")
    # Disjoint commits never conflict; every conflict names frames that really changed after they were read.
    assert [r for r in conflicts if r["disjoint"]] == []
    for r in conflicts:
        assert r["conflict"] and set(r["conflict"]) <= set(r["seen"])
        later = store.open_lance("cams", version=r["latest_after"]).to_table(columns=["frame_id", "revision"])
        later = dict(zip(later["frame_id"].to_pylist(), later["revision"].to_pylist(), strict=True))
        assert all(later[f] != r["seen"][f] for f in r["conflict"]), r
    # The catalog holds exactly the successful commits, and so do the frames versions' transactions.
    log = ds.commits()
    by_id = {r["commit_id"]: r for r in ok}
    assert sorted(log["commit_id"].to_list()) == sorted(by_id)
    assert log["version_after"].to_list() == sorted(r["version"] for r in ok)
    assert committed_versions(ds) == log["version_after"].to_list()
    # Zero lost updates: a serial replay of the successful commits, in commit order, gives the same table.
    serial = [(f"w{by_id[c]['worker']}", by_id[c]["changes"]) for c in log["commit_id"].to_list()]
    assert comparable(ds.to_arrow().to_pylist()) == replay(frames, serial)


def committed_versions(ds: hyperds.Dataset) -> list[int]:
    """The frames versions whose Lance transaction carries a hyperds commit id, oldest first."""
    lds = ds.lance()
    return [v["version"] for v in lds.versions()
            if (tx := lds.read_transaction(v["version"])) and PROP + "id" in (tx.transaction_properties or {})]


def test_concurrent_writers_lose_no_update(tmp_path):
    store = hyperds.connect(tmp_path / "store")
    frames, records = race_commits(store, tmp_path, WORKERS, COMMITS)
    assert any(r["ok"] for r in records) and any(not r["ok"] for r in records), "the run must exercise both outcomes"
    check_no_lost_update(store, frames, records)


def test_sigkill_at_random_points_never_leaves_half_a_commit(tmp_path):
    uri = str(tmp_path / "store")
    frames = [f"f{i}" for i in range(5)]
    hyperds.connect(uri).create_dataset("cams").add_frames(_initial(frames, []))
    rng = random.Random(7)
    kills, markers, rebuilt = 12, [], 0
    for _ in range(kills):
        proc = subprocess.Popen([sys.executable, str(HERE / "commit_crasher.py"), uri, "cams"],
                                stdout=subprocess.PIPE, text=True)
        try:  # the writer loops forever: never leave it running, whatever fails here
            word, seconds = proc.stdout.readline().split()
            assert word == "ready"
            time.sleep(rng.uniform(0.0, 3 * float(seconds)))  # aim inside the next few commits
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=30)
            proc.stdout.close()
        ds = hyperds.connect(uri).dataset("cams")
        rebuilt += reconcile(ds)
        rows = ds.to_arrow().to_pylist()
        firsts = {r["annotations"][0]["label"] for r in rows}
        assert len(firsts) == 1, f"half a commit is visible: {firsts}"
        current = firsts.pop()
        k = int(current[1:]) if current.startswith("c") else 0
        assert {r["revision"] for r in rows} == {k}
        log = ds.commits()
        assert log["message"].to_list() == [f"c{i}" for i in range(1, k + 1)]
        for f in frames:
            hist = ds.history(f)
            assert hist["message"].to_list() == [f"c{i}" for i in range(1, k + 1)]
            assert hist["after"].struct.field("label").to_list() == [f"c{i}" for i in range(1, k + 1)]
        markers.append(k)
    assert markers[-1] >= kills, f"each writer commits once before it can be killed: {markers}"
    assert rebuilt >= 1, "no kill fell between a frames commit and its history writes"
