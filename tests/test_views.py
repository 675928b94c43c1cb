"""Views on real Lance tables: pinning, digests against a plain-Python reference, label maps, splits,
weights, diff, verify, runs, cleanup, and every bad input leaving the store unchanged."""

from __future__ import annotations

import datetime as dt
import random

import lance
import pyarrow as pa
import pytest
import views_reference as ref

import hyperds
from hyperds.errors import (
    DatasetNotFoundError,
    IntegrityError,
    QueryError,
    ViewError,
    ViewExistsError,
    ViewImmutableError,
    ViewNotFoundError,
)
from hyperds.views import cleanup as cleanup_mod

SPECIES = ["lion", "zebra", "gazelle", "hyena", "empty"]


def _frames(n: int, seed: int = 0, prefix: str = "f") -> list[dict]:
    rnd = random.Random(seed)
    rows = []
    for i in range(n):
        labels = rnd.sample(SPECIES, rnd.randint(0, 2))
        rows.append({
            "frame_id": f"{prefix}{i:04d}",
            "uri": f"s3://bucket/{prefix}{i}.jpg",
            "site": rnd.choice(["S1", "S2", "S3", "S4", "S5", "S6", None]),
            "seq_id": f"{prefix}q{i // 3}",
            "annotations": [{"label": lab, "confidence": 0.5} for lab in labels],
        })
    return rows


def _rows(ds) -> list[dict]:
    return ds.store.dataset(ds.name).to_arrow().to_pylist()


def _state(store) -> dict:
    """Every table's version, row count and tags: a store 'unchanged' keeps all of them."""
    out = {}
    for name in store.table_names():
        t = store.open_lance(name)
        out[name] = (t.version, t.count_rows(), sorted((k, v["version"]) for k, v in t.tags.list().items()))
    return out


@pytest.fixture
def ds(store):
    d = store.create_dataset("cams")
    d.add_frames(_frames(60))
    return d


def _has(label):
    return lambda r: label in (r["labels"] or [])


# -- pinning and digest ------------------------------------------------------------------------
def test_published_version_gives_same_frames_and_labels_forever(store, ds):
    before = _rows(ds)
    draft = store.create_view("lions", "any_annotation(label = 'lion')", datasets=["cams"], message="lions")
    v1 = draft.publish(message="first cut")
    expected = ref.manifest({"cams": before}, [("default", _has("lion"))])
    assert v1.version == "1.0" and len(v1) == len(expected) > 0
    assert v1.digest == ref.digest(expected)
    assert v1.frame_ids().to_pylist() == [r["frame_id"] for r in expected]

    # the data moves on: new lions, a relabel, a deletion
    ds.add_frames([{"frame_id": "new1", "uri": "s3://b/n.jpg", "annotations": [{"label": "lion"}]}])
    lion_rows = [r for r in before if "lion" in r["labels"]]
    victim, relabeled = lion_rows[0]["frame_id"], lion_rows[1]
    ann = next(a for a in relabeled["annotations"] if a["label"] == "lion")
    ds.commit([{"op": "relabel", "frame_id": relabeled["frame_id"], "ann_id": ann["ann_id"], "label": "hyena"}],
              author="alice", message="not a lion")
    ds.lance().delete(f"frame_id = '{victim}'")

    again = hyperds.view("lions", "1.0", store=store)
    assert again.digest == v1.digest and len(again) == len(expected)
    assert again.frame_ids().to_pylist() == [r["frame_id"] for r in expected]
    assert again.verify().ok
    now = ref.manifest({"cams": _rows(ds)}, [("default", _has("lion"))])
    assert store.view("lions", "draft").frame_ids().to_pylist() == [r["frame_id"] for r in now]
    v2 = store.view("lions", "draft").publish()
    assert (v2.version, v2.parent_version, v2.digest) == ("1.1", "1.0", ref.digest(now))
    assert v2.versions() == ["1.0", "1.1"] and hyperds.view("lions", store=store).version == "1.1"
    assert v2.parent.digest == v1.digest
    tag = "view.lions.1.0"
    assert ds.lance().tags.list()[tag]["version"] == v1.pins["cams"]


def test_digest_with_label_map_split_and_subqueries_matches_reference(store, ds):
    rows = _rows(ds)
    fractions = [("train", 0.6), ("val", 0.2), ("test", 0.2)]
    view = store.create_view(
        "mix",
        {"cats": "array_has(labels, 'lion')", "stripes": "any_annotation(label = 'zebra')"},
        datasets=["cams"],
        label_map={"lion": "big_cat", "zebra": "equid", "hyena": "carnivore"},
        weights={"cats": 3.0},
        split={"by": "site", "fractions": dict(fractions), "seed": 7},
    ).publish("2.0")
    expected = ref.manifest({"cams": rows}, [("cats", _has("lion")), ("stripes", _has("zebra"))],
                            label_map={"lion": "big_cat", "zebra": "equid", "hyena": "carnivore"},
                            split=("site", fractions, 7))
    got = view.to_arrow()
    assert got.column("frame_id").to_pylist() == [r["frame_id"] for r in expected]
    assert got.column("classes").to_pylist() == [r["classes"] for r in expected]
    assert got.column("split").to_pylist() == [r["split"] for r in expected]
    assert view.digest == ref.digest(expected)
    # weights: sub-query share w_q / sum(w), spread evenly, mean weight 1
    n = len(expected)
    n_cats = sum(r["subquery"] == "cats" for r in expected)
    w = dict(zip(got.column("subquery").to_pylist(), got.column("weight").to_pylist(), strict=False))
    assert w["cats"] == pytest.approx(0.75 * n / n_cats)
    assert w["stripes"] == pytest.approx(0.25 * n / (n - n_cats))
    assert view.classes == ["big_cat", "carnivore", "equid"]


def test_two_datasets_are_resolved_in_name_order(store):
    a = store.create_dataset("b_set")
    b = store.create_dataset("a_set")
    a.add_frames(_frames(20, seed=1, prefix="x"))
    b.add_frames(_frames(20, seed=2, prefix="x"))  # same frame ids in both datasets
    view = store.create_view("both", "array_has(labels, 'zebra')", datasets=["b_set", "a_set"]).publish()
    expected = ref.manifest({"a_set": _rows(b), "b_set": _rows(a)}, [("default", _has("zebra"))])
    got = view.to_arrow(["dataset", "frame_id"])
    assert list(zip(*[got.column(c).to_pylist() for c in ("dataset", "frame_id")], strict=True)) == [
        (r["dataset"], r["frame_id"]) for r in expected
    ]
    assert view.digest == ref.digest(expected)
    with pytest.raises(ViewError, match="boolean expression"):
        store.create_view("sel", "SELECT frame_id FROM a_set WHERE site = 'S1'", datasets=["a_set", "b_set"])


# -- label maps, splits -------------------------------------------------------------------------
def test_unknown_labels_drop_keep_error(store, ds):
    rows = _rows(ds)
    q = "array_has(labels, 'lion') OR array_has(labels, 'zebra')"
    pred = lambda r: bool({"lion", "zebra"} & set(r["labels"]))  # noqa: E731
    for unknown in ("drop", "keep"):
        v = store.create_view(f"m-{unknown}", q, datasets=["cams"], label_map={"lion": "cat"}, unknown_labels=unknown)
        exp = ref.manifest({"cams": rows}, [("default", pred)], label_map={"lion": "cat"}, unknown=unknown)
        got = v.to_arrow(["frame_id", "classes"])
        assert got.column("frame_id").to_pylist() == [r["frame_id"] for r in exp]
        assert got.column("classes").to_pylist() == [r["classes"] for r in exp]
    keep = store.view("m-keep", "draft")
    assert keep.label_map["lion"] == "cat" and keep.label_map["zebra"] == "zebra"
    state = _state(store)
    with pytest.raises(ViewError, match="labels not in the label map: .*'zebra'"):  # no draft is saved
        store.create_view("m-error", q, datasets=["cams"], label_map={"lion": "cat"}, unknown_labels="error")
    assert _state(store) == state
    # a draft made while every label was mapped still refuses to publish once an unmapped one appears
    err = store.create_view("m-error", "frame_id = 'new'", datasets=["cams"], label_map={"lion": "cat"},
                            unknown_labels="error")
    ds.add_frames([{"frame_id": "new", "uri": "new.jpg", "annotations": [{"label": "lion"}, {"label": "zebra"}]}])
    state = _state(store)
    with pytest.raises(ViewError, match="labels not in the label map: .*'zebra'"):
        err.publish()
    assert _state(store) == state


def test_splits_group_by_site_and_seq_without_leaks(store, ds):
    for by in ("site", "seq_id"):
        v = store.create_view(f"s-{by}", "TRUE", datasets=["cams"],
                              split={"by": by, "fractions": {"train": 0.5, "val": 0.25, "test": 0.25}, "seed": 3})
        t = v.to_polars(["frame_id", by, "split"])
        per_group = t.drop_nulls(by).group_by(by).n_unique()
        assert per_group.height > 1 and per_group.get_column("split").max() == 1, f"a {by} group spans splits"
        parts = [v.frame_ids(split=s).to_pylist() for s in ("train", "val", "test")]
        assert sorted(sum(parts, [])) == sorted(t.get_column("frame_id").to_list())
    # deterministic and stable: the same seed gives the same assignment, a new frame does not move others
    a = store.view("s-site", "draft").to_polars(["frame_id", "split"])
    ds.add_frames(_frames(5, seed=9, prefix="z"))
    both = a.join(store.view("s-site", "draft").to_polars(["frame_id", "split"]), on="frame_id")
    assert both.height == a.height and (both["split"] == both["split_right"]).all()
    with pytest.raises(ViewError, match="no split 'holdout'"):
        store.view("s-site", "draft").to_arrow(split="holdout")


# -- diff ---------------------------------------------------------------------------------------
def test_diff_reports_added_removed_relabeled_revised(store, ds):
    v1 = store.create_view("d", "TRUE", datasets=["cams"], label_map={s: s.upper() for s in SPECIES},
                           unknown_labels="keep").publish()
    rows = {r["frame_id"]: r for r in _rows(ds)}
    labelled = [r for r in rows.values() if r["annotations"]]
    relabel, move, delete = labelled[0], labelled[1], labelled[2]
    ann_r, ann_m = relabel["annotations"][0], move["annotations"][0]
    new_label = next(s for s in SPECIES if s not in relabel["labels"])
    ds.commit([
        {"op": "relabel", "frame_id": relabel["frame_id"], "ann_id": ann_r["ann_id"], "label": new_label},
        {"op": "move", "frame_id": move["frame_id"], "ann_id": ann_m["ann_id"], "bbox": [0.1, 0.1, 0.2, 0.2]},
    ], author="bob", message="fixes")
    ds.lance().delete(f"frame_id = '{delete['frame_id']}'")
    ds.add_frames([{"frame_id": "added1", "uri": "s3://b/a.jpg", "annotations": [{"label": "lion"}]}])
    v2 = store.view("d", "draft").publish()
    d = v2.diff("1.0")
    assert d.counts == {"added": 1, "removed": 1, "relabeled": 1, "revised": 1, "removed (rejected)": 0}
    assert d.added["frame_id"].to_list() == ["added1"] and d.removed["frame_id"].to_list() == [delete["frame_id"]]
    old_classes = sorted({lab.upper() for lab in relabel["labels"]})
    remaining = [a["label"] for a in relabel["annotations"][1:]] + [new_label]
    assert d.relabeled.row(0, named=True) == {
        "dataset": "cams", "frame_id": relabel["frame_id"], "classes_old": old_classes,
        "classes_new": sorted({lab.upper() for lab in remaining}),
    }
    assert d.revised["frame_id"].to_list() == [move["frame_id"]]
    assert v1.diff(v1).empty and str(d).startswith("d 1.0 -> d 1.1: 1 added, 1 removed")


# -- audit: runs, verify, cleanup ---------------------------------------------------------------
def test_record_run_and_list_runs(store, ds):
    v = store.create_view("r", "TRUE", datasets=["cams"], empty="keep").publish()
    v.record_run("run-a", {"lr": 0.01, "epochs": 2})
    store.view("r", "draft").publish().record_run("run-b")
    all_runs = store.runs()
    assert all_runs.column("run_id").to_pylist() == ["run-a", "run-b"]
    only = store.runs(view="r", version="1.0").to_pylist()
    assert len(only) == 1 and only[0]["digest"] == v.digest and only[0]["frame_count"] == 60
    assert only[0]["info"] == '{"epochs": 2, "lr": 0.01}'
    with pytest.raises(ViewError, match="publish"):
        store.view("r", "draft").record_run("run-c")


def test_verify_names_missing_pinned_version(store, ds):
    v = store.create_view("gone", "TRUE", datasets=["cams"]).publish()
    ds.add_frames(_frames(3, prefix="n"))
    raw = ds.lance()
    raw.tags.delete("view.gone.1.0")  # someone bypasses hyperds and cleans up with plain Lance
    raw.cleanup_old_versions(older_than=dt.timedelta(0), error_if_tagged_old_versions=False)
    report = hyperds.view("gone", "1.0", store=store).verify()
    assert not report.ok and f"pinned Lance version {v.pins['cams']} no longer exists" in report.problems[0]
    assert any("has no tag" in w for w in report.warnings)
    with pytest.raises(IntegrityError, match="no longer exists"):
        hyperds.view("gone", "1.0", store=store).to_arrow()
    with pytest.raises(IntegrityError):
        report.raise_for_problems()


def test_verify_says_which_part_differs_when_the_digest_does_not_match(store, ds, monkeypatch):
    store.create_view("t", {"a": "array_has(labels, 'lion')", "b": "array_has(labels, 'zebra')"},
                      datasets=["cams"]).publish()
    views = lance.dataset(store.table_uri("_views"))
    views.update({"digest": "'0000'"}, where="version = '1.0'")  # tamper with the record
    report = store.view("t", "1.0").verify()
    assert not report.ok and report.problems == [f"digest is {report.actual_digest}; 0000 was recorded"]

    # an engine that now reads one lion frame fewer: verify names the sub-query whose frames differ
    from hyperds.query.query import Query

    original = Query.to_arrow

    def one_lion_fewer(self, columns=None):
        table = original(self, columns)
        return table.slice(1) if "lion" in self.sql else table

    monkeypatch.setattr(Query, "to_arrow", one_lion_fewer)
    report = store.view("t", "1.0").verify()
    n = report.recorded_count
    assert report.actual_count == n - 1
    assert report.problems[0] == f"resolves to {n - 1} frames; {n} were recorded"
    assert [p for p in report.problems if "sub-query" in p] == [
        next(p for p in report.problems if "sub-query 'a'" in p)
    ]


def test_cleanup_removes_old_versions_but_never_a_published_one(store, ds):
    v1 = store.create_view("c", "array_has(labels, 'lion')", datasets=["cams"]).publish()
    for i in range(3):
        ds.add_frames(_frames(4, seed=i, prefix=f"k{i}"))
    ds.lance().tags.delete("view.c.1.0")  # lost tag (e.g. a crash right after the catalog row): cleanup restores it
    result = store.cleanup(older_than=dt.timedelta(0))
    assert result.versions_removed["cams"] > 0 and result.tags_restored == ["cams:view.c.1.0"]
    versions = [v["version"] for v in ds.lance().versions()]
    assert v1.pins["cams"] in versions and len(versions) == 2  # pinned + latest
    assert store.view("c", "1.0").verify().ok


def test_publish_locks_share_one_views_version_so_cleanup_compacts_the_catalog(store, ds):
    store.create_view("many", "array_has(labels, 'lion')", datasets=["cams"])
    before = {}
    for i in range(6):
        ds.add_frames(_frames(3, seed=i, prefix=f"m{i}"))
        view = store.view("many", "draft").update(message=f"m{i}").publish()
        before[view.version] = view.frame_ids().to_pylist()
    assert len({t["version"] for t in store.open_lance("_views").tags.list().values()}) == 1
    store.cleanup(older_than=dt.timedelta(0))
    views = store.open_lance("_views")
    assert len(views.versions()) <= 2 and len(views.tags.list()) == len(before)  # the locked version + latest
    assert sorted(before) == store.view("many").versions()
    for version, frame_ids in before.items():
        again = store.view("many", version)
        assert again.verify().ok and again.frame_ids().to_pylist() == frame_ids


# -- bad input ----------------------------------------------------------------------------------
def test_unknown_view_and_version_list_what_exists(store, ds):
    store.create_view("known", "TRUE", datasets=["cams"]).publish()
    state = _state(store)
    with pytest.raises(ViewNotFoundError, match="existing views: known"):
        hyperds.view("nope", store=store)
    with pytest.raises(ViewNotFoundError, match=r"no version '9.9'; existing versions: 1.0, draft"):
        store.view("known", "9.9")
    store.create_view("only-draft", "TRUE", datasets=["cams"])
    with pytest.raises(ViewNotFoundError, match="no published version"):
        store.view("only-draft")
    assert {k: v for k, v in _state(store).items() if k != "_views"} == {k: v for k, v in state.items() if k != "_views"}


def test_reading_views_of_a_fresh_store_creates_nothing(store):
    with pytest.raises(ViewNotFoundError, match="existing views: none yet"):
        hyperds.view("any", store=store)
    assert store.views().num_rows == 0 and store.runs().num_rows == 0
    assert store.table_names() == []


def test_publish_existing_version_and_editing_published_are_refused(store, ds):
    v = store.create_view("p", "TRUE", datasets=["cams"]).publish("1.2")
    state = _state(store)
    with pytest.raises(ViewExistsError, match="1.2 is already published"):
        store.view("p", "draft").publish("1.2")
    with pytest.raises(ViewImmutableError, match="published and cannot be edited"):
        v.update(query="site = 'S1'")
    with pytest.raises(ViewImmutableError):
        v.publish("1.3")
    with pytest.raises(ViewError, match="MAJOR.MINOR"):
        store.view("p", "draft").publish("v2")
    assert _state(store) == state
    assert store.view("p", "draft").publish().version == "1.3"


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"query": "sitee = 'S1'"}, QueryError, "did you mean 'site'"),
        ({"query": {"a": "TRUE", "b": "any_annotation(labl = 'x')"}}, QueryError, "labl"),
        ({"name": "bad name"}, ViewError, "invalid view name"),
        ({"name": "x..y"}, ViewError, "invalid view name"),
        ({"datasets": ["missing"]}, DatasetNotFoundError, "existing datasets: cams"),
        ({"datasets": []}, ViewError, "at least one dataset"),
        ({"weights": {"zzz": 1.0}}, ViewError, "unknown sub-queries"),
        ({"weights": {"default": -1}}, ViewError, "positive"),
        ({"label_map": {"lion": ""}}, ViewError, "non-empty strings"),
        ({"unknown_labels": "maybe"}, ViewError, "drop, keep, error"),
        ({"split": {"by": "species"}}, ViewError, "must be one of"),
        ({"split": {"by": "site", "fractions": {"train": 0.9, "val": 0.2}}}, ViewError, "sum to 1"),
        ({"split": {"by": "site", "fractions": {"train": "most", "val": 0.2}}}, ViewError, "must be numbers"),
        ({"split": {"by": "site", "seed": 2**63}}, ViewError, r"seed must be an integer from -2\*\*63"),
        ({"split": {"by": "site", "seed": 2**70}}, ViewError, "stored as int64"),
        ({"query": ["TRUE"]}, ViewError, "query must be SQL text"),
        ({"query": 5}, ViewError, "query must be SQL text"),
    ],
)
def test_bad_view_definitions_are_refused_and_nothing_is_written(store, ds, kwargs, error, match):
    store.create_view("existing", "TRUE", datasets=["cams"])
    state = _state(store)
    args = {"name": "v", "query": "TRUE", "datasets": ["cams"], **kwargs}
    with pytest.raises(error, match=match):
        store.create_view(args.pop("name"), args.pop("query"), **args)
    assert _state(store) == state


def test_interrupted_publish_holds_its_version_until_cleanup_frees_it(store, ds, monkeypatch):
    draft = store.create_view("i", "TRUE", datasets=["cams"])
    views = store.open_lance("_views")
    views.tags.create("view.i.1.0", views.version)  # a publish that died after taking the lock
    with pytest.raises(ViewExistsError, match="is being published, by another process"):
        draft.publish("1.0")
    assert store.cleanup().locks_freed == []  # too fresh to be stale
    monkeypatch.setattr(cleanup_mod, "STALE_LOCK", dt.timedelta(0))
    assert store.cleanup().locks_freed == ["view.i.1.0"]
    assert draft.publish("1.0").verify().ok


def test_failed_publish_leaves_no_trace(store, ds, monkeypatch):
    draft = store.create_view("f", "TRUE", datasets=["cams"])
    state = _state(store)

    def boom(*_a, **_k):
        raise OSError("disk full")

    monkeypatch.setattr("hyperds.views.catalog.append_row", boom)
    with pytest.raises(OSError, match="disk full"):
        draft.publish()
    assert _state(store) == state


def test_hyperds_view_uses_HYPERDS_STORE(store, ds, monkeypatch):
    store.create_view("env", "TRUE", datasets=["cams"], empty="keep").publish()
    monkeypatch.setenv("HYPERDS_STORE", store.uri)
    assert hyperds.view("env").frame_count == 60
    assert isinstance(hyperds.view("env").to_arrow(), pa.Table)


def test_view_over_real_camtrap_dp_sample(store, sample_data):
    from hyperds.frames.importers import import_camtrap_dp

    ds = store.create_dataset("mica")
    import_camtrap_dp(ds, sample_data / "camtrap-dp")
    rows = _rows(ds)
    mapping = {"Anas platyrhynchos": "duck", "Anas strepera": "duck", "Rattus norvegicus": "rat"}
    v = store.create_view("rodents", "array_has(labels, 'Anas platyrhynchos') OR NOT array_has(labels, 'blank')",
                          datasets=["mica"], label_map=mapping,
                          split={"by": "deployment", "fractions": {"train": 0.75, "val": 0.25}, "seed": 1}).publish()
    exp = ref.manifest({"mica": rows},
                       [("default", lambda r: "Anas platyrhynchos" in r["labels"] or "blank" not in r["labels"])],
                       label_map=mapping, split=("deployment", [("train", 0.75), ("val", 0.25)], 1))
    assert len(v) == len(exp) > 0 and v.digest == ref.digest(exp)
    assert v.classes == ["duck", "rat"] and set(v.to_polars(["split"])["split"]) == {"train", "val"}


def test_select_with_order_and_limit_keeps_its_frames_in_frame_id_order(store, ds):
    v = store.create_view("last5", "SELECT frame_id FROM cams ORDER BY frame_id DESC LIMIT 5", datasets=["cams"]).publish()
    ids = sorted(r["frame_id"] for r in _rows(ds))[-5:]
    assert v.frame_ids().to_pylist() == ids and v.to_arrow().column("uri").to_pylist() == [
        f"s3://bucket/f{int(i[1:])}.jpg" for i in ids
    ]
    assert v.query == "SELECT frame_id FROM cams ORDER BY frame_id DESC LIMIT 5"


def test_views_on_s3_pin_lock_and_clean_up_the_same_way(s3_bucket, s3_storage_options):
    bucket, _ = s3_bucket
    st = hyperds.connect(f"s3://{bucket}/store", storage_options=s3_storage_options)
    d = st.create_dataset("cams")
    d.add_frames(_frames(30))
    v = st.create_view("s3v", "array_has(labels, 'lion')", datasets=["cams"]).publish()
    assert v.digest == ref.digest(ref.manifest({"cams": _rows(d)}, [("default", _has("lion"))]))
    state = _state(st)
    with pytest.raises(ViewExistsError):
        st.view("s3v", "draft").publish("1.0")
    views = st.open_lance("_views")
    views.tags.create("view.s3v.1.1", views.version)  # a concurrent publisher holding 1.1
    with pytest.raises(ViewExistsError, match="another process"):
        st.view("s3v", "draft").publish("1.1")
    views.tags.delete("view.s3v.1.1")
    assert _state(st) == state
    d.add_frames(_frames(5, prefix="z"))
    st.cleanup(older_than=dt.timedelta(0))
    reopened = hyperds.view("s3v", store=hyperds.connect(f"s3://{bucket}/store", storage_options=s3_storage_options))
    assert reopened.verify().ok and reopened.frame_ids().to_pylist() == v.frame_ids().to_pylist()


def test_record_run_needs_a_string_id(store, ds):
    view = store.create_view("r", "TRUE", datasets=["cams"]).publish("1.0")
    state = _state(store)
    with pytest.raises(ViewError, match="run_id must be a non-empty string, got 123"):
        view.record_run(123)
    assert _state(store) == state


def test_an_open_store_sees_views_published_elsewhere_and_a_recreated_store(store, ds, tmp_path):
    store.create_view("seen", "TRUE", datasets=["cams"]).publish("1.0")
    assert store.view("seen").version == "1.0"  # the catalog snapshot of this store is now cached
    other = hyperds.connect(store.uri)  # another process would do the same through its own Store
    other.view("seen", "draft").publish("1.1")
    other.create_view("new", "site = 'S1'", datasets=["cams"], empty="keep").publish("2.0")
    assert store.view("seen").version == "1.1"
    assert store.view("new", "2.0").frame_count == len([r for r in _frames(60) if r["site"] == "S1"])
    assert store.views().column("name").to_pylist().count("seen") == 3  # 1.0, 1.1 and the draft

    # the same path wiped and replaced by a store built elsewhere with the same history: the catalog
    # has the same Lance version, other rows
    import shutil
    elsewhere = hyperds.connect(tmp_path / "elsewhere")
    elsewhere.create_dataset("cams").add_frames(_frames(5, prefix="g"))
    elsewhere.create_view("seen", "TRUE", datasets=["cams"]).publish("1.0")
    elsewhere.view("seen", "draft").publish("1.1")
    elsewhere.create_view("new", "site = 'S1'", datasets=["cams"]).publish("2.0")
    assert elsewhere.open_lance("_views").version == store.open_lance("_views").version
    shutil.rmtree(store.uri)
    shutil.copytree(elsewhere.uri, store.uri)
    assert store.view("seen", "1.1").frame_count == 5
    assert sorted(store.view("seen", "1.1").frame_ids().to_pylist()) == [f"g{i:04d}" for i in range(5)]
