"""One annotation round on the real MegaDetector sample output, start to finish.

import → auto-accept confident frames → publish the training view 1.0 → review queue → a
reviewer's decisions (examples/review_round1.csv, in `hyperds commit` format) as one commit →
publish 1.1 → diff 1.1 vs 1.0 → evaluate the detector on 1.0 and 1.1.
A rejected annotation is not a label of its frame: once the reviewer rejects a frame's detections, they
leave its labels, its classes in the view and the loader's targets (the diff lists such frames as removed).
Run: python examples/annotation_round.py [--store DIR]   (default: a fresh temporary store)
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path
from typing import Any

import polars as pl

import hyperds
from hyperds.frames.importers import import_megadetector

HERE = Path(__file__).resolve().parent
MD_JSON = HERE / "data" / "megadetector" / "expected_output_DRAFT.json"
REVIEWS = HERE / "review_round1.csv"
DATASET = "md_sample"
TRAIN_VIEW = "md_train"
# Frames with at least one detection a person or the rule confirmed.
TRAIN_QUERY = "any_annotation(review_status IN ('accepted', 'corrected'))"
# The sample's best detection scores 0.956, so the usual 0.98 would send every frame to people.
THRESHOLD = 0.9
REVIEWER = "alice"


def run(store: hyperds.Store, say: Any = print) -> Any:
    """Run the round in `store`; returns the diff of the training view 1.1 against 1.0."""
    ds = store.create_dataset(DATASET)
    report = import_megadetector(ds, MD_JSON)
    say(f"imported {report.frames_inserted} frames with {report.annotations_inserted} model detections")

    accepted = ds.auto_accept(threshold=THRESHOLD)
    say(f"auto-accepted {accepted.annotations} detections on {accepted.frames} frames as {accepted.reviewer}")
    train = store.create_view(TRAIN_VIEW, TRAIN_QUERY, datasets=[ds.name], message="confirmed detections")
    v10 = train.publish(version="1.0", message=f"round 0: auto-accepted at confidence >= {THRESHOLD}")
    say(f"published {TRAIN_VIEW} 1.0: {len(v10)} frames")

    queue = ds.review_queue(threshold=THRESHOLD)
    say(f"review queue {queue.name!r}: {len(queue)} frames")
    changes = pl.read_csv(REVIEWS, infer_schema=False)  # the `hyperds commit` CSV format
    result = ds.commit(changes, author=REVIEWER, message="review round 1")
    decided = changes.group_by("status").len().sort("status").iter_rows()
    say(f"{REVIEWER} reviewed {result.frames} frames: " + ", ".join(f"{n} {s}" for s, n in decided))
    say(f"review queue after the round: {len(ds.review_queue(threshold=THRESHOLD))} frames")

    draft = store.create_view(TRAIN_VIEW, TRAIN_QUERY, datasets=[ds.name], message="confirmed detections")
    v11 = draft.publish(version="1.1", message="round 1: reviewer decisions from review_round1.csv")
    say(f"published {TRAIN_VIEW} 1.1: {len(v11)} frames")
    return v11.diff("1.0")


def format_diff(diff: Any) -> str:
    """The diff as plain lines: the summary, then each added, removed and relabeled frame."""
    lines = [str(diff)]
    for kind, mark in (("added", "+"), ("removed", "-")):
        rows = getattr(diff, kind).sort("frame_id").iter_rows(named=True)
        lines += [f"  {mark} {r['frame_id']}  {r['classes']}" for r in rows]
    for r in diff.relabeled.sort("frame_id").iter_rows(named=True):
        lines.append(f"  ~ {r['frame_id']}  {r['classes_old']} -> {r['classes_new']}")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--store", help="store folder (default: a new temporary folder)")
    args = p.parse_args()
    uri = args.store or tempfile.mkdtemp(prefix="hyperds-round-")
    store = hyperds.connect(uri)
    diff = run(store)
    print(f"\ndiff {TRAIN_VIEW} 1.1 against 1.0:")
    print(format_diff(diff))
    evaluate_round(store)


def evaluate_round(store: hyperds.Store, say: Any = print) -> None:
    """Score the detector on the training view before (1.0) and after (1.1) the round; both go to the audit.

    Before the round the only truth is what the confidence rule accepted, so the model scores perfectly
    against itself; the reviewer's rejections and corrections in 1.1 show how good it really is.
    MegaDetector finds animals, people name species: the boxes are scored class-agnostic.
    """
    model = json.loads(MD_JSON.read_text())["info"]["detector"]
    for version in ("1.0", "1.1"):
        report = store.view(TRAIN_VIEW, version).evaluate(model, threshold=0.2, class_agnostic=True)
        say(f"\nevaluation on {TRAIN_VIEW} {version} (recorded as {report.meta['run_id']}):\n{report}")


if __name__ == "__main__":
    main()
