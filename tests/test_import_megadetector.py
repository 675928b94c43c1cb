"""MegaDetector batch output import: real sample counts, idempotency, failures, bad input, S3 round trip."""

from __future__ import annotations

import copy
import json
import os
from collections import Counter
from pathlib import Path

import pytest
from PIL import Image

import hyperds
from hyperds.errors import SourceFormatError
from hyperds.frames.importers import import_megadetector
from hyperds.frames.summary import annotations_frame

from conftest import DATA

MD = DATA / "megadetector" / "expected_output_DRAFT.json"


def _raw() -> dict:
    return json.loads(MD.read_text())


def _outside(b: list[float]) -> bool:
    x, y, w, h = b
    return x < 0 or y < 0 or x + w > 1 or y + h > 1


def _state(ds) -> tuple[int, int]:
    return ds.version, len(ds)


def _write(doc: dict, folder: Path, name: str = "md.json") -> Path:
    path = folder / name
    path.write_text(json.dumps(doc))
    return path


def test_real_sample_counts(store):
    raw = _raw()
    images = raw["images"]
    dets = [d for im in images for d in im["detections"]]
    names = raw["detection_categories"]
    ds = store.create_dataset("md")
    report = import_megadetector(ds, MD)

    assert len(ds) == report.frames_read == report.frames_inserted == len(images)
    assert report.annotations_read == report.annotations_inserted == len(dets)
    assert report.boxes_clamped == sum(_outside(d["bbox"]) for d in dets) > 0
    assert report.failures == 0
    anns = annotations_frame(ds)
    assert Counter(anns["label"].to_list()) == Counter(names[d["category"]] for d in dets)
    assert set(anns["source_kind"]) == {"model"}
    assert set(anns["source"]) == {raw["info"]["detector"]}
    assert anns["bbox"].arr.min().min() >= 0
    assert (anns["bbox"].arr.get(0) + anns["bbox"].arr.get(2)).max() <= 1 + 1e-6
    frames = ds.to_polars()
    empty = sum(not im["detections"] for im in images)
    assert (frames["annotations"].list.len() == 0).sum() == empty
    # one frame in detail: confidences and labels as in the file, paths with their own case
    upper = next(im for im in images if im["file"].endswith(".JPG") and im["detections"])
    row = ds.get(upper["file"])
    assert row["uri"] == (DATA / "megadetector" / upper["file"]).resolve().as_uri()
    assert [a["confidence"] for a in row["annotations"]] == pytest.approx([d["conf"] for d in upper["detections"]], rel=1e-6)
    present = [im["file"] for im in images if (DATA / "megadetector" / im["file"]).exists()]
    assert present and all(Path(ds.get(f)["uri"].removeprefix("file://")).exists() for f in present)


def test_reimport_adds_nothing(store):
    ds = store.create_dataset("md")
    import_megadetector(ds, MD)
    before = _state(ds)
    again = import_megadetector(ds, MD)
    assert (again.frames_inserted, again.frames_skipped, again.annotations_inserted) == (0, len(_raw()["images"]), 0)
    assert _state(ds) == before and again.version_after == before[0]
    assert "nothing new" in again.summary()


def test_failures_kept_and_counted(store, tmp_path):
    doc = _raw()
    failed = [3, 11]
    for i in failed:
        doc["images"][i] = {"file": doc["images"][i]["file"], "failure": "Failure image access", "detections": None}
    ds = store.create_dataset("md")
    report = import_megadetector(ds, _write(doc, tmp_path))
    assert report.failures == len(failed)
    assert len(ds) == len(doc["images"])
    for i in failed:
        row = ds.get(doc["images"][i]["file"])
        assert (row["failure"], row["annotations"]) == ("Failure image access", [])
    assert ds.count("failure IS NOT NULL") == len(failed)


def test_noise_within_tolerance_is_clamped(store, tmp_path):
    doc = _raw()
    doc["images"][0]["detections"][0]["bbox"][0] = -5e-5
    expected = sum(_outside(d["bbox"]) for im in doc["images"] for d in im["detections"])
    report = import_megadetector(store.create_dataset("md"), _write(doc, tmp_path))
    assert report.boxes_clamped == expected == _raw_clamped() + 1


def _raw_clamped() -> int:
    return sum(_outside(d["bbox"]) for im in _raw()["images"] for d in im["detections"])


def test_root_rebases_and_dataset_root_keeps_relative(store):
    raw = _raw()
    ds = store.create_dataset("md")
    import_megadetector(ds, MD, root="s3://cams/md/")
    assert ds.get(raw["images"][0]["file"])["uri"] == f"s3://cams/md/{raw['images'][0]['file']}"
    rooted = store.create_dataset("rooted", root="s3://cams/md")
    import_megadetector(rooted, MD)
    assert rooted.get(raw["images"][0]["file"])["uri"] == raw["images"][0]["file"]


def test_check_images_reads_sizes(store, sample_data):
    folder = sample_data / "megadetector"
    doc = _raw()
    doc["images"] = [im for im in doc["images"] if (folder / im["file"]).exists()]
    ds = store.create_dataset("md")
    report = import_megadetector(ds, _write(doc, folder), check_images=True)
    assert report.images_checked == len(doc["images"]) > 0
    for im in doc["images"]:
        with Image.open(folder / im["file"]) as pil:
            row = ds.get(im["file"])
            assert (row["width"], row["height"]) == pil.size


def _third_detection_on_17(doc: dict) -> dict:
    dets = doc["images"][17]["detections"]
    while len(dets) < 3:
        dets.append({"category": "1", "conf": 0.5, "bbox": [0.1, 0.1, 0.1, 0.1]})
    return dets[2]


def _mutate(case: str, doc: dict) -> str:
    """Break `doc` in place as `case` says; return the element the error must name."""
    if case == "bbox_outside":
        _third_detection_on_17(doc)["bbox"] = [0.9, 0.1, 0.5, 0.2]
        return "images[17].detections[2].bbox"
    if case == "bbox_beyond_tolerance":
        _third_detection_on_17(doc)["bbox"] = [-2e-4, 0.1, 0.5, 0.2]
        return "images[17].detections[2].bbox"
    if case == "bbox_three_numbers":
        _third_detection_on_17(doc)["bbox"] = [0.1, 0.1, 0.5]
        return "images[17].detections[2].bbox"
    if case == "missing_file":
        del doc["images"][5]["file"]
        return "images[5].file"
    if case == "missing_version":
        del doc["info"]["format_version"]
        return "info.format_version"
    if case == "unknown_version":
        doc["info"]["format_version"] = "2.0"
        return "info.format_version"
    if case == "old_version":
        doc["info"]["format_version"] = "1.0"
        return "info.format_version"
    if case == "duplicate_file":
        doc["images"][9]["file"] = doc["images"][2]["file"]
        return "images[9].file"
    if case == "unknown_category":
        _third_detection_on_17(doc)["category"] = "7"
        return "images[17].detections[2].category"
    if case == "wrong_type":
        _third_detection_on_17(doc)["conf"] = "high"
        return "images[17].detections[2].conf"
    if case == "missing_images":
        del doc["images"]
        return "images"
    raise AssertionError(case)


CASES = [
    "bbox_outside", "bbox_beyond_tolerance", "bbox_three_numbers", "missing_file", "missing_version",
    "unknown_version", "old_version", "duplicate_file", "unknown_category", "wrong_type", "missing_images",
]


@pytest.fixture
def seeded(store):
    """A dataset that already holds frames, so 'unchanged' means something."""
    ds = store.create_dataset("md")
    ds.add_frames([{"frame_id": f"old{i}", "uri": f"s3://b/old{i}.jpg"} for i in range(3)])
    return ds


@pytest.mark.parametrize("case", CASES)
def test_bad_input_names_element_and_changes_nothing(seeded, tmp_path, case):
    doc = copy.deepcopy(_raw())
    element = _mutate(case, doc)
    path = _write(doc, tmp_path)
    before = _state(seeded)
    with pytest.raises(SourceFormatError) as err:
        import_megadetector(seeded, path)
    assert (err.value.path, err.value.element) == (str(path), element)
    assert f"{path}: {element}" in str(err.value)
    assert _state(seeded) == before


def test_malformed_json(seeded, tmp_path):
    text = MD.read_text()
    cut = text[: len(text) // 2]
    path = tmp_path / "cut.json"
    path.write_text(cut)
    try:
        json.loads(cut)
    except json.JSONDecodeError as exc:
        expected = f"line {exc.lineno} column {exc.colno}"
    before = _state(seeded)
    with pytest.raises(SourceFormatError, match="malformed JSON") as err:
        import_megadetector(seeded, path)
    assert (err.value.path, err.value.element) == (str(path), expected)
    assert _state(seeded) == before


def test_missing_image_when_checked(seeded, sample_data):
    images = _raw()["images"]
    first_missing = next(i for i, im in enumerate(images) if not (sample_data / "megadetector" / im["file"]).exists())
    path = sample_data / "megadetector" / MD.name
    before = _state(seeded)
    with pytest.raises(SourceFormatError, match="No such file") as err:
        import_megadetector(seeded, path, check_images=True)
    assert err.value.element == f"images[{first_missing}].file"
    assert _state(seeded) == before
    # a present image that is not a JPEG at all is named too
    present = next(i for i, im in enumerate(images) if (sample_data / "megadetector" / im["file"]).exists())
    doc = {**_raw(), "images": [images[present]]}
    (sample_data / "megadetector" / images[present]["file"]).write_bytes(b"not an image")
    with pytest.raises(SourceFormatError) as err:
        import_megadetector(seeded, _write(doc, sample_data / "megadetector"), check_images=True)
    assert err.value.element == "images[0].file"
    assert _state(seeded) == before


def test_s3_store_round_trip(s3_bucket, s3_storage_options, store):
    bucket, _ = s3_bucket
    remote = hyperds.connect(f"s3://{bucket}/store", storage_options=s3_storage_options)
    report = import_megadetector(remote.create_dataset("md"), MD, root="s3://images/md")
    reopened = hyperds.connect(f"s3://{bucket}/store", storage_options=s3_storage_options).dataset("md")
    local = store.create_dataset("md")
    import_megadetector(local, MD, root="s3://images/md")
    cols = ["frame_id", "uri", "labels", "failure"]
    assert reopened.to_polars(columns=cols).sort("frame_id").equals(local.to_polars(columns=cols).sort("frame_id"))
    a, b = annotations_frame(reopened), annotations_frame(local)
    keys = ["frame_id", "ann_id", "label", "bbox", "confidence", "source"]
    assert a.select(keys).sort("ann_id").equals(b.select(keys).sort("ann_id"))
    assert len(reopened) == report.frames_inserted == len(_raw()["images"])
    assert os.environ.get("AWS_ENDPOINT_URL") is None  # nothing leaked to the environment


def test_a_folder_or_missing_file_is_a_source_error(seeded, tmp_path):
    before = _state(seeded)
    for path, problem in ((tmp_path, "directory"), (tmp_path / "nope.json", "No such file")):
        with pytest.raises(SourceFormatError, match=problem) as err:
            import_megadetector(seeded, path)
        assert (err.value.path, err.value.element) == (str(path), None)
    assert _state(seeded) == before
