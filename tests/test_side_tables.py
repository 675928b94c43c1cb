"""The annotation side tables follow every commit (issue 19, "fast paths survive writes").

Two datasets get the same frames and the same commits; one was optimized (side tables built), the other
never was, so its queries scan the nested annotation lists. After each commit the first must still have
side tables for its new version, and every annotation query, the label counts and the flattened
annotations must answer exactly as the scan does.
"""

from __future__ import annotations

import tempfile

import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

import hyperds
from hyperds.query.sidecar import open_annotation_table

LABELS = ["fox", "deer", "blank"]
STATUSES = ["accept", "reject", "correct", "reopen"]
QUERIES = [
    "any_annotation(label = 'fox')",
    "any_annotation(label = 'deer' AND source_kind = 'model')",
    "any_annotation(review_status = 'rejected' AND label = 'fox')",
    "all_annotations(label = 'deer')",
    "count_annotations(label = 'fox') >= 2",
    "NOT any_annotation(label = 'blank') AND site = 'S1'",
]


@st.composite
def frames(draw):
    out = []
    for i in range(draw(st.integers(1, 12))):
        anns = [{"ann_id": f"f{i}-{k}", "label": draw(st.sampled_from(LABELS)),
                 "source_kind": draw(st.sampled_from(["model", "human"])), "source": "MDv5a",
                 "confidence": 0.5} for k in range(draw(st.integers(0, 3)))]
        out.append({"frame_id": f"f{i}", "uri": f"f{i}.jpg", "site": draw(st.sampled_from(["S1", "S2"])),
                    "annotations": anns})
    return out


@st.composite
def commit_plans(draw, initial):
    """Lists of change lists, each valid against the annotations left by the ones before."""
    anns = {f["frame_id"]: [a["ann_id"] for a in f["annotations"]] for f in initial}
    plans, fresh = [], 0
    for _ in range(draw(st.integers(1, 5))):
        changes, touched = [], set()
        for _ in range(draw(st.integers(1, 4))):
            fid = draw(st.sampled_from(sorted(anns)))
            have = [a for a in anns[fid] if (fid, a) not in touched]
            op = draw(st.sampled_from(["add", "relabel", "review", "delete"] if have else ["add"]))
            if op == "add":
                fresh += 1
                ann = f"new{fresh}"
                changes.append({"op": "add", "frame_id": fid, "ann_id": ann, "label": draw(st.sampled_from(LABELS))})
                anns[fid].append(ann)
            else:
                ann = draw(st.sampled_from(have))
                change = {"op": op, "frame_id": fid, "ann_id": ann}
                if op == "relabel":
                    change["label"] = draw(st.sampled_from(LABELS))
                elif op == "review":
                    change["status"] = draw(st.sampled_from(STATUSES))
                else:
                    anns[fid].remove(ann)
                changes.append(change)
            touched.add((fid, ann))
        plans.append(changes)
    return plans


def _answers(store, ds, fast: bool):
    out = {}
    for text in QUERIES:
        query = ds.query(text)
        if fast and query.plan.side:
            query.nested_limit = -1  # always answer from the side table when one is there
            assert "annotations side table (built from frames version" in query.explain(), text
        out[text] = sorted(query.frame_ids().to_pylist())
    name = ds.name
    out["counts"] = store.sql(f"SELECT label, frames FROM {name}__label_counts ORDER BY label").rows()
    out["flat"] = store.sql(
        f"SELECT frame_id, ann_id, label, review_status, source_kind FROM {name}__annotations "
        "ORDER BY frame_id, ann_id").rows()
    return out


@settings(max_examples=8, deadline=None)
@given(data=st.data())
def test_side_tables_answer_like_a_scan_after_every_commit(data):
    initial = data.draw(frames())
    plans = data.draw(commit_plans(initial))
    with tempfile.TemporaryDirectory() as tmp:
        store = hyperds.connect(tmp)
        fast, scan = store.create_dataset("fast"), store.create_dataset("scan")
        fast.add_frames(initial)
        scan.add_frames(initial)
        fast.optimize()
        for changes in plans:
            fast.commit(changes, author="ana")
            scan.commit(changes, author="ana")
            assert open_annotation_table(fast.table, fast.version) is not None  # the fast path survived
            assert open_annotation_table(scan.table, scan.version) is None  # so the comparison can fail
            assert _answers(store, fast, True) == _answers(store, scan, False)


def test_a_stale_side_table_is_not_carried(tmp_path):
    """A commit on a version without side tables (here after a write below the Dataset facade, which
    carries nothing) carries nothing either: queries scan, exactly."""
    store = hyperds.connect(tmp_path)
    ds = store.create_dataset("d")
    ds.add_frames([{"frame_id": "a", "uri": "a.jpg", "annotations": [{"ann_id": "a1", "label": "fox"}]}])
    ds.optimize()
    ds.table.add_frames([{"frame_id": "b", "uri": "b.jpg", "annotations": [{"ann_id": "b1", "label": "fox"}]}])
    assert open_annotation_table(ds.table, ds.version) is None
    ds.commit([{"op": "relabel", "frame_id": "a", "ann_id": "a1", "label": "deer"}], author="ana")
    assert open_annotation_table(ds.table, ds.version) is None
    assert ds.query("any_annotation(label = 'fox')").frame_ids().to_pylist() == ["b"]
    counts = pl.DataFrame(store.sql("SELECT label, frames FROM d__label_counts ORDER BY label"))
    assert counts.rows() == [("deer", 1), ("fox", 1)]


def test_inserts_and_new_columns_carry_the_side_tables(tmp_path):
    """add_frames (also with a new user column) appends the new frames' annotations to the side tables."""
    store = hyperds.connect(tmp_path)
    fast, scan = store.create_dataset("fast"), store.create_dataset("scan")
    first = [{"frame_id": "a", "uri": "a.jpg", "annotations": [{"ann_id": "a1", "label": "fox", "source_kind": "model",
                                                                  "source": "MDv5a", "confidence": 0.4}]}]
    for ds in (fast, scan):
        ds.add_frames(first)
    fast.optimize()
    more = [[{"frame_id": "b", "uri": "b.jpg", "annotations": [{"ann_id": "b1", "label": "deer"},
                                                                 {"ann_id": "b2", "label": "fox"}]}],
            [{"frame_id": "c", "uri": "c.jpg", "temperature": 21.5, "annotations": [{"ann_id": "c1", "label": "fox"}]},
             {"frame_id": "a", "uri": "a.jpg"}],  # a is skipped (already there)
            [{"frame_id": "d", "uri": "d.jpg"}]]
    for rows in more:
        for ds in (fast, scan):
            ds.add_frames(rows)
        assert open_annotation_table(fast.table, fast.version) is not None
        assert _answers(store, fast, True) == _answers(store, scan, False)
    fast.commit([{"op": "review", "frame_id": "c", "ann_id": "c1", "status": "reject"}], author="ana")
    scan.commit([{"op": "review", "frame_id": "c", "ann_id": "c1", "status": "reject"}], author="ana")
    assert _answers(store, fast, True) == _answers(store, scan, False)
    assert dict(store.sql("SELECT label, frames FROM fast__label_counts").rows()) == {"deer": 1, "fox": 2}
