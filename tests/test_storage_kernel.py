"""The storage kernel: every private or undocumented Lance behaviour hyperds relies on, pinned so a pylance
upgrade that changes one fails here; the Lance error map (only a real not-found is "does not exist",
including for catalog reads during an S3 outage); the filter renderer; LIMIT pushdown and streaming."""

from __future__ import annotations

import datetime as dt
import os
import socket

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import hyperds
from hyperds import storage
from hyperds.cli.main import main
from hyperds.errors import StoreError
from hyperds.query import ast as a
from hyperds.query.lance_sql import all_of, eq, isin, le, not_null, starts_with
from hyperds.storage.rows import locate_rows


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _table(conn: storage.Connection, name: str, n: int, per_fragment: int, seed: int = 0) -> storage.Handle:
    """A table of `n` rows in fragments of `per_fragment`, frame ids in random order, BTREE on frame_id."""
    order = np.random.default_rng(seed).permutation(n)
    data = pa.table({"frame_id": [f"f{i:07d}" for i in order], "w": pa.array(order % 97, pa.int64()),
                     "big": ["x" * 40] * n})
    conn.create_table(name, data.schema)
    ds = conn.open_lance(name)
    for start in range(0, n, per_fragment):
        storage.writes.append(ds, data.slice(start, per_fragment))
    ds = conn.open_lance(name)
    storage.indices.create_scalar_index(ds, "frame_id", "BTREE")
    return conn.open_lance(name)


# -- private / undocumented Lance behaviour ---------------------------------------------------------
def test_take_rows_by_stable_row_id_keeps_the_order_given_and_survives_other_rewrites(tmp_path):
    conn = storage.Connection(str(tmp_path))
    ds = _table(conn, "t", 300, 100)
    where = locate_rows(ds, ["f0000007", "f0000250", "f0000100"])
    ids = where.column("_rowid").to_pylist()
    wanted = list(reversed(ids))
    got = storage.scan.take_row_ids(ds, wanted, columns=["frame_id", "w"])
    assert got.column_names == ["frame_id", "w"]
    by_id = dict(zip(ids, where.column("frame_id").to_pylist(), strict=True))
    assert got.column("frame_id").to_pylist() == [by_id[i] for i in wanted]
    # rewrite other rows: the row ids read before still name the same rows in the new version
    other = locate_rows(ds, ["f0000001"])
    after = storage.commit.rewrite_rows(ds, other, storage.rows.take_rows(ds, other), {})
    assert storage.scan.take_row_ids(after, wanted, columns=["frame_id"]).column("frame_id").to_pylist() == [
        by_id[i] for i in wanted
    ]


def test_row_address_upper_bits_are_the_fragment_id(tmp_path):
    ds = _table(storage.Connection(str(tmp_path)), "t", 400, 100)
    fragments = ds.get_fragments()
    assert len(fragments) == 4
    for fragment in fragments:
        addr = fragment.to_table(columns=["frame_id"], with_row_address=True).column("_rowaddr")
        got = storage.commit.fragment_ids(np.asarray(addr, dtype=np.uint64))
        assert set(got.tolist()) == {fragment.fragment_id}
        lows = (np.asarray(addr, dtype=np.uint64) & np.uint64(0xFFFFFFFF)).tolist()
        assert lows == list(range(fragment.count_rows()))  # the lower 32 bits are the offset in the fragment


def test_hand_built_update_rewrites_rows_carries_properties_and_refuses_a_conflict(tmp_path):
    conn = storage.Connection(str(tmp_path))
    ds = _table(conn, "t", 300, 100)
    base = conn.open_lance("t")
    where = locate_rows(base, ["f0000005", "f0000006"])
    rows = storage.rows.take_rows(base, where)
    changed = rows.set_column(1, "w", pa.array([1000, 1001], pa.int64()))
    after = storage.commit.rewrite_rows(base, where, changed, {"hyperds.commit.id": "c1"})
    assert storage.version(after) == storage.version(ds) + 1
    assert storage.scan.count(after) == 300  # replaced, not added
    got = storage.rows.read_rows(after, ["f0000005", "f0000006"], columns=["w"]).column("w").to_pylist()
    assert got == [1000, 1001]
    written = storage.transactions.written(after, storage.version(after))
    assert written.properties == {"hyperds.commit.id": "c1"}
    assert storage.transactions.rows_in_files(after, written.new_files, ["frame_id"]).column(
        "frame_id").to_pylist() == ["f0000005", "f0000006"]
    # a second commit based on the same (now stale) version touching the same fragment is refused
    with pytest.raises(storage.CommitConflict):
        storage.commit.rewrite_rows(base, where, rows, {})
    assert storage.version(conn.open_lance("t")) == storage.version(after)  # nothing became visible
    assert storage.transactions.written(after, 999) is None  # a version that is not there


def test_optimize_indices_without_merging_adds_a_delta_segment(tmp_path):
    conn = storage.Connection(str(tmp_path))
    ds = _table(conn, "t", 200, 100)
    storage.indices.refresh_indices(ds, {"frame_id": "BTREE", "w": "BITMAP"})  # creates the missing BITMAP
    first = {i.column: i for i in storage.indices.describe(conn.open_lance("t"))}
    assert {c: i.segments for c, i in first.items()} == {"frame_id": 1, "w": 1}
    storage.writes.append(conn.open_lance("t"), pa.table({"frame_id": ["new"], "w": [1], "big": ["y"]}))
    storage.indices.refresh_indices(conn.open_lance("t"), {"frame_id": "BTREE", "w": "BITMAP"}, merge=False)
    delta = {i.column: i for i in storage.indices.describe(conn.open_lance("t"))}
    assert {c: i.segments for c, i in delta.items()} == {"frame_id": 2, "w": 2}  # old segment kept, delta added
    assert {i.rows_indexed for i in delta.values()} == {201}
    storage.writes.append(conn.open_lance("t"), pa.table({"frame_id": ["newer"], "w": [2], "big": ["z"]}))
    storage.indices.refresh_indices(conn.open_lance("t"), {"frame_id": "BTREE", "w": "BITMAP"}, merge=True)
    merged = storage.indices.describe(conn.open_lance("t"))  # new rows folded into the last segment
    assert {i.segments for i in merged} == {2} and {i.rows_indexed for i in merged} == {202}


def test_merging_n_segments_takes_the_newest_n_and_leaves_the_older_untouched(tmp_path):
    """Pins the second undocumented behaviour the write policy rests on (see storage/indices.py)."""
    conn = storage.Connection(str(tmp_path))
    _table(conn, "t", 300, 100)
    for i in range(3):  # three one-row deltas after the base segment
        storage.writes.append(conn.open_lance("t"), pa.table({"frame_id": [f"d{i}"], "w": [i], "big": ["y"]}))
        conn.open_lance("t").optimize.optimize_indices(num_indices_to_merge=0)
    before = [s.uuid for s in conn.open_lance("t").describe_indices()[0].segments]
    assert len(before) == 4
    storage.writes.append(conn.open_lance("t"), pa.table({"frame_id": ["d3"], "w": [3], "big": ["y"]}))
    conn.open_lance("t").optimize.optimize_indices(num_indices_to_merge=2)
    after = [s.uuid for s in conn.open_lance("t").describe_indices()[0].segments]
    assert after[:2] == before[:2] and len(after) == 3 and after[2] not in before
    assert conn.open_lance("t").describe_indices()[0].num_rows_indexed == 304


@pytest.mark.parametrize("sizes, merged", [
    ([1000], 0), ([1000, 900], 0), ([1000] + [10] * 7, 0), ([1000] + [10] * 8, 8), ([1000, 500] + [10] * 9, 9),
    ([1000] + [10] * 7 + [600] + [10] * 3, 0), ([5] * 9, 0), ([5] * 40, 40),
])
def test_segments_to_merge_counts_only_the_trailing_small_deltas(sizes, merged):
    assert storage.indices.segments_to_merge(sizes) == merged


def test_writes_after_a_bulk_load_never_rewrite_its_segments(tmp_path):
    """Bytes a commit writes into the indices follow the rows it changed, not the table (issue 19: a
    one-label commit at 10M frames rewrote two whole index files), and the segment count stays bounded."""
    conn = storage.Connection(str(tmp_path))
    _table(conn, "t", 2000, 1000)
    wanted = {"frame_id": "BTREE", "w": "BITMAP"}
    storage.indices.refresh_indices(conn.open_lance("t"), wanted)
    storage.writes.append(conn.open_lance("t"), pa.table({"frame_id": [f"b{i:05d}" for i in range(2000)],
                                                          "w": list(range(2000)), "big": ["z"] * 2000}))
    storage.indices.refresh_indices(conn.open_lance("t"), wanted, merge=False)  # a second bulk batch
    bulk = {i.name: [s.uuid for s in i.segments] for i in conn.open_lance("t").describe_indices()}
    total = {i.name: i.total_size_bytes for i in conn.open_lance("t").describe_indices()}
    assert all(len(u) == 2 for u in bulk.values())
    for k in range(30):
        storage.writes.append(conn.open_lance("t"), pa.table({"frame_id": [f"c{k:03d}"], "w": [k], "big": ["c"]}))
        before = {i.name: {s.uuid: s.size_bytes for s in i.segments} for i in conn.open_lance("t").describe_indices()}
        storage.indices.refresh_indices(conn.open_lance("t"), wanted, merge=False)
        for index in conn.open_lance("t").describe_indices():
            uuids = [s.uuid for s in index.segments]
            assert uuids[:2] == bulk[index.name], (k, index.name)  # the two bulk segments are never rewritten
            written = sum(s.size_bytes for s in index.segments if s.uuid not in before[index.name])
            assert written * 8 < total[index.name], (k, index.name, written)  # a small fraction, not the index
            assert len(uuids) <= 2 + storage.indices.MAX_SMALL
            assert index.num_rows_indexed == 4001 + k
    ds = conn.open_lance("t")
    assert storage.scan.count(ds, "frame_id = 'c017'") == 1 and storage.scan.count(ds, "frame_id LIKE 'c%'") == 30


def test_racing_inserts_of_the_same_keys_store_each_key_once(tmp_path):
    """insert_new declares the key as Lance's unenforced primary key (once, on a table made without it), so
    the insert-only merge records its keys and the later of racing inserts retries and skips them."""
    import threading

    conn = storage.Connection(str(tmp_path))
    schema = pa.schema([pa.field("frame_id", pa.string(), nullable=False), pa.field("w", pa.int64())])
    conn.create_table("t", schema)
    storage.writes.append(conn.open_lance("t"), pa.table({"frame_id": ["seed"], "w": [0]}, schema=schema))
    for round_ in range(3):
        data = pa.table({"frame_id": [f"r{round_}-{i}" for i in range(5)], "w": [1] * 5}, schema=schema)
        handles = [conn.open_lance("t") for _ in range(3)]  # each racer read the table before any inserted
        barrier, inserted = threading.Barrier(3), []

        def insert(ds):
            barrier.wait()
            inserted.append(storage.writes.insert_new(ds, data, "frame_id"))

        racers = [threading.Thread(target=insert, args=(h,)) for h in handles]
        for t in racers:
            t.start()
        for t in racers:
            t.join()
        assert sorted(inserted) == [0, 0, 5]
    ids = storage.scan.read(conn.open_lance("t"), columns=["frame_id"])["frame_id"].to_pylist()
    assert sorted(ids) == sorted(set(ids)) and len(ids) == 16
    key = storage.schema(conn.open_lance("t")).field("frame_id")
    assert key.metadata == {b"lance-schema:unenforced-primary-key": b"true"}


def test_tag_creation_is_a_lock_and_tags_are_moved_and_deleted(tmp_path):
    conn = storage.Connection(str(tmp_path))
    ds = _table(conn, "t", 10, 10)
    v = storage.version(ds)
    storage.tags.create_tag(ds, "view.a.1.0", v)
    with pytest.raises(storage.Exists):  # the second taker of the lock loses
        storage.tags.create_tag(conn.open_lance("t"), "view.a.1.0", v)
    storage.tags.set_tag(ds, "view.a.1.0", v - 1)
    tags = storage.tags.list_tags(conn.open_lance("t"))
    assert tags["view.a.1.0"].version == v - 1 and isinstance(tags["view.a.1.0"].created_at, dt.datetime)
    assert storage.version(conn.open_lance("t", version="view.a.1.0")) == v - 1
    storage.tags.delete_tag(ds, "view.a.1.0")
    with pytest.raises(storage.Missing):
        storage.tags.delete_tag(ds, "view.a.1.0")
    with pytest.raises(storage.Missing):
        conn.open_lance("t", version="view.a.1.0")


# -- the error map ---------------------------------------------------------------------------------
def test_error_map_tells_not_found_from_exists_from_unreachable(tmp_path):
    conn = storage.Connection(str(tmp_path))
    with pytest.raises(storage.Missing, match="not found"):
        conn.open_lance("nope")
    assert conn.existing("nope") is None
    ds = _table(conn, "t", 10, 10)
    with pytest.raises(storage.Missing):
        conn.open_lance("t", version=storage.version(ds) + 5)
    with pytest.raises(storage.Exists):
        conn.create_table("t", pa.schema([("frame_id", pa.string())]))
    with pytest.raises(storage.Missing):
        conn.drop_table("nope")
    options = {"aws_endpoint": f"http://127.0.0.1:{_free_port()}", "allow_http": "true", "region": "us-east-1",
               "aws_access_key_id": "x", "aws_secret_access_key": "y"}
    down = storage.Connection("s3://bucket/store", options)
    with pytest.raises(StoreError, match="unreachable") as info:
        down.existing("_views")
    assert not isinstance(info.value, storage.Missing)  # an outage is not "does not exist"


def test_catalog_reads_during_an_s3_outage_raise_instead_of_reading_empty(s3_bucket, s3_storage_options,
                                                                            monkeypatch, capsys):
    bucket, _ = s3_bucket
    uri = f"s3://{bucket}/store"
    st = hyperds.connect(uri, storage_options=s3_storage_options)
    st.create_dataset("cams").add_frames([{"frame_id": "f1", "uri": "f1.jpg", "annotations": [{"label": "lion"}]}])
    st.create_view("v", "array_has(labels, 'lion')", datasets=["cams"]).publish()
    assert st.views().column("status").to_pylist() == ["published", "draft"]
    dark = dict(s3_storage_options, aws_endpoint=f"http://127.0.0.1:{_free_port()}")  # nothing listens there
    down = hyperds.connect(uri, storage_options=dict(dark, client_max_retries="0"))  # fail fast: no retries
    for read in (down.views, down.runs, lambda: down.view("v")):
        with pytest.raises(StoreError, match="unreachable"):
            read()
    # the CLI: one line on stderr and exit 2, not an empty listing with exit 0
    monkeypatch.setenv("AWS_ENDPOINT", dark["aws_endpoint"])
    monkeypatch.setenv("AWS_ALLOW_HTTP", "true")
    assert main(["--store", uri, "view", "list"]) == 2
    out = capsys.readouterr()
    assert out.out == "" and "unreachable" in out.err and "Traceback" not in out.err


# -- the filter renderer --------------------------------------------------------------------------
@settings(max_examples=40)
@given(st.lists(st.text(alphabet=st.characters(codec="utf-8", exclude_categories=["Cs", "Cc"]), max_size=6),
                min_size=1, max_size=6, unique=True))
def test_rendered_filters_select_exactly_the_values_asked_for(tmp_path_factory, values):
    path = tmp_path_factory.mktemp("render")
    ds = storage.writes.overwrite(str(path / "t.lance"), pa.table({"k": values + ["other'", "x\\"],
                                                                    "n": list(range(len(values) + 2))}))
    picked = values[: max(1, len(values) // 2)]
    assert sorted(storage.scan.read(ds, ["k"], isin("k", picked)).column("k").to_pylist()) == sorted(picked)
    assert storage.scan.read(ds, ["k"], eq("k", values[0])).column("k").to_pylist() == [values[0]]
    assert storage.scan.read(ds, ["k"], starts_with("k", values[0])).column("k").to_pylist() == [
        v for v in values + ["other'", "x\\"] if v.startswith(values[0])
    ]
    both = all_of(eq("k", values[0]), le("n", 0))
    assert storage.scan.count(ds, both) == 1
    assert storage.scan.count(ds, isin("k", [])) == 0
    assert storage.scan.count(ds, not_null("k")) == len(values) + 2


def test_renderer_refuses_what_lance_cannot_evaluate_exactly():
    with pytest.raises(ValueError, match="no exact Lance filter"):
        from hyperds.query.lance_sql import render

        render(a.Compare("=", a.Column("w", type=a.INT, arrow_type=pa.int8()), a.Literal(1000, a.INT)))


# -- LIMIT pushdown and streaming -----------------------------------------------------------------
@pytest.fixture(scope="module")
def many_fragments(tmp_path_factory):
    """40,000 frames in 40 fragments, frame ids in random order (read-only for the tests using it)."""
    ds = hyperds.connect(tmp_path_factory.mktemp("many") / "store").create_dataset("many")
    order = np.random.default_rng(1).permutation(40_000)
    for start in range(0, 40_000, 1_000):
        part = order[start : start + 1_000]
        ds.add_frames(pa.table({"frame_id": [f"f{i:06d}" for i in part], "uri": [f"{i}.jpg" for i in part],
                                "width": pa.array((part % 7) * 100 + 600, pa.int32())}))
    return ds


def test_limit_reads_a_bounded_number_of_rows(many_fragments):
    ds = many_fragments
    assert len(ds.lance().get_fragments()) == 40
    everything = sorted(f"f{i:06d}" for i in range(40_000))
    wide = [c for c in ds.schema.names if c != "embedding"]
    for text, want in [
        ("SELECT * FROM many LIMIT 100", everything[:100]),
        ("SELECT * FROM many ORDER BY frame_id DESC LIMIT 100 OFFSET 5", everything[::-1][5:105]),
        ("SELECT * FROM many WHERE width >= 1000 LIMIT 100",
         [f for f in everything if (int(f[1:]) % 7) * 100 + 600 >= 1000][:100]),
    ]:
        query = ds.query(text)
        assert "limit:     pushed to Lance" in query.explain()
        with storage.scan.counting() as stats:
            got = query.to_arrow(wide)
        assert got.column("frame_id").to_pylist() == want, text
        read = storage.scan.rows_read(stats)
        assert read <= 12_000, (text, read, stats)  # of 40,000: the key probe plus the rows kept
        assert sum(s.get("rows_taken", 0) for s in stats) == 100  # whole rows read: only those returned
    with storage.scan.counting() as stats:  # the same rows without pushdown (a residual) read everything
        ds.query("SELECT frame_id FROM many WHERE any_annotation(label = 'x') OR width > 0 LIMIT 100").to_arrow()
    assert storage.scan.rows_read(stats) >= 40_000


def test_to_batches_streams_batches_whose_union_is_to_arrow(many_fragments):
    ds = many_fragments
    for text in ("width >= 900", "width >= 900 OR any_annotation(label = 'lion')", "TRUE"):
        query = ds.query(text)
        batches = list(query.to_batches(["frame_id", "width"], batch_size=4_000))
        assert len(batches) >= 3 and all(0 < b.num_rows <= 4_000 for b in batches)
        assert all(b.schema.names == ["frame_id", "width"] for b in batches)
        streamed = pa.Table.from_batches(batches).sort_by("frame_id")
        assert streamed.equals(query.to_arrow(["frame_id", "width"]).sort_by("frame_id"))
    ordered = ds.query("SELECT frame_id FROM many ORDER BY width DESC LIMIT 10")
    assert pa.Table.from_batches(list(ordered.to_batches(batch_size=3))).equals(ordered.to_arrow())
    with pytest.raises(hyperds.QueryError, match="batch_size"):
        next(ds.query("TRUE").to_batches(batch_size=0))


def test_limit_on_a_selective_filter_and_an_empty_table(store):
    ds = store.create_dataset("few")
    assert ds.query("SELECT frame_id FROM few LIMIT 5").to_arrow().num_rows == 0
    ds.add_frames([{"frame_id": f"f{i}", "uri": f"{i}.jpg", "width": i} for i in range(30)])
    got = ds.query("SELECT frame_id, width FROM few WHERE width > 25 LIMIT 3").to_arrow()
    assert got.column("frame_id").to_pylist() == ["f26", "f27", "f28"]
    assert ds.query("SELECT frame_id FROM few LIMIT 0").to_arrow().num_rows == 0
    assert pc.sum(ds.query("SELECT width FROM few ORDER BY frame_id LIMIT 2 OFFSET 29").to_arrow()["width"]).as_py() == 9


def test_lance_log_lines_stay_off_the_users_terminal(tmp_path):
    """Building side tables creates Lance datasets, which Lance's Rust logger announces as WARN lines."""
    import subprocess
    import sys

    script = (
        "import hyperds; ds = hyperds.connect(%r).create_dataset('d');"
        "ds.add_frames([{'frame_id': 'a', 'uri': 'file:///a.jpg', 'annotations': [{'label': 'lion'}]}]);"
        "ds.optimize()" % str(tmp_path / "store")
    )
    env = {k: v for k, v in os.environ.items() if k != "LANCE_LOG"}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "lance::" not in done.stderr and "WARN" not in done.stderr, done.stderr
