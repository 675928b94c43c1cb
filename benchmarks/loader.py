"""Loader speed: images/s from Pillow alone up to FrameDataset + DataLoader over moto S3, and manifest setup cost.

Image sets: the MegaDetector sample JPEGs in examples/data (large) and the Snapshot Serengeti
thumbnails, each repeated to fill an epoch; every sample comes out 224x224. Rows:
(a) Pillow decode in one process, full and with draft(); (b) FrameDataset + DataLoader, local files;
(c) the same over moto S3; (d) a naive Dataset opening an s3 filesystem and decoding one object per
__getitem__; (e) moto's GET ceiling (threads, no decode). moto runs in its own process.
Then: FrameDataset construction on a synthetic N-frame manifest (time, memory).
Usage: python benchmarks/loader.py [--workers 2] [--epochs 2] [--manifest-rows 10000000]
"""

from __future__ import annotations

import argparse
import io
import multiprocessing
import os
import resource
import socket
import subprocess
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import boto3
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import s3fs
import torch
from PIL import Image, ImageOps
from torch.utils.data import DataLoader, Dataset

from hyperds.frames.uris import resolve_uris
from hyperds.loaders import transforms as T
from hyperds.loaders.torch import FrameDataset

DATA = Path(__file__).resolve().parents[1] / "examples" / "data"
SETS = {
    "large": sorted((DATA / "megadetector").glob("*.[jJ][pP][gG]")),
    "thumbs": sorted((DATA / "serengeti-thumbs").glob("*.JPG")),
}
SIZE = 224
TRANSFORM = T.Compose([T.Resize(SIZE), T.CenterCrop(SIZE), T.ToTensor()])
TRANSFORM_U8 = T.Compose([T.Resize(SIZE), T.CenterCrop(SIZE), T.ToTensor(torch.uint8)])


# -- (a) Pillow alone --------------------------------------------------------------------------
def _pillow(path: Path, draft: bool) -> np.ndarray:
    im = Image.open(path)
    if draft:
        w, h = im.size
        im.draft("RGB", (w * SIZE // min(w, h), h * SIZE // min(w, h)))
    im = im.convert("RGB")
    ImageOps.exif_transpose(im, in_place=True)  # no copy when there is nothing to turn
    w, h = im.size
    im = im.resize((round(w * SIZE / min(w, h)), round(h * SIZE / min(w, h))), Image.Resampling.BILINEAR)
    left, top = (im.width - SIZE) // 2, (im.height - SIZE) // 2
    return np.asarray(im.crop((left, top, left + SIZE, top + SIZE)))


def pillow_rate(paths: list[Path], draft: bool) -> tuple[float, float]:
    """(images/s, CPU ms per image) decoding `paths` one after another in this process."""
    for p in paths[:2]:
        _pillow(p, draft)
    start, cpu = time.perf_counter(), time.process_time()
    for p in paths:
        _pillow(p, draft)
    return len(paths) / (time.perf_counter() - start), (time.process_time() - cpu) * 1e3 / len(paths)


# -- (b), (c), (d) through DataLoader ----------------------------------------------------------
def _manifest(uris: list[str]) -> pa.Table:
    """A plain Arrow table of frames (what a view's to_arrow() returns); FrameDataset takes it as it is."""
    n = len(uris)
    return pa.table(
        {
            "frame_id": [f"f{i}" for i in range(n)],
            "uri": uris,
            "labels": pa.array([["animal"]] * n, pa.list_(pa.string())),
        }
    )


class NaiveS3Dataset(Dataset):
    """What a first attempt looks like: a new s3 filesystem and a full decode per item."""

    def __init__(self, keys: list[str], endpoint: str):
        self.keys, self.endpoint = keys, endpoint

    def __len__(self) -> int:
        return len(self.keys)

    def __getitem__(self, i: int):
        fs = s3fs.S3FileSystem(endpoint_url=self.endpoint, skip_instance_cache=True)
        im = Image.open(io.BytesIO(fs.cat_file(self.keys[i])))
        im = ImageOps.exif_transpose(im.convert("RGB"))
        return TRANSFORM(im), 0


class ReadyTensors(Dataset):
    """Fresh 224x224 tensors with no image behind them: what moving samples out of workers costs alone."""

    def __init__(self, n: int, dtype: torch.dtype):
        self.n, self.dtype = n, dtype

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int):
        return torch.full((3, SIZE, SIZE), i % 7, dtype=self.dtype), 0


def _process_tree_cpu(exclude: int | None) -> float:
    """CPU seconds of this process plus its live children (DataLoader workers), `exclude` (moto) left out."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    total = own.ru_utime + own.ru_stime
    tick = os.sysconf("SC_CLK_TCK")
    for task in Path("/proc/self/task").iterdir():
        try:
            children = (task / "children").read_text().split()
        except OSError:  # a thread that ended since the listing
            continue
        for pid in children:
            if int(pid) == exclude:
                continue
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            total += (int(fields[11]) + int(fields[12])) / tick  # utime, stime
    return total


def loader_rate(dataset: Dataset, workers: int, epochs: int, moto: int, warm_up: bool = True) -> tuple[float, float]:
    """(images/s, CPU ms per image of this process and its workers) through a DataLoader.

    CPU per image hardly depends on what else the machine runs; images/s does.
    """
    loader = DataLoader(dataset, batch_size=16, num_workers=workers, persistent_workers=workers > 0)
    if warm_up:  # one epoch: workers started, file systems opened, page cache warm
        for _ in loader:
            pass
    start, cpu, n = time.perf_counter(), _process_tree_cpu(moto), 0
    for _ in range(epochs):
        for images, _ in loader:
            assert images.shape[1:] == (3, SIZE, SIZE)
            n += len(images)
    return n / (time.perf_counter() - start), (_process_tree_cpu(moto) - cpu) * 1e3 / n


# -- moto --------------------------------------------------------------------------------------
def _moto() -> tuple[subprocess.Popen, str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    for _ in range(300):
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return proc, f"http://127.0.0.1:{port}"
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("moto server did not start")


def _pillow_worker(paths: list[Path], out) -> None:
    out.put(pillow_rate(paths, True)[0])


def pillow_rate_parallel(paths: list[Path], processes: int) -> float:
    """draft() decode rate per process while `processes` run at once: what each core gives right now."""
    ctx = multiprocessing.get_context("fork")
    out = ctx.Queue()
    procs = [ctx.Process(target=_pillow_worker, args=(paths, out)) for _ in range(processes)]
    for p in procs:
        p.start()
    rates = [out.get() for _ in procs]
    for p in procs:
        p.join()
    return sum(rates) / len(rates)


def get_ceiling(client, bucket: str, keys: list[str], threads: int = 16) -> float:
    def get(key: str) -> int:
        return len(client.get_object(Bucket=bucket, Key=key)["Body"].read())

    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(get, keys[:threads]))
        start = time.perf_counter()
        list(pool.map(get, keys))
    return len(keys) / (time.perf_counter() - start)


# -- manifest setup ----------------------------------------------------------------------------
def _status_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def synthetic_manifest(n: int) -> pa.Table:
    """n frames as a view returns them: relative uris, bursts of 3, one of 20 species (two on every 5th frame)."""
    i = np.arange(n)
    num = pc.cast(pa.array(i), pa.string())
    two = i % 5 == 0
    offsets = np.zeros(n + 1, np.int32)
    np.cumsum(1 + two, out=offsets[1:])
    flat = np.empty(offsets[-1], np.int64)
    flat[offsets[:-1]] = i % 20
    flat[offsets[:-1][two] + 1] = (i[two] % 20 + 1 + (i[two] // 5) % 19) % 20
    species = pa.array([f"species{k:02d}" for k in range(20)])
    site = pc.cast(pa.array(i // 100_000), pa.string())
    return pa.table(
        {
            "frame_id": pc.binary_join_element_wise("frame", num, ""),
            "uri": pc.binary_join_element_wise("site", site, "/IMG_", num, ".JPG", ""),
            "width": pa.array(np.full(n, 2048, np.int32)),
            "height": pa.array(np.full(n, 1536, np.int32)),
            "seq_id": pc.binary_join_element_wise("seq", pc.cast(pa.array(i // 3), pa.string()), ""),
            "frame_num": pa.array((i % 3).astype(np.int32)),
            "labels": pa.ListArray.from_arrays(pa.array(offsets), species.take(pa.array(flat))),
        }
    )


def manifest_rows(n: int) -> list[str]:
    table = synthetic_manifest(n)
    source = table
    rows = []
    rss0 = _status_kb("VmRSS")
    try:
        Path("/proc/self/clear_refs").write_text("5")  # reset the peak-RSS mark
        peak_known = True
    except OSError:
        peak_known = False
    start, cpu = time.perf_counter(), time.process_time()
    frames = FrameDataset(source, transform=TRANSFORM, multilabel=True, root="s3://bucket/serengeti")
    took, cpu = time.perf_counter() - start, time.process_time() - cpu
    grown = (_status_kb("VmHWM") - rss0) / 1e6 if peak_known else (_status_kb("VmRSS") - rss0) / 1e6
    rows.append(
        f"FrameDataset(): {n:,} frames, classification multilabel | {took:6.2f} s ({cpu:.2f} s CPU) | peak +{grown:.2f} GB "
        f"(manifest itself {table.nbytes / 1e9:.2f} GB) | {len(frames):,} samples"
    )
    start = time.perf_counter()
    frames = FrameDataset(source, transform=TRANSFORM, unit="sequence", root="s3://bucket/serengeti")
    rows.append(f"FrameDataset(unit='sequence'): {n:,} frames | {time.perf_counter() - start:6.2f} s | {len(frames):,} bursts")
    start = time.perf_counter()
    resolve_uris(table.column("uri"), "s3://bucket/serengeti")
    rows.append(f"resolve_uris over all {n:,} uris at once (the loader resolves per batch instead) | {time.perf_counter() - start:6.2f} s")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--repeat-large", type=int, default=20, help="copies of the large set per epoch")
    parser.add_argument("--repeat-thumbs", type=int, default=25, help="copies of the thumbnail set per epoch")
    parser.add_argument("--manifest-rows", type=int, default=1_000_000, help="0 skips the manifest rows")
    parser.add_argument("--skip-images", action="store_true", help="only the manifest rows")
    args = parser.parse_args()
    torch.set_num_threads(1)
    for key, value in (("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing"), ("AWS_DEFAULT_REGION", "us-east-1")):
        os.environ.setdefault(key, value)  # moto accepts any credentials; nothing reaches AWS

    rows = image_rows(args) if not args.skip_images else []
    manifest = manifest_rows(args.manifest_rows) if args.manifest_rows else []
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"\n## loader benchmark (224x224 output; {os.cpu_count()} cores; load average now {load})")
    print("\n".join(rows + manifest))


def image_rows(args: argparse.Namespace) -> list[str]:
    proc, endpoint = _moto()
    rows = []
    try:
        client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
        bucket = f"bench-{uuid.uuid4().hex[:8]}"
        client.create_bucket(Bucket=bucket)
        for name, paths in SETS.items():
            repeat = args.repeat_large if name == "large" else args.repeat_thumbs
            for p in paths:
                client.put_object(Bucket=bucket, Key=f"{name}/{p.name}", Body=p.read_bytes())
            epoch = [p for _ in range(repeat) for p in paths]
            keys = [f"{bucket}/{name}/{p.name}" for p in epoch]
            mb = sum(p.stat().st_size for p in paths) / len(paths) / 1e6
            label = f"{name} ({len(paths)} files, {mb:.2f} MB avg, {len(epoch)}/epoch)"
            (full, full_ms), (draft, draft_ms) = pillow_rate(epoch, False), pillow_rate(epoch, True)
            local, local_ms = loader_rate(
                FrameDataset(_manifest([str(p) for p in epoch]), transform=TRANSFORM), args.workers, args.epochs, proc.pid
            )
            local8, local8_ms = loader_rate(
                FrameDataset(_manifest([str(p) for p in epoch]), transform=TRANSFORM_U8), args.workers, args.epochs, proc.pid
            )
            s3, s3_ms = loader_rate(
                FrameDataset(_manifest([f"s3://{k}" for k in keys]), transform=TRANSFORM, storage_options={"endpoint_url": endpoint}),
                args.workers,
                args.epochs,
                proc.pid,
            )
            # The naive loader is slow: one pass over at most 48 images, worker start-up included.
            naive, naive_ms = loader_rate(NaiveS3Dataset(keys[:48], endpoint), args.workers, 1, proc.pid, warm_up=False)
            moved = {dt: loader_rate(ReadyTensors(len(epoch), dt), args.workers, args.epochs, proc.pid)[1]
                     for dt in (torch.uint8, torch.float32)}
            parallel = pillow_rate_parallel(epoch, args.workers)
            ceiling = get_ceiling(client, bucket, [k.split("/", 1)[1] for k in keys])
            w = args.workers
            rows += [
                f"{label} | (a) Pillow decode, 1 process, full      | {full:7.1f} img/s | {full_ms:5.1f} ms CPU/img",
                f"{label} | (a) Pillow decode, 1 process, draft()   | {draft:7.1f} img/s | {draft_ms:5.1f} ms CPU/img",
                f"{label} | (a) Pillow decode, draft(), {w} processes at once | {parallel:7.1f} img/s per process",
                f"{label} | (b) FrameDataset+DataLoader local, {w} workers, uint8 out like (a) | {local8:7.1f} img/s | "
                f"{local8_ms:5.1f} ms CPU/img | per worker {local8 / w / draft:4.2f}x draft (1 process), "
                f"{local8 / w / parallel:4.2f}x ({w} at once); CPU efficiency {draft_ms / local8_ms:4.2f}x draft",
                f"{label} | (b) same, float32 out (ToTensor()) | {local:7.1f} img/s | {local_ms:5.1f} ms CPU/img | "
                f"per worker {local / w / draft:4.2f}x draft (1 process), {local / w / parallel:4.2f}x ({w} at once); "
                f"CPU efficiency {draft_ms / local_ms:4.2f}x draft",
                f"{label} | (b) DataLoader moving ready tensors, no image: uint8 {moved[torch.uint8]:5.2f}, "
                f"float32 {moved[torch.float32]:5.2f} ms CPU/img",
                f"{label} | (c) FrameDataset+DataLoader moto S3, {w} workers | {s3:7.1f} img/s | {s3_ms:5.1f} ms CPU/img | {s3 / naive:5.1f}x naive",
                f"{label} | (d) naive S3 Dataset, {w} workers         | {naive:7.1f} img/s | {naive_ms:5.1f} ms CPU/img",
                f"{label} | (e) moto GET ceiling, 16 threads          | {ceiling:7.1f} obj/s",
            ]
            print("\n".join(rows[-9:]), flush=True)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    return rows


if __name__ == "__main__":
    main()
