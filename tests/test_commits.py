"""Annotation commits on real Lance tables: each op, provenance, history, blame, bad input, revisions."""

from __future__ import annotations

import datetime as dt

import lance
import polars as pl
import pyarrow as pa
import pytest

import hyperds
from hyperds.errors import ConflictError, CorrectionError
from hyperds.frames.rows import Snapshot, locate_rows, read_rows, take_rows
from hyperds.versioning.changes import apply_changes, normalize_changes
from hyperds.versioning.commits import _try_write, commit
from hyperds.versioning.history import commit_properties

MODEL = "MegaDetector v5a"


def _frames(n: int = 6) -> list[dict]:
    return [
        {
            "frame_id": f"f{i}",
            "uri": f"file:///images/{i}.jpg",
            "site": "S1",
            "annotations": [
                {"ann_id": f"f{i}:0", "label": "lion", "bbox": [0.1, 0.1, 0.2, 0.2], "source_kind": "model",
                 "source": MODEL, "confidence": 0.8},
                {"ann_id": f"f{i}:1", "label": "zebra", "source_kind": "human", "source": "importer"},
            ],
        }
        for i in range(n)
    ]


@pytest.fixture
def ds(store):
    d = store.create_dataset("cams")
    d.add_frames(_frames())
    return d


def _snapshot(d) -> tuple[int, list[dict]]:
    d = d.store.dataset(d.name)
    return d.version, d.to_arrow().sort_by("frame_id").to_pylist()


def _ann(frame: dict, ann_id: str) -> dict:
    return next(a for a in frame["annotations"] if a["ann_id"] == ann_id)


def test_each_op_applies_with_provenance(ds):
    v0 = ds.version
    before = {r["frame_id"]: r for r in _snapshot(ds)[1]}
    t0 = dt.datetime.now(dt.UTC)
    res = ds.commit(
        [
            {"op": "relabel", "frame_id": "f0", "ann_id": "f0:0", "label": "leopard", "revision": 0},
            {"op": "add", "frame_id": "f0", "ann_id": "f0:new", "label": "gnu", "bbox": [0.5, 0.5, 0.1, 0.2],
             "count": 3},
            {"op": "move", "frame_id": "f1", "ann_id": "f1:0", "bbox": [0.3, 0.3, 0.4, 0.4]},
            {"op": "delete", "frame_id": "f2", "ann_id": "f2:1"},
            {"op": "review", "frame_id": "f3", "ann_id": "f3:0", "status": "reject", "note": "a rock"},
            {"op": "review", "frame_id": "f4", "ann_id": "f4:0", "status": "accept"},
        ],
        author="alice",
        message="first pass",
    )
    t1 = dt.datetime.now(dt.UTC)
    assert res.version == v0 + 1 and res.version_before == v0
    assert (res.frames, res.added, res.updated, res.deleted, res.reviewed) == (5, 1, 2, 1, 2)
    after = {r["frame_id"]: r for r in _snapshot(ds)[1]}
    # untouched frame: identical
    assert after["f5"] == before["f5"]
    for f in ("f0", "f1", "f2", "f3", "f4"):
        assert after[f]["revision"] == before[f]["revision"] + 1
    relabelled = _ann(after["f0"], "f0:0")
    assert relabelled["label"] == "leopard"
    assert (relabelled["source_kind"], relabelled["source"], relabelled["confidence"]) == ("human", "alice", None)
    assert t0 <= relabelled["created_at"] <= t1 and relabelled["revision"] == 1
    added = _ann(after["f0"], "f0:new")
    assert (added["label"], added["count"], added["source_kind"], added["source"]) == ("gnu", 3, "human", "alice")
    assert added["bbox"] == pytest.approx([0.5, 0.5, 0.1, 0.2]) and added["review_status"] == "unreviewed"
    assert [a["ann_id"] for a in after["f0"]["annotations"]] == ["f0:0", "f0:1", "f0:new"]
    assert after["f0"]["labels"] == ["gnu", "leopard", "zebra"]
    moved = _ann(after["f1"], "f1:0")
    assert moved["bbox"] == pytest.approx([0.3, 0.3, 0.4, 0.4])
    # a moved box is the author's now (a model re-run must never replace it); the label stays
    assert (moved["label"], moved["source_kind"], moved["source"], moved["confidence"]) == ("lion", "human", "alice", None)
    assert [a["ann_id"] for a in after["f2"]["annotations"]] == ["f2:0"] and after["f2"]["labels"] == ["lion"]
    rejected = _ann(after["f3"], "f3:0")
    assert (rejected["review_status"], rejected["reviewed_by"], rejected["note"]) == ("rejected", "alice", "a rock")
    assert t0 <= rejected["reviewed_at"] <= t1 and rejected["source"] == MODEL
    assert after["f3"]["labels"] == ["zebra"]  # a rejected label no longer counts
    assert _ann(after["f4"], "f4:0")["review_status"] == "accepted"
    # the past stays readable
    assert {r["frame_id"]: r for r in ds.at(v0).to_arrow().to_pylist()} == before


def test_correct_keeps_model_values_in_history_and_blame_explains(ds):
    ds.commit([{"op": "review", "frame_id": "f0", "ann_id": "f0:0", "status": "correct", "label": "cheetah",
                "note": "spots, not a lion"}], author="bob", message="species check")
    row = ds.get("f0")
    ann = _ann(row, "f0:0")
    assert (ann["label"], ann["review_status"], ann["source_kind"], ann["source"]) == (
        "cheetah", "corrected", "human", "bob")
    hist = ds.history("f0")
    assert hist.height == 1
    ev = hist.row(0, named=True)
    assert (ev["op"], ev["author"], ev["message"]) == ("review", "bob", "species check")
    assert ev["note"] == "spots, not a lion"
    assert (ev["before"]["label"], ev["before"]["source"], ev["before"]["source_kind"]) == ("lion", MODEL, "model")
    assert ev["before"]["confidence"] == pytest.approx(0.8)
    assert ev["after"]["label"] == "cheetah" and ev["after"]["confidence"] is None
    blame = {r["ann_id"]: r for r in ds.blame("f0").iter_rows(named=True)}
    mine = blame["f0:0"]
    assert (mine["label"], mine["set_by"], mine["why"]) == ("cheetah", "bob", "species check")
    assert blame["f0:1"]["set_by"] == "importer" and blame["f0:1"]["commit_id"] is None


def test_several_changes_to_one_annotation_apply_in_order(ds):
    ds.commit(
        [
            {"op": "add", "frame_id": "f1", "ann_id": "f1:x", "label": "gnu"},
            {"op": "relabel", "frame_id": "f1", "ann_id": "f1:x", "label": "buffalo"},
            {"op": "review", "frame_id": "f1", "ann_id": "f1:x", "status": "accept"},
            {"op": "relabel", "frame_id": "f1", "ann_id": "f1:0", "label": "hyena"},
            {"op": "delete", "frame_id": "f1", "ann_id": "f1:0"},
        ],
        author="carol",
    )
    row = ds.get("f1")
    assert [a["ann_id"] for a in row["annotations"]] == ["f1:1", "f1:x"]
    x = _ann(row, "f1:x")
    assert (x["label"], x["review_status"], x["revision"]) == ("buffalo", "accepted", 2)
    assert row["revision"] == 1  # one commit, one frame revision
    ops = dict(ds.history("f1").select("ann_id", "op").iter_rows())
    assert ops == {"f1:x": "add", "f1:0": "delete"}


def test_commits_log_and_revision_sequence(ds):
    r1 = ds.commit([{"op": "relabel", "frame_id": "f0", "ann_id": "f0:0", "label": "a", "revision": 0}],
                   author="u1", message="m1")
    r2 = ds.commit([{"op": "relabel", "frame_id": "f0", "ann_id": "f0:0", "label": "b", "revision": 1}],
                   author="u2", message="m2")
    log = ds.commits()
    assert log["commit_id"].to_list() == [r1.commit_id, r2.commit_id]
    assert log["version_after"].to_list() == [r1.version, r2.version]
    assert log["author"].to_list() == ["u1", "u2"] and log["message"].to_list() == ["m1", "m2"]
    assert ds.at(r1.version).get("f0")["labels"] == ["a", "zebra"]
    assert ds.get("f0")["revision"] == 2


def test_stale_revision_conflicts_and_writes_nothing(ds):
    ds.commit([{"op": "relabel", "frame_id": "f2", "ann_id": "f2:0", "label": "x"}], author="a")
    snap = _snapshot(ds)
    with pytest.raises(ConflictError) as err:
        ds.commit(
            [
                {"op": "relabel", "frame_id": "f2", "ann_id": "f2:0", "label": "y", "revision": 0},
                {"op": "relabel", "frame_id": "f3", "ann_id": "f3:0", "label": "y", "revision": 0},
            ],
            author="b",
        )
    assert err.value.frame_ids == ["f2"] and "f2" in str(err.value)
    assert _snapshot(ds) == snap and ds.commits().height == 1


def test_based_on_version_conflicts_only_for_changed_frames(ds):
    base = ds.version
    ds.commit([{"op": "relabel", "frame_id": "f2", "ann_id": "f2:0", "label": "x"}], author="a")
    snap = _snapshot(ds)
    with pytest.raises(ConflictError) as err:
        ds.commit([{"op": "delete", "frame_id": "f2", "ann_id": "f2:1"},
                   {"op": "delete", "frame_id": "f4", "ann_id": "f4:1"}], author="b", based_on=base)
    assert err.value.frame_ids == ["f2"]
    assert _snapshot(ds) == snap
    res = ds.commit([{"op": "delete", "frame_id": "f4", "ann_id": "f4:1"}], author="b", based_on=base)
    assert res.version > snap[0] and ds.get("f4")["revision"] == 1
    assert ds.commits()["based_on"].to_list() == [None, base]


def test_based_on_names_unknown_frames_and_rejects_bad_versions(ds):
    base = ds.version
    ds.add_frames([{**_frames(7)[6]}])  # f6 exists now, not at `base`
    snap = _snapshot(ds)
    with pytest.raises(CorrectionError) as err:  # a typo is an unknown frame, not a stale base
        ds.commit([{"op": "delete", "frame_id": "nope", "ann_id": "nope:0"}], author="b", based_on=base)
    assert err.value.rows == ["change 0 (delete nope/nope:0): no such frame_id"]
    with pytest.raises(ConflictError, match="did not exist at version") as err:
        ds.commit([{"op": "delete", "frame_id": "f6", "ann_id": "f6:0"},
                   {"op": "delete", "frame_id": "nope", "ann_id": "nope:0"}], author="b", based_on=base)
    assert err.value.frame_ids == ["f6"]
    with pytest.raises(CorrectionError, match=rf"based_on must be a version number.*'{base}'"):
        ds.commit([{"op": "delete", "frame_id": "f1", "ann_id": "f1:0"}], author="b", based_on=str(base))
    with pytest.raises(hyperds.errors.HyperdsError, match=f"has no version {snap[0] + 5}; available versions: 1..{snap[0]}"):
        ds.commit([{"op": "delete", "frame_id": "f1", "ann_id": "f1:0"}], author="b", based_on=snap[0] + 5)
    assert _snapshot(ds) == snap and ds.commits().height == 0


BAD = [
    ([{"op": "relabel", "frame_id": "nope", "ann_id": "nope:0", "label": "x"}], CorrectionError, "nope"),
    ([{"op": "relabel", "frame_id": "f1", "ann_id": "f1:9", "label": "x"}], CorrectionError, "f1:9"),
    ([{"op": "move", "frame_id": "f1", "ann_id": "f1:0", "bbox": [0.5, 0.5, 0.6, 0.1]}], CorrectionError, "bbox"),
    ([{"op": "move", "frame_id": "f1", "ann_id": "f1:0", "bbox": [0.5, 0.5, 0.1]}], CorrectionError, "bbox"),
    ([{"op": "add", "frame_id": "f1", "ann_id": "f1:0", "label": "x"}], CorrectionError, "taken"),
    ([{"op": "paint", "frame_id": "f1"}], CorrectionError, "op must be"),
    ([{"op": "relabel", "frame_id": "f1", "ann_id": "f1:0"}], CorrectionError, "needs 'label'"),
    ([{"op": "review", "frame_id": "f1", "ann_id": "f1:0", "status": "maybe"}], CorrectionError, "status"),
    ([{"op": "add", "frame_id": "f1", "label": "x", "confidence": 1.5}], CorrectionError, "confidence"),
    ([{"op": "add", "frame_id": "f1", "label": "x", "colour": "red"}], CorrectionError, "colour"),
    ([], CorrectionError, "no changes"),
    ([{"op": "relabel", "frame_id": "f1", "ann_id": "f1:0", "label": "x", "revision": 7}], ConflictError, "f1"),
]


@pytest.mark.parametrize(("changes", "error", "named"), BAD)
def test_bad_input_raises_and_writes_nothing(ds, changes, error, named):
    # a good change rides along, so a partial write would show
    good = {"op": "relabel", "frame_id": "f5", "ann_id": "f5:0", "label": "ok"}
    snap = _snapshot(ds)
    with pytest.raises(error) as err:
        ds.commit([good, *changes] if changes else [], author="a", message="bad")
    assert named in str(err.value)
    assert _snapshot(ds) == snap
    assert ds.commits().height == 0


def test_error_lists_every_offending_change(ds):
    changes = [{"op": "relabel", "frame_id": f"missing{i}", "ann_id": "a", "label": "x"} for i in range(3)]
    with pytest.raises(CorrectionError) as err:
        ds.commit(changes, author="a")
    assert sorted(err.value.rows) == sorted(f"change {i} (relabel missing{i}/a): no such frame_id" for i in range(3))


@pytest.mark.parametrize("author", ["", "   ", None])
def test_empty_author_rejected(ds, author):
    snap = _snapshot(ds)
    with pytest.raises(CorrectionError, match="author"):
        ds.commit([{"op": "delete", "frame_id": "f1", "ann_id": "f1:0"}], author=author)
    assert _snapshot(ds) == snap


def test_taxonomy_limits_labels(ds):
    ds.set_taxonomy(["lion", "zebra", "leopard"])
    assert ds.taxonomy == ["leopard", "lion", "zebra"]
    snap = _snapshot(ds)
    with pytest.raises(CorrectionError) as err:
        ds.commit(
            [
                {"op": "relabel", "frame_id": "f1", "ann_id": "f1:0", "label": "leopard"},
                {"op": "add", "frame_id": "f2", "label": "unicorn"},
                {"op": "review", "frame_id": "f3", "ann_id": "f3:0", "status": "correct", "label": "dragon"},
            ],
            author="a",
        )
    assert [r.split(": ")[0] for r in err.value.rows] == ["change 1 (add f2)", "change 2 (review f3/f3:0)"]
    assert _snapshot(ds) == snap
    ds.commit([{"op": "relabel", "frame_id": "f1", "ann_id": "f1:0", "label": "leopard"}], author="a")
    ds.set_taxonomy(None)
    assert ds.taxonomy is None
    ds.commit([{"op": "add", "frame_id": "f2", "label": "unicorn"}], author="a")


def test_taxonomy_given_as_one_string_is_rejected(ds):
    ds.set_taxonomy(["lion", "zebra"])
    version = ds.version
    with pytest.raises(CorrectionError, match=r"a taxonomy is a list of labels, e.g. \['lion', 'zebra'\]"):
        ds.set_taxonomy("cat")
    assert ds.taxonomy == ["lion", "zebra"] and ds.version == version


def test_changes_as_polars_and_arrow(ds):
    df = pl.DataFrame({"op": ["relabel", "add"], "frame_id": ["f0", "f1"], "ann_id": ["f0:0", None],
                       "label": ["gnu", "eland"], "bbox": [None, [0.0, 0.0, 1.0, 1.0]]})
    ds.commit(df, author="a")
    ds.commit(df.filter(pl.col("op") == "relabel").with_columns(label=pl.lit("topi")).to_arrow(), author="a")
    assert ds.get("f0")["labels"] == ["topi", "zebra"]
    assert "eland" in ds.get("f1")["labels"]


def test_lost_catalog_write_is_rebuilt_from_transaction_properties(ds):
    """Simulates a crash after the frames commit and before the history writes."""
    changes = [{"op": "relabel", "frame_id": "f0", "ann_id": "f0:0", "label": "serval"},
               {"op": "review", "frame_id": "f1", "ann_id": "f1:0", "status": "reject", "note": "empty"}]
    ref = ds.commit(changes, author="dana", message="ref")
    lost = ds.store.open_lance("cams")
    where = locate_rows(lost, ["f0", "f1"])
    rows = take_rows(lost, where)
    changes2 = [dict(c, label="caracal") if c["op"] == "relabel" else dict(c, ann_id="f1:1") for c in changes]
    after = apply_changes(rows, normalize_changes(changes2), "erin", dt.datetime.now(dt.UTC))
    props = commit_properties("lostcommit", "erin", "crashed", dt.datetime.now(dt.UTC), None)
    committed = _try_write(lost, where, after, props)
    assert committed is not None and committed.version == lost.version + 1
    log = ds.commits()
    assert log["commit_id"].to_list() == [ref.commit_id, "lostcommit"]
    assert log.row(1, named=True)["author"] == "erin" and log.row(1, named=True)["frames"] == 2
    hist = ds.history("f1").filter(pl.col("commit_id") == "lostcommit")
    shown = hist.select("frame_id", "ann_id", "op", "author", "note").rows()
    assert shown == [("f1", "f1:1", "review", "erin", "empty")]
    serval = ds.history("f0").filter(pl.col("commit_id") == "lostcommit").row(0, named=True)
    assert (serval["before"]["label"], serval["after"]["label"]) == ("serval", "caracal")
    # reading again rebuilds nothing twice
    assert ds.commits().height == 2 and ds.history("f0").height == 2


def test_index_stays_fresh_after_commit(ds):
    ds.commit([{"op": "add", "frame_id": "f3", "label": "aardvark"}], author="a")
    lds = lance.dataset(ds.uri)
    unindexed = {i.name: lds.stats.index_stats(i.name)["num_unindexed_rows"] for i in lds.describe_indices()}
    assert unindexed and all(v == 0 for v in unindexed.values()), unindexed
    assert ds.count("array_has_any(labels, ['aardvark'])") == 1


def test_commit_on_s3(s3_bucket, s3_storage_options):
    bucket, _ = s3_bucket
    st = hyperds.connect(f"s3://{bucket}/store", storage_options=s3_storage_options)
    d = st.create_dataset("cams")
    d.add_frames(_frames(3))
    res = d.commit([{"op": "relabel", "frame_id": "f1", "ann_id": "f1:0", "label": "caracal", "revision": 0}],
                   author="sam", message="s3")
    assert d.get("f1")["labels"] == ["caracal", "zebra"]
    assert d.commits()["version_after"].to_list() == [res.version]
    assert d.history("f1")["after"].struct.field("label").to_list() == ["caracal"]
    with pytest.raises(ConflictError):
        d.commit([{"op": "delete", "frame_id": "f1", "ann_id": "f1:0", "revision": 0}], author="sam")


def test_history_and_blame_at_a_past_version_and_unknown_frame(ds):
    first = ds.commit([{"op": "relabel", "frame_id": "f0", "ann_id": "f0:0", "label": "a"}], author="u1", message="m1")
    ds.commit([{"op": "relabel", "frame_id": "f0", "ann_id": "f0:0", "label": "b"}], author="u2", message="m2")
    assert ds.history("f0")["message"].to_list() == ["m1", "m2"]
    past = ds.at(first.version)
    assert past.history("f0")["message"].to_list() == ["m1"]
    assert past.blame("f0").row(0, named=True)["label"] == "a"
    assert ds.blame("f0").row(0, named=True)["set_by"] == "u2"
    with pytest.raises(hyperds.errors.FrameNotFoundError):
        ds.history("nope")
    with pytest.raises(hyperds.errors.FrameNotFoundError):
        ds.blame("nope")


@pytest.mark.parametrize(
    "changes, message",
    [
        ([1, 2], "every change must be an object"),
        ([{"op": "add", "frame_id": "X", "label": "x", "bbox": [0.1, 0.1, 0.1, "a"]}], "wrong type"),
        ([{"op": "add", "frame_id": "X", "label": "x", "count": -3}], "count must be >= 0"),
    ],
)
def test_malformed_changes_are_correction_errors(store, changes, message):
    ds = store.create_dataset("bad")
    ds.add_frames([{"frame_id": "X", "uri": "x.jpg"}])
    version = ds.version
    with pytest.raises(CorrectionError, match=message):
        ds.commit(changes, author="ana")
    assert ds.version == version and ds.get("X")["annotations"] == []


@pytest.mark.parametrize(
    "changes, rows",
    [
        (pl.DataFrame({"op": ["move", "move", "move"], "frame_id": ["f0", "f1", "f2"], "ann_id": ["f0:0", "f1:0", "f2:0"],
                       "bbox": ["[0, 0, 1, 1]", None, "abc"]}),
         ["change 0 (move f0/f0:0): bbox '[0, 0, 1, 1]' is not 4 numbers [x, y, w, h], normalised to the image",
          "change 2 (move f2/f2:0): bbox 'abc' is not 4 numbers [x, y, w, h], normalised to the image"]),
        ([{"op": "move", "frame_id": "f0", "ann_id": "f0:0", "bbox": {"x": 1}}],
         ["change 0 (move f0/f0:0): bbox {'x': 1} is not 4 numbers [x, y, w, h], normalised to the image"]),
        (pl.DataFrame({"op": ["move", "move"], "frame_id": ["f0", "f1"], "ann_id": ["f0:0", "f1:0"],
                       "bbox": [[0.1, 0.1, 0.1, 0.1], [0.1, 0.1, 0.1]]}),
         ["change 1 (move f1/f1:0): bbox [0.1, 0.1, 0.1] is not 4 numbers [x, y, w, h], normalised to the image"]),
        ([{"op": "relabel", "frame_id": "f0", "ann_id": "f0:0", "label": "x", "revision": "0"},
          {"op": "relabel", "frame_id": "f1", "ann_id": "f1:0", "label": "x", "revision": "abc"},
          {"op": "add", "frame_id": "f2", "label": "x", "count": "two"}],
         ["change 1 (relabel f1/f1:0): revision 'abc' is not a whole number (the frame revision the change was based on)",
          "change 2 (add f2): count 'two' is not a whole number >= 0"]),
    ],
)
def test_values_of_the_wrong_type_name_the_change_and_what_to_give(ds, changes, rows):
    snap = _snapshot(ds)
    with pytest.raises(CorrectionError, match="wrong type, nothing was written") as err:
        ds.commit(changes, author="a")
    assert err.value.rows == rows
    assert "int64" not in str(err.value) and "fixed_size_list" not in str(err.value)
    assert _snapshot(ds) == snap


def test_a_field_name_with_a_nul_is_an_unknown_field(ds):
    with pytest.raises(CorrectionError, match="unknown change field"):
        ds.commit(pl.DataFrame({"op\x00x": ["add"], "frame_id": ["f0"]}), author="a")


@pytest.mark.parametrize(
    "change, field",
    [
        ({"op": "review", "frame_id": "f3", "ann_id": "f3:0", "status": "accept", "bbox": [0.0, 0.0, 1.0, 1.0]}, "bbox"),
        ({"op": "relabel", "frame_id": "f3", "ann_id": "f3:0", "label": "q", "confidence": 0.3}, "confidence"),
        ({"op": "delete", "frame_id": "f3", "ann_id": "f3:0", "note": "why"}, "note"),
        ({"op": "move", "frame_id": "f3", "ann_id": "f3:0", "bbox": [0.1, 0.1, 0.1, 0.1], "label": "q"}, "label"),
    ],
)
def test_a_field_the_op_does_not_use_is_an_error_not_ignored(ds, change, field):
    snap = _snapshot(ds)
    with pytest.raises(CorrectionError) as err:
        ds.commit([change], author="a")
    assert len(err.value.rows) == 1
    assert f"{change['op']} does not use {field!r} (it takes " in err.value.rows[0]
    assert _snapshot(ds) == snap
    # the same change without that field (or with it null, as an empty CSV cell reads) goes through
    ds.commit([{**change, field: None}], author="a")
    assert ds.commits().height == 1 and ds.version > snap[0]


def test_existing_ids_and_read_rows_by_lookup_and_by_scan(store):
    ds = store.create_dataset("ids")
    have = [f"it's-{i}" for i in range(700)]
    ds.add_frames([{"frame_id": f, "uri": f"{f}.jpg"} for f in have])
    lance_ds = ds.lance()
    for asked in (["it's-3", "nope"], [*have[::2], "nope", "it's-x"]):  # few ids: index lookups; many: a scan
        expected = sorted(set(asked) & set(have))
        assert ds.existing_ids(pa.array(asked)).to_pylist() == expected
        rows = read_rows(lance_ds, asked, columns=["frame_id", "revision"])
        assert rows.column_names == ["frame_id", "revision"] and rows.column("frame_id").to_pylist() == expected
    assert ds.existing_ids(pa.array([], pa.string())).to_pylist() == []


def test_reading_history_writes_nothing(store):
    ds = store.create_dataset("ro")
    ds.add_frames([{"frame_id": "f", "uri": "f.jpg", "annotations": [{"label": "x"}]}])
    ds.commit([{"op": "relabel", "frame_id": "f", "ann_id": "f:0", "label": "y"}], author="ana")
    versions = {n: store.open_lance(n).version for n in store.table_names()}
    assert ds.commits().height == 1 and ds.history("f").height == 1 and ds.blame("f").height == 1
    assert {n: store.open_lance(n).version for n in store.table_names()} == versions


def test_reading_history_of_a_never_committed_dataset_creates_no_catalog(store):
    """Reads open `_commits`/`_events` only if they exist (a read-only store could not create them)."""
    ds = store.create_dataset("fresh")
    ds.add_frames([{"frame_id": "f", "uri": "f.jpg", "annotations": [{"label": "x"}]}])
    tables = store.table_names()
    with pytest.raises(hyperds.errors.FrameNotFoundError):
        ds.history("nope")
    assert ds.commits().height == 0
    events = ds.history("f")
    assert events.height == 0 and "message" in events.columns
    assert ds.blame("f")["why"].to_list() == ["imported from human source"]
    assert store.table_names() == tables
    ds.commit([{"op": "relabel", "frame_id": "f", "ann_id": "f:0", "label": "y"}], author="ana", message="fix")
    assert ds.history("f")["message"].to_list() == ["fix"]


def test_writes_add_an_index_delta_instead_of_rewriting_the_index(ds, store):
    """A small add or commit must not rewrite a whole single-segment index (its cost would follow the table)."""
    def segments():
        return {i.name: {s.uuid for s in i.segments} for i in ds.lance().describe_indices()}

    first = segments()
    assert first and all(len(s) == 1 for s in first.values())
    ds.add_frames([{**_frames(7)[6], "site": "S2"}])
    after_add = segments()
    assert all(first[name] < after_add[name] for name in first)  # the first segment is kept, a delta added
    ds.commit([{"op": "relabel", "frame_id": "f6", "ann_id": "f6:0", "label": "eland"}], author="a")
    assert all(first[name] <= segments()[name] for name in first)
    assert ds.count("site = 'S2'") == 1 and "eland" in ds.get("f6")["labels"]
    assert {i.num_rows_indexed for i in ds.lance().describe_indices()} == {7}


@pytest.mark.parametrize(
    "rows, match",
    [
        ([{"frame_id": "a", "uri": "a", "site_no": 1}, {"frame_id": "b", "uri": "b", "site_no": "s"}],
         r"column 'site_no'.*row 1: 's'"),
        ([{"frame_id": "a", "uri": "a", "annotations": ["cat"]}], r"row 0: annotations must be a list of dicts"),
        ([{"frame_id": "a", "uri": "a", "annotations": [{"label": "c", "bbox": "abc"}]}],
         r"column 'annotations'.*row 0.*4 numbers"),
        (5, "rows must be a list of dicts"),
    ],
)
def test_malformed_frame_rows_are_schema_errors(ds, rows, match):
    before = (ds.version, len(ds))
    with pytest.raises(hyperds.errors.SchemaError, match=match):
        ds.add_frames(rows)
    assert (ds.version, len(ds)) == before


def test_commit_based_on_a_stale_read_retries_from_a_fresh_one(ds):
    """commit(read=...) saves a re-read; a commit landing after that read still conflicts or merges correctly."""
    snap = Snapshot.read(ds.store.open_lance(ds.name), ["f0", "f1"])
    ds.commit([{"op": "relabel", "frame_id": "f1", "ann_id": "f1:1", "label": "gnu"}], author="b")  # same fragment
    res = commit(ds, [{"op": "relabel", "frame_id": "f0", "ann_id": "f0:1", "label": "eland", "revision": 0}],
                 author="a", read=snap)
    assert res.attempts == 2 and ds.get("f0")["labels"] == ["eland", "lion"] and "gnu" in ds.get("f1")["labels"]
    before = ds.version
    with pytest.raises(ConflictError, match="f1"):
        commit(ds, [{"op": "relabel", "frame_id": "f1", "ann_id": "f1:1", "label": "kudu", "revision": 0}],
               author="a", read=snap)
    assert ds.version == before and "gnu" in ds.get("f1")["labels"]


def test_history_catalogs_stay_few_fragments_and_lose_nothing(ds, store, monkeypatch):
    """Each commit appends a fragment to `_events` and `_commits`; past a bound they are compacted (a read
    pays per fragment), and every event and commit is still there."""
    from hyperds import storage
    from hyperds.versioning import history

    monkeypatch.setattr(history, "_MAX_FRAGMENTS", 4)
    labels = ["eland", "zebra"]
    for k in range(10):
        ds.commit([{"op": "relabel", "frame_id": "f1", "ann_id": "f1:0", "label": labels[k % 2]}], author=f"a{k}")
    for name in ("_events", "_commits"):
        assert storage.fragment_count(store.existing(name)) <= 5, name
    events = ds.history("f1")
    assert events["author"].to_list() == [f"a{k}" for k in range(10)]
    assert [e["label"] for e in events["after"].to_list()] == [labels[k % 2] for k in range(10)]
    assert ds.commits()["author"].to_list() == [f"a{k}" for k in range(10)]
