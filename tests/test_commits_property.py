"""Property test: applying random change batches equals a plain-Python reference of the semantics."""

from __future__ import annotations

import datetime as dt

import pyarrow as pa
from commit_reference import comparable, replay
from hypothesis import given
from hypothesis import strategies as st

from hyperds.frames.normalize import normalize_frames
from hyperds.versioning.changes import apply_changes, assign_ann_ids, normalize_changes, validate_changes

LABELS = ["lion", "zebra", "gnu"]
NOW = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
boxes = st.tuples(st.floats(0, 0.5), st.floats(0, 0.5), st.floats(0, 0.5), st.floats(0, 0.5)).map(list)


@st.composite
def scenario(draw) -> tuple[list[dict], list[dict]]:
    frames = []
    for i in range(draw(st.integers(1, 4))):
        anns = [{"ann_id": f"f{i}:{j}", "label": draw(st.sampled_from(LABELS)),
                 "bbox": draw(st.none() | boxes), "source_kind": "model", "source": "md", "confidence": 0.5}
                for j in range(draw(st.integers(0, 3)))]
        frames.append({"frame_id": f"f{i}", "uri": f"file:///{i}.jpg", "annotations": anns})
    live = {f["frame_id"]: [a["ann_id"] for a in f["annotations"]] for f in frames}
    changes = []
    for k in range(draw(st.integers(1, 8))):
        frame = draw(st.sampled_from(sorted(live)))
        ops = ["add"] + (["relabel", "move", "delete", "review"] if live[frame] else [])
        op = draw(st.sampled_from(ops))
        if op == "add":
            ann = f"{frame}:n{k}"
            live[frame].append(ann)
            changes.append({"op": op, "frame_id": frame, "ann_id": ann, "label": draw(st.sampled_from(LABELS)),
                            "bbox": draw(st.none() | boxes), "count": draw(st.none() | st.integers(1, 9))})
            continue
        ann = draw(st.sampled_from(live[frame]))
        change = {"op": op, "frame_id": frame, "ann_id": ann}
        if op == "relabel":
            change["label"] = draw(st.sampled_from(LABELS))
        elif op == "move":
            change["bbox"] = draw(boxes)
        elif op == "review":
            change["status"] = draw(st.sampled_from(["accept", "reject", "correct", "reopen"]))
            change["note"] = draw(st.none() | st.text(max_size=5))
            if change["status"] == "correct":
                change["label"] = draw(st.none() | st.sampled_from(LABELS))
        else:
            live[frame].remove(ann)
        changes.append(change)
    return frames, changes


@given(scenario())
def test_apply_matches_reference(case):
    frames, changes = case
    rows = normalize_frames(frames, now=NOW)
    touched = sorted({c["frame_id"] for c in changes})
    mask = pa.array([f in touched for f in rows.column("frame_id").to_pylist()])
    df = normalize_changes(changes)
    validate_changes(df, None)
    after = apply_changes(rows.filter(mask), assign_ann_ids(df, "c" * 32), "ann", NOW)
    untouched = rows.filter(pa.compute.invert(mask)).to_pylist()
    assert comparable(after.to_pylist() + untouched) == replay(frames, [("ann", changes)])
