"""Exports of the real samples read back by hyperds' own importers (and, for Camtrap DP, pass the official
1.0.2 schemas under frictionless): import the sample, export it from a published view, import the export
into a new dataset, and compare what the format carries."""

from __future__ import annotations

import datetime as dt
import json

import polars as pl
import pytest

from camtrap_validation import validate_package
from conftest import DATA, MD_JSON
from hyperds.frames.importers import import_camtrap_dp, import_coco, import_megadetector
from test_import_coco import _coco_doc

AT = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
MEDIA = ["frame_id", "uri", "captured_at", "deployment", "seq_id", "frame_num", "latitude", "longitude",
         "file_public", "capture_method", "file_name", "file_mediatype", "favorite"]
OBS = ["frame_id", "ann_id", "level", "label", "count", "source_kind", "source", "confidence", "bbox", "life_stage",
       "sex", "behavior", "individual_id", "note", "review_status", "attributes"]


def _annotations(ds, fields: list[str]) -> pl.DataFrame:
    frames = ds.to_polars(["frame_id", "annotations"]).explode("annotations").drop_nulls("annotations")
    return frames.unnest("annotations").select(fields).sort("frame_id", "ann_id")


def _publish_all(store, name: str, dataset: str):
    # every frame, those without a label too (a view drops class-less frames unless asked to keep them)
    store.create_view(name, "TRUE", datasets=[dataset], empty="keep").publish("1.0")
    return store.view(name, "1.0")


def test_camtrap_dp_sample_round_trip_and_schema(store, tmp_path):
    src = store.create_dataset("mica")
    import_camtrap_dp(src, DATA / "camtrap-dp")
    view = _publish_all(store, "mica-all", "mica")
    result = view.export("camtrap-dp", tmp_path / "pkg", exported_at=AT)
    pkg = tmp_path / "pkg"
    assert sorted(p.name for p in pkg.iterdir()) == ["datapackage.json", "deployments.csv", "media.csv",
                                                     "observations.csv"]
    assert validate_package(pkg) == []

    back = store.create_dataset("mica2")
    import_camtrap_dp(back, pkg)
    assert back.to_polars(MEDIA).sort("frame_id").equals(src.to_polars(MEDIA).sort("frame_id"))
    assert _annotations(back, OBS).equals(_annotations(src, OBS))
    assert back.deployments().equals(src.deployments())
    original = json.loads((DATA / "camtrap-dp" / "datapackage.json").read_text())
    written = json.loads((pkg / "datapackage.json").read_text())
    for key in ("project", "contributors", "licenses", "taxonomic", "title", "bibliographicCitation"):
        assert written[key] == original[key], key
    # the observation CSV is the sample's, row for row (the sample writes them in this column order too)
    sample_obs = pl.read_csv(DATA / "camtrap-dp" / "observations.csv", infer_schema=False).sort("observationID")
    ours = pl.read_csv(pkg / "observations.csv", infer_schema=False).sort("observationID")
    assert ours.equals(sample_obs)
    # event-level observations once per event, not once per frame
    assert (ours["observationLevel"] == "event").sum() == (sample_obs["observationLevel"] == "event").sum()
    prov = written["hyperds"]
    assert prov["source"]["digest"] == view.digest and prov["source"]["version"] == "1.0"
    assert prov["source"]["datasets"] == [{"name": "mica", "version": view.pins["mica"]}]
    assert prov["exported_at"] == "2026-01-02T03:04:05Z" and result.frames == len(src)


def test_camtrap_dp_validation_can_fail(store, tmp_path):
    src = store.create_dataset("mica")
    import_camtrap_dp(src, DATA / "camtrap-dp")
    src.export("camtrap-dp", tmp_path / "pkg")
    obs = pl.read_csv(tmp_path / "pkg" / "observations.csv", infer_schema=False)
    obs.drop("observationType").write_csv(tmp_path / "pkg" / "observations.csv")
    assert any("observationType" in e or "missing" in e for e in validate_package(tmp_path / "pkg"))
    meta = json.loads((tmp_path / "pkg" / "datapackage.json").read_text())
    del meta["taxonomic"]
    (tmp_path / "pkg" / "datapackage.json").write_text(json.dumps(meta))
    assert any("taxonomic" in e for e in validate_package(tmp_path / "pkg"))


def test_coco_ct_sample_round_trip(store, sample_data, tmp_path):
    doc = _coco_doc(sample_data)
    (sample_data / "coco.json").write_text(json.dumps(doc))
    src = store.create_dataset("cct")
    import_coco(src, sample_data / "coco.json")
    view = _publish_all(store, "cct-all", "cct")
    view.export("coco-ct", tmp_path / "out", image_root=sample_data, exported_at=AT)
    written = json.loads((tmp_path / "out" / "coco_ct.json").read_text())
    assert written["info"]["hyperds"]["source"]["digest"] == view.digest
    assert [im["file_name"] for im in written["images"]] == [
        im["file_name"] for im in sorted(doc["images"], key=lambda im: str(im["id"]))]
    back = store.create_dataset("cct2")
    import_coco(back, tmp_path / "out" / "coco_ct.json", root=str(sample_data))
    frames = ["frame_id", "uri", "width", "height", "captured_at", "site", "seq_id", "frame_num"]
    assert back.to_polars(frames).sort("frame_id").equals(src.to_polars(frames).sort("frame_id"))
    fields = ["frame_id", "ann_id", "label", "level"]
    assert _annotations(back, fields).equals(_annotations(src, fields))
    a, b = _annotations(src, ["frame_id", "ann_id", "bbox"]), _annotations(back, ["frame_id", "ann_id", "bbox"])
    for x, y in zip(a["bbox"].to_list(), b["bbox"].to_list(), strict=True):
        assert (x is None and y is None) or x == pytest.approx(y, abs=1e-6)


def test_megadetector_sample_round_trip(md, store, tmp_path):
    view = _publish_all(store, "md-all", "md")
    view.export("megadetector", tmp_path / "out", image_root=MD_JSON.parent, exported_at=AT)
    written = json.loads((tmp_path / "out" / "megadetector.json").read_text())
    original = json.loads(MD_JSON.read_text())
    assert written["info"]["format_version"] == "1.4"
    assert written["info"]["detector"] == original["info"]["detector"]
    assert written["info"]["hyperds"]["source"]["digest"] == view.digest
    assert set(written["detection_categories"].values()) <= set(original["detection_categories"].values())
    back = store.create_dataset("md2")
    import_megadetector(back, tmp_path / "out" / "megadetector.json", root=str(MD_JSON.parent))
    assert back.to_polars(["frame_id", "uri"]).sort("frame_id").equals(md.to_polars(["frame_id", "uri"]).sort("frame_id"))
    fields = ["frame_id", "ann_id", "label", "confidence", "bbox", "source_kind", "source"]
    assert _annotations(back, fields).equals(_annotations(md, fields))
    # the same detections as the original file, per image (categories by name; ids are renumbered)
    def per_image(doc: dict) -> dict:
        names = doc["detection_categories"]
        return {im["file"]: sorted((names[d["category"]], round(d["conf"], 5), tuple(round(v, 5) for v in d["bbox"]))
                                   for d in im.get("detections") or []) for im in doc["images"]}

    assert per_image(written) == per_image(original)
