"""The FrameSource protocol: Dataset, Query and View answer it alike, and the View owns its rules.

Oracles: the rows a source returns through to_arrow() against a plain-Python filter of the frames
written, to_batches() against to_arrow(), and the label map / classes against a dict computed here.
"""

from __future__ import annotations

import random

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import hyperds
from hyperds import FrameSource, ViewError
from hyperds.views import handle as views_module
from hyperds.views.labelmap import LabelMap

SPECIES = ["lion", "zebra", "gnu", "hyena"]


def _frames(n: int, prefix: str = "f", seed: int = 0) -> list[dict]:
    rnd = random.Random(seed)
    return [
        {"frame_id": f"{prefix}{i:03d}", "uri": f"{prefix}/{i}.jpg", "site": f"s{i % 5}",
         "annotations": [{"label": lab} for lab in rnd.sample(SPECIES, rnd.randint(1, 2))]}
        for i in range(n)
    ]


@pytest.fixture
def two(store):
    """Datasets 'east' and 'west' stored under different roots, and a published view over both."""
    east = store.create_dataset("east", root="s3://east/photos")
    west = store.create_dataset("west", root="/data/west")
    east.add_frames(_frames(30, "e", 1))
    west.add_frames(_frames(20, "w", 2))
    view = store.create_view("both", "array_has(labels, 'lion') OR array_has(labels, 'gnu')", datasets=["east", "west"],
                             label_map={"lion": "cat"}, unknown_labels="keep",
                             split={"by": "site", "fractions": {"train": 0.6, "val": 0.4}, "seed": 2}).publish("1.0")
    return east, west, view


def test_every_member_of_the_protocol_is_implemented_by_dataset_query_and_view():
    members = [n for n in vars(FrameSource) if not n.startswith("_")]
    assert set(members) == {"store", "pins", "to_arrow", "to_batches", "roots", "label_map", "classes", "splits",
                            "column_names", "describe", "count", "pinned", "record_run"}
    for cls in (hyperds.Dataset, hyperds.Query, hyperds.View):
        missing = [m for m in members if m != "store" and m not in dir(cls)]
        assert missing == [], f"{cls.__name__} lacks {missing}"


def test_dataset_and_query_answer_for_their_one_dataset(two):
    east, _, _ = two
    query = east.query("array_has(labels, 'zebra')")
    for source in (east, query):
        assert source.store is east.store
        assert source.pins == {"east": east.version}
        assert source.roots() == {"east": "s3://east/photos"}
        assert source.label_map is None and source.classes is None and source.splits == []
        with pytest.raises(ViewError, match="has no split 'train': only a view has splits"):
            source.to_arrow(["frame_id"], split="train")
    expected = sorted(f["frame_id"] for f in _frames(30, "e", 1) if "zebra" in [a["label"] for a in f["annotations"]])
    assert query.to_arrow(["frame_id"]).column("frame_id").to_pylist() == expected


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batch_size=st.integers(1, 40), split=st.sampled_from([None, "train", "val"]))
def test_to_batches_yields_to_arrows_rows_in_batches_of_at_most_batch_size(two, batch_size, split):
    east, _, view = two
    sources = [(view, split), (east, None), (east.query("site = 's1' OR array_has(labels, 'gnu')"), None)]
    for source, part in sources:
        batches = list(source.to_batches(["frame_id", "uri"], batch_size=batch_size, split=part))
        assert all(0 < b.num_rows <= batch_size for b in batches)
        got = pa.Table.from_batches(batches, schema=batches[0].schema) if batches else None
        want = source.to_arrow(["frame_id", "uri"], split=part)
        assert (got.num_rows if got else 0) == want.num_rows
        if got is not None:
            assert sorted(got.column("frame_id").to_pylist()) == sorted(want.column("frame_id").to_pylist())


def test_view_owns_its_label_map_classes_splits_and_roots(two):
    east, west, view = two
    assert view.pins == {"east": east.version, "west": west.version}
    assert view.roots() == {"east": "s3://east/photos", "west": "/data/west"}
    assert view.splits == ["train", "val"]
    lm = view.label_map
    assert isinstance(lm, LabelMap) and lm["lion"] == "cat" and lm["gnu"] == "gnu" and "zebra" in lm
    assert dict(lm) == {"lion": "cat"} and len(lm) == 1
    rows = view.to_arrow(["classes", "split"]).to_pylist()
    seen = {c for r in rows for c in r["classes"]}
    assert view.classes == sorted(seen | {"cat"})
    for part in view.splits:  # each split holds the view's classes, numbered alike by a loader
        assert {c for r in view.to_arrow(["classes"], split=part).to_pylist() for c in r["classes"]} <= set(view.classes)
    drop = LabelMap.parse({"lion": "cat"}, "drop")
    with pytest.raises(KeyError):
        drop["gnu"]
    assert drop.as_dict(["gnu"]) == {"lion": "cat"} and lm.as_dict(["gnu", "cat"]) == {"lion": "cat", "gnu": "gnu", "cat": "cat"}


def test_a_view_resolves_once_for_rows_then_classes_and_again_when_a_draft_moves(two, monkeypatch):
    east, _, _ = two
    store = east.store
    resolves = []
    real = views_module.resolve
    monkeypatch.setattr(views_module, "resolve", lambda *a, **k: resolves.append(a[3]) or real(*a, **k))
    view = store.view("both", "1.0")
    view.to_arrow(["frame_id", "classes"], split="train")
    assert view.classes and len(resolves) == 1  # the classes came from the rows already read
    draft = store.create_view("d", "array_has(labels, 'lion')", datasets=["east"], unknown_labels="keep",
                              label_map={"lion": "cat"})
    resolves.clear()
    before = draft.to_arrow(["frame_id"]).num_rows
    assert draft.to_arrow(["frame_id"]).num_rows == before and len(resolves) == 1  # same pins: reused
    east.add_frames([{"frame_id": "new", "uri": "n.jpg", "annotations": [{"label": "lion"}]}])
    assert draft.pins == {"east": east.version}
    assert draft.to_arrow(["frame_id"]).num_rows == before + 1 and len(resolves) == 2  # the dataset moved
