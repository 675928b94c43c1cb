"""The field workflows on the real Camtrap DP sample: repeat detections, burst labels, the public policy.

The sample package (examples/data/camtrap-dp) has cameras, bursts (events) and deployments with coordinates, but
people's labels only and no boxes. So a detector run is simulated on its real frames: one box per labelled animal
(at a spot that moves from frame to frame) and, on camera 320, a branch the detector fires on in 40 frames at the
same place. Then: find the repeat groups → reject the branch as one commit by the rule → roll labels up to bursts
and propose smoothing → set a policy (a sensitive species, people left out) → export public and full packages.
Run: python examples/repeat_detections.py [--store DIR]   (default: a fresh temporary store)
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

import hyperds
from hyperds.frames.importers import import_camtrap_dp

HERE = Path(__file__).resolve().parent
PACKAGE = HERE / "data" / "camtrap-dp" / "datapackage.json"
DATASET = "mica"
BRANCH_CAMERA = "320"
SENSITIVE = "Mustela putorius"  # European polecat


def simulated_detector_run(ds: hyperds.Dataset) -> pl.DataFrame:
    """Predictions (frame_id, label, bbox, confidence) of a simulated detector on the sample's real frames."""
    frames = ds.to_polars(columns=["frame_id", "camera", "labels"]).sort("frame_id")
    rng = np.random.default_rng(7)
    # The detector-classifier agrees with the people's species, at a spot that moves from frame to frame.
    animals = frames.with_columns(species=pl.col("labels").list.set_difference(["blank"]).list.first()).filter(
        pl.col("species").is_not_null())
    xy = rng.uniform(0.05, 0.6, (animals.height, 2))
    rows = [{"frame_id": f, "label": s, "bbox": [x, y, 0.25, 0.2], "confidence": 0.9}
            for f, s, (x, y) in zip(animals["frame_id"], animals["species"], xy.tolist(), strict=True)]
    branch = frames.filter(pl.col("camera") == BRANCH_CAMERA).head(40)
    jitter = rng.uniform(-0.002, 0.002, (branch.height, 2))
    rows += [{"frame_id": f, "label": "animal", "bbox": [0.7 + dx, 0.1 + dy, 0.1, 0.15], "confidence": 0.35}
             for f, (dx, dy) in zip(branch["frame_id"], jitter.tolist(), strict=True)]
    return pl.DataFrame(rows)


def run(store: hyperds.Store, out: Path, say: Any = print) -> dict[str, Any]:
    """Run the workflows in `store`, exporting under `out`; returns what the checks need."""
    out.mkdir(parents=True, exist_ok=True)
    ds = store.create_dataset(DATASET)
    import_camtrap_dp(ds, PACKAGE)
    ds.add_predictions(simulated_detector_run(ds), model="sim-detector@1")

    found = ds.find_repeats(per="camera", iou=0.85, min_frames=10)
    say(f"{len(found)} repeat group(s); affected frames in draft view {found.view.name!r}")
    say(found.groups.select("group", "frames", "detections", "bbox", "confidence"))
    rejected = ds.reject_repeats(found, author="alice", ids=[found.groups["group"][0]])
    say(f"rejected {rejected.detections} detections as commit {rejected.commit.commit_id[:12]} by {rejected.reviewer}")
    frame = found.detections["frame_id"][0]
    say(ds.blame(frame).select("ann_id", "label", "review_status", "reviewed_by", "note"))

    bursts = ds.sequence_labels()
    say(f"{bursts['seq_id'].n_unique()} bursts rolled up; the largest:")
    say(bursts.sort("frames", descending=True).head(5))
    proposals = ds.smooth_sequences(min_confidence=0.8)
    say(f"{len(proposals)} smoothing proposal(s) (nothing written until committed)")
    if len(proposals):
        say(proposals.table.head(5))

    policy = store.set_policy("alice", "polecats are protected; no people in public data",
                              sensitive_labels=[SENSITIVE], round_km=10, people="omit",
                              people_labels=["Homo sapiens", "human", "vehicle"])
    say(f"policy version {policy.version}: sensitive {list(policy.sensitive_labels)}, people {policy.people}")
    full = ds.export("camtrap-dp", str(out / "full"), policy="full")
    public = ds.export("camtrap-dp", str(out / "public"), policy="public")
    say(full.summary())
    say(public.summary())
    exact = pl.read_csv(out / "full" / "deployments.csv", infer_schema_length=0)
    coarse = pl.read_csv(out / "public" / "deployments.csv", infer_schema_length=0)
    moved = exact.join(coarse, on="deploymentID").filter(
        (pl.col("latitude") != pl.col("latitude_right")) | (pl.col("longitude") != pl.col("longitude_right")))
    say(moved.select("deploymentID", "latitude", "longitude", "latitude_right", "longitude_right"))
    return {"found": found, "rejected": rejected, "proposals": proposals, "full": full, "public": public,
            "moved": moved["deploymentID"].to_list()}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--store", help="store folder (default: a fresh temporary one)")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        store = hyperds.connect(args.store or Path(tmp) / "store")
        run(store, Path(tmp) / "exports")


if __name__ == "__main__":
    main()
