"""View.to_batches streams: the same rows as to_arrow(), in order, and the heavy frame columns are read one
batch at a time (what keeps an export's or loader's memory bounded by the batch, not by the view).

Oracle: View.to_arrow(), which resolves the whole manifest in one go.
"""

from __future__ import annotations

import random

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hyperds import QueryError, ViewError, storage

SPECIES = ["lion", "zebra", "gnu", "hyena"]


def _frames(n: int, prefix: str, seed: int, extra: str) -> list[dict]:
    rnd = random.Random(seed)
    return [
        {"frame_id": f"{prefix}{rnd.randrange(10**6):06d}-{i}", "uri": f"{prefix}/{i}.jpg", "site": f"s{i % 5}",
         extra: i * 1.5,
         "annotations": [{"label": lab, "bbox": [0.1, 0.1, 0.2, 0.2]} for lab in rnd.sample(SPECIES, rnd.randint(0, 2))]}
        for i in range(n)
    ]


@pytest.fixture
def views(store):
    """Two datasets, each with a column the other lacks, written in two batches (two fragments each); a
    published view over both with a label map and splits, and a draft over everything."""
    for name, extra, seed in (("east", "temperature", 1), ("west", "altitude", 2)):
        ds = store.create_dataset(name)
        rows = _frames(40, name[0], seed, extra)
        ds.add_frames(rows[:25])
        ds.add_frames(rows[25:])
    published = store.create_view(
        "both", "array_has(labels, 'lion') OR array_has(labels, 'gnu')", datasets=["east", "west"],
        label_map={"lion": "cat"}, unknown_labels="keep",
        split={"by": "site", "fractions": {"train": 0.6, "val": 0.4}, "seed": 2}).publish("1.0")
    return published, lambda: store.create_view("all", "TRUE", datasets=["east", "west"], empty="keep")


COLUMNS = st.sampled_from([
    None, ["frame_id", "uri"], ["annotations", "frame_id"], ["dataset", "site", "classes"], ["temperature", "frame_id"],
    ["split", "labels", "weight", "subquery", "uri"], ["classes"],
])


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batch_size=st.integers(1, 50), columns=COLUMNS, split=st.sampled_from([None, "train", "val"]),
       which=st.sampled_from([0, 1]))
def test_batches_concatenate_to_to_arrow(views, batch_size, columns, split, which):
    if which == 1:
        view, fresh, split = views[1](), views[1](), None  # the draft has no splits
    else:
        view = views[0]
        fresh = view.store.view(view.name, view.version)
    batches = list(fresh.to_batches(columns, batch_size=batch_size, split=split))  # fresh: no cached manifest
    want = view.to_arrow(columns, split)
    assert all(0 < b.num_rows <= batch_size for b in batches)
    got = pa.Table.from_batches(batches) if batches else want.schema.empty_table()
    assert got.column_names == want.column_names
    assert got.cast(want.schema).equals(want)  # same rows, same order, same values


def test_heavy_columns_are_read_one_batch_at_a_time(views):
    published, _ = views
    view = published.store.view(published.name, published.version)
    total = len(view)
    with storage.scan.counting() as stats:
        stream = view.to_batches(["frame_id", "annotations"], batch_size=5)
        first = next(stream)
        taken_first = sum(s.get("rows_taken", 0) for s in stats)
        rest = sum(b.num_rows for b in stream)
    assert first.num_rows == 5 and taken_first == 5  # the keys were resolved, only one batch of rows taken
    assert first.num_rows + rest == total
    assert sum(s.get("rows_taken", 0) for s in stats) == total  # and every row exactly once


def test_a_column_no_dataset_has_is_refused_alike(views):
    for source in (views[0], views[1]()):
        for read in (lambda: source.to_arrow(["frame_id", "pressure"]),
                     lambda: next(source.to_batches(["frame_id", "pressure"], batch_size=3))):
            with pytest.raises(QueryError, match="unknown column 'pressure'"):
                read()


def test_bad_batch_size_is_a_view_error(views):
    with pytest.raises(ViewError, match="batch_size must be a positive"):
        next(views[1]().to_batches(["frame_id"], batch_size=0))
