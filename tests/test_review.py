"""Review queue and auto-accept on the real MegaDetector sample; expectations computed from the raw JSON."""

from __future__ import annotations

import json

import pytest
from conftest import MD_JSON

from hyperds.errors import QueryError, SelectionError, ViewError
from hyperds.workflows.review import accept_query, queue_query
from hyperds.workflows.select import select_frames

THRESHOLD = 0.9  # the sample's best detection is 0.956, so the 0.98 default would accept nothing


def _raw() -> dict[str, list[float]]:
    """file -> confidences of its detections, straight from the JSON."""
    doc = json.loads(MD_JSON.read_text())
    return {im["file"]: [d["conf"] for d in im["detections"]] for im in doc["images"]}


def _expected(threshold: float) -> tuple[set[str], set[str]]:
    """(queue, auto-accepted) frames: a frame is accepted only if all its detections reach the threshold."""
    raw = _raw()
    with_dets = {f for f, c in raw.items() if c}
    accepted = {f for f in with_dets if min(raw[f]) >= threshold}
    return with_dets - accepted, accepted


def _ids(ds, sql: str) -> set[str]:
    return set(ds.query(sql).frame_ids().to_pylist())


def test_queue_and_accepted_partition_the_frames_with_detections(md):
    queue, accepted = _expected(THRESHOLD)
    assert queue and accepted  # the threshold splits the sample
    assert _ids(md, queue_query(THRESHOLD)) == queue
    before, n_commits = md.version, md.commits().height

    result = md.auto_accept(threshold=THRESHOLD)

    assert md.version > before
    assert (result.frames, result.reviewer) == (len(accepted), "auto:threshold=0.9")
    assert result.annotations == sum(len(_raw()[f]) for f in accepted)
    commits = md.commits()
    assert commits.height == n_commits + 1  # one commit, made by the rule
    assert commits["author"].to_list()[-1] == "auto:threshold=0.9"
    got_accepted = _ids(md, "any_annotation(reviewed_by = 'auto:threshold=0.9')")
    got_queue = _ids(md, queue_query(THRESHOLD))
    assert got_accepted == accepted
    assert got_queue == queue
    assert not got_queue & got_accepted
    assert got_queue | got_accepted == {f for f, c in _raw().items() if c}
    for fid in accepted:
        anns = md.get(fid)["annotations"]
        assert {(a["review_status"], a["reviewed_by"]) for a in anns} == {("accepted", "auto:threshold=0.9")}
        assert all(a["reviewed_at"] is not None for a in anns)
    for fid in queue:
        assert {a["review_status"] for a in md.get(fid)["annotations"]} == {"unreviewed"}


def test_rerunning_auto_accept_changes_nothing(md):
    md.auto_accept(threshold=THRESHOLD)
    version, table, n_commits = md.version, md.to_arrow(), md.commits().height
    again = md.auto_accept(threshold=THRESHOLD)
    assert (again.frames, again.annotations, again.commit) == (0, 0, None)
    assert again.version == md.version == version
    assert md.to_arrow().equals(table)
    assert md.commits().height == n_commits


def test_default_threshold_sends_every_detection_to_people(md):
    queue, accepted = _expected(0.98)
    assert accepted == set()  # the sample's detections all score below 0.98
    version = md.version
    assert md.auto_accept().commit is None
    assert md.version == version
    assert _ids(md, queue_query()) == queue


def test_model_filter(md):
    source = md.get(sorted(_expected(THRESHOLD)[1])[0])["annotations"][0]["source"]
    assert md.auto_accept(threshold=THRESHOLD, model="some-other-detector").commit is None
    assert _ids(md, queue_query(THRESHOLD, model="some-other-detector")) == set()
    assert md.auto_accept(threshold=THRESHOLD, model=source).frames == len(_expected(THRESHOLD)[1])


def test_reviewed_frames_leave_the_queue_and_the_partition_holds(md):
    md.auto_accept(threshold=THRESHOLD)
    queue, _ = _expected(THRESHOLD)
    frame = sorted(queue)[0]
    anns = md.get(frame)["annotations"]
    changes = [
        {"op": "review", "frame_id": frame, "ann_id": a["ann_id"], "status": "reject" if a["confidence"] < THRESHOLD else "accept"}
        for a in anns
    ]
    md.commit(changes, author="alice", message="first review")
    assert _ids(md, queue_query(THRESHOLD)) == queue - {frame}
    open_frames = _ids(md, "any_annotation(source_kind = 'model' AND review_status = 'unreviewed')")
    assert _ids(md, queue_query(THRESHOLD)) | _ids(md, accept_query(THRESHOLD)) == open_frames
    assert not _ids(md, queue_query(THRESHOLD)) & _ids(md, accept_query(THRESHOLD))


def test_null_confidence_counts_as_uncertain(store):
    ds = store.create_dataset("nulls")
    model = {"label": "animal", "source_kind": "model", "source": "m"}
    ds.add_frames(
        [
            {"frame_id": "sure", "uri": "a.jpg", "annotations": [{**model, "confidence": 0.99}]},
            {"frame_id": "unknown", "uri": "b.jpg", "annotations": [{**model, "confidence": 0.99}, model]},
            {"frame_id": "person", "uri": "c.jpg", "annotations": [{"label": "lion", "source_kind": "human"}]},
        ]
    )
    assert _ids(ds, queue_query()) == {"unknown"}
    assert ds.auto_accept().frames == 1
    assert _ids(ds, "any_annotation(review_status = 'accepted')") == {"sure"}


def test_auto_accept_after_add_predictions_commits_on_the_frame_revision(store):
    # add_predictions bumps each frame's revision while its new annotations keep revision 0.
    ds = store.create_dataset("round")
    ds.add_frames([{"frame_id": f"f{i}", "uri": f"f{i}.jpg"} for i in range(3)])
    ds.add_predictions([{"frame_id": f"f{i}", "label": "deer", "confidence": 0.99} for i in range(3)], model="md@5")
    result = ds.auto_accept(0.9)
    assert (result.frames, result.annotations) == (3, 3)
    assert _ids(ds, "any_annotation(review_status = 'accepted' AND reviewed_by = 'auto:threshold=0.9')") == {
        "f0", "f1", "f2"
    }


@pytest.mark.parametrize("threshold", [-0.1, 1.5, float("nan"), "high", True])
def test_bad_threshold_leaves_store_unchanged(md, threshold):
    version = md.version
    with pytest.raises(SelectionError, match="threshold"):
        md.auto_accept(threshold=threshold)
    with pytest.raises(SelectionError, match="threshold"):
        md.review_queue(threshold=threshold)
    assert md.version == version


def test_selection_on_the_sample_skips_reviewed_frames_and_is_deterministic(md):
    md.auto_accept(threshold=THRESHOLD)
    queue, accepted = _expected(THRESHOLD)
    reviewed = sorted(queue)[:3]
    md.commit(
        [
            {"op": "review", "frame_id": f, "ann_id": a["ann_id"], "status": "reject"}
            for f in reviewed
            for a in md.get(f)["annotations"]
        ],
        author="alice",
    )
    everything = set(_raw())
    for strategy in ("uncertainty", "random", "diverse"):
        first = select_frames(md, k=100, strategy=strategy, seed=3)
        assert first.equals(select_frames(md, k=100, strategy=strategy, seed=3))
        ids = first["frame_id"].to_pylist()
        assert set(ids) == everything - set(reviewed)  # auto-accepted frames stay open; person-reviewed never
    raw = _raw()
    top = select_frames(md, k=5, strategy="uncertainty", seed=0)["frame_id"].to_pylist()
    margin = {f: min((abs(2 * c - 1) for c in cs), default=1.0) for f, cs in raw.items() if f not in reviewed}
    assert sorted(margin[f] for f in top) == pytest.approx(sorted(margin.values())[:5], abs=1e-6)


def test_review_queue_is_a_draft_view_that_shrinks_as_reviews_land(md, store):
    md.auto_accept(threshold=THRESHOLD)
    queue, _ = _expected(THRESHOLD)
    view = md.review_queue(threshold=THRESHOLD)
    assert (view.name, view.status) == ("md-review-queue", "draft")
    assert set(view.frame_ids().to_pylist()) == queue
    frame = sorted(queue)[0]
    md.commit(
        [{"op": "review", "frame_id": frame, "ann_id": a["ann_id"], "status": "reject"} for a in md.get(frame)["annotations"]],
        author="alice",
    )
    assert set(store.view("md-review-queue", "draft").frame_ids().to_pylist()) == queue - {frame}
    pinned = view.publish(version="1.0")
    md.commit([{"op": "review", "frame_id": f, "ann_id": f"{f}:0", "status": "accept"} for f in sorted(queue)[1:3]],
              author="alice")
    assert set(store.view("md-review-queue", "1.0").frame_ids().to_pylist()) == queue - {frame}
    assert len(pinned) == len(queue) - 1


def test_review_queue_with_where_and_bad_where(md, store):
    queue, _ = _expected(THRESHOLD)
    view = md.review_queue(threshold=THRESHOLD, where="frame_id LIKE 'snapshot%'", name="snapshot-queue")
    assert set(view.frame_ids().to_pylist()) == {f for f in queue if f.startswith("snapshot")}
    views_before = store.views().num_rows
    with pytest.raises(QueryError):
        md.review_queue(where="no_such_column = 1", name="broken")
    assert store.views().num_rows == views_before


def test_select_returns_a_draft_view_of_exactly_the_chosen_frames(md, store):
    chosen = select_frames(md, k=7, strategy="diverse", seed=2)["frame_id"].to_pylist()
    view = md.select(k=7, strategy="diverse", seed=2)
    assert (view.name, view.status) == ("md-select-diverse", "draft")
    assert sorted(view.frame_ids().to_pylist()) == sorted(chosen)
    md.commit([{"op": "review", "frame_id": f, "ann_id": a["ann_id"], "status": "reject"}
               for f in _raw() for a in md.get(f)["annotations"]], author="alice")
    assert sorted(select_frames(md, k=100, strategy="random")["frame_id"].to_pylist()) == sorted(
        f for f, c in _raw().items() if not c
    )  # only frames without any detection are left open
    md.commit([{"op": "add", "frame_id": f, "label": "empty"} for f, c in _raw().items() if not c], author="alice")
    views_before = store.views().num_rows
    with pytest.raises(SelectionError, match="no frame of dataset 'md' is open"):
        md.select(k=3, strategy="random", name="nothing-left")
    assert store.views().num_rows == views_before


def test_default_view_name_from_an_odd_dataset_name_is_refused_first(store):
    ds = store.create_dataset("cams..2024")
    ds.add_frames([{"frame_id": "a", "uri": "a.jpg",
                    "annotations": [{"label": "deer", "source_kind": "model", "source": "m@1", "confidence": 0.5}]}])
    before = (store.views().num_rows, ds.version)
    with pytest.raises(ViewError, match=r"'cams\.\.2024-review-queue'.*name="):
        ds.review_queue(where="no_such_column = 1")  # the name is checked before the query
    with pytest.raises(ViewError, match=r"'cams\.\.2024-select-diverse'.*name="):
        ds.select(strategy="diverse", column="clip")  # ... and before the selection
    assert (store.views().num_rows, ds.version) == before
    assert set(ds.review_queue(name="cams-queue").frame_ids().to_pylist()) == {"a"}
    assert set(ds.select(name="cams-pick").frame_ids().to_pylist()) == {"a"}
