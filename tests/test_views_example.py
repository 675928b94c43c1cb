"""Runs examples/train_classifier.py (one epoch) and checks the view it trained on against the sample files."""

from __future__ import annotations

import csv
import importlib.util
import json
from pathlib import Path

from conftest import DATA

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "train_classifier.py"


def _expected_frames() -> dict[str, str]:
    """frame -> class, from the raw files: local heron photos of the Camtrap DP package, MegaDetector
    images kept in the repo with an 'animal' detection."""
    media = {r["mediaID"]: r["filePath"] for r in csv.DictReader((DATA / "camtrap-dp" / "media.csv").open())}
    herons = {r["mediaID"] for r in csv.DictReader((DATA / "camtrap-dp" / "observations.csv").open())
              if r["scientificName"] == "Ardea" and r["mediaID"] and not media[r["mediaID"]].startswith("http")}
    md = json.loads((DATA / "megadetector" / "expected_output_DRAFT.json").read_text())
    animal = {k for k, v in md["detection_categories"].items() if v == "animal"}
    on_disk = {p.name for p in (DATA / "megadetector").iterdir()}
    others = {im["file"] for im in md["images"]
              if im["file"] in on_disk and any(d["category"] in animal for d in im.get("detections") or [])}
    return {**dict.fromkeys(herons, "heron"), **dict.fromkeys(others, "other")}


def test_train_classifier_example_trains_through_the_view_and_records_the_run(store, capsys):
    spec = importlib.util.spec_from_file_location("train_classifier", EXAMPLE)
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    view = example.publish_view(store)
    got = dict(zip(view.frame_ids().to_pylist(),
                   (c[0] for c in view.to_arrow(["classes"]).column("classes").to_pylist()), strict=True))
    assert got == _expected_frames()
    metrics = example.train(store, epochs=1)
    assert metrics["images"] == len(got) and metrics["classes"] == ["heron", "other"]
    (run,) = store.runs(view=example.VIEW).to_pylist()
    assert (run["version"], run["digest"], run["frame_count"]) == ("1.0", view.digest, len(got))
    assert "epoch 1: train loss" in capsys.readouterr().out
