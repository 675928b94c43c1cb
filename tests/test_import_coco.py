"""COCO Camera Traps import, on a realistic file built here from the real sample JPEGs and detections."""

from __future__ import annotations

import copy
import datetime as dt
import json
from collections import Counter
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from PIL import Image

from conftest import DATA
from hyperds.errors import SourceFormatError
from hyperds.frames.importers import import_coco
from hyperds.frames.summary import annotations_frame

CATEGORIES = [
    {"id": 0, "name": "empty"},
    {"id": 1, "name": "animal"},
    {"id": 2, "name": "heron"},
    {"id": 3, "name": "vehicle"},
    {"id": 7, "name": "heron"},  # a second id with the same name, as in merged real datasets
]


def _coco_doc(folder: Path) -> dict:
    """COCO-CT JSON for the sample JPEGs under `folder`: sizes read with Pillow, MegaDetector boxes in pixels."""
    md = json.loads((DATA / "megadetector" / "expected_output_DRAFT.json").read_text())
    images, annotations = [], []
    for im in md["images"]:
        if not (folder / "megadetector" / im["file"]).exists():
            continue
        with Image.open(folder / "megadetector" / im["file"]) as pil:
            w, h = pil.size
        image_id = len(images) + 1
        images.append(
            {"id": image_id, "file_name": f"megadetector/{im['file']}", "width": w, "height": h,
             "location": f"loc{image_id % 3}", "datetime": f"2019-06-0{1 + image_id % 9} 0{image_id % 10}:15:00"}
        )
        for d in im["detections"]:
            x, y, bw, bh = d["bbox"]
            annotations.append(
                {"id": f"md{len(annotations)}", "image_id": image_id, "category_id": 1 if d["category"] == "1" else 3,
                 "bbox": [max(x, 0) * w, max(y, 0) * h, bw * w, bh * h]}
            )
        if not im["detections"]:
            annotations.append({"id": f"md{len(annotations)}", "image_id": image_id, "category_id": 0})
    burst = sorted((folder / "camtrap-dp" / "media").glob("*.JPG"))
    for k, p in enumerate(burst):
        with Image.open(p) as pil:
            w, h = pil.size
        image_id = len(images) + 1
        images.append(
            {"id": image_id, "file_name": f"camtrap-dp/media/{p.name}", "width": w, "height": h,
             "location": "B_DM_val 4", "datetime": f"2021-04-11 20:43:{9 + k // 2:02d}",
             "seq_id": "burst-1", "seq_num_frames": len(burst), "frame_num": k}
        )
        annotations.append(
            {"id": f"ct{k}", "image_id": image_id, "category_id": 2 if k % 2 else 7,
             "bbox": [0.4 * w, 0.47 * h, 0.07 * w, 0.3 * h]}
        )
        annotations.append(
            {"id": f"seq{k}", "image_id": image_id, "category_id": 2, "sequence_level_annotation": True}
        )
    return {"info": {"version": "1.0", "contributor": "hyperds tests"}, "images": images,
            "categories": CATEGORIES, "annotations": annotations}


@pytest.fixture
def coco(sample_data) -> tuple[Path, dict]:
    doc = _coco_doc(sample_data)
    path = sample_data / "coco_ct.json"
    path.write_text(json.dumps(doc, indent=1))
    return path, doc


def _state(ds) -> tuple[int, int]:
    return ds.version, len(ds)


def test_counts_labels_boxes_and_times(store, coco):
    path, doc = coco
    ds = store.create_dataset("cct")
    report = import_coco(ds, path, tz="Europe/Brussels")
    assert len(ds) == report.frames_inserted == len(doc["images"])
    assert report.annotations_inserted == len(doc["annotations"])
    names = {c["id"]: c["name"] for c in doc["categories"]}
    shared = {n for n, k in Counter(names.values()).items() if k > 1}
    expected = Counter(f"{names[a['category_id']]}#{a['category_id']}" if names[a["category_id"]] in shared
                       else names[a["category_id"]] for a in doc["annotations"])
    anns = annotations_frame(ds)
    assert Counter(anns["label"].to_list()) == expected
    assert report.duplicate_categories == (("heron", ("2", "7")),)
    assert "heron#2" in report.summary()
    assert set(anns["source_kind"]) == {"human"} and set(anns["source"]) == {"hyperds tests"}
    assert (anns["level"] == "event").sum() == report.event_observations == sum(
        bool(a.get("sequence_level_annotation")) for a in doc["annotations"])

    by_id = {im["id"]: im for im in doc["images"]}
    for a in doc["annotations"][:12]:
        im = by_id[a["image_id"]]
        got = anns.filter(anns["ann_id"] == a["id"]).row(0, named=True)
        if "bbox" in a:
            x, y, w, h = a["bbox"]
            want = [x / im["width"], y / im["height"], w / im["width"], h / im["height"]]
            assert got["bbox"] == pytest.approx([min(max(v, 0), 1) for v in want], abs=2e-6)
        else:
            assert got["bbox"] is None
    for im in doc["images"]:
        row = ds.get(str(im["id"]))
        local = dt.datetime.fromisoformat(im["datetime"]).replace(tzinfo=ZoneInfo("Europe/Brussels"))
        assert row["captured_at"] == local.astimezone(dt.UTC)
        assert (row["site"], row["width"], row["height"]) == (im["location"], im["width"], im["height"])
        assert (row["seq_id"], row["frame_num"]) == (im.get("seq_id"), im.get("frame_num"))
        assert row["uri"] == (path.parent / im["file_name"]).resolve().as_uri()


def test_reimport_adds_nothing(store, coco):
    path, doc = coco
    ds = store.create_dataset("cct")
    import_coco(ds, path)
    before = _state(ds)
    again = import_coco(ds, path)
    assert (again.frames_inserted, again.frames_skipped) == (0, len(doc["images"]))
    assert _state(ds) == before


def test_sizes_from_headers_when_missing(store, coco):
    path, doc = coco
    sizes = {str(im["id"]): (im.pop("width"), im.pop("height")) for im in doc["images"]}
    path.write_text(json.dumps(doc))
    ds = store.create_dataset("cct")
    with pytest.raises(SourceFormatError, match="no width/height") as err:
        import_coco(ds, path)
    first_box = next(i for i, a in enumerate(doc["annotations"]) if "bbox" in a)
    assert err.value.element == f"annotations[{first_box}].bbox"
    assert _state(ds) == (1, 0)
    report = import_coco(ds, path, check_images=True)
    assert report.images_checked == len(doc["images"])
    got = {r["frame_id"]: (r["width"], r["height"]) for r in ds.to_polars(columns=["frame_id", "width", "height"]).iter_rows(named=True)}
    assert got == sizes


def _mutate(case: str, doc: dict) -> str:
    if case == "bbox_outside":
        im = doc["images"][0]
        target = next(i for i, a in enumerate(doc["annotations"]) if a["image_id"] == im["id"] and "bbox" in a)
        doc["annotations"][target]["bbox"] = [im["width"] * 0.8, 0, im["width"] * 0.5, 10]
        return f"annotations[{target}].bbox"
    if case == "duplicate_image_id":
        doc["images"][4]["id"] = doc["images"][1]["id"]
        return "images[4].id"
    if case == "unknown_category":
        doc["annotations"][3]["category_id"] = 99
        return "annotations[3].category_id"
    if case == "unknown_image":
        doc["annotations"][2]["image_id"] = 10_000
        return "annotations[2].image_id"
    if case == "missing_file_name":
        del doc["images"][6]["file_name"]
        return "images[6].file_name"
    if case == "missing_categories":
        del doc["categories"]
        return "categories"
    if case == "bad_datetime":
        doc["images"][5]["datetime"] = "yesterday at noon"
        return "images[5].datetime"
    if case == "wrong_type":
        doc["images"][8]["width"] = "wide"
        return "images[8].width"
    raise AssertionError(case)


@pytest.mark.parametrize(
    "case",
    ["bbox_outside", "duplicate_image_id", "unknown_category", "unknown_image", "missing_file_name",
     "missing_categories", "bad_datetime", "wrong_type"],
)
def test_bad_input_names_element_and_changes_nothing(store, coco, case):
    path, doc = coco
    ds = store.create_dataset("cct")
    ds.add_frames([{"frame_id": "old", "uri": "s3://b/old.jpg"}])
    broken = copy.deepcopy(doc)
    element = _mutate(case, broken)
    path.write_text(json.dumps(broken))
    before = _state(ds)
    with pytest.raises(SourceFormatError) as err:
        import_coco(ds, path)
    assert (err.value.path, err.value.element) == (str(path), element)
    assert _state(ds) == before


def test_malformed_json_and_missing_image(store, coco):
    path, doc = coco
    ds = store.create_dataset("cct")
    path.write_text(json.dumps(doc)[:-3])
    with pytest.raises(SourceFormatError, match="malformed JSON") as err:
        import_coco(ds, path)
    assert err.value.element.startswith("line 1 column ")
    path.write_text(json.dumps(doc))
    gone = doc["images"][3]
    (path.parent / gone["file_name"]).unlink()
    with pytest.raises(SourceFormatError, match="No such file") as err:
        import_coco(ds, path, check_images=True)
    assert err.value.element == "images[3].file_name"
    assert _state(ds) == (1, 0)


def test_unknown_zone_and_dst_gap_are_named_and_change_nothing(store, coco):
    path, doc = coco
    ds = store.create_dataset("cct")
    ds.add_frames([{"frame_id": "old", "uri": "s3://b/old.jpg"}])
    before = _state(ds)
    with pytest.raises(SourceFormatError, match=r"unknown time zone 'Mars/Olympus'.*\+01:00") as err:
        import_coco(ds, path, tz="Mars/Olympus")
    assert err.value.element is None
    broken = copy.deepcopy(doc)
    broken["images"][2]["datetime"] = "2024-03-31 02:30:00"  # clocks in Berlin jump from 02:00 to 03:00
    path.write_text(json.dumps(broken))
    with pytest.raises(SourceFormatError, match=r"2024-03-31 02:30:00.*UTC offset") as err:
        import_coco(ds, path, tz="Europe/Berlin")
    assert err.value.element == "images[2].datetime"
    assert _state(ds) == before
