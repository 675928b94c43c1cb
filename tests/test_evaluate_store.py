"""hyperds.evaluate on the real MegaDetector sample: reviews through ds.commit, counts recomputed from the JSON.

Also: a published view evaluates the same after later corrections (the pin holds) and the next version
reflects them; each evaluation of a published view is in the audit; bad input is a clear error that
records nothing; `hyperds eval` end to end.
"""

from __future__ import annotations

import json
from collections import defaultdict

import polars as pl
import pytest
from conftest import MD_JSON, run_cli

import hyperds
from hyperds.errors import EvaluationError

DOC = json.loads(MD_JSON.read_text())
NAMES = DOC["detection_categories"]
MODEL = DOC["info"]["detector"]
THRESHOLD = 0.5


def _dets() -> dict[str, list[dict]]:
    """frame -> detections (label, conf, bbox, ann_id) as the importer stores them."""
    return {
        im["file"]: [{"ann_id": f"{im['file']}:{i}", "label": NAMES[d["category"]], "conf": d["conf"],
                      "bbox": [min(max(v, 0.0), 1.0) for v in d["bbox"]]} for i, d in enumerate(im["detections"])]
        for im in DOC["images"]
    }


def _frame(prefix: str) -> str:
    return next(f for f in _dets() if f.startswith(prefix))


def _plan() -> dict:
    """The review round the tests commit, as plain data."""
    dets = _dets()
    a, b, c = _frame("snapshot_camdeboo_CDB_S1_A05"), _frame("wcs_camera_traps"), _frame("idaho_camera_traps_loc_0044")
    d, e = _frame("nacti_part3"), _frame("snapshot_serengeti")
    by_conf = {f: sorted(dets[f], key=lambda x: -x["conf"]) for f in (a, b, c, e)}
    return {
        "accept": [x["ann_id"] for x in by_conf[a][:2]] + [x["ann_id"] for x in dets[c]],
        "reject": [x["ann_id"] for x in by_conf[a][2:]] + [x["ann_id"] for x in by_conf[b][-2:]],
        "correct": {by_conf[b][0]["ann_id"]: "deer"},
        "delete": [by_conf[e][0]["ann_id"]],
        "add": {d: ("fox", [0.1, 0.1, 0.3, 0.3])},
        "frames": [a, b, c, d, e],
        "refute": [x["ann_id"] for x in dets[c]],  # later: frame c's accepted boxes turn out wrong
    }


def _changes(plan: dict) -> list[dict]:
    fid = lambda ann: ann.rsplit(":", 1)[0]  # noqa: E731
    out = [{"op": "review", "frame_id": fid(x), "ann_id": x, "status": "accept"} for x in plan["accept"]]
    out += [{"op": "review", "frame_id": fid(x), "ann_id": x, "status": "reject"} for x in plan["reject"]]
    out += [{"op": "review", "frame_id": fid(x), "ann_id": x, "status": "correct", "label": lab}
            for x, lab in plan["correct"].items()]
    out += [{"op": "delete", "frame_id": fid(x), "ann_id": x} for x in plan["delete"]]
    out += [{"op": "add", "frame_id": f, "label": lab, "bbox": box} for f, (lab, box) in plan["add"].items()]
    return out


def _iou(p, q) -> float:
    ow = min(p[0] + p[2], q[0] + q[2]) - max(p[0], q[0])
    oh = min(p[1] + p[3], q[1] + q[3]) - max(p[1], q[1])
    return 0.0 if ow <= 0 or oh <= 0 else ow * oh / (p[2] * p[3] + q[2] * q[3] - ow * oh)


def _expected(plan: dict, refuted: bool = False) -> dict:
    """Per-class tp/fp/fn at IoU 0.5 and confidence 0.5, and presence per frame, from the JSON and the plan."""
    dets = _dets()
    rejected = set(plan["reject"]) | (set(plan["refute"]) if refuted else set())
    accepted = set(plan["accept"]) - rejected
    preds, truth = [], []
    for f in plan["frames"]:
        for x in dets[f]:
            preds.append((f, x["label"], x["conf"], x["bbox"]))
            if x["ann_id"] in accepted:
                truth.append((f, x["label"], x["bbox"]))
            elif x["ann_id"] in plan["correct"]:
                truth.append((f, plan["correct"][x["ann_id"]], x["bbox"]))
    truth += [(f, lab, box) for f, (lab, box) in plan["add"].items()]
    counts = defaultdict(lambda: [0, 0, 0])  # tp, fp, fn
    taken = set()
    for i, (f, lab, conf, box) in sorted(enumerate(preds), key=lambda t: (-t[1][2], t[0])):
        if conf < THRESHOLD:
            continue
        best, m = 0.5, None
        for j, (g_f, g_lab, g_box) in enumerate(truth):
            if g_f == f and g_lab == lab and j not in taken and _iou(box, g_box) >= best:
                best, m = _iou(box, g_box), j
        counts[lab][0 if m is not None else 1] += 1
        if m is not None:
            taken.add(m)
    for j, (_, lab, _) in enumerate(truth):
        if j not in taken:
            counts[lab][2] += 1
    p_sets = {f: {lab for g, lab, c, _ in preds if g == f and c >= THRESHOLD} for f in plan["frames"]}
    t_sets = {f: {lab for g, lab, _ in truth if g == f} for f in plan["frames"]}
    presence = {s: [sum(s in p_sets[f] and s in t_sets[f] for f in p_sets),
                    sum(s in p_sets[f] and s not in t_sets[f] for f in p_sets),
                    sum(s not in p_sets[f] and s in t_sets[f] for f in p_sets)]
                for s in set().union(*p_sets.values(), *t_sets.values())}
    blank = sum(bool(p_sets[f]) == bool(t_sets[f]) for f in p_sets) / len(p_sets)
    return {"counts": dict(counts), "presence": presence, "blank": blank, "truth": len(truth), "preds": len(preds)}


def _check(report, exp: dict) -> None:
    det = {r["class"]: r for r in report.detection.to_dicts()}
    assert {c: [det[c]["tp"], det[c]["fp"], det[c]["fn"]] for c in det} == {
        c: exp["counts"].get(c, [0, 0, 0]) for c in det}
    assert set(exp["counts"]) <= set(det)
    pres = {r["species"]: [r["tp"], r["fp"], r["fn"]] for r in report.presence.to_dicts()}
    assert pres == exp["presence"]
    assert report.summary["blank_accuracy"] == pytest.approx(exp["blank"])
    assert report.meta["truth_boxes"] == exp["truth"]
    assert report.meta["predictions_boxes"] == exp["preds"]
    assert report.meta["frames_judged"] == len(_plan()["frames"])


@pytest.fixture
def reviewed(store, md):
    plan = _plan()
    md.commit(_changes(plan), author="ana", message="round 1")
    return store, md, plan


def test_counts_match_the_json_and_the_reviews(reviewed):
    store, md, plan = reviewed
    report = hyperds.evaluate(md, MODEL, threshold=THRESHOLD)
    _check(report, _expected(plan))
    # The corrected box: truth "deer", the model said "animal" on the same box.
    cm = {r["truth"]: r for r in report.confusion.to_dicts()}
    assert cm["deer"]["animal"] == 1 and cm["fox"]["(missed)"] == 1
    assert "run_id" not in report.meta  # a dataset is not a published view: nothing recorded
    assert store.runs().num_rows == 0


def test_predictions_by_annotation_condition(reviewed):
    store, md, plan = reviewed
    cond = f"source = '{MODEL}' AND confidence >= 0.5"
    report = md.evaluate(cond, threshold=THRESHOLD)
    dets = _dets()
    assert report.meta["predictions_boxes"] == sum(x["conf"] >= 0.5 for f in plan["frames"] for x in dets[f])
    full = md.evaluate(MODEL, threshold=THRESHOLD)
    assert report.detection.select("class", "tp", "fp", "fn").equals(full.detection.select("class", "tp", "fp", "fn"))


def test_pinned_view_gives_the_same_report_and_the_next_version_reflects_corrections(reviewed):
    store, md, plan = reviewed
    v10 = store.create_view("everything", "TRUE", datasets=["md"], empty="keep").publish("1.0")
    first = v10.evaluate(MODEL, threshold=THRESHOLD)
    _check(first, _expected(plan))
    fid = lambda ann: ann.rsplit(":", 1)[0]  # noqa: E731
    md.commit([{"op": "review", "frame_id": fid(x), "ann_id": x, "status": "reject"} for x in plan["refute"]],
              author="ben", message="those were rocks")
    again = store.view("everything", "1.0").evaluate(MODEL, threshold=THRESHOLD)

    def strip(report):
        d = report.to_dict()
        d["meta"].pop("run_id")
        return d

    assert strip(again) == strip(first)
    v11 = store.create_view("everything", "TRUE", datasets=["md"], empty="keep").publish("1.1")
    after = v11.evaluate(MODEL, threshold=THRESHOLD)
    _check(after, _expected(plan, refuted=True))
    assert after.meta["truth_boxes"] == first.meta["truth_boxes"] - len(plan["refute"])
    runs = store.runs(view="everything").to_pylist()
    assert [(r["version"], json.loads(r["info"])["kind"]) for r in runs] == [
        ("1.0", "evaluation"), ("1.0", "evaluation"), ("1.1", "evaluation")]
    info = json.loads(runs[-1]["info"])
    assert info["model"] == MODEL and info["metrics"] == after.metrics()
    assert [r["run_id"] for r in runs] == [first.meta["run_id"], again.meta["run_id"], after.meta["run_id"]]


def test_bad_input_is_a_clear_error_and_records_nothing(store, md):
    view = store.create_view("everything", "TRUE", datasets=["md"], empty="keep").publish("1.0")
    with pytest.raises(EvaluationError, match="has no truth"):
        view.evaluate(MODEL)
    plan = _plan()
    md.commit(_changes(plan), author="ana")
    v11 = store.create_view("everything", "TRUE", datasets=["md"], empty="keep").publish("1.1")
    with pytest.raises(EvaluationError, match=r"no predictions match 'MDv5a@5\.0'.*" + MODEL):
        v11.evaluate("MDv5a@5.0")
    with pytest.raises(EvaluationError, match=r"maps to class\(es\) \['unicorn'\]"):
        v11.evaluate(MODEL, label_map={"animal": "unicorn"})
    with pytest.raises(EvaluationError, match=r"prediction label\(s\) \['zebra'\]"):
        v11.evaluate(MODEL, label_map={"zebra": "deer"})
    with pytest.raises(EvaluationError, match="iou must be a number"):
        v11.evaluate(MODEL, iou=1.5)
    with pytest.raises(EvaluationError, match="not an annotation condition"):
        v11.evaluate("nope = 1")
    assert store.runs().num_rows == 0


def test_label_map_translates_the_model_vocabulary(reviewed):
    store, md, plan = reviewed
    report = md.evaluate(MODEL, label_map={"animal": "deer"}, threshold=THRESHOLD)
    det = {r["class"]: r for r in report.detection.to_dicts()}
    assert "animal" not in det or det["animal"]["predicted"] == 0
    assert det["deer"]["tp"] == 1  # only the corrected box is a deer in the truth


def test_cli_eval_writes_the_report_and_plots(reviewed, capsys, tmp_path):
    store, md, plan = reviewed
    store.create_view("everything", "TRUE", datasets=["md"], empty="keep").publish("1.0")
    code, out, err = run_cli(store, capsys, "eval", "everything", "--version", "1.0", "--predictions", MODEL,
                             "--threshold", str(THRESHOLD), "--output", str(tmp_path / "out"), "--plots")
    assert code == 0, err
    assert "mAP@0.5" in out and "recorded as run eval-" in out
    doc = json.loads((tmp_path / "out" / "report.json").read_text())
    api = store.view("everything", "1.0").evaluate(MODEL, threshold=THRESHOLD, record=False).to_dict()
    doc["meta"].pop("run_id")
    assert doc == api
    for name in ("pr_curves.png", "confusion.png"):
        assert (tmp_path / "out" / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert store.runs(view="everything").num_rows == 1
    code, out, err = run_cli(store, capsys, "audit", "runs", "--format", "csv")
    runs = pl.read_csv(out.encode(), infer_schema=False)
    row = runs.filter(pl.col("kind") == "evaluation").row(0, named=True)
    info = json.loads(row["info"])
    assert (row["view"], row["version"]) == ("everything", "1.0")
    assert info["model"] in MODEL and info["metrics"]["map50"] == pytest.approx(doc["summary"]["map50"]), (info, doc["summary"])


@pytest.mark.parametrize("argv", [["--predictions", "nope@1"], ["--predictions", MODEL, "--plots"]])
def test_cli_eval_bad_input_is_one_line(reviewed, capsys, argv):
    store, md, plan = reviewed
    store.create_view("everything", "TRUE", datasets=["md"], empty="keep").publish("1.0")
    code, out, err = run_cli(store, capsys, "eval", "everything", *argv)
    assert code == 2 and err.startswith("hyperds: error: ") and len(err.strip().splitlines()) == 1
    assert store.runs().num_rows == 0


def test_cli_eval_help_and_flag_checks(store, capsys):
    from hyperds.cli.main import main

    with pytest.raises(SystemExit) as exc:
        main(["eval", "--help"])
    assert exc.value.code == 0 and "--predictions" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exc:
        main(["--store", store.uri, "eval", "v", "--predictions", "m@1", "--iou", "2"])
    assert exc.value.code == 2


def test_query_and_frames_all_and_rule_reviews(reviewed):
    store, md, plan = reviewed
    base = md.evaluate(MODEL, threshold=THRESHOLD)
    via_query = hyperds.evaluate(md.query("TRUE"), MODEL, threshold=THRESHOLD)
    assert via_query.to_dict() == base.to_dict()
    # Every frame judged: the unreviewed frames' confident boxes become false positives.
    everything = md.evaluate(MODEL, threshold=THRESHOLD, frames="all")
    dets = _dets()
    extra_fp = sum(x["conf"] >= THRESHOLD for f in dets if f not in plan["frames"] for x in dets[f])
    fp = lambda r: r.detection["fp"].sum()  # noqa: E731
    assert everything.meta["frames_judged"] == len(dets)
    assert fp(everything) == fp(base) + extra_fp


def test_rule_acceptances_are_truth_unless_left_out(store, md):
    accepted = md.auto_accept(0.9)
    report = md.evaluate(MODEL)
    assert report.meta["truth_boxes"] == accepted.annotations
    with pytest.raises(EvaluationError, match="has no truth"):
        md.evaluate(MODEL, rule_reviews=False)


def test_a_model_source_with_spaces_is_still_a_source(store):
    ds = store.create_dataset("cct")
    box = [0.1, 0.1, 0.2, 0.2]
    ds.add_frames([{"frame_id": "a", "uri": "file:///a.jpg", "annotations": [
        {"label": "deer", "bbox": box, "confidence": 0.9, "source_kind": "model", "source": "Caltech Camera Traps",
         "review_status": "accepted"},
        {"label": "fox", "bbox": [0.5, 0.5, 0.2, 0.2], "source_kind": "human", "source": "ana"}]}])
    report = ds.evaluate("Caltech Camera Traps")
    rows = {r["class"]: (r["tp"], r["fp"], r["fn"]) for r in report.detection.to_dicts()}
    assert rows == {"deer": (1, 0, 0), "fox": (0, 0, 1)}


def test_plots_without_matplotlib_name_the_extra(reviewed, capsys, monkeypatch, tmp_path):
    store, md, plan = reviewed
    store.create_view("everything", "TRUE", datasets=["md"], empty="keep").publish("1.0")
    report = md.evaluate(MODEL)
    monkeypatch.setitem(__import__("sys").modules, "matplotlib", None)  # as if the extra were not installed
    with pytest.raises(hyperds.HyperdsError, match=r"pip install 'hyperds\[eval\]'"):
        report.save(tmp_path / "r", plots=True)
    code, _, err = run_cli(store, capsys, "eval", "everything", "--predictions", MODEL, "--output",
                           str(tmp_path / "cli"), "--plots")
    assert code == 2 and "hyperds[eval]" in err
    assert store.runs().num_rows == 0 and not (tmp_path / "cli").exists()
