"""Camtrap DP import: the real example package, counted independently from its CSVs, and bad packages."""

from __future__ import annotations

import csv
import datetime as dt
import json
from collections import Counter, defaultdict
from pathlib import Path

import pytest

from conftest import DATA
from hyperds.errors import SourceFormatError
from hyperds.frames.importers import import_camtrap_dp
from hyperds.frames.summary import annotations_frame

PKG = DATA / "camtrap-dp"


def _rows(folder: Path, name: str) -> list[dict]:
    with open(folder / f"{name}.csv", newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def _write_rows(folder: Path, name: str, rows: list[dict], fields: list[str] | None = None) -> None:
    fields = fields or list(rows[0])
    with open(folder / f"{name}.csv", "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=fields, extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)


def _state(ds) -> tuple[int, int]:
    return ds.version, len(ds)


def _expected_annotations(folder: Path) -> list[tuple[str, str, str]]:
    """(mediaID, observationID, level) for every annotation the package implies."""
    obs = _rows(folder, "observations")
    event_of = {}
    for o in obs:
        if o["observationLevel"] == "media":
            event_of.setdefault(o["mediaID"], o["eventID"])
    members = defaultdict(list)
    for media_id, event in event_of.items():
        members[event].append(media_id)
    out = [(o["mediaID"], o["observationID"], "media") for o in obs if o["observationLevel"] == "media"]
    out += [(m, o["observationID"], "event") for o in obs if o["observationLevel"] == "event" for m in members[o["eventID"]]]
    return out


def test_real_package_counts(store):
    media, obs = _rows(PKG, "media"), _rows(PKG, "observations")
    deployments = {d["deploymentID"]: d for d in _rows(PKG, "deployments")}
    ds = store.create_dataset("mica")
    report = import_camtrap_dp(ds, PKG)
    expected = _expected_annotations(PKG)

    assert len(ds) == report.frames_inserted == len(media)
    assert report.annotations_inserted == len(expected)
    assert report.event_observations == sum(o["observationLevel"] == "event" for o in obs)
    anns = annotations_frame(ds)
    assert Counter(zip(anns["frame_id"], anns["ann_id"], anns["level"], strict=True)) == Counter(expected)
    by_id = {o["observationID"]: o for o in obs}
    kinds = Counter("model" if by_id[a]["classificationMethod"] == "machine" else "human" for _, a, _ in expected)
    assert Counter(anns["source_kind"].to_list()) == kinds
    labels = Counter(by_id[a]["scientificName"] or by_id[a]["observationType"] for _, a, _ in expected)
    assert Counter(anns["label"].to_list()) == labels
    boxed = [o for o in obs if o["bboxX"]]
    assert anns["bbox"].is_not_null().sum() == len(boxed) > 0
    got = anns.filter(anns["ann_id"] == boxed[0]["observationID"]).row(0, named=True)
    assert got["bbox"] == pytest.approx([float(boxed[0][k]) for k in ("bboxX", "bboxY", "bboxWidth", "bboxHeight")], rel=1e-6)
    assert got["confidence"] == pytest.approx(float(boxed[0]["classificationProbability"]))
    assert got["source"] == boxed[0]["classifiedBy"]

    frames = {r["frame_id"]: r for r in ds.to_polars().drop("annotations").iter_rows(named=True)}
    for m in media:
        row = frames[m["mediaID"]]
        dep = deployments[m["deploymentID"]]
        assert row["captured_at"] == dt.datetime.fromisoformat(m["timestamp"]).astimezone(dt.UTC)
        assert (row["site"], row["camera"], row["deployment"]) == (dep["locationName"], dep["cameraID"], m["deploymentID"])
        assert row["file_public"] is (m["filePublic"] == "true")
        if m["filePath"].startswith("https://"):
            assert row["uri"] == m["filePath"]
        else:
            assert row["uri"] == (PKG / m["filePath"]).resolve().as_uri()
            assert Path(row["uri"].removeprefix("file://")).exists()
    assert sum(not r["file_public"] for r in frames.values()) == sum(m["filePublic"] == "false" for m in media)


def test_events_become_sequences(store):
    obs = _rows(PKG, "observations")
    media = {m["mediaID"]: m for m in _rows(PKG, "media")}
    ds = store.create_dataset("mica")
    import_camtrap_dp(ds, PKG)
    event_of = {}
    for o in obs:
        if o["observationLevel"] == "media":
            event_of.setdefault(o["mediaID"], o["eventID"])
    local = [m for m in media.values() if not m["filePath"].startswith("https://")]
    event = event_of[local[0]["mediaID"]]
    burst = sorted((m for m in media if event_of[m] == event), key=lambda m: (dt.datetime.fromisoformat(media[m]["timestamp"]), m))
    got = ds.to_polars(columns=["frame_id", "seq_id", "frame_num"], filter=f"seq_id = '{event}'").sort("frame_num")
    assert got["frame_id"].to_list() == burst
    assert got["frame_num"].to_list() == list(range(1, len(burst) + 1))


def test_event_found_by_time_window_without_media_observations(store, sample_data):
    folder = sample_data / "camtrap-dp"
    obs = _rows(folder, "observations")
    event = next(o for o in obs if o["observationLevel"] == "event")
    media_ids = {o["mediaID"] for o in obs if o["observationLevel"] == "media" and o["eventID"] == event["eventID"]}
    _write_rows(folder, "observations", [o for o in obs if o["mediaID"] not in media_ids])
    start, end = (dt.datetime.fromisoformat(event[k]) for k in ("eventStart", "eventEnd"))
    in_window = {
        m["mediaID"] for m in _rows(folder, "media")
        if m["deploymentID"] == event["deploymentID"] and start <= dt.datetime.fromisoformat(m["timestamp"]) <= end
    }
    ds = store.create_dataset("mica")
    import_camtrap_dp(ds, folder)
    got = ds.to_polars(filter=f"seq_id = '{event['eventID']}'")
    assert set(got["frame_id"]) == in_window == media_ids
    events = [o["observationID"] for o in obs if o["observationLevel"] == "event" and o["eventID"] == event["eventID"]]
    for row in got.iter_rows(named=True):
        assert [(a["ann_id"], a["level"]) for a in row["annotations"]] == [(e, "event") for e in events]


def test_event_without_media_is_reported(store, sample_data):
    folder = sample_data / "camtrap-dp"
    obs = _rows(folder, "observations")
    template = next(o for o in obs if o["observationLevel"] == "event")
    orphan = {**template, "observationID": "orphan1", "eventID": "no-such-event",
              "eventStart": "1999-01-01T00:00:00Z", "eventEnd": "1999-01-01T00:00:05Z"}
    _write_rows(folder, "observations", [*obs, orphan])
    ds = store.create_dataset("mica")
    report = import_camtrap_dp(ds, folder)
    assert len(report.warnings) == 1 and "'orphan1'" in report.warnings[0] and "orphan1" in report.summary()
    assert report.annotations_inserted == len(_expected_annotations(PKG))
    assert report.event_observations == sum(o["observationLevel"] == "event" for o in obs) + 1


def test_root_rebases_local_paths_only(store):
    ds = store.create_dataset("mica")
    import_camtrap_dp(ds, PKG / "datapackage.json", root="s3://cams/mica")
    media = _rows(PKG, "media")
    uris = dict(ds.to_polars(columns=["frame_id", "uri"]).iter_rows())
    for m in media:
        want = m["filePath"] if m["filePath"].startswith("https://") else f"s3://cams/mica/{m['filePath']}"
        assert uris[m["mediaID"]] == want


def test_reimport_adds_nothing_and_checks_local_images(store):
    ds = store.create_dataset("mica")
    first = import_camtrap_dp(ds, PKG, check_images=True)
    media = _rows(PKG, "media")
    local = sum(not m["filePath"].startswith("https://") for m in media)
    assert (first.images_checked, first.images_unchecked) == (local, len(media) - local)
    before = _state(ds)
    again = import_camtrap_dp(ds, PKG)
    assert (again.frames_inserted, again.frames_skipped, again.annotations_inserted) == (0, len(media), 0)
    assert _state(ds) == before


def _first(rows: list[dict], pred) -> int:
    return next(i for i, r in enumerate(rows) if pred(r))


def _break(case: str, folder: Path) -> tuple[str, str]:
    """Break the package copy in `folder`; return (file name, element) the error must name."""
    if case == "malformed_csv":
        lines = (folder / "media.csv").read_text().splitlines(keepends=True)
        lines.insert(7, "abc,def,extra\n")
        (folder / "media.csv").write_text("".join(lines))
        return "media.csv", "row 8"
    if case == "missing_column":
        rows = _rows(folder, "media")
        _write_rows(folder, "media", rows, [k for k in rows[0] if k != "timestamp"])
        return "media.csv", "column 'timestamp'"
    if case == "missing_value":
        rows = _rows(folder, "media")
        rows[12]["filePath"] = ""
        _write_rows(folder, "media", rows)
        return "media.csv", "row 14, filePath"
    if case == "unknown_version":
        pkg = json.loads((folder / "datapackage.json").read_text())
        pkg["profile"] = pkg["profile"].replace("1.0.2", "2.0")
        (folder / "datapackage.json").write_text(json.dumps(pkg))
        return "datapackage.json", "profile"
    if case == "bbox_outside":
        rows = _rows(folder, "observations")
        i = _first(rows, lambda r: r["bboxX"])
        rows[i]["bboxX"] = str(1.0 - float(rows[i]["bboxWidth"]) / 2)
        _write_rows(folder, "observations", rows)
        return "observations.csv", f"row {i + 2}, bboxX"
    if case == "duplicate_media":
        rows = _rows(folder, "media")
        rows[30]["mediaID"] = rows[4]["mediaID"]
        _write_rows(folder, "media", rows)
        return "media.csv", "row 32, mediaID"
    if case == "unknown_media":
        rows = _rows(folder, "observations")
        i = _first(rows, lambda r: r["mediaID"])
        rows[i]["mediaID"] = "nope"
        _write_rows(folder, "observations", rows)
        return "observations.csv", f"row {i + 2}, mediaID"
    if case == "bad_timestamp":
        rows = _rows(folder, "media")
        rows[3]["timestamp"] = "30/05/2020 04:57"
        _write_rows(folder, "media", rows)
        return "media.csv", "row 5, timestamp"
    if case == "malformed_json":
        (folder / "datapackage.json").write_text('{"profile": "x",\n  "resources": [}')
        return "datapackage.json", "line 2 column 17"
    if case == "missing_image":
        rows = _rows(folder, "media")
        i = _first(rows, lambda r: not r["filePath"].startswith("https://"))
        (folder / rows[i]["filePath"]).unlink()
        return "media.csv", f"row {i + 2}, filePath"
    if case == "resource_is_folder":
        (folder / "observations.csv").unlink()
        (folder / "observations.csv").mkdir()
        return "observations.csv", None
    raise AssertionError(case)


@pytest.mark.parametrize(
    "case",
    ["malformed_csv", "missing_column", "missing_value", "unknown_version", "bbox_outside", "duplicate_media",
     "unknown_media", "bad_timestamp", "malformed_json", "missing_image", "resource_is_folder"],
)
def test_bad_package_names_element_and_changes_nothing(store, sample_data, case):
    folder = sample_data / "camtrap-dp"
    ds = store.create_dataset("mica")
    ds.add_frames([{"frame_id": "old", "uri": "s3://b/old.jpg"}])
    name, element = _break(case, folder)
    before = _state(ds)
    with pytest.raises(SourceFormatError) as err:
        import_camtrap_dp(ds, folder, check_images=case == "missing_image")
    assert (err.value.path, err.value.element) == (str(folder / name), element)
    assert _state(ds) == before
