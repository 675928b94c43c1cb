"""Runs examples/annotation_round.py and checks its printed diff against one computed from the raw JSON and CSV."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

from conftest import DATA, run_cli

import hyperds

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
THRESHOLD = 0.9  # the example's auto-accept threshold


def _expected_round() -> dict:
    """Simulate the round on plain Python data: auto-accept, then the reviewer's CSV decisions."""
    doc = json.loads((DATA / "megadetector" / "expected_output_DRAFT.json").read_text())
    names = doc["detection_categories"]
    anns = {}  # (file, index) -> [label, status]
    for im in doc["images"]:
        confs = [d["conf"] for d in im["detections"]]
        auto = bool(confs) and min(confs) >= THRESHOLD
        for i, d in enumerate(im["detections"]):
            anns[(im["file"], i)] = [names[d["category"]], "accepted" if auto else "unreviewed"]

    def confirmed() -> dict[str, list[str]]:
        frames = defaultdict(list)
        for (f, _), (label, status) in anns.items():
            frames[f].append((label, status))
        return {
            f: sorted({lab for lab, s in v if s != "rejected"})
            for f, v in frames.items()
            if any(s in ("accepted", "corrected") for _, s in v)
        }

    before = confirmed()
    queued = {f for (f, _), (_, s) in anns.items() if s == "unreviewed"}
    touched = set()
    with open(EXAMPLES / "review_round1.csv", newline="") as fh:
        for row in csv.DictReader(fh):
            frame, index = row["ann_id"].rsplit(":", 1)
            assert frame == row["frame_id"] and row["op"] == "review"
            ann = anns[(frame, int(index))]
            ann[1] = {"accept": "accepted", "reject": "rejected", "correct": "corrected"}[row["status"]]
            if row["label"]:
                ann[0] = row["label"]
            touched.add(frame)
    after = confirmed()
    return {
        "accepted_frames": len(before),
        "queue": len(queued),
        "queue_after": len(queued - touched),
        "added": {f: after[f] for f in after.keys() - before.keys()},
        "removed": {f: before[f] for f in before.keys() - after.keys()},
        "relabeled": {f: (before[f], after[f]) for f in before.keys() & after.keys() if before[f] != after[f]},
        "revised": {f for f in (before.keys() & after.keys()) & touched if before[f] == after[f]},
        "v10": len(before),
        "v11": len(after),
    }


def test_example_round_prints_the_expected_diff(tmp_path):
    proc = subprocess.run(
        [sys.executable, str(EXAMPLES / "annotation_round.py"), "--store", str(tmp_path / "store")],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    exp = _expected_round()
    assert exp["added"] and exp["relabeled"]  # the CSV exercises both kinds of change
    assert f"on {exp['accepted_frames']} frames as auto:threshold=0.9" in out
    assert f"published md_train 1.0: {exp['v10']} frames" in out
    assert f"review queue 'md_sample-review-queue': {exp['queue']} frames" in out
    assert f"review queue after the round: {exp['queue_after']} frames" in out
    assert f"published md_train 1.1: {exp['v11']} frames" in out
    diff = out.split("diff md_train 1.1 against 1.0:\n", 1)[1].split("\n\nevaluation", 1)[0].strip().splitlines()
    assert diff[0] == (
        f"md_train 1.0 -> md_train 1.1: {len(exp['added'])} added, {len(exp['removed'])} removed, "
        f"{len(exp['relabeled'])} relabeled, {len(exp['revised'])} revised"
    )
    expected_rows = (
        [f"  + {f}  {exp['added'][f]}" for f in sorted(exp["added"])]
        + [f"  - {f}  {exp['removed'][f]}" for f in sorted(exp["removed"])]
        + [f"  ~ {f}  {old} -> {new}" for f, (old, new) in sorted(exp["relabeled"].items())]
    )
    assert diff[1:] == expected_rows
    # It ends by scoring the detector on 1.0 and 1.1, each recorded in the audit with what it printed.
    runs = hyperds.connect(tmp_path / "store").runs(view="md_train").to_pylist()
    assert [(r["version"], json.loads(r["info"])["kind"]) for r in runs] == [("1.0", "evaluation"), ("1.1", "evaluation")]
    for r in runs:
        block = out.split(f"evaluation on md_train {r['version']} (recorded as {r['run_id']}):\n", 1)[1]
        assert "frames judged, " in block.splitlines()[0]
        assert f"mAP@0.5 {json.loads(r['info'])['metrics']['map50']:.3f}" in block.splitlines()[1]


def test_review_csv_commits_from_the_shell_as_the_readme_says(md, capsys):
    with open(EXAMPLES / "review_round1.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    code, out, err = run_cli(md.store, capsys, "commit", "md", str(EXAMPLES / "review_round1.csv"), "--author", "ana")
    assert code == 0, err
    assert f"{len({r['frame_id'] for r in rows})} frame(s): 0 added, 0 updated, 0 deleted, {len(rows)} reviewed" in out
