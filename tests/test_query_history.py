"""Differential test over tables with history: the query engine against the plain-Python reference of
tests/test_query_differential.py, on tables built by a random sequence of writes.

The differential test only ever sees one freshly written table. Here a table is built by several
add_frames batches (several fragments, re-added ids that must stay as they were), commits (relabel,
add, delete, review: deletion vectors and rewritten rows), model predictions, an embedding column
(a column merge), `optimize()` (merged indices and a side table) followed by more writes (index delta
segments, a stale side table), and rows a writer inserted but died before refreshing the indices
(rows no index covers). A plain-Python model of the rows is kept beside it; random queries must give
the frame ids the reference gives over the model, on the latest version and on an earlier pinned one.
"""

from __future__ import annotations

import copy
import datetime as dt
import itertools
import shutil
from pathlib import Path

import numpy as np
import pyarrow.compute as pc
import pytest
import test_query_differential as qd
from hypothesis import given, settings
from hypothesis import strategies as st

import hyperds
from hyperds import storage
from hyperds.frames.normalize import normalize_frames
from hyperds.query import Query
from hyperds.query.residual import mask

pytestmark = pytest.mark.slow  # run first under -n 2 (tests/conftest.py)

UTC = dt.UTC
AUTHORS = ["alice", "bob"]  # also query values of `source` / `reviewed_by`, so their edits are seen
MODEL = "md5@1"
OPS = ["add_frames", "add_frames", "commit", "commit", "commit", "predict", "embed", "optimize", "unindexed"]

_names = itertools.count()


@pytest.fixture(scope="module")
def hist_root(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("history")


class Model:
    """The rows as the reference sees them: frame_id -> frame dict (annotations carry their ann_id)."""

    def __init__(self) -> None:
        self.rows: dict[str, dict] = {}
        self.next_id = 0

    def snapshot(self) -> list[dict]:
        return copy.deepcopy(sorted(self.rows.values(), key=lambda r: r["frame_id"]))

    def ann(self, ann_id: str) -> tuple[dict, dict]:
        frame_id = ann_id.split(":", 1)[0]
        row = self.rows[frame_id]
        return row, next(a for a in row["annotations"] if a["ann_id"] == ann_id)


def _new_rows(data, model: Model) -> list[dict]:
    """A batch of new frames (ids continue the sequence), sometimes with an already stored id whose
    different content must be ignored (add_frames skips existing frame_ids)."""
    rows = data.draw(st.lists(qd.frame, min_size=1, max_size=5), label="frames")
    for r in rows:
        r["frame_id"], r["uri"] = f"f{model.next_id}", f"img/{model.next_id}.jpg"
        model.next_id += 1
        for k, a in enumerate(r["annotations"]):
            a["ann_id"] = f"{r['frame_id']}:{k}"  # the default ann_id
    if model.rows and data.draw(st.booleans(), label="re-add"):
        old = data.draw(st.sampled_from(sorted(model.rows)), label="re-added id")
        rows.append({**data.draw(qd.frame), "frame_id": old, "uri": "img/other.jpg"})
    return rows


def _stored(rows: list[dict], zones: list) -> list[dict]:
    """What the store is given: timestamps written in assorted zones, default ann_ids left out."""
    out = []
    for r, zone in zip(rows, itertools.cycle(zones)):
        r = copy.deepcopy(r)
        if r["captured_at"] is not None:
            r["captured_at"] = r["captured_at"].astimezone(zone).isoformat()
        for a in r["annotations"]:
            a.pop("ann_id", None)
        out.append(r)
    return out


def _insert(model: Model, rows: list[dict]) -> None:
    for r in rows:
        model.rows.setdefault(r["frame_id"], copy.deepcopy(r))


def _human(ann: dict, label: str, author: str, now: dt.datetime) -> None:
    """A relabel (or a correction with a label) makes the annotation the author's."""
    ann.update(label=label, source_kind="human", source=author, created_at=now, confidence=None)


STATUS = {"accept": "accepted", "reject": "rejected", "correct": "corrected", "reopen": "unreviewed"}


def _commit(data, ds, model: Model, n: int) -> None:
    """One ds.commit of random changes, mirrored on the model (changes to one annotation apply in order)."""
    author = data.draw(st.sampled_from(AUTHORS), label="author")
    frames = data.draw(st.lists(st.sampled_from(sorted(model.rows)), min_size=1, max_size=3, unique=True))
    changes, now = [], dt.datetime.now(UTC)  # any instant after 2024 and before 2038 compares as the stored one
    for j, fid in enumerate(frames):
        row = model.rows[fid]
        anns = [a["ann_id"] for a in row["annotations"]]
        op = data.draw(st.sampled_from(["add", "relabel", "delete", "review"] if anns else ["add"]), label="op")
        label = data.draw(st.sampled_from(qd.LABELS), label="label")
        if op == "add":
            ann_id, count = f"{fid}:c{n}-{j}", data.draw(qd.maybe(st.integers(0, 5)), label="count")
            changes.append({"op": "add", "frame_id": fid, "ann_id": ann_id, "label": label, "count": count})
            row["annotations"].append({
                "ann_id": ann_id, "label": label, "confidence": None, "count": count, "source_kind": "human",
                "source": author, "review_status": "unreviewed", "reviewed_by": None, "level": "media",
                "created_at": now})
            continue
        ann_id = data.draw(st.sampled_from(anns), label="ann_id")
        _, ann = model.ann(ann_id)
        if op == "relabel":
            changes.append({"op": "relabel", "frame_id": fid, "ann_id": ann_id, "label": label})
            _human(ann, label, author, now)
        elif op == "delete":
            changes.append({"op": "delete", "frame_id": fid, "ann_id": ann_id})
            row["annotations"].remove(ann)
        else:
            status = data.draw(st.sampled_from(sorted(STATUS)), label="status")
            relabel = status == "correct" and data.draw(st.booleans(), label="with label")
            changes.append({"op": "review", "frame_id": fid, "ann_id": ann_id, "status": status,
                            "label": label if relabel else None})
            if relabel:
                _human(ann, label, author, now)
            ann.update(review_status=STATUS[status], reviewed_by=None if status == "reopen" else author)
    ds.commit(changes, author=author, message=f"c{n}")


def _predict(data, ds, model: Model, n: int) -> None:
    """add_predictions of MODEL: its earlier unreviewed predictions on the covered frames are replaced."""
    frames = data.draw(st.lists(st.sampled_from(sorted(model.rows)), min_size=1, max_size=4, unique=True))
    rows, now = [], dt.datetime.now(UTC)
    for fid in frames:
        anns = model.rows[fid]["annotations"]
        anns[:] = [a for a in anns if not (a["source_kind"] == "model" and a["source"] == MODEL
                                          and a["review_status"] == "unreviewed")]
        for k in range(data.draw(st.integers(0, 2), label="boxes")):
            label, conf = data.draw(st.sampled_from(qd.LABELS)), data.draw(st.sampled_from(qd.CONFIDENCES))
            rows.append({"frame_id": fid, "label": label, "bbox": [0.1, 0.1, 0.2, 0.2], "confidence": conf})
            anns.append({"ann_id": f"{fid}:{MODEL}:r{n}:{k}", "label": label, "confidence": conf, "count": None,
                         "source_kind": "model", "source": MODEL, "review_status": "unreviewed",
                         "reviewed_by": None, "level": "media", "created_at": now})
        if not any(r["frame_id"] == fid for r in rows):
            rows.append({"frame_id": fid, "label": None, "bbox": None, "confidence": None})  # seen, nothing found
    ds.add_predictions(rows, model=MODEL, run_id=f"r{n}")


def _unindexed(ds, rows: list[dict]) -> None:
    """Rows inserted by a writer that died before refreshing the indices: no index segment covers them."""
    table = ds.table
    new = normalize_frames(rows, extra_schema=table.extra_schema)
    ids = new.column("frame_id")
    new = new.filter(pc.invert(pc.is_in(ids, table.existing_ids(ids.combine_chunks()))))
    handle = table.handle()
    storage.writes.insert_new(handle, table._align(new, storage.schema(handle)), "frame_id")
    table.invalidate()


def _check(ds, rows: list[dict], tree: tuple, rule: int) -> None:
    text = qd.sql(tree)
    expected = sorted(r["frame_id"] for r in rows if qd.ref(tree, r) is True)
    query = Query(ds, text, rule=rule)
    assert query.frame_ids().to_pylist() == expected, (text, query.explain())
    assert query.count() == len(expected), text
    every = ds.to_arrow()  # the residual evaluator alone, over every frame of that version
    if every.num_rows:
        alone = mask(query.statement.where, every).to_pylist()
        hits = sorted(f for f, hit in zip(every["frame_id"].to_pylist(), alone, strict=True) if hit)
        assert hits == expected, ("residual", text)


@settings(max_examples=40, deadline=None)
@given(data=st.data(), zones=st.lists(st.sampled_from(qd.ZONES), min_size=1, max_size=3),
       side_always=st.booleans(), rule=st.sampled_from([2, 2, 1]))
def test_engine_matches_reference_on_tables_with_history(hist_root, data, zones, side_always, rule):
    store = hyperds.connect(hist_root / f"s{next(_names)}")
    ds = store.create_dataset("d", schema=qd.EXTRA)
    model, pinned = Model(), {}
    first = _new_rows(data, model)
    ds.add_frames(_stored(first, zones))
    _insert(model, first)
    steps = data.draw(st.lists(st.sampled_from(OPS), min_size=2, max_size=6), label="steps")
    default_limit = Query.nested_limit
    Query.nested_limit = 0 if side_always else default_limit  # use a fresh side table even for few frames
    qd.RULE["rule"] = rule
    try:
        for n, step in enumerate(steps):
            if step in ("add_frames", "unindexed"):
                rows = _new_rows(data, model)
                (ds.add_frames if step == "add_frames" else lambda r: _unindexed(ds, r))(_stored(rows, zones))
                _insert(model, rows)
            elif step == "commit":
                _commit(data, ds, model, n)
            elif step == "predict":
                _predict(data, ds, model, n)
            elif step == "embed":  # a column merge first, a partial-schema merge_insert after
                ids = data.draw(st.lists(st.sampled_from(sorted(model.rows)), min_size=1, unique=True))
                ds.add_embeddings(ids, np.full((len(ids), 4), n, np.float32), model="emb@1", index=False)
            else:  # merged indices and a side table for this version; the next write makes it stale
                ds.optimize()
            pinned[ds.version] = model.snapshot()
        trees = data.draw(st.lists(qd.query_tree, min_size=1, max_size=3), label="queries")
        for tree in trees:
            _check(ds, model.snapshot(), tree, rule)
        version = data.draw(st.sampled_from(sorted(pinned)), label="pinned version")
        _check(ds.at(version), pinned[version], trees[0], rule)  # a past version keeps its own side table
    finally:
        Query.nested_limit = default_limit
        qd.RULE["rule"] = 2
        shutil.rmtree(store.uri)
