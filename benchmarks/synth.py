"""Deterministic synthetic camera-trap frames at any N, written in batches into a hyperds dataset.

40 sites with 4 cameras each, two years of timestamps (2023-2024, UTC), 0-4 annotations per frame
with a Zipf-skewed species mix, model detections (boxes, confidences) and human labels with
review states. Same (n, seed) → same rows. Reused by every benchmark:

    from synth import make_dataset; ds = make_dataset(store, "frames_1m", 1_000_000)
    python benchmarks/synth.py --n 1000000 [--store benchmarks/.data/store] [--name frames_1000000]
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from tqdm import tqdm

import hyperds
from hyperds.dataset import Dataset
from hyperds.frames.schema import ANNOTATION_TYPE, BBOX_TYPE

log = logging.getLogger("benchmarks.synth")

DATA = Path(__file__).resolve().parent / ".data"
SITES = [f"S{i:02d}" for i in range(40)]
CAMERAS_PER_SITE = 4
# Zipf-skewed species: common grazers first; 'lion' is rank 6 (about 5% of annotations)
SPECIES = [
    "empty", "wildebeest", "zebra", "gazelle_thomsons", "buffalo", "lion", "impala", "hartebeest",
    "elephant", "giraffe", "warthog", "human", "guinea_fowl", "hyena_spotted", "topi", "eland",
    "baboon", "cheetah", "ostrich", "reedbuck", "dik_dik", "jackal", "leopard", "aardvark",
    "serval", "hippo", "porcupine", "bat_eared_fox", "honey_badger", "rhino",
]
MODELS = ["megadetector-v5a", "speciesnet-4.0.1"]
HUMANS = ["alice", "bob", "chen", "dara"]
START = dt.datetime(2023, 1, 1, tzinfo=dt.UTC)
SPAN_S = 2 * 365 * 86_400


def _species_p() -> np.ndarray:
    w = 1.0 / np.arange(1, len(SPECIES) + 1) ** 1.1
    return w / w.sum()


def _choice(rng: np.random.Generator, values: list[str], n: int, p: np.ndarray | None = None) -> pa.Array:
    return pa.array(np.asarray(values, dtype=object)[rng.choice(len(values), n, p=p)], pa.string())


def frames_batch(start: int, n: int, seed: int = 0) -> pa.Table:
    """Rows [start, start+n) of the synthetic dataset (depends only on start, n and seed)."""
    rng = np.random.default_rng([seed, start])
    ids = pc.utf8_lpad(pa.array(np.arange(start, start + n)).cast(pa.string()), 10, "0")
    site_idx = rng.choice(len(SITES), n, p=_site_p())
    cam_idx = rng.integers(0, CAMERAS_PER_SITE, n)
    site = pa.array(np.asarray(SITES, dtype=object)[site_idx], pa.string())
    camera = pc.binary_join_element_wise(site, pa.array((cam_idx + 1).astype(str).astype(object)), "-C")
    uri = pc.binary_join_element_wise("s3://traps/", site, "/", camera, "/", ids, ".jpg", "")
    width = rng.choice([1280, 1920, 2048, 3840], n, p=[0.3, 0.4, 0.2, 0.1]).astype(np.int32)
    seconds = rng.integers(0, SPAN_S, n)
    captured = pa.array(seconds * 1_000_000 + int(START.timestamp()) * 1_000_000, pa.int64()).cast(
        pa.timestamp("us", tz="UTC")
    )
    counts = rng.choice(5, n, p=[0.3, 0.35, 0.2, 0.1, 0.05])
    return pa.table(
        {
            "frame_id": ids,
            "uri": uri,
            "width": width,
            "height": (width * 9 // 16).astype(np.int32),
            "captured_at": captured,
            "site": site,
            "camera": camera,
            "seq_id": pc.binary_join_element_wise(camera, pa.array((seconds // 600).astype(str).astype(object)), ":"),
            "annotations": _annotations(rng, counts, seconds),
        }
    )


def _site_p() -> np.ndarray:
    w = np.linspace(2.0, 0.5, len(SITES))
    return w / w.sum()


def _annotations(rng: np.random.Generator, counts: np.ndarray, seconds: np.ndarray) -> pa.ListArray:
    m = int(counts.sum())
    parent = np.repeat(np.arange(len(counts)), counts)
    model = rng.random(m) < 0.7
    conf = np.where(model, np.round(rng.beta(5, 2, m), 3), np.nan).astype(np.float32)
    status = np.where(
        model,
        rng.choice(["unreviewed", "accepted", "rejected"], m, p=[0.85, 0.08, 0.07]),
        rng.choice(["accepted", "corrected", "unreviewed"], m, p=[0.8, 0.1, 0.1]),
    ).astype(object)
    source = np.where(
        model, np.asarray(MODELS, dtype=object)[rng.integers(0, 2, m)], np.asarray(HUMANS, dtype=object)[rng.integers(0, 4, m)]
    )
    xy = rng.uniform(0, 0.5, (m, 2))
    wh = rng.uniform(0.05, 0.5, (m, 2))
    boxes = pa.FixedSizeListArray.from_arrays(pa.array(np.hstack([xy, wh]).astype(np.float32).ravel()), 4)
    created = (seconds[parent] + rng.integers(60, 86_400 * 30, m) + int(START.timestamp())) * 1_000_000
    reviewed = pa.array(np.asarray(HUMANS, dtype=object)[rng.integers(0, 4, m)], pa.string())
    not_reviewed = pa.array(status == "unreviewed")
    fields = {
        "label": _choice(rng, SPECIES, m, _species_p()),
        "bbox": pc.if_else(pa.array(model), boxes, pa.nulls(m, BBOX_TYPE)),
        "confidence": pa.array(conf, from_pandas=True),
        "count": pa.array(rng.integers(1, 4, m).astype(np.int32)),
        "source_kind": pa.array(np.where(model, "model", "human").astype(object), pa.string()),
        "source": pa.array(source, pa.string()),
        "created_at": pa.array(created, pa.int64()).cast(pa.timestamp("us", tz="UTC")),
        "review_status": pa.array(status, pa.string()),
        "reviewed_by": pc.if_else(not_reviewed, pa.scalar(None, pa.string()), reviewed),
        "level": pa.array(np.full(m, "media", dtype=object), pa.string()),
    }
    struct = pa.StructArray.from_arrays(
        [fields[f.name].cast(f.type) if f.name in fields else pa.nulls(m, f.type) for f in ANNOTATION_TYPE],
        fields=list(ANNOTATION_TYPE),
    )
    offsets = pa.array(np.concatenate([[0], np.cumsum(counts)]).astype(np.int32))
    return pa.ListArray.from_arrays(offsets, struct, type=pa.list_(ANNOTATION_TYPE))


def make_dataset(store: hyperds.Store, name: str, n: int, seed: int = 0, batch_size: int = 500_000) -> Dataset:
    """The dataset `name` holding the n synthetic frames for `seed` (reused if already complete)."""
    if name in store.datasets():
        ds = store.dataset(name)
        if len(ds) == n:
            return ds
        log.warning("dataset %s has %d rows, not %d: rebuilding it", name, len(ds), n)
        store.drop_dataset(name)
    ds = store.create_dataset(name)
    with tqdm(total=n, desc=f"synth {name}", unit="frame") as bar:
        for start in range(0, n, batch_size):
            size = min(batch_size, n - start)
            ds.add_frames(frames_batch(start, size, seed))
            bar.update(size)
    return ds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--store", default=str(DATA / "store"))
    parser.add_argument("--name", help="dataset name (default frames_<n>)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO)
    ds = make_dataset(hyperds.connect(args.store), args.name or f"frames_{args.n}", args.n, args.seed)
    print(f"{ds.name}: {len(ds)} frames, version {ds.version}")


if __name__ == "__main__":
    main()
