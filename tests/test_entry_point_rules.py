"""The annotation rules commit() applies hold at every other way in (add_frames, the importers,
predictions): one ann_id per annotation of a frame, a confidence in [0, 1] and never NaN, counts and
revisions >= 0. A refused input writes nothing."""

from __future__ import annotations

import copy
import json
import math

import pytest

from conftest import MD_JSON
from hyperds.errors import PredictionError, SchemaError, SourceFormatError
from hyperds.frames.importers import import_coco, import_megadetector


def _frame(fid, *anns, **extra):
    return {"frame_id": fid, "uri": f"/img/{fid}.jpg", "annotations": list(anns), **extra}


def _state(ds):
    return ds.version, len(ds)


@pytest.fixture
def ds(store):
    d = store.create_dataset("d")
    d.add_frames([_frame("old", {"label": "deer"})])
    return d


BAD_FRAMES = {
    "duplicate ann_id": ([_frame("a", {"ann_id": "x", "label": "deer"}, {"ann_id": "x", "label": "fox"})],
                         "ann_id appears twice"),
    "NaN confidence": ([_frame("a", {"label": "deer", "confidence": math.nan})], "confidence"),
    "confidence above 1": ([_frame("a", {"label": "deer", "confidence": 1.5})], "confidence"),
    "negative count": ([_frame("a", {"label": "deer", "count": -2})], "count"),
    "negative annotation revision": ([_frame("a", {"label": "deer", "revision": -1})], "revision"),
    "negative frame revision": ([_frame("a", revision=-3)], "revision"),
}


@pytest.mark.parametrize("case", list(BAD_FRAMES))
def test_add_frames_refuses_what_commit_refuses(ds, case):
    rows, match = BAD_FRAMES[case]
    before = _state(ds)
    with pytest.raises(SchemaError, match=match):
        ds.add_frames(rows)
    assert _state(ds) == before


def test_same_ann_id_in_two_frames_is_fine(ds):
    ds.add_frames([_frame("a", {"ann_id": "x", "label": "deer"}), _frame("b", {"ann_id": "x", "label": "fox"})])
    ds.commit([{"op": "relabel", "frame_id": "a", "ann_id": "x", "label": "elk"}], author="t")
    assert ds.get("a")["labels"] == ["elk"] and ds.get("b")["labels"] == ["fox"]


def test_megadetector_nan_confidence_refused(store, tmp_path):
    doc = json.loads(MD_JSON.read_text())
    doc["images"][1]["detections"][0]["conf"] = math.nan  # json writes NaN, and Python's json reads it back
    path = tmp_path / "md.json"
    path.write_text(json.dumps(doc))
    ds = store.create_dataset("md")
    before = _state(ds)
    with pytest.raises(SourceFormatError, match="confidence"):
        import_megadetector(ds, path)
    assert _state(ds) == before


def test_coco_duplicate_annotation_id_refused(store, tmp_path):
    doc = {
        "images": [{"id": 1, "file_name": "a.jpg", "width": 100, "height": 100},
                   {"id": 2, "file_name": "b.jpg", "width": 100, "height": 100}],
        "categories": [{"id": 1, "name": "deer"}, {"id": 2, "name": "fox"}],
        "annotations": [{"id": "k1", "image_id": 1, "category_id": 1}, {"id": "k2", "image_id": 2, "category_id": 1},
                        {"id": "k1", "image_id": 1, "category_id": 2}],
    }
    path = tmp_path / "coco.json"
    path.write_text(json.dumps(doc))
    ds = store.create_dataset("cct")
    before = _state(ds)
    with pytest.raises(SourceFormatError) as err:
        import_coco(ds, path)
    assert err.value.element == "annotations[2].id" and "duplicate annotation id 'k1'" in str(err.value)
    assert _state(ds) == before
    ok = copy.deepcopy(doc)
    ok["annotations"][2]["id"] = "k3"
    path.write_text(json.dumps(ok))
    assert import_coco(ds, path).annotations_inserted == 3


@pytest.mark.parametrize("conf", [math.nan, -0.1, 1.01, math.inf])
def test_predictions_refuse_bad_confidence(ds, conf):
    before = _state(ds)
    with pytest.raises(PredictionError, match="confidence"):
        ds.add_predictions([{"frame_id": "old", "label": "deer", "confidence": conf}], model="m@1")
    assert _state(ds) == before
