"""Property: for generated frames, reading an export back gives the frames on the fields its format carries.

Camtrap DP, COCO-CT and MegaDetector are read back by hyperds' own importers; YOLO and CSV (no importer)
by a plain-Python reader here. One generated dataset is exported to all five formats per example.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import tempfile
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import hyperds
from camtrap_validation import validate_package
from hyperds.frames.importers import import_camtrap_dp, import_coco, import_megadetector

ROOT = "s3://traps/cams"
LABELS = ["Vulpes vulpes", "Anas platyrhynchos", "blank", "human", "heron"]
T0 = dt.datetime(2021, 1, 1, tzinfo=dt.UTC)


def _seconds(lo: int = 0, hi: int = 10**8):
    return st.integers(lo, hi).map(lambda s: T0 + dt.timedelta(seconds=s))


@st.composite
def _box(draw):
    """[x, y, w, h] inside the unit square with w, h > 0 (float32 values, as stored)."""
    x, y = draw(st.integers(0, 900)), draw(st.integers(0, 900))
    w, h = draw(st.integers(1, 999 - x)), draw(st.integers(1, 999 - y))
    jitter = draw(st.floats(0, 0.0009))
    return [float(np.float32(v / 1000 + jitter * (k < 2))) for k, v in enumerate((x, y, w, h))]


@st.composite
def _annotation(draw, frame: str, k: int):
    model = draw(st.booleans())
    status = draw(st.sampled_from(["unreviewed", "accepted", "corrected", "rejected"]))
    reviewed = status != "unreviewed"
    return {
        "ann_id": f"{frame}-a{k}",
        "label": draw(st.sampled_from(LABELS)),
        "bbox": draw(st.one_of(st.none(), _box())),
        "confidence": draw(st.floats(0, 1, width=32)) if model else None,
        "count": draw(st.one_of(st.none(), st.integers(1, 20))),
        "source_kind": "model" if model else "human",
        "source": draw(st.sampled_from(["MDv5a", "ana", "bo"])),
        "created_at": draw(_seconds()),
        "review_status": status,
        "reviewed_by": draw(st.sampled_from(["ana", "auto:threshold=0.9"])) if reviewed else None,
        "reviewed_at": draw(_seconds()) if reviewed else None,
        "note": draw(st.one_of(st.none(), st.text("abc xyz,;\"'é", min_size=1, max_size=12))),
        "life_stage": draw(st.sampled_from([None, "adult", "juvenile"])),
        "sex": draw(st.sampled_from([None, "female", "male"])),
        "behavior": draw(st.sampled_from([None, "foraging", "resting"])),
        "individual_id": draw(st.sampled_from([None, "ind-1"])),
    }


@st.composite
def _frames(draw):
    n = draw(st.integers(1, 8))
    frames = []
    for i in range(n):
        fid = f"f{i:03d}"
        dep = draw(st.sampled_from(["d1", "d2"]))
        frames.append({
            "frame_id": fid, "uri": f"{ROOT}/{fid}.jpg",
            "width": draw(st.integers(16, 4000)), "height": draw(st.integers(16, 3000)),
            "captured_at": draw(_seconds()), "site": f"site-{dep}", "camera": "c1", "deployment": dep,
            "seq_id": draw(st.sampled_from([None, "s1", "s2"])), "frame_num": draw(st.one_of(st.none(), st.integers(0, 9))),
            "latitude": {"d1": 51.25, "d2": -3.5}[dep], "longitude": {"d1": 4.75, "d2": 36.125}[dep],
            "annotations": [draw(_annotation(fid, k)) for k in range(draw(st.integers(0, 3)))],
        })
    return frames


def _kept(frames: list[dict]) -> list[tuple[str, dict]]:
    """(frame_id, annotation) of every annotation an export writes by default (rejected ones are left out)."""
    return [(f["frame_id"], a) for f in frames for a in f["annotations"] if a["review_status"] != "rejected"]


def _annotations(ds) -> dict[str, dict]:
    rows = ds.to_polars(["frame_id", "annotations"]).explode("annotations").drop_nulls("annotations").unnest("annotations")
    return {r["ann_id"]: r for r in rows.iter_rows(named=True)}


def _f32(v):
    return None if v is None else pytest.approx(v, rel=1e-6, abs=1e-7)


@settings(max_examples=6, deadline=None)
@given(frames=_frames())
def test_import_of_export_gives_the_frames_back(frames):
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        store = hyperds.connect(tmp / "store")
        ds = store.create_dataset("gen")
        ds.add_frames(frames)
        kept = _kept(frames)
        by_id = {a["ann_id"]: (fid, a) for fid, a in kept}
        at = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)

        # Camtrap DP: every observation field the annotation carries
        ds.export("camtrap-dp", tmp / "ct", image_root=ROOT, exported_at=at)
        assert validate_package(tmp / "ct") == []
        back = store.create_dataset("ct")
        import_camtrap_dp(back, tmp / "ct", root=ROOT)
        got = _annotations(back)
        assert set(got) == set(by_id)
        for ann_id, (fid, a) in by_id.items():
            g = got[ann_id]
            assert g["frame_id"] == fid
            for key in ("label", "count", "source_kind", "source", "created_at", "review_status", "reviewed_by",
                        "reviewed_at", "note", "life_stage", "sex", "behavior", "individual_id"):
                assert g[key] == a[key], key
            assert g["confidence"] == _f32(a["confidence"])
            assert g["bbox"] == (None if a["bbox"] is None else [_f32(v) for v in a["bbox"]])
        media = back.to_polars(["frame_id", "uri", "captured_at", "deployment", "latitude", "longitude", "site"])
        want = pl.DataFrame([{k: f[k] for k in media.columns} for f in frames])
        assert media.sort("frame_id").equals(want.select(media.columns).cast(media.schema).sort("frame_id"))

        # the same frames as a published view: a valid package too, with the same rows as the dataset's export
        store.create_view("everything", "TRUE", datasets=["gen"], empty="keep").publish("1.0")
        view = store.view("everything", "1.0")
        view.export("camtrap-dp", tmp / "ct-view", image_root=ROOT, exported_at=at)
        assert validate_package(tmp / "ct-view") == []
        for table in ("deployments.csv", "media.csv", "observations.csv"):
            assert (tmp / "ct-view" / table).read_bytes() == (tmp / "ct" / table).read_bytes(), table
        package = json.loads((tmp / "ct-view" / "datapackage.json").read_text())
        assert package["hyperds"]["source"]["digest"] == view.digest

        # COCO-CT: images and their labels and pixel boxes
        ds.export("coco-ct", tmp / "coco", image_root=ROOT, exported_at=at)
        back = store.create_dataset("coco")
        import_coco(back, tmp / "coco" / "coco_ct.json", root=ROOT)
        cols = ["frame_id", "uri", "width", "height", "captured_at", "site", "seq_id", "frame_num"]
        want = pl.DataFrame([{k: f[k] for k in cols} for f in frames])
        assert back.to_polars(cols).sort("frame_id").equals(want.cast(back.to_polars(cols).schema).sort("frame_id"))
        got = _annotations(back)
        assert {k: (g["frame_id"], g["label"]) for k, g in got.items()} == {k: (f, a["label"]) for k, (f, a) in by_id.items()}
        for ann_id, (_, a) in by_id.items():
            if a["bbox"] is not None:
                assert got[ann_id]["bbox"] == [pytest.approx(v, abs=1e-6) for v in a["bbox"]]

        # MegaDetector: boxed annotations as detections (a person's box gets conf 1.0)
        ds.export("megadetector", tmp / "md", image_root=ROOT, exported_at=at)
        back = store.create_dataset("md")
        import_megadetector(back, tmp / "md" / "megadetector.json", root=ROOT)
        assert sorted(back.to_polars(["frame_id"])["frame_id"]) == sorted(f"{f['frame_id']}.jpg" for f in frames)
        got = sorted((g["frame_id"], g["label"], round(g["confidence"], 5), tuple(round(v, 5) for v in g["bbox"]))
                     for g in _annotations(back).values())
        want = sorted((f"{fid}.jpg", a["label"], round(a["confidence"] if a["confidence"] is not None else 1.0, 5),
                       tuple(round(v, 5) for v in a["bbox"])) for fid, a in kept if a["bbox"] is not None)
        assert got == want

        # YOLO: one label file per frame, `class cx cy w h` over data.yaml's names
        ds.export("yolo", tmp / "yolo", exported_at=at)
        names = [line.split(": ", 1)[1].strip('"') for line in (tmp / "yolo" / "data.yaml").read_text().splitlines()
                 if line.startswith("  ")]
        with open(tmp / "yolo" / "index.csv", newline="") as fh:
            stem_of = {r["frame_id"]: r["stem"] for r in csv.DictReader(fh)}
        assert set(stem_of) == {f["frame_id"] for f in frames}
        for f in frames:
            lines = (tmp / "yolo" / "labels" / f"{stem_of[f['frame_id']]}.txt").read_text().split()
            rows = [lines[i:i + 5] for i in range(0, len(lines), 5)]
            got = sorted((names[int(r[0])], *(round(float(v), 4) for v in r[1:])) for r in rows)
            want = sorted((a["label"], round(a["bbox"][0] + a["bbox"][2] / 2, 4), round(a["bbox"][1] + a["bbox"][3] / 2, 4),
                           round(a["bbox"][2], 4), round(a["bbox"][3], 4))
                          for fid, a in kept if fid == f["frame_id"] and a["bbox"] is not None)
            assert [g[0] for g in got] == [w[0] for w in want]
            for g, w in zip(got, want, strict=True):
                assert g[1:] == pytest.approx(w[1:], abs=2e-4)
        assert (tmp / "yolo" / "images.txt").read_text().split() == sorted(f["uri"] for f in frames)

        # CSV: one row per kept annotation (frames without any: one row with empty annotation cells)
        ds.export("csv", tmp / "csv", exported_at=at)
        rows = pl.read_csv(tmp / "csv" / "annotations.csv", infer_schema=False)
        got = {r["ann_id"]: (r["frame_id"], r["label"], r["source"], r["review_status"], r["note"] or None)
               for r in rows.iter_rows(named=True) if r["ann_id"]}
        assert got == {k: (f, a["label"], a["source"], a["review_status"], a["note"]) for k, (f, a) in by_id.items()}
        annotated = {fid for fid, _ in kept}
        assert set(rows.filter(pl.col("ann_id").is_null())["frame_id"]) == {f["frame_id"] for f in frames} - annotated
        assert json.loads((tmp / "csv" / "provenance.json").read_text())["hyperds"]["source"]["datasets"] == [
            {"name": "gen", "version": ds.version}]
