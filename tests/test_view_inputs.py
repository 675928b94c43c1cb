"""Values a user can pass that would break training later are refused when the view is defined:
infinite or NaN weights, and a user column whose type differs between two datasets of one view."""

from __future__ import annotations

import math

import pyarrow as pa
import pytest

from hyperds.errors import ViewError


@pytest.mark.parametrize("weight", [math.inf, math.nan, -1.0, 0.0])
def test_bad_weights_refused(store, weight):
    store.create_dataset("a").add_frames([{"frame_id": "f", "uri": "/f.jpg", "site": "S1"}])
    with pytest.raises(ViewError, match="weights must be positive finite numbers"):
        store.create_view("w", {"x": "site = 'S1'", "y": "TRUE"}, datasets=["a"], weights={"x": weight, "y": 1.0})


def test_same_column_different_types_refused_at_definition_and_publish(store):
    store.create_dataset("a", schema=pa.schema([("temp", pa.int64())])).add_frames(
        [{"frame_id": "f1", "uri": "/1.jpg", "temp": 3}])
    store.create_dataset("b", schema=pa.schema([("temp", pa.string())])).add_frames(
        [{"frame_id": "f2", "uri": "/2.jpg", "temp": "warm"}])
    with pytest.raises(ViewError, match="'temp'.*int64.*string|'temp'.*string.*int64"):
        store.create_view("mixed", "TRUE", datasets=["a", "b"])
    # compatible types (int32 and int64) are fine, and the view reads
    store.create_dataset("c", schema=pa.schema([("temp", pa.int32())])).add_frames(
        [{"frame_id": "f3", "uri": "/3.jpg", "temp": 4}])
    view = store.create_view("ok", "TRUE", datasets=["a", "c"], empty="keep").publish()
    assert sorted(view.to_arrow(["temp"]).column("temp").to_pylist()) == [3, 4]


def test_column_type_changed_after_the_draft_is_refused_at_publish(store):
    store.create_dataset("a", schema=pa.schema([("temp", pa.int64())])).add_frames(
        [{"frame_id": "f1", "uri": "/1.jpg", "temp": 3}])
    store.create_dataset("b").add_frames([{"frame_id": "f2", "uri": "/2.jpg"}])
    draft = store.create_view("later", "TRUE", datasets=["a", "b"])
    store.dataset("b").add_frames([{"frame_id": "f3", "uri": "/3.jpg", "temp": "hot"}])  # b gains temp: string
    with pytest.raises(ViewError, match="'temp'"):
        draft.publish()
