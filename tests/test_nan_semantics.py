"""NaN in a float column compares as in IEEE 754 and Python: false for =, <, <=, >, >=, BETWEEN and
IN, true for != and NOT IN, and NOT of a false comparison is true. The Lance pushdown (which orders
NaN above every number), the pyarrow residual and the annotation side table all answer alike."""

from __future__ import annotations

import math

import pytest

TEMPS = {"a": math.nan, "b": 25.0, "c": 35.0, "d": None, "e": 30.0}


@pytest.fixture
def temps(store):
    ds = store.create_dataset("t")
    ds.add_frames([{"frame_id": f, "uri": f"/{f}.jpg", "temperature": v, "t32": v} for f, v in TEMPS.items()])
    return ds


def _expected(pred) -> list[str]:
    out = []
    for f, v in TEMPS.items():
        if v is not None and pred(v):
            out.append(f)
    return sorted(out)


CASES = [
    ("temperature > 30", lambda v: v > 30), ("temperature > 30.0", lambda v: v > 30.0),
    ("temperature >= 30.0", lambda v: v >= 30.0), ("temperature < 30.0", lambda v: v < 30.0),
    ("temperature = 30.0", lambda v: v == 30.0), ("temperature != 30.0", lambda v: v != 30.0),
    ("NOT (temperature > 30.0)", lambda v: not v > 30.0), ("NOT (temperature >= 30)", lambda v: not v >= 30),
    ("temperature BETWEEN 20.0 AND 40.0", lambda v: 20 <= v <= 40),
    ("temperature NOT BETWEEN 20.0 AND 40.0", lambda v: not 20 <= v <= 40),
    ("temperature IN (25.0, 35.0)", lambda v: v in (25.0, 35.0)),
    ("temperature NOT IN (25.0, 35.0)", lambda v: v not in (25.0, 35.0)),
    ("temperature > 30.0 OR temperature < 30.0", lambda v: v > 30 or v < 30),
    ("temperature < 1e999", lambda v: v < math.inf), ("temperature > -1e999", lambda v: v > -math.inf),
]


@pytest.mark.parametrize("column", ["temperature", "t32"])
@pytest.mark.parametrize("text,pred", CASES, ids=[c[0] for c in CASES])
def test_nan_compares_false_whatever_the_path(temps, column, text, pred):
    query = temps.query(text.replace("temperature", column))
    assert sorted(query.frame_ids().to_pylist()) == _expected(pred), query.explain()


def test_int_and_float_literal_select_the_same_frames(temps):
    assert temps.query("temperature > 30").frame_ids() == temps.query("temperature > 30.0").frame_ids()


def test_side_table_agrees_with_the_scan(store):
    ds = store.create_dataset("s")
    # a NaN confidence can no longer be written; the side table still answers > and >= like the scan
    ds.add_frames([{"frame_id": f"f{i}", "uri": f"/{i}.jpg",
                    "annotations": [{"label": "deer", "confidence": c, "source_kind": "model"}]}
                   for i, c in enumerate([0.2, 0.5, 0.9])])
    queries = ["any_annotation(confidence > 0.5)", "any_annotation(confidence >= 0.5)",
               "count_annotations(NOT (confidence > 0.5)) >= 1"]
    scanned = {q: sorted(ds.query(q).frame_ids().to_pylist()) for q in queries}
    ds.optimize()
    assert {q: sorted(ds.query(q).frame_ids().to_pylist()) for q in queries} == scanned
