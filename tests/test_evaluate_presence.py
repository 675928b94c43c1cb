"""Species presence per frame and per sequence, confusion and sweep, against plain-Python references."""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hyperds.evaluate.confusion import MISSED, SPURIOUS, confusion
from hyperds.evaluate.matching import Boxes
from hyperds.evaluate.presence import presence, sequence_units, species_pairs
from hyperds.evaluate.sweep import sweep

SPECIES = ["lion", "zebra", "blank", "gnu"]


@st.composite
def frame_sets(draw):
    n = draw(st.integers(1, 12))
    seq = [draw(st.sampled_from([None, "a", "b", "c"])) for _ in range(n)]
    dataset = [draw(st.sampled_from(["d1", "d2"])) for _ in range(n)]
    judged = [draw(st.booleans()) for _ in range(n)]

    def anns(scored: bool) -> list[tuple[int, str, float | None]]:
        rows = draw(st.lists(st.tuples(st.integers(0, n - 1), st.sampled_from(SPECIES),
                                       st.one_of(st.none(), st.sampled_from([0.1, 0.5, 0.7, 0.9])))))
        return [(f, s, c if scored else None) for f, s, c in rows]

    return dataset, seq, judged, anns(True), anns(False)


def _frame(rows) -> pl.DataFrame:
    return pl.DataFrame({"_frame": [r[0] for r in rows], "label": [r[1] for r in rows],
                         "confidence": [r[2] for r in rows]},
                        schema={"_frame": pl.Int64, "label": pl.String, "confidence": pl.Float32})


def _reference(units_of, n_units, preds, truths, threshold):
    """Per species (tp, fp, fn) over units, and blank accuracy, in plain Python."""
    p, t = defaultdict(set), defaultdict(set)
    for f, s, c in preds:
        if units_of[f] is not None and s != "blank" and (c is None or c >= np.float32(threshold)):
            p[units_of[f]].add(s)
    for f, s, _ in truths:
        if units_of[f] is not None and s != "blank":
            t[units_of[f]].add(s)
    counts = {}
    for s in {x for v in [*p.values(), *t.values()] for x in v}:
        tp = sum(1 for u in range(n_units) if s in p[u] and s in t[u])
        fp = sum(1 for u in range(n_units) if s in p[u] and s not in t[u])
        fn = sum(1 for u in range(n_units) if s not in p[u] and s in t[u])
        counts[s] = (tp, fp, fn)
    blank = sum(1 for u in range(n_units) if bool(p[u]) == bool(t[u])) / n_units if n_units else None
    return counts, blank


def _check(got, counts, blank):
    rows = {r["species"]: r for r in got.table.to_dicts()}
    assert set(rows) == set(counts)
    for s, (tp, fp, fn) in counts.items():
        r = rows[s]
        assert (r["tp"], r["fp"], r["fn"]) == (tp, fp, fn)
        assert r["precision"] == (pytest.approx(tp / (tp + fp)) if tp + fp else None)
        assert r["recall"] == (pytest.approx(tp / (tp + fn)) if tp + fn else None)
        assert r["f1"] == (pytest.approx(2 * tp / (2 * tp + fp + fn)) if tp + fp + fn else None)
    assert got.blank_accuracy == (pytest.approx(blank) if blank is not None else None)


@settings(max_examples=80)
@given(frame_sets(), st.sampled_from([0.0, 0.5, 0.9]))
def test_presence_per_frame_and_sequence_match_plain_python(data, threshold):
    dataset, seq, judged, preds, truths = data
    n = len(seq)
    judged_arr = np.array(judged)
    # frames: unit = position among judged frames
    frame_unit = {}
    for f in range(n):
        if judged[f]:
            frame_unit[f] = len(frame_unit)
    units = np.array([frame_unit.get(f, -1) for f in range(n)])
    got = presence(species_pairs(_frame(preds), units, threshold), species_pairs(_frame(truths), units, None),
                   int(judged_arr.sum()))
    _check(got, *_reference({f: frame_unit.get(f) for f in range(n)}, len(frame_unit), preds, truths, threshold))

    # sequences: a frame without seq_id is its own sequence; seq_ids are per dataset
    key = [(dataset[f], seq[f]) if seq[f] is not None else ("frame", f) for f in range(n)]
    seq_unit = {}
    for f in range(n):
        if judged[f] and key[f] not in seq_unit:
            seq_unit[key[f]] = len(seq_unit)
    frames = pl.DataFrame({"dataset": dataset, "frame_id": [f"f{i}" for i in range(n)], "seq_id": seq},
                          schema={"dataset": pl.String, "frame_id": pl.String, "seq_id": pl.String})
    units, n_seq = sequence_units(frames, judged_arr)
    assert n_seq == len(seq_unit)
    # only judged frames' labels count, but every frame of a judged sequence maps to it
    judged_only = {f: (seq_unit[key[f]] if judged[f] else None) for f in range(n)}
    got = presence(species_pairs(_frame(preds), np.where(judged_arr, units, -1), threshold),
                   species_pairs(_frame(truths), np.where(judged_arr, units, -1), None), n_seq)
    _check(got, *_reference(judged_only, n_seq, preds, truths, threshold))


def _greedy_agnostic(pred, truth, iou_min):
    """Plain greedy: boxes by descending score (ties: input order) take the best free truth box (ties: later)."""
    def iou(a, b):
        ow = min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0])
        oh = min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1])
        if ow <= 0 or oh <= 0:
            return 0.0
        return ow * oh / (a[2] * a[3] + b[2] * b[3] - ow * oh)

    taken, out = set(), {}
    for i in sorted(range(len(pred[0])), key=lambda i: (-pred[2][i], i)):
        best, m = iou_min, None
        for j in range(len(truth[0])):
            if truth[0][j] != pred[0][i] or j in taken:
                continue
            v = iou(pred[1][i], truth[1][j])
            if v >= best:
                best, m = v, j
        if m is not None:
            taken.add(m)
        out[i] = m
    return out


@st.composite
def box_scenes(draw):
    n_img = draw(st.integers(1, 4))

    def side(n):
        img = [draw(st.integers(0, n_img - 1)) for _ in range(n)]
        boxes = [[draw(st.integers(0, 6)) / 8, draw(st.integers(0, 6)) / 8, draw(st.integers(1, 2)) / 8,
                  draw(st.integers(1, 2)) / 8] for _ in range(n)]
        cls = [draw(st.integers(0, 2)) for _ in range(n)]
        return img, boxes, cls

    np_, nt = draw(st.integers(0, 12)), draw(st.integers(0, 12))
    p = side(np_)
    scores = [draw(st.sampled_from([0.2, 0.4, 0.6, 0.8])) for _ in range(np_)]
    return p, scores, side(nt)


@settings(max_examples=60)
@given(box_scenes(), st.sampled_from([0.0, 0.5]))
def test_confusion_matches_plain_greedy(scene, threshold):
    (pi, pb, pc), scores, (ti, tb, tc) = scene
    classes = ["a", "b", "c"]
    pred = Boxes(np.array(pi, np.int64), np.array(pc, np.int64), np.array(pb, float).reshape(-1, 4),
                 np.array(scores, float))
    truth = Boxes(np.array(ti, np.int64), np.array(tc, np.int64), np.array(tb, float).reshape(-1, 4))
    got = confusion(pred, truth, classes, 0.5, threshold)
    keep = [i for i in range(len(pi)) if scores[i] >= threshold]
    sub = ([pi[i] for i in keep], [pb[i] for i in keep], [scores[i] for i in keep])
    m = _greedy_agnostic(sub, (ti, tb), 0.5)
    want = defaultdict(int)
    for k, i in enumerate(keep):
        j = m[k]
        want[(classes[tc[j]] if j is not None else SPURIOUS, classes[pc[i]])] += 1
    matched = {j for j in m.values() if j is not None}
    for j in range(len(ti)):
        if j not in matched:
            want[(classes[tc[j]], MISSED)] += 1
    for row in got.to_dicts():
        for col in [*classes, MISSED]:
            assert row[col] == want.get((row["truth"], col), 0), (row["truth"], col)


def test_sweep_matches_plain_counting():
    rng = np.random.default_rng(3)
    score = rng.choice([0.1, 0.3, 0.5, 0.7, 0.9, 0.95], size=200)
    hit = rng.random(200) < score  # confident boxes hit more often
    frame_min = rng.choice([0.1, 0.5, 0.95, -1.0], size=50)
    s = sweep(score, hit, 150, frame_min, 80, target_precision=0.9)
    for row in s.table.to_dicts():
        t = row["threshold"]
        n = int((score >= t).sum())
        tp = int((hit & (score >= t)).sum())
        assert (row["predictions"], row["tp"]) == (n, tp)
        assert row["precision"] == pytest.approx(tp / n) and row["recall"] == pytest.approx(tp / 150)
        assert row["review_frames"] == int((frame_min < t).sum())
    reaching = [t for t in np.unique(score) if hit[score >= t].mean() >= 0.9]
    assert s.threshold == (min(reaching) if reaching else None)
    if reaching:
        assert s.review_share == pytest.approx(int((frame_min < min(reaching)).sum()) / 80)
