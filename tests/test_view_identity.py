"""A published view pins each dataset's identity, not just its name and version number: a dataset
dropped and created again under the same name, written until it reaches the pinned version, is an
error naming the view, never the view's frames. Dropping a dataset that published views pin needs
force=True, and the views then say their dataset was dropped."""

from __future__ import annotations

import pytest

import hyperds
from hyperds.errors import IntegrityError, SchemaError


def _fill(ds, prefix, n):
    for i in range(n):
        ds.add_frames([{"frame_id": f"{prefix}{i}", "uri": f"/{prefix}{i}.jpg", "site": "S1"}])


def test_recreated_dataset_is_not_the_pinned_one(store):
    ds = store.create_dataset("cams")
    _fill(ds, "old", 3)
    view = store.create_view("v", "site = 'S1'", datasets=["cams"], empty="keep").publish()
    pinned = view.pins["cams"]
    with pytest.raises(SchemaError, match="pinned by published view"):
        store.drop_dataset("cams")
    store.drop_dataset("cams", force=True)
    with pytest.raises(IntegrityError, match="'v' version 1.0 .*dropped"):
        hyperds.view("v", store=store).to_arrow()
    new = store.create_dataset("cams")
    while new.version < pinned:
        _fill(new, f"new{new.version}-", 1)
    assert new.version >= pinned
    reopened = hyperds.view("v", "1.0", store=store)
    with pytest.raises(IntegrityError, match="'v' version 1.0 pins dataset 'cams'.*another one"):
        reopened.to_arrow()
    with pytest.raises(IntegrityError):
        reopened.frame_ids()


def test_untouched_view_reads_and_unpinned_dataset_drops_freely(store):
    ds = store.create_dataset("cams")
    _fill(ds, "a", 2)
    view = store.create_view("v", "TRUE", datasets=["cams"], empty="keep").publish()
    assert sorted(hyperds.view("v", store=store).frame_ids().to_pylist()) == ["a0", "a1"]
    assert view.verify().ok
    store.create_dataset("other")
    store.drop_dataset("other")
    assert store.datasets() == ["cams"]
