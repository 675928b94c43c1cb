"""`hyperds import ...` end to end through the console entry point (main), on a local store."""

from __future__ import annotations

import csv
import json

import pytest

import hyperds
from conftest import DATA
from hyperds.cli.main import main

MD = DATA / "megadetector" / "expected_output_DRAFT.json"
PKG = DATA / "camtrap-dp"


def _run(capsys, *argv: str) -> tuple[int, str, str]:
    rc = main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


def test_import_creates_dataset_and_reimport_says_nothing_new(tmp_path, capsys):
    store = str(tmp_path / "store")
    n_images = len(json.loads(MD.read_text())["images"])
    rc, out, _ = _run(capsys, "--store", store, "import", "megadetector", str(MD), "--dataset", "md")
    assert rc == 0
    assert f"{n_images} read, {n_images} new" in out
    rc, out, _ = _run(capsys, "--store", store, "datasets")
    assert rc == 0 and "md" in out
    version = hyperds.connect(store).dataset("md").version
    rc, out, _ = _run(capsys, "--store", store, "import", "megadetector", str(MD), "--dataset", "md")
    assert rc == 0 and "nothing new" in out and f"0 new, {n_images} already" in out
    assert hyperds.connect(store).dataset("md").version == version


def test_camtrap_dp_with_root_and_tz(tmp_path, capsys):
    store = str(tmp_path / "store")
    with open(PKG / "media.csv", newline="") as f:
        media = list(csv.DictReader(f))
    rc, out, _ = _run(
        capsys, "--store", store, "import", "camtrap-dp", str(PKG), "--dataset", "mica",
        "--root", "s3://cams/mica", "--tz", "Europe/Brussels", "--check-images",
    )
    assert rc == 0, out
    ds = hyperds.connect(store).dataset("mica")
    assert len(ds) == len(media)
    local = next(m for m in media if not m["filePath"].startswith("https://"))
    assert ds.get(local["mediaID"])["uri"] == f"s3://cams/mica/{local['filePath']}"


def test_bad_file_exits_2_names_element_and_leaves_no_dataset(tmp_path, capsys):
    store = str(tmp_path / "store")
    doc = json.loads(MD.read_text())
    doc["images"][4]["detections"] = [{"category": "1", "conf": 0.9, "bbox": [0.5, 0.5, 0.7, 0.1]}]
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(doc))
    rc, _, err = _run(capsys, "--store", store, "import", "megadetector", str(bad), "--dataset", "md")
    assert rc == 2
    assert f"{bad}: images[4].detections[0].bbox" in err
    assert hyperds.connect(store).datasets() == []  # the dataset this import created is gone again
    # into an existing dataset: it stays exactly as it was
    _run(capsys, "--store", store, "import", "megadetector", str(MD), "--dataset", "md")
    ds = hyperds.connect(store).dataset("md")
    before = (ds.version, len(ds))
    rc, _, err = _run(capsys, "--store", store, "import", "megadetector", str(bad), "--dataset", "md")
    assert rc == 2 and "images[4].detections[0].bbox" in err
    ds = hyperds.connect(store).dataset("md")
    assert (ds.version, len(ds)) == before


@pytest.mark.parametrize("argv", [["import"], ["import", "megadetector"], ["import", "coco"], ["import", "camtrap-dp"]])
def test_help(argv, capsys):
    with pytest.raises(SystemExit) as exit_:
        main([*argv, "--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert "usage: hyperds import" in out
    if len(argv) == 2:
        assert "--dataset" in out and "--root" in out and "--check-images" in out
        assert ("--tz" in out) == (argv[1] != "megadetector")
