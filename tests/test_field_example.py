"""Runs examples/repeat_detections.py on the sample data and checks its results against the package's own CSVs."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import polars as pl
from conftest import DATA

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "repeat_detections.py"


def _example():
    spec = importlib.util.spec_from_file_location("repeat_detections_example", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_example_runs_on_the_sample(store, tmp_path):
    example = _example()
    lines: list[str] = []
    out = example.run(store, tmp_path / "exports", say=lambda x: lines.append(str(x)))
    media = pl.read_csv(DATA / "camtrap-dp" / "media.csv", infer_schema_length=0)
    deployments = pl.read_csv(DATA / "camtrap-dp" / "deployments.csv", infer_schema_length=0)
    branch_deps = deployments.filter(pl.col("cameraID") == example.BRANCH_CAMERA)["deploymentID"].to_list()
    branch_frames = media.filter(pl.col("deploymentID").is_in(branch_deps)).height
    # The simulated branch is the only repeat: the moving boxes never group.
    assert out["found"].groups["key"].to_list() == [example.BRANCH_CAMERA]
    assert out["found"].groups["frames"].to_list() == [min(40, branch_frames)]
    assert out["rejected"].detections == min(40, branch_frames)
    obs = pl.read_csv(DATA / "camtrap-dp" / "observations.csv", infer_schema_length=0)
    seen = set(obs.filter(pl.col("scientificName") == example.SENSITIVE)["deploymentID"].to_list())
    assert set(out["moved"]) == seen
    people = set(obs.filter(pl.col("scientificName").is_in(["Homo sapiens"])
                            | pl.col("observationType").is_in(["human", "vehicle"]))["mediaID"].drop_nulls().to_list())
    public = set(pl.read_csv(tmp_path / "exports" / "public" / "media.csv", infer_schema_length=0)["mediaID"].to_list())
    assert public and not (public & people)
    assert out["full"].frames == media.height
    assert any("rule:repeat-detection" in line for line in lines)
