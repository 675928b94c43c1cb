"""Exports at scale: a published view of N synthetic frames (2 annotations each) to Camtrap DP and COCO-CT,
against polars alone writing the same rows (read from Lance, flattened, `write_csv` / `write_json`).

Each measurement runs in its own child process, so its peak RSS (VmHWM) is its own; all of them run in
this one invocation, so the ratio compares like with like on a shared machine. Target: each export within
60 s and within 3x of polars alone.

    python benchmarks/export.py --n 1000000 [--store benchmarks/.data/export] [--batch-size 65536]
"""

from __future__ import annotations

import argparse
import json
import logging
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
from tqdm import tqdm

import hyperds

sys.path.insert(0, str(Path(__file__).resolve().parent))
from synth import DATA, SITES, _annotations, frames_batch  # noqa: E402

def make_store(store: hyperds.Store, name: str, n: int, batch_size: int = 250_000) -> None:
    """Dataset `name`: synth frames with exactly 2 annotations each, plus deployment and latitude/longitude
    (Camtrap DP needs them), and a published view of the same name over all of it (reused when complete)."""
    if name in store.datasets() and len(store.dataset(name)) == n:
        if name not in set(store.views()["name"].to_pylist()):
            store.create_view(name, "TRUE", datasets=[name], empty="keep").publish("1.0")
        return
    if name in store.datasets():
        store.drop_dataset(name)
    ds = store.create_dataset(name)
    lat = {s: 51.0 + i / 100 for i, s in enumerate(SITES)}
    with tqdm(total=n, desc=f"synth {name}", unit="frame") as bar:
        for start in range(0, n, batch_size):
            size = min(batch_size, n - start)
            batch = frames_batch(start, size)
            rng = np.random.default_rng([1, start])
            seconds = pc.divide(batch.column("captured_at").cast(pa.int64()), 1_000_000).to_numpy()
            anns = _annotations(rng, np.full(size, 2), seconds)
            site = batch.column("site").to_pylist()
            batch = batch.set_column(batch.schema.get_field_index("annotations"), "annotations", anns)
            batch = batch.append_column("deployment", batch.column("camera"))
            batch = batch.append_column("latitude", pa.array([lat[s] for s in site], pa.float64()))
            batch = batch.append_column("longitude", pa.array([4.0 + lat[s] / 10 for s in site], pa.float64()))
            ds.add_frames(batch)
            bar.update(size)
    store.create_view(name, "TRUE", datasets=[name], empty="keep").publish("1.0")


def run_hyperds(store: hyperds.Store, fmt: str, out: Path, name: str, batch_size: int) -> dict:
    view = store.view(name, "1.0")
    result = view.export(fmt, out, batch_size=batch_size, run_id=f"bench-{fmt}-{time.time_ns()}")
    return {"frames": result.frames, "annotations": result.annotations}


def run_polars(store: hyperds.Store, fmt: str, out: Path, name: str) -> dict:
    """The same rows with polars alone: read, flatten the annotations, write the format's tables."""
    out.mkdir()
    table = store.dataset(name).to_arrow()
    frames = pl.from_arrow(table.drop_columns(["annotations", "labels"]))
    anns = (pl.from_arrow(table.select(["frame_id", "annotations"])).explode("annotations").unnest("annotations")
            .filter(pl.col("review_status") != "rejected"))  # as the export leaves them out
    if fmt == "camtrap-dp":
        frames.select("frame_id", "deployment", "captured_at", "uri").write_csv(out / "media.csv")
        anns.with_columns(pl.col("bbox").arr.to_struct(fields=["x", "y", "w", "h"])).unnest("bbox").drop(
            "attributes").write_csv(out / "observations.csv")
    else:
        with open(out / "coco.json", "w") as fh:
            fh.write('{"images":' + frames.select("frame_id", "uri", "width", "height", "site", "captured_at",
                                                 "seq_id").write_json())
            fh.write(',"annotations":' + anns.select("ann_id", "frame_id", "label", "bbox").write_json() + "}")
    return {"frames": frames.height, "annotations": anns.height}


def _child(args: argparse.Namespace) -> None:
    store = hyperds.connect(args.store)
    out = Path(args.out)
    t0 = time.perf_counter()
    counts = (run_hyperds(store, args.format, out, args.name, args.batch_size) if args.engine == "hyperds"
              else run_polars(store, args.format, out, args.name))
    seconds = time.perf_counter() - t0
    size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    print(json.dumps({"seconds": seconds, "peak_gib": _peak_gib(), "bytes": size, **counts}))


def _peak_gib() -> float:
    """This process's own peak RSS. Not ru_maxrss: Linux carries it over fork+exec, so every child would
    report the parent's peak (the store builder's) whenever that was larger."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024 ** 2  # kB -> GiB
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 ** 2  # no procfs: the best there is


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--store", default=str(DATA / "export"))
    parser.add_argument("--batch-size", type=int, default=65_536)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--engine", help=argparse.SUPPRESS)
    parser.add_argument("--format", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    parser.add_argument("--name", help=argparse.SUPPRESS)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    name = f"frames2_{args.n}"
    if args.child:
        _child(args)
        return
    make_store(hyperds.connect(args.store), name, args.n)
    rows = []
    with tempfile.TemporaryDirectory(dir=Path(args.store).parent) as tmp:
        for fmt in ("camtrap-dp", "coco-ct"):
            got = {}
            for engine in ("hyperds", "polars"):
                out = Path(tmp) / f"{fmt}-{engine}"
                cmd = [sys.executable, __file__, "--child", "--engine", engine, "--format", fmt, "--out", str(out),
                       "--store", args.store, "--name", name, "--batch-size", str(args.batch_size)]
                proc = subprocess.run(cmd, capture_output=True, text=True, check=True)
                got[engine] = json.loads(proc.stdout.strip().splitlines()[-1])
                shutil.rmtree(out)
            h, p = got["hyperds"], got["polars"]
            rows.append((fmt, h, p))
    print(f"\nexport of a published view: {args.n:,} frames, 2 annotations each (batch size {args.batch_size:,})")
    print(f"{'format':<11} {'engine':<8} {'frames':>10} {'annotations':>12} {'seconds':>8} {'MB written':>11} "
          f"{'peak RSS GiB':>13} {'ratio':>6}")
    for fmt, h, p in rows:
        for engine, r in (("hyperds", h), ("polars", p)):
            ratio = f"{h['seconds'] / p['seconds']:.2f}" if engine == "hyperds" else ""
            print(f"{fmt:<11} {engine:<8} {r['frames']:>10,} {r['annotations']:>12,} {r['seconds']:>8.1f} "
                  f"{r['bytes'] / 1e6:>11.0f} {r['peak_gib']:>13.2f} {ratio:>6}")


if __name__ == "__main__":
    main()
