"""Query semantics beyond the differential test: same-annotation binding, SELECT parts, pinned versions, plans."""

from __future__ import annotations

import datetime as dt
import json

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from hyperds.cli.main import main
from hyperds.errors import SchemaError

UTC = dt.UTC


def _frame(i: int, site: str, when: dt.datetime, anns: list[dict]) -> dict:
    return {"frame_id": f"f{i:02d}", "uri": f"img/{i}.jpg", "site": site, "camera": f"c{i % 3}",
            "width": 640 + 10 * i, "captured_at": when, "annotations": anns}


@pytest.fixture
def ds(store):
    ds = store.create_dataset("park")
    ds.add_frames([
        # lion seen by a weak model, zebra by a confident one: no single confident lion
        _frame(0, "S1", dt.datetime(2024, 3, 5, tzinfo=UTC), [
            {"label": "lion", "confidence": 0.5, "source_kind": "model"},
            {"label": "zebra", "confidence": 0.95, "source_kind": "model"}]),
        _frame(1, "S1", dt.datetime(2024, 3, 20, tzinfo=UTC), [
            {"label": "lion", "confidence": 0.95, "source_kind": "model"}]),
        _frame(2, "S2", dt.datetime(2024, 4, 1, tzinfo=UTC), []),
        _frame(3, "S1", dt.datetime(2024, 2, 29, 23, tzinfo=UTC), [
            {"label": "lion", "source_kind": "human", "review_status": "rejected"}]),
        _frame(4, "S2", dt.datetime(2024, 3, 31, 23, 30, tzinfo=UTC), [
            {"label": "zebra"}, {"label": "zebra"}, {"label": "gnu"}]),
    ])
    return ds


def ids(query) -> list[str]:
    return query.frame_ids().to_pylist()


def test_annotation_conditions_bind_to_one_annotation(ds):
    same = "any_annotation(label = 'lion' AND confidence >= 0.9)"
    apart = "any_annotation(label = 'lion') AND any_annotation(confidence >= 0.9)"
    assert ids(ds.query(same)) == ["f01"]
    assert ids(ds.query(apart)) == ["f00", "f01"]


def test_all_annotations_is_vacuously_true_and_count(ds):
    # f02 has no annotations and f03 only a rejected one: for annotation functions both have none
    assert ids(ds.query("all_annotations(label = 'zebra')")) == ["f02", "f03"]  # vacuously true
    assert ids(ds.query("all_annotations(label IN ('zebra', 'gnu'))")) == ["f02", "f03", "f04"]
    assert ids(ds.query("all_annotations(label = 'lion') AND count_annotations() > 0")) == ["f01"]
    assert ids(ds.query("count_annotations(label = 'zebra') >= 2")) == ["f04"]
    assert ids(ds.query("count_annotations() = 0")) == ["f02", "f03"]


def test_rejected_annotations_are_not_labels(ds):
    """One rule: `labels` and the annotation functions both skip rejected annotations; naming
    review_status inside a function reaches them on purpose."""
    assert ids(ds.query("'lion' = ANY(labels)")) == ["f00", "f01"]
    assert ids(ds.query("any_annotation(label = 'lion')")) == ["f00", "f01"]
    assert ids(ds.query("any_annotation(label = 'lion' AND review_status != 'rejected')")) == ["f00", "f01"]
    assert ids(ds.query("array_has_all(labels, ['zebra', 'gnu'])")) == ["f04"]
    # the audit: rejected annotations, reached through a condition on review_status
    assert ids(ds.query("any_annotation(review_status = 'rejected' AND label = 'lion')")) == ["f03"]
    assert ids(ds.query("any_annotation(label = 'lion' AND review_status IS NOT NULL)")) == ["f00", "f01", "f03"]
    assert ids(ds.query("count_annotations(review_status = 'rejected') = 1")) == ["f03"]
    assert ids(ds.query("all_annotations(review_status = 'unreviewed') AND count_annotations() = 0")) == ["f02"]
    # the canonical text is the text as written: the rule is part of the language, not added to the query
    assert ds.query("any_annotation(label='lion')").sql == "any_annotation(label = 'lion')"


def test_timestamps_with_offsets(ds):
    # 2024-03-01T01:00+02:00 is 2024-02-29T23:00Z: f03's instant exactly
    assert ids(ds.query("captured_at = '2024-03-01T01:00:00+02:00'")) == ["f03"]
    march = "captured_at >= '2024-03-01' AND captured_at < TIMESTAMP '2024-04-01'"
    assert ids(ds.query(march)) == ["f00", "f01", "f04"]
    assert ids(ds.query("captured_at BETWEEN '2024-03-31T19:00:00-05:00' AND '2024-04-02'")) == ["f02"]


def test_select_order_limit_and_columns(ds):
    q = ds.query("SELECT frame_id, site FROM park WHERE width >= 650 ORDER BY site DESC, width DESC LIMIT 3")
    table = q.to_arrow()
    assert table.column_names == ["frame_id", "site"]
    assert table.column("frame_id").to_pylist() == ["f04", "f02", "f03"]
    assert q.count() == 3
    assert q.to_arrow(["frame_id", "width"]).column_names == ["frame_id", "width"]
    assert isinstance(q.to_polars(), pl.DataFrame)
    offset = ds.query("SELECT frame_id FROM park ORDER BY frame_id LIMIT 2 OFFSET 1")
    assert ids(offset) == ["f01", "f02"]


def test_everything_and_canonical_text(ds):
    assert ids(ds.query("")) == ids(ds.query("TRUE")) == [f"f{i:02d}" for i in range(5)]
    a = ds.query("SITE='S1'   and  width>=650 AND captured_at >= '2024-03-01T02:00:00+02:00'")
    b = ds.query("site = 'S1' AND width >= 650 AND captured_at >= TIMESTAMP '2024-03-01 00:00:00'")
    assert a.sql == b.sql
    assert ids(ds.query(a.sql)) == ids(a) == ["f01"]
    sel = ds.query("select frame_id from PARK where site='S2' order by width desc limit 1")
    assert sel.sql == "SELECT frame_id FROM park WHERE site = 'S2' ORDER BY width DESC LIMIT 1"
    assert ids(ds.query(sel.sql)) == ["f04"]


def test_pinned_version_reads_that_version(ds):
    before = ds.version
    ds.add_frames([_frame(9, "S1", dt.datetime(2024, 3, 6, tzinfo=UTC), [{"label": "lion", "confidence": 1.0}])])
    q = "site = 'S1' AND any_annotation(label = 'lion' AND confidence >= 0.9)"
    assert ids(ds.query(q)) == ["f01", "f09"]
    old = ds.at(before).query(q)
    assert ids(old) == ["f01"] and old.count() == 1
    assert ds.at(before).query("site = 'S1'").count() == 3


def test_user_metadata_columns(store):
    ds = store.create_dataset("meta", schema=pa.schema([("temperature", pa.float32()), ("night", pa.bool_())]))
    ds.add_frames([{"frame_id": str(i), "uri": f"{i}.jpg", "temperature": t, "night": n}
                   for i, (t, n) in enumerate([(21.5, True), (30.0, False), (None, None)])])
    assert ids(ds.query("temperature > 21 AND NOT night")) == ["1"]
    assert ids(ds.query("night OR temperature IS NULL")) == ["0", "2"]
    assert ids(ds.query("NOT night")) == ["1"]  # NULL stays unknown under NOT


def test_explain_shows_index_use_and_q3_plan(ds):
    q1 = ds.query("frame_id = 'f03'").explain()
    assert "pushdown:  frame_id = 'f03'" in q1 and "frame_id_idx(BTree)" in q1 and "residual:  (none)" in q1

    q2 = ds.query("site = 'S1' AND captured_at >= '2024-03-01' AND captured_at < '2024-04-01' "
                  "AND any_annotation(label = 'lion')").explain()
    assert "site_idx(Bitmap)" in q2 and "captured_at_idx(BTree)" in q2
    # Q2's annotation term is exactly a `labels` test (rejected annotations are in neither): pushed, no residual
    assert "array_has_any(labels, ['lion'])" in q2 and "labels_idx(LabelList)" in q2 and "residual:  (none)" in q2
    assert "any_annotation(label = 'lion') is exactly array_has_any(labels, ['lion'])" in q2
    assert "annotations" not in q2.split("lance plan:")[1]  # the nested lists are not read

    # Q3 fixes a label over annotations not rejected: the LABEL_LIST index prefilters, the residual decides
    q3 = ds.query("any_annotation(label = 'lion' AND confidence >= 0.9 AND source_kind = 'model')").explain()
    assert "prefilter: array_has_any(labels, ['lion'])" in q3 and "labels_idx(LabelList)" in q3
    assert "residual:  any_annotation(label = 'lion' AND confidence >= 0.9 AND source_kind = 'model')" in q3
    # naming review_status lets the function see rejected annotations, which `labels` omits: no prefilter
    audit = ds.query("any_annotation(label = 'lion' AND review_status IN ('rejected', 'unreviewed'))")
    assert "prefilter: (none)" in audit.explain() and "pushdown:  (none: full scan)" in audit.explain()
    assert "1 of 1 name review_status" in audit.explain() and ids(audit) == ["f00", "f01", "f03"]
    # exact label terms: IN, counts meaning "at least one", and the explicit form
    for text in ("any_annotation(label IN ('lion', 'gnu'))", "count_annotations(label IN ('lion', 'gnu')) > 0",
                 "count_annotations(label IN ('gnu', 'lion')) >= 1",
                 "any_annotation(label IN ('lion', 'gnu') AND review_status != 'rejected')"):
        q = ds.query(text)
        assert "residual:  (none)" in q.explain() and ids(q) == ["f00", "f01", "f04"], text
    # the same with rejected annotations excluded may use the LABEL_LIST index as a prefilter
    q3b = ds.query("any_annotation(label = 'lion' AND confidence >= 0.9 AND review_status != 'rejected')")
    assert "prefilter: array_has_any(labels, ['lion'])" in q3b.explain() and "labels_idx(LabelList)" in q3b.explain()
    assert ids(q3b) == ["f01"]
    # a count that is false for 0 implies a matching annotation: the prefilter applies whatever the operator;
    # a count meaning "at least one" is exactly the labels test (pushed, no residual)
    cond = "label = 'lion' AND review_status != 'rejected'"
    lions, everyone = ["f00", "f01"], ["f00", "f01", "f02", "f03", "f04"]
    for test, want, how in ((">= 1", lions, "exact"), ("!= 0", lions, "exact"), ("> 0", lions, "exact"),
                            ("= 1", lions, "prefilter"), ("< 0", [], "prefilter"), ("= 0", ["f02", "f03", "f04"], None),
                            ("<= 1", everyone, None), ("!= 1", ["f02", "f03", "f04"], None)):
        q = ds.query(f"count_annotations({cond}) {test}")
        plan = q.explain()
        assert ("prefilter: array_has_any(labels, ['lion'])" in plan) == (how == "prefilter"), test
        assert ("pushdown:  array_has_any(labels, ['lion'])" in plan and "residual:  (none)" in plan) == (
            how == "exact"), test
        assert ids(q) == want, test


def test_cli_query_formats(ds, tmp_path, capsys):
    base = ["--store", ds.store.uri, "query", "park"]
    assert main(base + ["site = 'S2'", "--format", "json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["frame_id"] for r in rows] == ["f02", "f04"] and "annotations" not in rows[0]
    assert main(base + ["SELECT frame_id, width FROM park WHERE width > 650", "--format", "csv", "--limit", "2"]) == 0
    assert capsys.readouterr().out.splitlines() == ["frame_id,width", "f02,660", "f03,670"]
    out = tmp_path / "r.parquet"
    assert main(base + ["any_annotation(label = 'zebra')", "--format", "parquet", "--output", str(out)]) == 0
    assert pq.read_table(out).column("frame_id").to_pylist() == ["f00", "f04"]
    assert main(base + ["frame_id = 'f01'", "--explain"]) == 0
    assert "frame_id_idx(BTree)" in capsys.readouterr().out
    assert main(base + ["TRUE"]) == 0
    assert "f04" in capsys.readouterr().out


def test_float32_fields_compare_at_stored_precision(store):
    """confidence is float32: a model's 0.9 must meet `confidence >= 0.9` (and `= 0.9`, `IN (0.9)`)."""
    ds = store.create_dataset("conf")
    ds.add_frames([{"frame_id": "a", "uri": "a.jpg", "annotations": [{"label": "lion", "confidence": 0.9}]},
                   {"frame_id": "b", "uri": "b.jpg", "annotations": [{"label": "lion", "confidence": 0.89}]}])
    for cond in ("confidence >= 0.9", "confidence = 0.9", "confidence IN (0.9, 0.5)", "confidence BETWEEN 0.9 AND 1"):
        assert ids(ds.query(f"any_annotation({cond})")) == ["a"], cond


def test_side_table_kept_per_version_and_fallback(ds, monkeypatch):
    from hyperds.query import Query
    from hyperds.query.sidecar import build_annotation_table

    monkeypatch.setattr(Query, "nested_limit", 0)  # use the side table even when the pushdown keeps few frames

    q = "site = 'S1' AND any_annotation(label = 'lion' AND confidence >= 0.9)"
    v1 = ds.version
    assert "side table: not used for frames version" in ds.query(q).explain()
    build_annotation_table(ds)
    assert "built from frames version" in ds.query(q).explain()
    # the side table's frame ids are exact: Lance filters only the frame terms, not the labels prefilter
    assert "lance filter with the side table: site = 'S1' (its frame ids replace the prefilter)" in ds.query(q).explain()
    assert ids(ds.query(q)) == ["f01"]
    assert ids(ds.query("count_annotations(label = 'zebra') >= 2")) == ["f04"]
    assert ids(ds.query("count_annotations() > 1")) == ["f00", "f04"]

    ds.add_frames([_frame(9, "S1", dt.datetime(2024, 3, 6, tzinfo=UTC), [{"label": "lion", "confidence": 1.0}])])
    carried = ds.query(q)  # the insert carried the side table to the new version
    assert "built from frames version" in carried.explain() and ids(carried) == ["f01", "f09"]
    v2 = ds.version
    ds.table.add_frames([_frame(8, "S1", dt.datetime(2024, 3, 7, tzinfo=UTC), [{"label": "lion", "confidence": 1.0}])])
    stale = ds.query(q)  # a write below the facade carries nothing: new version, nested-list scan
    assert "side table: not used for frames version" in stale.explain()
    assert ids(stale) == ["f01", "f08", "f09"]
    pinned = ds.at(v1).query(q)  # old versions keep their own side tables
    assert "built from frames version" in pinned.explain() and ids(pinned) == ["f01"]
    assert ids(ds.at(v2).query(q)) == ["f01", "f09"]
    build_annotation_table(ds)
    assert ids(ds.query(q)) == ["f01", "f08", "f09"] and ids(ds.at(v1).query(q)) == ["f01"]


def test_side_table_skipped_when_pushdown_is_selective(ds):
    from hyperds.query.sidecar import build_annotation_table

    build_annotation_table(ds)
    q = ds.query("site = 'S2' AND any_annotation(source_kind = 'human' AND confidence IS NULL)")
    assert "side table: not used" in q.explain() and ids(q) == ["f04"]
    assert "built from frames version" in ds.query("any_annotation(source_kind = 'human')").explain()


def test_side_table_frame_ids_are_unique(ds):
    """f04 has two zebra annotations: the side table still gives its id once (the IN list stays short)."""
    from hyperds.query import Query
    from hyperds.query.query import _side_frames
    from hyperds.query.sidecar import build_annotation_table, open_annotation_table

    build_annotation_table(ds)
    q = Query(ds, "any_annotation(label = 'zebra' AND level = 'media') AND count_annotations(label = 'zebra') >= 2")
    got = _side_frames(open_annotation_table(ds, ds.version), q.plan.side).to_pylist()
    assert sorted(got) == ["f04"]


def test_columns_as_one_name(ds):
    assert ds.query("site = 'S2'").to_arrow(columns="site").column_names == ["site"]
    assert ds.query("site = 'S2'").to_polars("width")["width"].to_list() == [660, 680]


def test_optimize_makes_queries_use_the_side_table(ds):
    q = "any_annotation(source_kind = 'human')"
    before = ids(ds.query(q))
    assert "side table: not used for frames version" in ds.query(q).explain()
    version = ds.optimize()
    assert version == ds.version  # indices were fresh: optimize wrote no new frames version
    assert "built from frames version" in ds.query(q).explain()
    assert ids(ds.query(q)) == before
    with pytest.raises(SchemaError, match="read-only"):
        ds.at(version).optimize()


def test_side_table_on_s3(s3_bucket, s3_storage_options, monkeypatch):
    """On S3 too: no side table reads as none, a built one is found by its frames-version tag."""
    import hyperds
    from hyperds.query import Query
    from hyperds.query.sidecar import build_annotation_table

    monkeypatch.setattr(Query, "nested_limit", 0)
    st = hyperds.connect(f"s3://{s3_bucket[0]}/store", storage_options=s3_storage_options)
    s3ds = st.create_dataset("park")
    s3ds.add_frames([_frame(0, "S1", dt.datetime(2024, 3, 5, tzinfo=UTC), [{"label": "lion"}, {"label": "lion"}]),
                     _frame(1, "S2", dt.datetime(2024, 3, 6, tzinfo=UTC), [{"label": "zebra"}])])
    q = "any_annotation(label = 'lion' AND level = 'media')"
    assert "side table: not used" in s3ds.query(q).explain() and ids(s3ds.query(q)) == ["f00"]
    build_annotation_table(s3ds)
    assert "built from frames version" in s3ds.query(q).explain() and ids(s3ds.query(q)) == ["f00"]
    got = st.sql("SELECT label, frames FROM park__label_counts ORDER BY label")
    assert got.to_dicts() == [{"label": "lion", "frames": 1}, {"label": "zebra", "frames": 1}]
