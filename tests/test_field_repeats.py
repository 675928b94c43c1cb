"""Repeat detections: planted static boxes among moving animals, one-commit rejection by the rule, undo,
checks of later model runs against stored groups, and a property test against a plain-Python grouping."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from conftest import run_cli
from hypothesis import given, settings
from hypothesis import strategies as st

from hyperds.errors import ConflictError, WorkflowError
from hyperds.workflows.repeats import group_detections, stored_groups, undo_repeats

MODEL = "md@5a"


def _scene(seed: int = 0, cameras: int = 4, planted: tuple[int, ...] = (0, 2), frames: int = 60):
    """Frame rows: every frame has 1-2 moving animals at random places; cameras in `planted` also carry one
    static box (the same box +- 0.002) in their first 50 frames. Returns (rows, planted ann_ids per camera)."""
    rng = np.random.default_rng(seed)
    rows, static = [], {}
    for c in range(cameras):
        base = rng.uniform(0.05, 0.6, 2)
        for f in range(frames):
            anns = []
            if c in planted and f < 50:
                jitter = rng.uniform(-0.002, 0.002, 2)
                anns.append({"ann_id": f"c{c}f{f}:static", "label": "animal", "confidence": 0.3,
                             "source_kind": "model", "source": MODEL,
                             "bbox": [base[0] + jitter[0], base[1] + jitter[1], 0.15, 0.1]})
                static.setdefault(f"cam{c}", set()).add(f"c{c}f{f}:static")
            for k in range(int(rng.integers(1, 3))):
                w, h = rng.uniform(0.05, 0.3, 2)
                x, y = rng.uniform(0, 1 - w), rng.uniform(0, 1 - h)
                anns.append({"ann_id": f"c{c}f{f}:move{k}", "label": "deer", "confidence": 0.9,
                             "source_kind": "model", "source": MODEL, "bbox": [x, y, w, h]})
            rows.append({"frame_id": f"c{c}f{f:03d}", "uri": f"cams/{c}/{f}.jpg", "camera": f"cam{c}",
                         "captured_at": f"2024-03-01T06:{f // 60:02d}:{f % 60:02d}Z", "annotations": anns})
    return rows, static


@pytest.fixture
def scene(store):
    ds = store.create_dataset("traps")
    rows, static = _scene()
    ds.add_frames(rows)
    return ds, static


def test_every_planted_group_is_found_and_no_moving_animal(scene):
    ds, static = scene
    found = ds.find_repeats(per="camera", iou=0.85, min_frames=10)
    members = {g: set(d["ann_id"].to_list()) for (g,), d in found.detections.group_by("group")}
    assert sorted(found.groups["key"].to_list()) == sorted(static)
    for group, key in found.groups.select("group", "key").iter_rows():
        assert members[group] == static[key]
    assert not any(a.endswith(("move0", "move1")) for a in found.detections["ann_id"].to_list())
    assert found.groups["frames"].to_list() == [50, 50]
    # The draft view holds exactly the affected frames.
    assert set(found.view.frame_ids().to_pylist()) == set(found.detections["frame_id"].to_list())


def test_reject_is_one_commit_by_the_rule_and_undo_restores_labels(scene):
    ds, static = scene
    found = ds.find_repeats(min_frames=10)
    before = ds.to_polars(columns=["frame_id", "labels", "annotations"]).sort("frame_id")
    commits = ds.commits().height
    rejection = ds.reject_repeats(found, author="ana", ids=["cam0#1"])
    assert ds.commits().height == commits + 1
    last = ds.commits().row(-1, named=True)
    assert last["author"] == "rule:repeat-detection iou=0.85 min_frames=10"
    assert "ana" in last["message"] and "cam0#1" in last["message"]
    assert rejection.detections == len(static["cam0"]) == last["reviewed"]
    frame = ds.get("c0f007")
    ann = next(a for a in frame["annotations"] if a["ann_id"] == "c0f7:static")
    assert ann["review_status"] == "rejected" and ann["reviewed_by"] == rejection.reviewer
    assert "cam0#1" in ann["note"]
    assert any(h["op"] == "review" and "cam0#1" in (h["note"] or "") for h in ds.history("c0f007").to_dicts())
    # cam2's group was not chosen: untouched.
    ann2 = next(a for a in ds.get("c2f007")["annotations"] if a["ann_id"] == "c2f7:static")
    assert ann2["review_status"] == "unreviewed"

    undo = undo_repeats(ds, rejection.commit.commit_id, author="ana")
    assert undo is not None and ds.commits().height == commits + 2
    after = ds.to_polars(columns=["frame_id", "labels", "annotations"]).sort("frame_id")
    assert after["labels"].to_list() == before["labels"].to_list()
    statuses = after.explode("annotations").unnest("annotations").filter(pl.col("ann_id").str.ends_with("static"))
    assert set(statuses["review_status"].to_list()) == {"unreviewed"}
    assert stored_groups(ds).height == 0  # undone groups are no longer checked


def test_rejection_hides_the_box_label_and_later_runs_are_checked(scene):
    ds, static = scene
    ds.reject_repeats(ds.find_repeats(min_frames=10), author="ana")
    assert stored_groups(ds)["group"].sort().to_list() == ["cam0#1", "cam2#1"]
    # A frame whose only detection was the rock loses its label.
    ds.add_frames([{"frame_id": "new1", "uri": "cams/0/new1.jpg", "camera": "cam0"},
                   {"frame_id": "new2", "uri": "cams/1/new2.jpg", "camera": "cam1"}])
    box = np.median(np.array([[a["bbox"] for a in ds.get(f"c0f{f:03d}")["annotations"]
                               if a["ann_id"].endswith("static")][0] for f in range(50)]), axis=0).tolist()
    ds.add_predictions(pl.DataFrame({"frame_id": ["new1", "new2"], "label": ["animal", "animal"],
                                     "bbox": [box, box], "confidence": [0.4, 0.4]}), model="md@5b")
    hits = ds.check_repeats(["new1", "new2"])
    assert hits.detections["frame_id"].to_list() == ["new1"]  # new2 is another camera
    assert hits.groups["group"].to_list() == ["cam0#1"]
    ds.reject_repeats(hits, author="ana")
    assert ds.get("new1")["labels"] == []


def test_reject_after_a_concurrent_change_writes_nothing(scene):
    ds, _ = scene
    found = ds.find_repeats(min_frames=10)
    ds.commit([{"op": "relabel", "frame_id": "c0f003", "ann_id": "c0f3:move0", "label": "elk"}], author="bo")
    version, commits = ds.version, ds.commits().height
    with pytest.raises(ConflictError):
        ds.reject_repeats(found, author="ana")
    assert ds.version == version and ds.commits().height == commits
    assert stored_groups(ds).height == 0


def test_bad_arguments_are_clear_errors(scene):
    ds, _ = scene
    for kwargs in ({"per": "lens"}, {"iou": 0}, {"iou": 1.5}, {"min_frames": 1}):
        with pytest.raises(WorkflowError):
            ds.find_repeats(**kwargs)
    found = ds.find_repeats(min_frames=10)
    with pytest.raises(WorkflowError, match="cam9#1"):
        ds.reject_repeats(found, author="ana", ids=["cam9#1"])
    with pytest.raises(WorkflowError, match="author"):
        ds.reject_repeats(found, author=" ")


def test_cli_find_and_reject(scene, capsys):
    ds, _ = scene
    code, out, _ = run_cli(ds.store, capsys, "repeats", "find", "traps", "--min-frames", "10", "--format", "csv")
    assert code == 0 and "cam0#1" in out and "cam2#1" in out
    code, out, _ = run_cli(ds.store, capsys, "repeats", "reject", "traps", "--min-frames", "10",
                           "--groups", "cam2#1", "--author", "ana")
    assert code == 0 and "50" in out
    assert ds.commits().row(-1, named=True)["author"].startswith("rule:repeat-detection")
    code, _, err = run_cli(ds.store, capsys, "repeats", "reject", "traps", "--groups", "nope#1", "--author", "ana")
    assert code == 2 and "nope#1" in err and "Traceback" not in err


# -- property: the vectorised grouping equals a plain-Python all-pairs union-find --------------------------

def _iou(a, b) -> float:
    ix = min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0])
    iy = min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1])
    inter = max(ix, 0.0) * max(iy, 0.0)
    union = a[2] * a[3] + b[2] * b[3] - inter
    return inter / union if union > 0 else 0.0


def _reference(dets: list[tuple[str, str, tuple[float, ...]]], iou: float, min_frames: int) -> set[frozenset[int]]:
    parent = list(range(len(dets)))

    def root(i: int) -> int:
        while parent[i] != i:
            i = parent[i]
        return i

    for a in range(len(dets)):
        for b in range(a + 1, len(dets)):
            if dets[a][0] == dets[b][0] and _iou(dets[a][2], dets[b][2]) >= iou:
                parent[root(a)] = root(b)
    comps: dict[int, set[int]] = {}
    for i in range(len(dets)):
        comps.setdefault(root(i), set()).add(i)
    return {frozenset(c) for c in comps.values() if len({dets[i][1] for i in c}) >= min_frames}


_BASES = [(0.1, 0.1, 0.2, 0.2), (0.12, 0.11, 0.2, 0.19), (0.5, 0.4, 0.3, 0.1), (0.0, 0.0, 1.0, 1.0)]


@st.composite
def _detections(draw):
    n = draw(st.integers(0, 40))
    out = []
    for _ in range(n):
        key = draw(st.sampled_from(["a", "b", "c"]))
        frame = draw(st.sampled_from([f"f{i}" for i in range(8)]))
        if draw(st.booleans()):
            x, y, w, h = draw(st.sampled_from(_BASES))
            dx, dy = draw(st.integers(-20, 20)) / 1000, draw(st.integers(-20, 20)) / 1000
            box = (min(max(x + dx, 0.0), 1 - w), min(max(y + dy, 0.0), 1 - h), w, h)
        else:
            w, h = draw(st.integers(1, 50)) / 100, draw(st.integers(1, 50)) / 100
            box = (draw(st.integers(0, 50)) / 100, draw(st.integers(0, 50)) / 100, w, h)
        out.append((key, frame, tuple(float(np.float32(v)) for v in box)))
    return out


@settings(max_examples=60, deadline=None)
@given(_detections(), st.sampled_from([0.5, 0.7, 0.85, 0.95, 1.0]), st.integers(2, 4))
def test_grouping_matches_plain_python(dets, iou, min_frames):
    df = pl.DataFrame(
        {"key": [d[0] for d in dets], "frame_id": [d[1] for d in dets], "_i": list(range(len(dets))),
         **{c: [d[2][k] for d in dets] for k, c in enumerate("xywh")}},
        schema={"key": pl.String, "frame_id": pl.String, "_i": pl.Int64, **dict.fromkeys("xywh", pl.Float64)},
    )
    got = group_detections(df, iou, min_frames)
    groups = {frozenset(g["_i"].to_list()) for _, g in got.group_by("_component")} if got.height else set()
    assert groups == _reference(dets, iou, min_frames)
