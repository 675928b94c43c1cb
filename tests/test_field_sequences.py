"""Sequence roll-ups and smoothing proposals: against a plain-Python reference on generated bursts, never over a
person's decision, written only as reviewable suggestions, and on the real Camtrap DP sample against the
event-level observations the package carries."""

from __future__ import annotations

import polars as pl
import pytest
from conftest import DATA, run_cli
from hypothesis import given, settings
from hypothesis import strategies as st

from hyperds.errors import WorkflowError
from hyperds.frames.normalize import normalize_frames
from hyperds.workflows.sequences import SOURCE, propose, sequence_labels

EMPTY = ("blank", "empty")
SPECIES = ["zebra", "gnu", "lion", "blank"]


# -- plain-Python reference (the module docstring's definitions, one frame at a time) ----------------------

def _person(a: dict) -> bool:
    by = a.get("reviewed_by") or ""
    return a["source_kind"] == "human" or (
        a.get("review_status", "unreviewed") != "unreviewed" and bool(by) and not by.startswith(("auto:", "rule:")))


def _live(a: dict) -> bool:
    return a.get("review_status", "unreviewed") != "rejected" and (a.get("level") or "media") == "media"


def _reference_proposals(rows: list[dict], min_conf: float, min_share: float) -> dict[str, str]:
    """frame_id -> proposed label."""
    frames = {}
    for r in rows:
        if r.get("seq_id") is None:
            continue
        anns = [a for a in r["annotations"] if (a.get("level") or "media") == "media"]
        decided = any(_person(a) for a in anns)
        suggested = any(a.get("source") == SOURCE and a.get("review_status", "unreviewed") == "unreviewed" for a in anns)
        cands = [a for a in anns if _live(a) and a["label"] not in EMPTY and not (
            a.get("source") == SOURCE and a.get("review_status", "unreviewed") == "unreviewed")]
        if decided:
            cands = [(0, 1.0, a["label"]) for a in cands if _person(a)]
        else:
            cands = [(1, float(a["confidence"] or 0.0), a["label"]) for a in cands]
        best = min(cands, key=lambda c: (c[0], -c[1], c[2])) if cands else None
        frames[r["frame_id"]] = (r["seq_id"], best, decided, suggested)
    seqs: dict[str, list] = {}
    for fid, (seq, best, decided, suggested) in frames.items():
        seqs.setdefault(seq, []).append((fid, best, decided, suggested))
    out = {}
    for seq, members in seqs.items():
        votes: dict[str, list[float]] = {}
        for _, best, _, _ in members:
            if best is not None:
                votes.setdefault(best[2], []).append(best[1])
        if not votes:
            continue
        total = sum(len(v) for v in votes.values())
        label = min(votes, key=lambda k: (-len(votes[k]), -sum(votes[k]), k))
        if max(votes[label]) < min_conf or not len(votes[label]) / total > min_share:
            continue
        for fid, best, decided, suggested in members:
            if not decided and not suggested and (best is None or best[2] != label):
                out[fid] = label
    return out


def _reference_labels(rows: list[dict]) -> dict[tuple[str, str], tuple[int, int]]:
    """(seq_id, label) -> (frames, most individuals in one frame)."""
    per: dict[tuple[str, str], list[int]] = {}
    for r in rows:
        if r.get("seq_id") is None:
            continue
        counts: dict[tuple[str, str], int] = {}  # (label, source) -> individuals that source counted
        for a in r["annotations"]:
            if _live(a) and a["label"] is not None:
                key = (a["label"], a["source"])
                counts[key] = counts.get(key, 0) + (1 if a.get("count") is None else a["count"])
        best: dict[str, int] = {}
        for (label, _), n in counts.items():
            best[label] = max(best.get(label, 0), n)
        for label, n in best.items():
            per.setdefault((r["seq_id"], label), []).append(n)
    out = {}
    for (seq, label), ns in per.items():
        others = any(s == seq and lab not in EMPTY for s, lab in per)
        if label in EMPTY and others:
            continue
        out[(seq, label)] = (len(ns), max(ns))
    return out


@st.composite
def _bursts(draw):
    rows = []
    for s in range(draw(st.integers(1, 4))):
        for f in range(draw(st.integers(1, 6))):
            anns = []
            for k in range(draw(st.integers(0, 3))):
                kind = draw(st.sampled_from(["model", "model", "model", "human"]))
                status = draw(st.sampled_from(["unreviewed", "unreviewed", "accepted", "rejected"]))
                reviewer = None if status == "unreviewed" else draw(st.sampled_from(["ana", "auto:threshold=0.9"]))
                anns.append({
                    "ann_id": f"a{k}", "label": draw(st.sampled_from(SPECIES)), "source_kind": kind,
                    "source": draw(st.sampled_from(["md@5", "sn@4"])) if kind == "model" else "ana",
                    "confidence": draw(st.sampled_from([0.3, 0.6, 0.85, 0.95])) if kind == "model" else None,
                    "count": draw(st.sampled_from([None, 1, 2, 3])), "review_status": status, "reviewed_by": reviewer,
                })
            rows.append({"frame_id": f"s{s}f{f}", "uri": f"x/{s}/{f}.jpg",
                         "seq_id": None if draw(st.integers(0, 9)) == 0 else f"s{s}", "annotations": anns})
    return rows


@settings(max_examples=60, deadline=None)
@given(_bursts(), st.sampled_from([0.5, 0.8, 0.9]), st.sampled_from([0.0, 0.5, 0.6]))
def test_proposals_and_rollups_match_plain_python(rows, min_conf, min_share):
    table = normalize_frames(rows)
    got = propose(table, min_conf, min_share)
    assert dict(zip(got["frame_id"].to_list(), got["proposed"].to_list(), strict=True)) == _reference_proposals(
        table.to_pylist(), min_conf, min_share)
    labels = sequence_labels(table)
    assert {(r["seq_id"], r["label"]): (r["frames"], r["count"]) for r in labels.iter_rows(named=True)} == \
        _reference_labels(table.to_pylist())


# -- in a store: proposals are a draft; committing writes suggestions; people decide -----------------------

def _store_bursts():
    """Three bursts of five: s0 a confident zebra burst with one gnu frame, one empty frame and one frame a person
    labelled gnu; s1 a burst with no confident majority; s2 all zebra."""
    model = {"source_kind": "model", "source": "md@5"}
    rows = []
    for f in range(5):
        anns = {0: [{"label": "gnu", "confidence": 0.6, **model}], 1: [], 2: [{"label": "gnu", "source_kind": "human"}]
                }.get(f, [{"label": "zebra", "confidence": 0.95, **model}])
        rows.append({"frame_id": f"s0f{f}", "uri": f"s0/{f}.jpg", "seq_id": "s0", "annotations": anns})
        rows.append({"frame_id": f"s1f{f}", "uri": f"s1/{f}.jpg", "seq_id": "s1",
                     "annotations": [{"label": ["zebra", "gnu"][f % 2], "confidence": 0.5, **model}]})
        rows.append({"frame_id": f"s2f{f}", "uri": f"s2/{f}.jpg", "seq_id": "s2",
                     "annotations": [{"label": "zebra", "confidence": 0.9, **model}]})
    return rows


def test_proposals_are_a_draft_and_never_touch_a_person_decision(store):
    ds = store.create_dataset("bursts")
    ds.add_frames(_store_bursts())
    version = ds.version
    proposals = ds.smooth_sequences(min_confidence=0.8)
    assert ds.version == version  # nothing written
    assert dict(zip(proposals.table["frame_id"], proposals.table["reason"], strict=True)) == {
        "s0f0": "disagrees", "s0f1": "empty"}
    assert set(proposals.table["proposed"]) == {"zebra"}
    before = ds.to_polars().sort("frame_id")
    done = proposals.commit("ana")
    assert done.added == 2 and ds.version >= done.version > version
    after = ds.to_polars().sort("frame_id")
    for fid in after["frame_id"]:
        old = before.filter(pl.col("frame_id") == fid)["annotations"][0].to_list()
        new = after.filter(pl.col("frame_id") == fid)["annotations"][0].to_list()
        if fid in ("s0f0", "s0f1"):
            assert new[: len(old)] == old  # existing annotations untouched, one suggestion appended
            (sug,) = new[len(old):]
            assert (sug["label"], sug["source_kind"], sug["source"], sug["review_status"]) == (
                "zebra", "model", SOURCE, "unreviewed")
            assert "sequence s0" in sug["note"]
        else:
            assert new == old
    # A rerun proposes nothing new; accepting a suggestion is an ordinary review commit.
    assert len(ds.smooth_sequences(min_confidence=0.8)) == 0
    sug = [a for a in ds.get("s0f1")["annotations"] if a["source"] == SOURCE][0]
    ds.commit([{"op": "review", "frame_id": "s0f1", "ann_id": sug["ann_id"], "status": "accept"}], author="bo")
    assert ds.get("s0f1")["labels"] == ["zebra"]
    with pytest.raises(WorkflowError):
        ds.smooth_sequences(min_confidence=2)


def test_cli_smooth_prints_then_commits(store, capsys):
    ds = store.create_dataset("bursts")
    ds.add_frames(_store_bursts())
    version = ds.version
    code, out, _ = run_cli(store, capsys, "sequences", "smooth", "bursts", "--format", "csv")
    assert code == 0 and "s0f1" in out and ds.version == version
    code, _, err = run_cli(store, capsys, "sequences", "smooth", "bursts", "--commit")
    assert code == 2 and "--author" in err
    code, out, _ = run_cli(store, capsys, "sequences", "smooth", "bursts", "--commit", "--author", "ana")
    assert code == 0 and "2 suggestion" in out and ds.version > version
    code, out, _ = run_cli(store, capsys, "sequences", "labels", "bursts", "--format", "csv")
    assert code == 0 and out.splitlines()[0] == "seq_id,label,frames,seq_frames,count,confidence,by_person"
    assert len(out.splitlines()) == 1 + ds.sequence_labels().height


# -- the real Camtrap DP sample: media-level roll-up vs the package's event-level observations -------------

def test_camtrap_rollup_equals_event_observations(store):
    from hyperds.frames.importers import import_camtrap_dp

    ds = store.create_dataset("mica")
    import_camtrap_dp(ds, DATA / "camtrap-dp" / "datapackage.json")
    obs = pl.read_csv(DATA / "camtrap-dp" / "observations.csv", infer_schema_length=0)
    events = obs.filter(pl.col("observationLevel") == "event").with_columns(
        label=pl.coalesce("scientificName", "observationType"), count=pl.col("count").cast(pl.Int64))
    # An event its observer left unclassified says nothing to compare with.
    events = events.filter(pl.col("observationType") != "unclassified")
    expected = events.group_by("eventID").agg(pl.col("label").unique().sort())
    rolled = ds.sequence_labels().group_by("seq_id").agg(pl.col("label").unique().sort())
    joined = expected.join(rolled, left_on="eventID", right_on="seq_id", how="left")
    assert joined.height == events["eventID"].n_unique() > 20
    assert joined["label"].to_list() == joined["label_right"].to_list()
    # Counts (an event may hold several observations of one species, e.g. by sex): the most individuals seen in
    # one frame never exceeds what the event's observer counted, and nearly always equals it.
    counted = events.filter(pl.col("count").is_not_null()).group_by("eventID", "label").agg(pl.col("count").sum())
    counts = ds.sequence_labels().join(counted, left_on=["seq_id", "label"], right_on=["eventID", "label"])
    assert counts.height == counted.height > 20
    assert (counts["count"] <= counts["count_right"]).all()
    assert (counts["count"] == counts["count_right"]).mean() > 0.9
