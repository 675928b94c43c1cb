"""store.sql(): analytic SELECTs across datasets, annotations and labels as unnested relations."""

from __future__ import annotations

from collections import Counter

import pytest

from hyperds.errors import QueryError

ROWS = {
    "north": [
        {"frame_id": "n1", "uri": "n1.jpg", "site": "A", "annotations": [
            {"label": "lion", "source_kind": "model"}, {"label": "lion", "source_kind": "human"}]},
        {"frame_id": "n2", "uri": "n2.jpg", "site": "B", "annotations": [
            {"label": "zebra", "source_kind": "human", "review_status": "rejected"}]},
        {"frame_id": "n3", "uri": "n3.jpg", "site": "A", "annotations": []},
    ],
    "south": [
        {"frame_id": "s1", "uri": "s1.jpg", "site": "C", "annotations": [{"label": "zebra", "source_kind": "model"}]},
    ],
}


@pytest.fixture
def store2(store):
    for name, rows in ROWS.items():
        store.create_dataset(name).add_frames(rows)
    return store


def test_group_by_over_annotations(store2):
    got = store2.sql("SELECT label, source_kind, COUNT(*) AS n FROM north__annotations "
                     "GROUP BY label, source_kind ORDER BY label, source_kind")
    want = Counter((a["label"], a.get("source_kind", "human")) for r in ROWS["north"] for a in r["annotations"])
    assert {(r["label"], r["source_kind"]): r["n"] for r in got.to_dicts()} == dict(want)


def test_frames_per_label_and_across_datasets(store2):
    got = store2.sql("SELECT label, COUNT(*) AS frames FROM north__labels GROUP BY label")
    want = Counter(lbl for r in ROWS["north"]
                   for lbl in {a["label"] for a in r["annotations"] if a.get("review_status") != "rejected"})
    assert dict(zip(got["label"], got["frames"], strict=True)) == dict(want)
    both = store2.sql("SELECT site FROM north UNION ALL SELECT site FROM south")
    assert sorted(both["site"]) == sorted(r["site"] for rows in ROWS.values() for r in rows)
    joined = store2.sql("SELECT f.site, COUNT(*) AS n FROM north f JOIN north__annotations a "
                        "ON f.frame_id = a.frame_id GROUP BY f.site")
    assert dict(zip(joined["site"], joined["n"], strict=True)) == {"A": 2, "B": 1}


def test_errors(store2):
    with pytest.raises(QueryError, match="unknown dataset or relation 'nort'") as info:
        store2.sql("SELECT * FROM nort")
    assert "north" in info.value.suggestions and info.value.column == 15
    with pytest.raises(QueryError, match="cannot run the analytic query"):
        store2.sql("SELECT nope FROM north")
    with pytest.raises(QueryError, match="syntax error"):
        store2.sql("SELECT FROM WHERE")


def test_label_counts_from_stats_or_labels(store2):
    from hyperds.query.sidecar import build_annotation_table

    want = Counter(lbl for r in ROWS["north"]
                   for lbl in {a["label"] for a in r["annotations"] if a.get("review_status") != "rejected"})
    query = "SELECT label, frames FROM north__label_counts"
    computed = store2.sql(query)
    build_annotation_table(store2.dataset("north"))
    stored = store2.sql(query)
    for got in (computed, stored):
        assert dict(zip(got["label"], got["frames"], strict=True)) == dict(want)
    store2.dataset("north").add_frames([{"frame_id": "n9", "uri": "n9.jpg", "annotations": [{"label": "lion"}]}])
    after = store2.sql(query)  # stats are for the previous version: computed again, so up to date
    assert dict(zip(after["label"], after["frames"], strict=True))["lion"] == want["lion"] + 1


def test_relations_of_one_dataset_read_one_snapshot(store2, monkeypatch):
    """A commit landing while the query opens its relations does not split them across versions."""
    north = store2.dataset("north")
    opened = store2.open_lance

    def open_then_commit(name, *args, **kwargs):
        lds = opened(name, *args, **kwargs)
        monkeypatch.setattr(store2, "open_lance", opened)  # one real commit, right after the first open
        north.add_frames([{"frame_id": "late", "uri": "late.jpg", "annotations": [{"label": "lion"}]}])
        return lds

    monkeypatch.setattr(store2, "open_lance", open_then_commit)
    got = store2.sql("SELECT frame_id FROM north UNION SELECT frame_id FROM north__labels "
                     "UNION SELECT frame_id FROM north__annotations")
    assert set(got["frame_id"]) == {r["frame_id"] for r in ROWS["north"]}  # all from the snapshot opened first
    assert len(north) == len(ROWS["north"]) + 1  # the commit did land


def test_analytic_errors_name_datasets_and_hint(store2):
    version = store2.dataset("north").version
    with pytest.raises(QueryError, match="datasets: north, south; each is also readable as") as info:
        store2.sql("SELECT * FROM NORTH")
    assert info.value.suggestions[0] == "north"
    with pytest.raises(QueryError, match="compare each column with a value of its type"):
        store2.sql("SELECT frame_id FROM north WHERE width > 'a'")
    with pytest.raises(QueryError, match="compare each column with a value of its type"):
        store2.sql("SELECT width > 'a' AS x FROM north")
    assert store2.dataset("north").version == version


def test_dataset_names_with_dash_or_dot(store2):
    store2.create_dataset("cam-traps.v2").add_frames(ROWS["south"])
    got = store2.sql('SELECT COUNT(*) AS n FROM "cam-traps.v2__annotations"')
    assert got["n"].to_list() == [sum(len(r["annotations"]) for r in ROWS["south"])]
    assert store2.dataset("cam-traps.v2").query('SELECT site FROM "cam-traps.v2"').count() == len(ROWS["south"])
    with pytest.raises(QueryError, match="double-quote dataset names containing - or ."):
        store2.sql("SELECT * FROM cam-traps.v2")
    with pytest.raises(QueryError, match="'traps.v2' reads as a qualified name; double-quote"):
        store2.sql("SELECT * FROM traps.v2")
