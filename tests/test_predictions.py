"""add_predictions: MegaDetector output as model annotations in one commit; re-runs replace only their own."""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest

from conftest import DATA
from hyperds.errors import PredictionError

MODEL = "megadetector@v5a"


@pytest.fixture
def md():
    return json.loads((DATA / "megadetector" / "expected_output_DRAFT.json").read_text())


@pytest.fixture
def ds(store, md):
    d = store.create_dataset("md")
    d.add_frames([{"frame_id": im["file"], "uri": f"megadetector/{im['file']}"} for im in md["images"]])
    return d


def _predictions(md: dict, min_conf: float = 0.0, cover_all: bool = False) -> pl.DataFrame:
    """Detections at or above `min_conf`; with cover_all, a null-label row marks every image the run saw."""
    cats = md["detection_categories"]
    rows = [
        {"frame_id": im["file"], "label": cats[d["category"]], "bbox": [float(v) for v in d["bbox"]], "confidence": float(d["conf"])}
        for im in md["images"]
        for d in im["detections"]
        if d["conf"] >= min_conf
    ]
    seen = [{"frame_id": im["file"], "label": None, "bbox": None, "confidence": None} for im in md["images"]]
    return pl.DataFrame(rows + (seen if cover_all else []))


def _model_anns(ds, model: str = MODEL) -> pl.DataFrame:
    df = ds.to_polars(columns=["frame_id", "annotations"]).explode("annotations").drop_nulls("annotations")
    return df.unnest("annotations").filter(pl.col("source") == model)


def test_megadetector_predictions_one_commit(ds, md):
    before = ds.version
    n_commits = ds.commits().height
    res = ds.add_predictions(_predictions(md), model=MODEL, run_id="run-1")
    # all predictions land in one Lance version (an index refresh may follow it)
    assert (res.commit.version_before, res.commit.version) == (before, before + 1)
    assert _model_anns(ds.at(before + 1)).height == 79
    commits = ds.commits()
    assert commits.height == n_commits + 1 and commits["author"][-1] == MODEL
    assert "run-1" in commits["message"][-1]

    want = sorted(
        (im["file"], md["detection_categories"][d["category"]], round(d["conf"], 5), tuple(np.float32(d["bbox"]).tolist()))
        for im in md["images"]
        for d in im["detections"]
    )
    anns = _model_anns(ds)
    got = sorted(
        (f, lab, round(float(c), 5), tuple(b))
        for f, lab, c, b in anns.select("frame_id", "label", "confidence", "bbox").iter_rows()
    )
    assert got == want and len(got) == 79
    assert set(anns["source_kind"]) == {"model"} and set(anns["review_status"]) == {"unreviewed"}
    assert all(a.startswith(f"{f}:{MODEL}:run-1:") for f, a in anns.select("frame_id", "ann_id").iter_rows())
    labels = {r["frame_id"]: r["labels"] for r in ds.to_arrow(columns=["frame_id", "labels"]).to_pylist()}
    for im in md["images"]:
        assert labels[im["file"]] == sorted({md["detection_categories"][d["category"]] for d in im["detections"]})


def test_rerun_replaces_own_predictions_never_a_humans(ds, md):
    ds.add_predictions(_predictions(md), model=MODEL, run_id="run-1")
    ds.add_predictions(_predictions(md, 0.5), model="megadetector@v5b", run_id="other")
    frame = next(im["file"] for im in md["images"] if len(im["detections"]) >= 2)
    ds.commit([{"op": "add", "frame_id": frame, "label": "zebra"}], author="alice", message="human label")
    kept = _model_anns(ds).filter(pl.col("frame_id") == frame)["ann_id"][0]
    ds.commit([{"op": "review", "frame_id": frame, "ann_id": kept, "status": "accept"}], author="bob")

    res = ds.add_predictions(_predictions(md, 0.2, cover_all=True), model=MODEL, run_id="run-2")
    high = _predictions(md, 0.2)
    assert (res.frames, res.added, res.replaced) == (len(md["images"]), high.height, 79 - 1)
    anns = _model_anns(ds)
    assert anns.filter(pl.col("ann_id").str.contains(":run-2:")).height == high.height
    assert anns.filter(pl.col("ann_id").str.contains(":run-1:"))["ann_id"].to_list() == [kept]
    assert _model_anns(ds, "megadetector@v5b").height == _predictions(md, 0.5).height
    human = _model_anns(ds, "alice")
    assert human["label"].to_list() == ["zebra"] and human["source_kind"].to_list() == ["human"]

    # a frame covered with no detections (null label) loses this version's earlier predictions
    target = high["frame_id"][0]
    ds.add_predictions([{"frame_id": target, "label": None}], model=MODEL, run_id="run-3")
    left = _model_anns(ds).filter(pl.col("frame_id") == target)
    assert left.filter(pl.col("review_status") == "unreviewed").height == 0


@pytest.mark.parametrize(
    ("model", "rows", "match"),
    [
        ("megadetector", [{"frame_id": "F", "label": "animal"}], "no version"),
        (MODEL, [{"frame_id": "no-such-frame.jpg", "label": "animal"}], "not in dataset"),
        (MODEL, [{"frame_id": "F", "label": "animal", "bbox": [0.5, 0.5, 0.6, 0.1], "confidence": 0.9}], r"outside \[0, 1\]"),
        (MODEL, [{"frame_id": "F", "label": "animal", "bbox": [-0.2, 0.1, 0.1, 0.1], "confidence": 0.9}], r"outside \[0, 1\]"),
        (MODEL, [{"frame_id": "F", "label": "animal", "confidence": 1.5}], "confidence"),
        (MODEL, [{"frame_id": "F", "label": "animal", "bbox": [0.1, 0.1, 0.1]}], "4 numbers"),
        (MODEL, [{"frame_id": "F", "label": "animal", "score": 0.3}], "prediction columns"),
        (MODEL, [{"frame_id": "F", "label": "animal", "confidence": "high"}], r"'confidence'.*row 1: 'high'"),
    ],
)
def test_bad_predictions_write_nothing(ds, md, model, rows, match):
    first = md["images"][0]["file"]
    rows = [{**r, "frame_id": first if r["frame_id"] == "F" else r["frame_id"]} for r in rows]
    good = {"frame_id": md["images"][1]["file"], "label": "animal", "bbox": [0.1, 0.1, 0.2, 0.2], "confidence": 0.8}
    before = (ds.version, ds.to_arrow().to_pylist())
    with pytest.raises(PredictionError, match=match):
        ds.add_predictions([good, *rows] if "score" not in rows[0] else rows, model=model, run_id="bad")
    assert (ds.version, ds.to_arrow().to_pylist()) == before


def test_predictions_of_the_wrong_type_name_their_rows(ds, md):
    files = [img["file"] for img in md["images"][:3]]
    preds = pl.DataFrame({"frame_id": files, "label": ["animal"] * 3, "confidence": ["0.5", "high", "0.7"],
                          "bbox": ["[0.1, 0.1, 0.2, 0.2]", None, None]})
    before = (ds.version, ds.to_arrow().to_pylist())
    with pytest.raises(PredictionError, match="wrong type; nothing was written") as err:
        ds.add_predictions(preds, model=MODEL, run_id="bad")
    assert err.value.rows == [
        "prediction row 0: bbox '[0.1, 0.1, 0.2, 0.2]' is not 4 numbers [x, y, w, h], normalised to the image",
        "prediction row 1: confidence 'high' is not a number in [0, 1]",
    ]
    assert (ds.version, ds.to_arrow().to_pylist()) == before


def test_rerun_keeps_a_box_a_person_moved(store):
    ds = store.create_dataset("cams")
    ds.add_frames([{"frame_id": "f1", "uri": "f1.jpg"}])
    pred = [{"frame_id": "f1", "label": "animal", "bbox": [0.5, 0.5, 0.1, 0.1], "confidence": 0.9}]
    ds.add_predictions(pred, model="detector@v1", run_id="run1")
    (ann,) = ds.get("f1")["annotations"]
    ds.commit([{"op": "move", "frame_id": "f1", "ann_id": ann["ann_id"], "bbox": [0.1, 0.1, 0.2, 0.2]}], author="alice")
    ds.add_predictions(pred, model="detector@v1", run_id="run2")
    anns = {a["ann_id"]: a for a in ds.get("f1")["annotations"]}
    moved = anns[ann["ann_id"]]
    assert (moved["source_kind"], moved["source"]) == ("human", "alice")
    assert [round(v, 3) for v in moved["bbox"]] == [0.1, 0.1, 0.2, 0.2]
    assert len(anns) == 2  # alice's box and the new run's prediction


def test_no_predictions_commit_nothing(ds):
    before = ds.version
    result = ds.add_predictions([], model=MODEL)
    assert (result.frames, result.added, result.commit, ds.version) == (0, 0, None, before)
