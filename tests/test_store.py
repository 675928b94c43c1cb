"""Store and dataset basics on local disk and on a moto S3 server."""

from __future__ import annotations

import pickle
import socket
from pathlib import Path

import polars as pl
import pyarrow as pa
import pytest

import hyperds
from hyperds.errors import (
    DatasetExistsError,
    DatasetNotFoundError,
    DuplicateFrameError,
    FrameNotFoundError,
    SchemaError,
    StoreError,
)


def _frames(n: int, prefix: str = "f") -> list[dict]:
    return [
        {
            "frame_id": f"{prefix}{i}",
            "uri": f"s3://bucket/{prefix}{i}.jpg",
            "site": f"S{i % 3}",
            "captured_at": f"2024-03-0{1 + i % 9}T06:30:00+02:00",
            "annotations": [{"label": "lion" if i % 2 else "zebra", "confidence": 0.5, "source_kind": "model"}],
        }
        for i in range(n)
    ]


def test_connect_default_uses_env(tmp_path, monkeypatch):
    monkeypatch.setenv("HYPERDS_STORE", str(tmp_path / "envstore"))
    store = hyperds.connect()
    store.create_dataset("a")
    assert (tmp_path / "envstore" / "a.lance").is_dir()
    assert hyperds.connect(tmp_path / "envstore").datasets() == ["a"]


@pytest.mark.parametrize("exist_ok", [False, True])
def test_create_dataset_over_the_leftover_of_a_create_that_failed(store, exist_ok):
    """A create cut short (an outage, a crash) leaves <name>.lance/ without a version: listed, yet no dataset.
    Creating it again (the retry its error asks for) makes the dataset; only then does it exist."""
    leftover = Path(store.uri) / "cams.lance" / "_transactions"
    leftover.mkdir(parents=True)
    (leftover / "0-cut-short.txn").write_bytes(b"")
    assert store.datasets() == ["cams"]
    ds = store.create_dataset("cams", exist_ok=exist_ok)
    ds.add_frames(_frames(2))
    assert len(store.dataset("cams")) == 2 and store.datasets() == ["cams"]
    with pytest.raises(DatasetExistsError, match="already exists"):
        store.create_dataset("cams")


def test_create_open_drop(store):
    store.create_dataset("cams", root="s3://bucket/root")
    assert store.datasets() == ["cams"]
    assert store.dataset("cams").root == "s3://bucket/root"
    with pytest.raises(DatasetExistsError, match="already exists"):
        store.create_dataset("cams")
    with pytest.raises(DatasetNotFoundError, match="existing datasets: cams"):
        store.dataset("camz")
    store.drop_dataset("cams")
    assert store.datasets() == []


def test_add_frames_idempotent_and_derived(store):
    ds = store.create_dataset("cams")
    first = ds.add_frames(_frames(10))
    assert (first.inserted, first.skipped) == (10, 0)
    again = ds.add_frames(_frames(12))
    assert (again.inserted, again.skipped) == (2, 10)
    assert len(ds) == 12
    row = ds.get("f3")
    assert row["labels"] == ["lion"]
    assert row["revision"] == 0
    assert row["captured_at"].isoformat() == "2024-03-04T04:30:00+00:00"  # +02:00 stored as UTC
    ann = row["annotations"][0]
    assert (ann["ann_id"], ann["review_status"], ann["source_kind"]) == ("f3:0", "unreviewed", "model")
    indexed = {d.field_names[0]: d.type_url for d in ds.lance().describe_indices()}
    assert set(indexed) == {"frame_id", "captured_at", "site", "camera", "labels"}
    assert all(d.num_rows_indexed == 12 for d in ds.lance().describe_indices())


def test_inputs_arrow_polars_dicts_agree(store):
    rows = _frames(5)
    a = store.create_dataset("a")
    a.add_frames(rows)
    b = store.create_dataset("b")
    b.add_frames(pl.DataFrame({"frame_id": [r["frame_id"] for r in rows], "uri": [r["uri"] for r in rows]}))
    c = store.create_dataset("c")
    c.add_frames(pa.table({"frame_id": [r["frame_id"] for r in rows], "uri": [r["uri"] for r in rows], "temp_c": [1.5] * 5}))
    assert a.to_arrow()["frame_id"].to_pylist() == b.to_polars()["frame_id"].to_list()
    assert c.schema.field("temp_c").type == pa.float64()


def test_rejected_label_not_in_labels(store):
    ds = store.create_dataset("cams")
    ds.add_frames([{"frame_id": "x", "uri": "u", "annotations": [
        {"label": "lion", "review_status": "rejected"}, {"label": "zebra"}, {"label": "zebra"}]}])
    assert ds.get("x")["labels"] == ["zebra"]


@pytest.mark.parametrize(
    "rows, error, pointer",
    [
        ([{"frame_id": "a", "uri": "u"}, {"frame_id": "a", "uri": "v"}], DuplicateFrameError, "'a'"),
        ([{"frame_id": "a"}], SchemaError, "'uri'"),
        ([{"frame_id": "a", "uri": "u", "annotations": [{"label": "x", "bbox": [0.5, 0.5, 0.7, 0.1]}]}], SchemaError, "bbox"),
        ([{"frame_id": "a", "uri": "u", "annotations": [{"label": "x", "source_kind": "robot"}]}], SchemaError, "source_kind"),
        ([{"frame_id": "a", "uri": "u", "captured_at": "yesterday"}], SchemaError, "timestamp"),
    ],
)
def test_bad_frames_leave_dataset_unchanged(store, rows, error, pointer):
    ds = store.create_dataset("cams")
    ds.add_frames(_frames(3))
    version, count = ds.version, len(ds)
    with pytest.raises(error, match=pointer):
        ds.add_frames(rows)
    assert (ds.version, len(ds)) == (version, count)


def test_get_unknown_frame(store):
    ds = store.create_dataset("cams")
    ds.add_frames(_frames(2))
    with pytest.raises(FrameNotFoundError, match="'nope'"):
        ds.get("nope")


def test_at_reads_the_past(store):
    ds = store.create_dataset("cams")
    ds.add_frames(_frames(3))
    v = ds.version
    ds.add_frames(_frames(6))
    assert len(ds.at(v)) == 3 and len(ds) == 6


def test_s3_store_round_trip(s3_bucket, s3_storage_options):
    bucket, client = s3_bucket
    store = hyperds.connect(f"s3://{bucket}/stores/main", storage_options=s3_storage_options)
    ds = store.create_dataset("cams")
    ds.add_frames(_frames(20))
    keys = [o["Key"] for o in client.list_objects_v2(Bucket=bucket)["Contents"]]
    assert any(k.startswith("stores/main/cams.lance/") for k in keys)
    again = hyperds.connect(f"s3://{bucket}/stores/main", storage_options=s3_storage_options)
    assert again.datasets() == ["cams"]
    got = again.dataset("cams").to_arrow().sort_by("frame_id")
    assert got.num_rows == 20
    assert again.dataset("cams").get("f7")["labels"] == ["lion"]


def test_store_errors_say_what_to_check(tmp_path):
    a_file = tmp_path / "a-file"
    a_file.write_text("not a store")
    with pytest.raises(StoreError, match="not a file"):
        hyperds.connect(a_file)
    typo = hyperds.connect(tmp_path / "typo")
    with pytest.raises(DatasetNotFoundError, match=f"in store {typo.uri};"):  # the mistyped path shows
        typo.dataset("md")
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    options = {"aws_endpoint": f"http://127.0.0.1:{port}", "allow_http": "true", "region": "us-east-1"}
    with pytest.raises(StoreError, match="check the endpoint, region and credentials"):
        hyperds.connect("s3://bucket/prefix", options).datasets()


def test_pickled_store_has_no_secret(s3_storage_options):
    opts = dict(s3_storage_options, aws_secret_access_key="SUPERSECRET123")
    # Azure and Google credentials too, each its own secret so a leak names its option.
    cloud = ("account_key", "azure_storage_account_key", "google_service_account_key", "credentials")
    opts.update({name: f"SUPERSECRET-{name}" for name in cloud})
    store = hyperds.Store("s3://bucket/x", opts)
    blob = pickle.dumps(store)
    assert b"SUPERSECRET123" not in blob
    for name in cloud:
        assert f"SUPERSECRET-{name}".encode() not in blob
    assert pickle.loads(blob).storage_options["aws_endpoint"] == opts["aws_endpoint"]


def test_resolve_uris():
    from hyperds.frames.uris import resolve_uris

    uris = pa.array(["s3://b/k.jpg", "/data/a.JPG", "./media/x.jpg", "media/y.jpg", "https://h/x/file", None])
    assert resolve_uris(uris, None).to_pylist() == [
        "s3://b/k.jpg", "file:///data/a.JPG", "./media/x.jpg", "media/y.jpg", "https://h/x/file", None]
    assert resolve_uris(uris, "s3://bucket/root/").to_pylist()[2:4] == [
        "s3://bucket/root/media/x.jpg", "s3://bucket/root/media/y.jpg"]
    assert resolve_uris(uris, "/mnt/cams").to_pylist()[3] == "file:///mnt/cams/media/y.jpg"


def test_parse_timestamps_zones_and_dates():
    from hyperds.frames.normalize import parse_timestamps

    got = parse_timestamps(
        pa.array(["2024-03-01", "2024-03-01T06:30:00+02:00", "2021:04:11 20:43:09", "2024-03-01T06:30-0130", None]),
        assume_tz="Europe/Brussels",
    ).to_pylist()
    assert [g.isoformat() if g else None for g in got] == [
        "2024-02-29T23:00:00+00:00",  # a naive date is midnight in the assumed zone (CET, +01:00)
        "2024-03-01T04:30:00+00:00",
        "2021-04-11T18:43:09+00:00",  # EXIF style, CEST in April
        "2024-03-01T08:00:00+00:00",
        None,
    ]


def test_all_null_new_column_waits_for_a_typed_value(store):
    ds = store.create_dataset("cams")
    ds.add_frames([{"frame_id": "a", "uri": "a.jpg", "note2": None}])
    assert "note2" not in ds.schema.names  # nothing to type it by, nothing lost
    ds.add_frames([{"frame_id": "b", "uri": "b.jpg", "note2": "hello"}])
    assert ds.schema.field("note2").type == pa.string() and ds.get("b")["note2"] == "hello"


def test_readding_known_frames_writes_no_version(store):
    ds = store.create_dataset("cams")
    ds.add_frames(_frames(3))
    version = ds.version
    again = ds.add_frames(_frames(3))
    with_column = ds.add_frames([dict(r, station="S1") for r in _frames(3)])
    assert (again.inserted, again.skipped, with_column.inserted) == (0, 3, 0)
    assert ds.version == version and "station" not in ds.schema.names


def test_user_column_may_not_redefine_a_core_column(store):
    with pytest.raises(SchemaError, match=r"\['site'\] redefine core frame columns"):
        store.create_dataset("x", schema=pa.schema([("site", pa.int64()), ("temp", pa.float32())]))
    assert store.datasets() == []


def test_polars_string_user_column_is_stored_as_plain_string(store):
    """polars exports strings as large_string; a new user column is stored as string like the core columns."""
    ds = store.create_dataset("cams")
    df = pl.DataFrame({"frame_id": ["a", "b"], "uri": ["a.jpg", "b.jpg"], "station": ["S1", "S2"]})
    assert df.to_arrow().schema.field("station").type == pa.large_string()
    ds.add_frames(df)
    assert ds.schema.field("station").type == pa.string()
    assert ds.lance().schema.field("station").type == pa.string()
    ds.add_frames(pl.DataFrame({"frame_id": ["c"], "uri": ["c.jpg"], "station": ["S3"]}))
    assert ds.to_polars().sort("frame_id")["station"].to_list() == ["S1", "S2", "S3"]
