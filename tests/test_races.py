"""Races on S3 and across kinds of writers (slow: real processes, on a local store and on moto S3).

Commits and publishes race on the moto S3 store as they do locally (tests/test_commits_concurrency.py,
tests/test_views_concurrency.py). Then different writers race each other, each one a process released
together with the others (tests/race_worker.py): a model's predictions against a person's commit,
embeddings against a commit, cleanup against publishes and commits, two ingests and three imports of
the same frames. After each race: every racer either succeeded or raised a hyperds error (never a
raw exception); what reported success is in the history exactly once; no frame is stored twice; a
person's label is never replaced by a model's; every published view verifies; the frames versions,
the commit catalog and each frame's history agree.
"""

from __future__ import annotations

import collections
import datetime as dt
import json
import subprocess
import sys
from pathlib import Path

import pytest
from test_commits_concurrency import check_no_lost_update, committed_versions, race_commits
from test_views_concurrency import race_publishes

import hyperds
from conftest import DATA

HERE = Path(__file__).parent
pytestmark = pytest.mark.slow

MODEL = "md@1"


@pytest.fixture(params=["local", "s3"])
def race_store(request, tmp_path) -> hyperds.Store:
    if request.param == "local":
        return hyperds.connect(tmp_path / "store")
    bucket, _ = request.getfixturevalue("s3_bucket")
    return hyperds.connect(f"s3://{bucket}/store", request.getfixturevalue("s3_storage_options"))


def race(store: hyperds.Store, *specs: dict) -> list[dict]:
    """Run one race_worker.py process per spec, release them together; their outcomes, in spec order."""
    procs = []
    try:
        for spec in specs:
            spec = {"store": store.uri, "storage_options": store.storage_options, **spec}
            procs.append(subprocess.Popen([sys.executable, str(HERE / "race_worker.py"), json.dumps(spec)],
                                          stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True))
        for p in procs:
            assert p.stdout.readline().strip() == "ready"
        for p in procs:
            p.stdin.write("go\n")
            p.stdin.flush()
        outcomes = [json.loads(p.stdout.readline()) for p in procs]
    finally:
        for p in procs:
            if p.wait(timeout=240) != 0:
                p.kill()
            p.stdin.close()
            p.stdout.close()
    raw = [o for o in outcomes if not o["ok"] and not o["hyperds"]]
    assert raw == [], "a racer failed with a raw exception, not a hyperds error:\n" + "\n".join(o["message"] for o in raw)
    return outcomes


def check_history(ds: hyperds.Dataset, outcomes: list[dict], commits_before: int) -> None:
    """No frame twice; the catalog holds each successful commit once; versions and catalog agree."""
    ids = ds.to_arrow(columns=["frame_id"])["frame_id"].to_pylist()
    assert [f for f, n in collections.Counter(ids).items() if n > 1] == []
    log = ds.commits()
    won = [o["commit_id"] for o in outcomes if o["ok"] and o.get("commit_id")]
    assert log.height == commits_before + len(won)
    assert sorted(c for c in log["commit_id"].to_list() if c in won) == sorted(won)
    kept = {v["version"] for v in ds.lance().versions()}  # cleanup may have removed old ones
    assert committed_versions(ds) == [v for v in log["version_after"].to_list() if v in kept]


def _frames(n: int) -> list[dict]:
    """Frames carrying one unreviewed detection of MODEL each (ann_id `<frame_id>:0`)."""
    return [{"frame_id": f"f{i}", "uri": f"img/{i}.jpg",
             "annotations": [{"label": "lion", "source_kind": "model", "source": MODEL, "confidence": 0.4,
                              "bbox": [0.1, 0.1, 0.2, 0.2]}]} for i in range(n)]


def test_commits_race_on_s3(s3_bucket, s3_storage_options, tmp_path):
    store = hyperds.connect(f"s3://{s3_bucket[0]}/store", s3_storage_options)
    frames, records = race_commits(store, tmp_path, workers=4, commits=6)
    check_no_lost_update(store, frames, records)


def test_publishes_race_on_s3(s3_bucket, s3_storage_options):
    race_publishes(hyperds.connect(f"s3://{s3_bucket[0]}/store", s3_storage_options), rounds=2)


def test_predictions_never_replace_a_persons_label(race_store):
    """A model re-run (replacing its unreviewed detections) races a person who relabels or accepts them."""
    ds = race_store.create_dataset("cams")
    ds.add_frames(_frames(6))
    frames = [f"f{i}" for i in range(6)]
    for round_ in range(2):
        if round_:  # a fresh unreviewed detection of the model on every frame, for the person to take over
            ds.add_predictions([{"frame_id": f, "label": "lion", "confidence": 0.4} for f in frames], model=MODEL,
                               run_id=f"seed{round_}")
        rows = {r["frame_id"]: r for r in ds.to_arrow(columns=["frame_id", "revision", "annotations"]).to_pylist()}
        open_ids = {f: [a["ann_id"] for a in rows[f]["annotations"] if a["source"] == MODEL
                        and a["review_status"] == "unreviewed"] for f in frames}
        touched = frames[round_ : round_ + 3]
        person = [{"op": "relabel", "frame_id": f, "ann_id": open_ids[f][0], "label": f"zebra{round_}",
                   "revision": rows[f]["revision"]} for f in touched[:2]]
        person += [{"op": "review", "frame_id": f, "ann_id": open_ids[f][0], "status": "accept",
                    "revision": rows[f]["revision"]} for f in touched[2:]]
        preds = [{"frame_id": f, "label": "gnu", "bbox": [0.2, 0.2, 0.3, 0.3], "confidence": 0.9} for f in frames]
        before = ds.commits().height
        outcomes = race(race_store,
                        {"dataset": "cams", "kind": "commit", "changes": person, "author": "alice", "message": f"p{round_}"},
                        {"dataset": "cams", "kind": "predict", "rows": preds, "model": MODEL, "run_id": f"r{round_}"})
        human, model = outcomes
        assert human["ok"] or human["error"] == "ConflictError", human
        assert model["ok"] or model["error"] == "ConflictError", model
        assert human["ok"] or model["ok"], "one of two writers must win"
        check_history(ds, outcomes, before)
        after = {r["frame_id"]: r for r in ds.to_arrow(columns=["frame_id", "annotations"]).to_pylist()}
        if human["ok"]:  # whatever the order, the model left the person's annotations alone
            for c in person:
                ann = next(a for a in after[c["frame_id"]]["annotations"] if a["ann_id"] == c["ann_id"])
                if c["op"] == "relabel":
                    assert (ann["label"], ann["source_kind"], ann["source"]) == (c["label"], "human", "alice")
                else:
                    assert (ann["review_status"], ann["reviewed_by"]) == ("accepted", "alice")
        if model["ok"]:  # the run's detections are on every frame, its earlier unreviewed ones gone
            for f in frames:
                mine = [a for a in after[f]["annotations"] if a["source"] == MODEL and a["review_status"] == "unreviewed"]
                assert [a["ann_id"] for a in mine] == [f"{f}:{MODEL}:r{round_}:0"]
    for f in frames:  # every annotation a person set is still the person's in the blame
        blame = ds.blame(f)
        assert all(s != MODEL for s, lab in zip(blame["set_by"], blame["label"]) if lab.startswith("zebra"))


def test_embeddings_race_a_commit(race_store):
    """add_embeddings (a column merge, then a partial-schema update) against a person's commit on the same frames."""
    ds = race_store.create_dataset("cams")
    ds.add_frames(_frames(4))
    frames = [f"f{i}" for i in range(4)]
    for round_ in range(2):
        rows = {r["frame_id"]: r for r in ds.to_arrow(columns=["frame_id", "revision"]).to_pylist()}
        person = [{"op": "add", "frame_id": f, "ann_id": f"{f}:h{round_}", "label": "impala",
                   "revision": rows[f]["revision"]} for f in frames]
        before = ds.commits().height
        outcomes = race(race_store,
                        {"dataset": "cams", "kind": "commit", "changes": person, "author": "bob", "message": f"e{round_}"},
                        {"dataset": "cams", "kind": "embed", "frame_ids": frames, "dim": 4, "value": round_ + 1.0,
                         "model": "emb@1"})
        commit, embed = outcomes
        check_history(ds, outcomes, before)
        after = {r["frame_id"]: r for r in ds.to_arrow(columns=["frame_id", "annotations", "embedding"]).to_pylist()}
        # embeddings do not bump the revision, so neither writer may be refused for the other
        assert commit["ok"] and embed["ok"], outcomes
        for f in frames:  # neither write lost the other
            assert f"{f}:h{round_}" in [a["ann_id"] for a in after[f]["annotations"]]
            assert after[f]["embedding"] == [round_ + 1.0] * 4


def test_cleanup_races_publishes_and_commits(race_store):
    """store.cleanup(older_than=0) while a person commits and two views publish: every published view verifies."""
    ds = race_store.create_dataset("cams")
    ds.add_frames(_frames(5))
    for name in ("a", "b"):
        race_store.create_view(name, "count_annotations() > 0", datasets=["cams"])
    for round_ in range(2):
        rev = ds.get("f0")["revision"]
        change = [{"op": "relabel", "frame_id": "f0", "ann_id": "f0:0", "label": f"l{round_}", "revision": rev}]
        before = ds.commits().height
        outcomes = race(race_store,
                        {"kind": "cleanup", "older_than_s": 0},
                        {"dataset": "cams", "kind": "commit", "changes": change, "author": "alice", "message": f"c{round_}"},
                        {"kind": "publish", "view": "a", "version": f"1.{round_}", "author": "t"},
                        {"kind": "publish", "view": "b", "version": f"1.{round_}", "author": "t"})
        assert all(o["ok"] for o in outcomes), outcomes
        check_history(ds, outcomes, before)
        for name, o in zip("ab", outcomes[2:]):
            view = race_store.view(name, o["version"])
            assert view.digest == o["digest"] and view.pins == o["pins"]
    race_store.cleanup(older_than=dt.timedelta(0))
    for row in race_store.views().to_pylist():
        if row["status"] == "published":
            report = race_store.view(row["name"], row["version"]).verify()
            assert report.ok and not report.warnings, (row["name"], row["version"], report.problems, report.warnings)


def _photos() -> list[Path]:
    return sorted((DATA / "serengeti-thumbs").glob("*.JPG"))[:12]


def test_two_ingests_of_the_same_frames(race_store, tmp_path, s3_bucket, s3_storage_options):
    """Two ingests of one folder (local files into the local store, S3 objects into the S3 one) and three
    imports of the same frames: each frame stored once."""
    bucket, client = s3_bucket
    on_s3 = race_store.uri.startswith("s3://")
    for p in _photos():
        if on_s3:
            client.put_object(Bucket=bucket, Key=f"photos/s1/c1/{p.name}", Body=p.read_bytes())
        else:
            (tmp_path / "photos" / "s1" / "c1").mkdir(parents=True, exist_ok=True)
            (tmp_path / "photos" / "s1" / "c1" / p.name).write_bytes(p.read_bytes())
    uri, options = (f"s3://{bucket}/photos", s3_storage_options) if on_s3 else (str(tmp_path / "photos"), None)
    race_store.create_dataset("ingest")
    outcomes = race(race_store, *[{"dataset": "ingest", "kind": "ingest", "uri": uri, "layout": "{site}/{camera}/{name}",
                                   "source_options": options}] * 2)
    assert all(o["ok"] for o in outcomes), outcomes
    assert sum(o["ingested"] for o in outcomes) == len(_photos())  # each image ingested by one of them
    check_history(race_store.dataset("ingest"), outcomes, 0)
    assert len(race_store.dataset("ingest")) == len(_photos())
    ds = race_store.create_dataset("imports")
    ds.add_frames([{"frame_id": "seed", "uri": "img/seed.jpg"}])
    frames = _frames(8)
    outcomes = race(race_store, *[{"dataset": "imports", "kind": "add_frames", "rows": frames}] * 3)
    assert all(o["ok"] for o in outcomes) and sum(o["inserted"] for o in outcomes) == 8, outcomes
    check_history(ds, outcomes, 0)
    assert len(ds) == 9
