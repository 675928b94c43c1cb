"""The rejected-annotations rule end to end: a rejected annotation is not a label of its frame.

The README's shell tour (view `animals`, an auto-accept and the review round of examples/review_round1.csv,
publish 1.1) on the real MegaDetector sample, checked against a plain-Python model of the round built from
the JSON and the CSV; a view published by a hyperds from before the rule (its `_views` row written without
the new columns) keeps resolving to its recorded digest; audit queries reach rejected annotations on purpose.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
from collections import defaultdict
from pathlib import Path

import lance
import polars as pl
import pyarrow as pa
import pytest
import views_reference as ref
from conftest import MD_JSON, run_cli

from hyperds.errors import LoaderError, ViewError
from hyperds.frames.summary import summarize
from hyperds.views import catalog as cat

REVIEWS = Path(__file__).resolve().parents[1] / "examples" / "review_round1.csv"
THRESHOLD = 0.9
TOUR_QUERY = "any_annotation(label = 'animal')"


def _round_model() -> tuple[dict, dict, list[dict]]:
    """(annotations before the review, after it, the review rows): (frame, index) -> [label, status]."""
    doc = json.loads(MD_JSON.read_text())
    names = doc["detection_categories"]
    before = {}
    for im in doc["images"]:
        confs = [d["conf"] for d in im["detections"]]
        auto = bool(confs) and min(confs) >= THRESHOLD  # `hyperds review accept --threshold 0.9`, per frame
        for i, d in enumerate(im["detections"]):
            before[(im["file"], i)] = [names[d["category"]], "accepted" if auto else "unreviewed"]
    after = {k: list(v) for k, v in before.items()}
    with open(REVIEWS, newline="") as fh:
        rows = list(csv.DictReader(fh))
    for row in rows:
        frame, index = row["ann_id"].rsplit(":", 1)
        ann = after[(frame, int(index))]
        ann[1] = {"accept": "accepted", "reject": "rejected", "correct": "corrected"}[row["status"]]
        ann[0] = row["label"] or ann[0]
    return before, after, rows


def _animals(anns: dict) -> dict[str, list[str]]:
    """The `animals` view under the rule: frames with an 'animal' not rejected -> their labels not rejected."""
    frames = defaultdict(list)
    for (f, _), (label, status) in anns.items():
        frames[f].append((label, status))
    return {f: sorted({lab for lab, s in v if s != "rejected"}) for f, v in frames.items()
            if any(lab == "animal" and s != "rejected" for lab, s in v)}


def _tour(store, capsys) -> None:
    """The README's shell tour, up to the second publish."""
    def cli(*argv: str) -> str:
        code, out, err = run_cli(store, capsys, *argv)
        assert code == 0, err
        return out

    cli("import", "megadetector", str(MD_JSON), "--dataset", "md")
    cli("view", "create", "animals", "--dataset", "md", "--query", TOUR_QUERY)
    cli("view", "publish", "animals")
    cli("review", "accept", "md", "--threshold", str(THRESHOLD))
    cli("commit", "md", str(REVIEWS), "--author", "ana", "--message", "review round 1")
    cli("view", "publish", "animals")


def test_shell_tour_after_the_review_round(store, capsys):
    _tour(store, capsys)
    before, after, _ = _round_model()
    v10, v11 = store.view("animals", "1.0"), store.view("animals", "1.1")

    # 1.1 holds exactly the frames with an animal nobody rejected, and none without a class
    got = dict(zip(v11.frame_ids().to_pylist(), v11.to_arrow(["classes"]).column("classes").to_pylist(), strict=True))
    assert got == _animals(after)
    assert all(got.values()) and v11.rule == 2 and v11.empty == "drop"

    # 1.0 still verifies with the digest recorded when it was published
    recorded = v10.digest
    report = v10.verify()
    assert report.ok and report.actual_digest == recorded and len(v10) == len(_animals(before))

    # the diff names the frames that left because a person rejected their animals
    left = set(_animals(before)) - set(_animals(after))
    rejected = {f for f in left if any(after[k][1] == "rejected" and before[k][1] != "rejected"
                                       for k in before if k[0] == f)}
    assert rejected, "the review file rejects every animal of some frame"
    d = v11.diff("1.0")
    assert set(d.removed["frame_id"]) == left and set(d.removed_rejected["frame_id"]) == rejected
    assert d.relabeled.height == 0  # no frame keeps its place with a class emptied
    code, out, _ = run_cli(store, capsys, "view", "diff", "animals", "1.0", "1.1", "--rows", "100")
    assert code == 0 and f"{len(left)} removed ({len(rejected)} rejected)" in out.splitlines()[0]
    assert "removed (rejected):" in out and f"shape: ({len(rejected)}, " in out


def test_audit_query_finds_exactly_the_rejected_detections(store, capsys):
    _tour(store, capsys)
    _, _, rows = _round_model()
    rejected = [r for r in rows if r["status"] == "reject"]
    detector = json.loads(MD_JSON.read_text())["info"]["detector"]
    md = store.dataset("md")
    audit = f"any_annotation(review_status = 'rejected' AND source = '{detector}')"
    by_frame = defaultdict(int)
    for r in rejected:
        by_frame[r["frame_id"]] += 1
    for side_table in (False, True):
        if side_table:
            md.optimize()  # the same answer from the annotation side table
        assert md.query(audit).frame_ids().to_pylist() == sorted(by_frame)
        counted = md.query(f"count_annotations(review_status = 'rejected' AND source = '{detector}') >= 2")
        assert counted.frame_ids().to_pylist() == sorted(f for f, n in by_frame.items() if n >= 2)
    n = store.sql("SELECT count(*) AS n FROM md__annotations WHERE review_status = 'rejected'")["n"][0]
    assert n == len(rejected)
    # without naming review_status, the rejected detections are invisible: not labels, not annotations
    only_rejected = [f for f in by_frame if not md.query(f"frame_id = '{f}' AND count_annotations() > 0").count()]
    for f in only_rejected:
        assert md.get(f)["labels"] == []


def _old_views_schema() -> pa.Schema:
    """`_views` as hyperds wrote it before the rule: without the `empty` and `rule` columns."""
    return pa.schema([f for f in cat.VIEWS_SCHEMA if f.name not in cat.LATER_VIEW_COLUMNS])


def test_view_published_before_the_rule_keeps_its_digest(store, capsys):
    """A `_views` row written as an older hyperds wrote it (old schema, no rule) resolves with the old rule."""
    code, _, err = run_cli(store, capsys, "import", "megadetector", str(MD_JSON), "--dataset", "md")
    assert code == 0, err
    md = store.dataset("md")
    md.auto_accept(THRESHOLD)
    md.commit(pl.read_csv(REVIEWS, infer_schema=False), author="ana", message="review round 1")
    pin = md.version
    rows = md.to_arrow().to_pylist()
    # the old rule: any_annotation saw rejected annotations; no label map, so frames without a class stayed
    old = ref.manifest({"md": rows}, [("default", lambda r: any(a["label"] == "animal" for a in r["annotations"]))],
                       rule=1)
    assert any(not r["classes"] for r in old), "the old rule kept frames whose animals were all rejected"
    digest = ref.digest(old)
    row = {
        "name": "animals", "version": "1.0", "status": cat.PUBLISHED,
        "queries": [{"name": "default", "sql": TOUR_QUERY, "weight": 1.0}],
        "datasets": [{"dataset": "md", "version": pin}], "label_map": None, "unknown_labels": None,
        "split_by": None, "split_fractions": None, "split_seed": None, "frame_count": len(old), "digest": digest,
        "parts": [{"dataset": "md", "subquery": "default", "frame_count": len(old), "digest": digest}],
        "parent": None, "created_by": "hyperds-0.x", "created_at": dt.datetime.now(dt.UTC), "message": "",
    }
    lance.write_dataset(pa.Table.from_pylist([row], schema=_old_views_schema()), store.table_uri(cat.VIEWS))
    store.open_lance("md").tags.create(cat.tag_name("animals", "1.0"), pin)

    v10 = store.view("animals", "1.0")
    assert v10.rule == 1 and v10.empty == "keep"
    report = v10.verify()
    assert report.ok and report.warnings == [] and report.actual_digest == digest, str(report)
    assert v10.frame_ids().to_pylist() == [r["frame_id"] for r in old]

    # a publish by this hyperds adds the columns, stamps the current rule, and leaves 1.0 as it was
    code, out, err = run_cli(store, capsys, "view", "create", "animals", "--dataset", "md", "--query", TOUR_QUERY)
    assert code == 0, err
    code, out, err = run_cli(store, capsys, "view", "publish", "animals")
    assert code == 0 and "1.1" in out, err
    assert set(cat.LATER_VIEW_COLUMNS) <= set(store.open_lance(cat.VIEWS).schema.names)
    v10, v11 = store.view("animals", "1.0"), store.view("animals", "1.1")
    assert v10.verify().ok and v10.digest == digest and v10.rule == 1
    live = {r["frame_id"] for r in old
            if any(a["label"] == "animal" and a["review_status"] != "rejected" for a in r["annotations"])}
    classes = v11.to_arrow(["classes"]).column("classes").to_pylist()
    assert v11.rule == 2 and all(classes) and v11.frame_ids().to_pylist() == sorted(live)
    assert any(r["classes"] and r["frame_id"] not in live for r in old)  # left with a class, for rejected animals
    d = v11.diff("1.0")  # nothing was written between: only the rule differs, every removal is for rejections
    assert set(d.removed_rejected["frame_id"]) == set(d.removed["frame_id"]) == {r["frame_id"] for r in old} - live
    assert d.added.height == 0 and d.relabeled.height == 0
    code, out, _ = run_cli(store, capsys, "view", "show", "animals", "--version", "1.0")
    assert code == 0 and "rejected-annotations rule 1" in out


def test_empty_option_keeps_or_drops_frames_without_a_class(store, capsys):
    ds = store.create_dataset("cams")
    ds.add_frames([
        {"frame_id": "a", "uri": "a.jpg", "annotations": [{"label": "lion"}]},
        {"frame_id": "b", "uri": "b.jpg", "annotations": [{"label": "lion", "review_status": "rejected"}]},
        {"frame_id": "c", "uri": "c.jpg", "annotations": []},
        {"frame_id": "d", "uri": "d.jpg", "annotations": [{"label": "gnu"}]},
    ])
    assert store.create_view("all", "TRUE", datasets=["cams"]).frame_ids().to_pylist() == ["a", "d"]
    kept = store.create_view("all", "TRUE", datasets=["cams"], empty="keep").publish()
    assert kept.frame_ids().to_pylist() == ["a", "b", "c", "d"] and kept.empty == "keep"
    assert store.view("all", "1.0").to_arrow(["classes"]).column("classes").to_pylist() == [["lion"], [], [], ["gnu"]]
    mapped = store.create_view("m", "TRUE", datasets=["cams"], label_map={"lion": "cat"}, empty="keep")
    assert mapped.to_arrow(["frame_id", "classes"]).to_pylist() == [
        {"frame_id": f, "classes": c} for f, c in (("a", ["cat"]), ("b", []), ("c", []), ("d", []))]
    assert mapped.update(empty="drop").frame_ids().to_pylist() == ["a"]
    assert store.view("m", "draft").update(message="kept option").empty == "drop"  # update keeps the option
    with pytest.raises(ViewError, match="empty must be one of drop, keep"):
        store.create_view("bad", "TRUE", datasets=["cams"], empty="maybe")
    code, out, _ = run_cli(store, capsys, "view", "create", "cli", "-d", "cams", "-q", "TRUE", "--empty", "keep")
    assert code == 0 and "4 frames now" in out
    code, out, _ = run_cli(store, capsys, "view", "show", "cli", "--version", "draft")
    assert code == 0 and "frames without a class: keep; rejected-annotations rule 2" in out
    with pytest.raises(SystemExit) as exc:  # argparse refuses other values before any work
        run_cli(store, capsys, "view", "create", "cli", "-d", "cams", "-q", "TRUE", "--empty", "maybe")
    assert exc.value.code == 2
    # a frame whose lions were all rejected is not a lion frame, in queries, labels and summaries alike
    assert ds.query("any_annotation(label = 'lion')").frame_ids().to_pylist() == ["a"]
    by_label = summarize(ds)["annotations by label"]
    assert dict(zip(by_label["label"], by_label["annotations"], strict=True)) == {"lion": 1, "gnu": 1}
    assert summarize(ds)["overview"]["annotations"][0] == 3
    assert ds.query("any_annotation(label = 'lion' AND review_status = 'rejected')").frame_ids().to_pylist() == ["b"]


def test_review_and_selection_views_keep_frames_without_a_class(store):
    """Work lists for people: a selected frame may have no label at all; it must stay in the view."""
    ds = store.create_dataset("cams")
    ds.add_frames([{"frame_id": f"f{i}", "uri": f"{i}.jpg", "site": "S1", "annotations": []} for i in range(4)]
                  + [{"frame_id": "m", "uri": "m.jpg", "annotations": [
                      {"label": "lion", "source_kind": "model", "confidence": 0.5}]}])
    picked = ds.select(k=5, strategy="random")
    assert len(picked) == 5 and picked.empty == "keep"
    queue = ds.review_queue(0.9)
    assert queue.frame_ids().to_pylist() == ["m"] and queue.empty == "keep"
    ds.commit([{"op": "review", "frame_id": "m", "ann_id": "m:0", "status": "reject"}], author="ana")
    assert len(ds.review_queue(0.9)) == 0  # a rejected detection is decided: it leaves the queue
    assert ds.select(k=5, strategy="uncertainty").frame_ids().to_pylist() == ["f0", "f1", "f2", "f3"]


def test_loader_targets_never_empty_for_a_label_query(store):
    """Loader targets follow the rule: a frame selected by its label has that label as a target."""
    pytest.importorskip("torch")
    from hyperds.loaders.torch import FrameDataset

    ds = store.create_dataset("cams")
    ds.add_frames([
        {"frame_id": "a", "uri": "a.jpg", "annotations": [{"label": "lion"}]},
        {"frame_id": "b", "uri": "b.jpg", "annotations": [{"label": "lion", "review_status": "rejected"}]},
        {"frame_id": "c", "uri": "c.jpg", "annotations": [{"label": "lion"}, {"label": "gnu", "review_status": "rejected"}]},
    ])
    data = FrameDataset(ds.query("any_annotation(label = 'lion')"), target="classification", classes=["lion", "gnu"])
    assert len(data) == 2  # b's only lion is rejected: not selected, so no frame without a target
    view = store.create_view("v", "TRUE", datasets=["cams"], label_map={"lion": "cat", "gnu": "antelope"})
    assert FrameDataset(view, target="classification").classes == ["antelope", "cat"] and len(view) == 2
    with pytest.raises(LoaderError):  # a frame without a class has no class index: kept only when asked
        FrameDataset(store.create_view("k", "TRUE", datasets=["cams"], empty="keep"), target="classification")
