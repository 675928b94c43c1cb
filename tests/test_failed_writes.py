"""A failed write leaves no trace: bad user column names are refused before anything is written, a
failed insert takes its new columns back, and a new dataset is dropped only by its creator while
nothing else was committed to it (the data another writer put there stays)."""

from __future__ import annotations

import shutil

import pyarrow as pa
import pytest
from lance.dataset import MergeInsertBuilder

import hyperds
from hyperds.cli._common import dataset_for_writing
from hyperds.errors import SchemaError

BAD_NAMES = ["_rowid", "_rowaddr", "_rowoffset", "_distance", "_mine", "", "a`b", "a\x00b", "a.b", 'a"b', " x",
             "x\n", "Site", "x" * 129]


def _frames(ids, **extra):
    return [{"frame_id": f, "uri": f"/img/{f}.jpg", **extra} for f in ids]


def _state(ds):
    return ds.version, ds.schema, len(ds)


@pytest.mark.parametrize("name", BAD_NAMES)
def test_bad_user_column_name_refused_before_any_write(store, name):
    ds = store.create_dataset("d")
    ds.add_frames(_frames(["a", "b"]))
    before = _state(ds)
    with pytest.raises(SchemaError, match="invalid user column name"):
        ds.add_frames(_frames(["c"], **{name: 1}))
    assert _state(ds) == before
    # reads, filtered queries and commits still work
    assert ds.query("frame_id = 'a'").frame_ids().to_pylist() == ["a"]
    ds.commit([{"frame_id": "a", "op": "add", "label": "deer"}], author="t")
    assert ds.get("a")["labels"] == ["deer"]


@pytest.mark.parametrize("name", ["_rowid", "", "a`b"])
def test_bad_name_in_create_schema(store, name):
    with pytest.raises(SchemaError, match="invalid user column name"):
        store.create_dataset("d", schema=pa.schema([pa.field(name, pa.int64())]))
    assert store.datasets() == []


def test_ingest_layout_field_with_reserved_name_leaves_dataset_as_it_was(store, sample_data, tmp_path):
    cams = tmp_path / "cams" / "S1"
    cams.mkdir(parents=True)
    shutil.copy(next((sample_data / "serengeti-thumbs").glob("*.JPG")), cams / "a.jpg")
    ds = store.create_dataset("raw")
    ds.add_frames(_frames(["old"]))
    before = _state(ds)
    with pytest.raises(SchemaError, match="invalid user column name"):
        ds.ingest(str(tmp_path / "cams"), layout="{_rowid}/{name}", progress=False)
    assert _state(ds) == before
    assert ds.ingest(str(tmp_path / "cams"), layout="{station}/{name}", progress=False).ingested == 1


def _fail_inserts(monkeypatch):
    """Fault injection at the Lance boundary: every merge-insert fails as an I/O error would."""

    def boom(self, *a, **k):
        raise OSError("injected: connection reset while writing")

    monkeypatch.setattr(MergeInsertBuilder, "execute", boom)


def _rollback_case(st, monkeypatch):
    ds = st.create_dataset("d")
    ds.add_frames(_frames(["a"]))
    before = _state(ds)
    with monkeypatch.context() as m:
        _fail_inserts(m)
        with pytest.raises(OSError, match="injected"):
            ds.add_frames(_frames(["b"], temperature=21.5))
    again = st.dataset("d")
    assert _state(again) == before and "temperature" not in again.schema.names
    assert _state(ds) == before
    # the next write works and numbers its versions on from the old one
    res = again.add_frames(_frames(["b"], temperature=21.5))
    assert res.inserted == 1 and again.get("b")["temperature"] == 21.5
    assert again.version > before[0]


def test_failed_insert_takes_its_new_columns_back(store, monkeypatch):
    _rollback_case(store, monkeypatch)


def test_failed_insert_takes_its_new_columns_back_on_s3(s3_bucket, s3_storage_options, monkeypatch):
    bucket, _ = s3_bucket
    _rollback_case(hyperds.connect(f"s3://{bucket}/store", storage_options=s3_storage_options), monkeypatch)


def test_failed_first_write_keeps_the_data_another_writer_committed(tmp_path):
    one, other = hyperds.connect(tmp_path / "s"), hyperds.connect(tmp_path / "s")
    with pytest.raises(RuntimeError):
        with dataset_for_writing(one, "new"):
            # a second command writing to the same new dataset commits while this one is still running
            other.create_dataset("new", exist_ok=True).add_frames(_frames(["x", "y"]))
            raise RuntimeError("endpoint down")
    assert one.datasets() == ["new"] and len(one.dataset("new")) == 2


def test_writer_that_did_not_create_never_drops(tmp_path):
    one, other = hyperds.connect(tmp_path / "s"), hyperds.connect(tmp_path / "s")
    other.create_dataset("new")  # created by the other command, still empty
    with pytest.raises(RuntimeError):
        with dataset_for_writing(one, "new"):
            raise RuntimeError("endpoint down")
    assert one.datasets() == ["new"]


def test_failed_first_write_alone_drops_what_it_created(tmp_path):
    one = hyperds.connect(tmp_path / "s")
    with pytest.raises(RuntimeError):
        with dataset_for_writing(one, "new"):
            raise RuntimeError("endpoint down")
    assert one.datasets() == []
