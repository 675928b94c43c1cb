"""Ingest speed: header-only ranged reads versus reading whole objects, from local files and moto S3.

Objects are copies of the real sample JPEGs (examples/data, full-size camera-trap frames) under
site/camera folders. Local runs go once from disk (pages evicted with posix_fadvise) and once from
the page cache. Prints one row per run and extrapolates a 65,000-image day from local files.
Usage: python benchmarks/ingest.py [--n-local 2000] [--n-s3 1000] [--threads 16]
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import boto3
import polars as pl

import hyperds

DATA = Path(__file__).resolve().parents[1] / "examples" / "data"
WORK = Path(__file__).resolve().parent / ".data" / "ingest"
DAY = 65_000
LAYOUT = "{site}/{camera}/{name}"


def _samples() -> list[bytes]:
    """Every readable full-size sample JPEG (thumbnails and the truncated file left out)."""
    paths = sorted((DATA / "camtrap-dp" / "media").glob("*.JPG")) + sorted((DATA / "megadetector").glob("*.[jJ][pP][gG]"))
    paths += [p for p in sorted((DATA / "edge-cases").glob("*.jpg")) if "truncated" not in p.name]
    return [p.read_bytes() for p in paths]


def _copy(samples: list[bytes], i: int) -> bytes:
    """The i-th object: a sample JPEG with 8 unique bytes after its end marker, so content hashes differ."""
    return samples[i % len(samples)] + i.to_bytes(8, "big")


def _keys(n: int) -> list[str]:
    return [f"site{i % 5}/cam{i % 23:02d}/IMG_{i:06d}.JPG" for i in range(n)]


def _local_tree(n: int) -> Path:
    root, done = WORK / f"local-{n}", WORK / f"local-{n}.done"
    if not done.exists():
        shutil.rmtree(root, ignore_errors=True)
        samples = _samples()
        for i, key in enumerate(_keys(n)):
            path = root / key
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(_copy(samples, i))
        done.write_text("")
    return root


def _evict(root: Path) -> None:
    """Drop the tree's pages from the OS cache (posix_fadvise), so reads come from disk."""
    for path in root.rglob("*"):
        if path.is_file():
            fd = os.open(path, os.O_RDONLY)
            try:
                os.fsync(fd)
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            finally:
                os.close(fd)


def _moto() -> tuple[subprocess.Popen, str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(300):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.1)
    return proc, f"http://127.0.0.1:{port}"


def _run(store: hyperds.Store, name: str, uri: str, hash: bool, threads: int, options: dict | None) -> dict:
    ds = store.create_dataset(name)
    report = ds.ingest(uri, layout=LAYOUT, hash=hash, storage_options=options, threads=threads, progress=False)
    assert report.skipped.height == 0, report.summary()
    return {
        "images": report.ingested,
        "seconds": round(report.seconds, 2),
        "images/s": round(report.ingested / report.seconds, 1),
        "read s": round(report.read_seconds, 2),
        "read images/s": round(report.ingested / report.read_seconds, 1),
        "MB read": round(report.bytes_read / 1e6, 1),
        "KB/image": round(report.bytes_read / 1e3 / max(1, report.ingested), 1),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n-local", type=int, default=2000)
    ap.add_argument("--n-s3", type=int, default=1000)
    ap.add_argument("--threads", type=int, default=16)
    args = ap.parse_args()
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    rows = []
    with tempfile.TemporaryDirectory(dir=WORK.parent if WORK.parent.exists() else None) as tmp:
        store = hyperds.connect(Path(tmp) / "store")
        local = _local_tree(args.n_local)
        _run(store, "warmup", str(_local_tree(20)), True, args.threads, None)  # imports, first Lance table
        for cache in ("cold", "warm"):
            for hash in (False, True):
                if cache == "cold":
                    _evict(local)
                mode = "whole objects (hash)" if hash else "header only"
                run = _run(store, f"l{cache}{int(hash)}", str(local), hash, args.threads, None)
                rows.append({"source": f"local files ({cache} cache)", "mode": mode, **run})
        proc, endpoint = _moto()
        try:
            client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
            client.create_bucket(Bucket="bench")
            samples = _samples()
            for i, key in enumerate(_keys(args.n_s3)):
                client.put_object(Bucket="bench", Key=f"day/{key}", Body=_copy(samples, i))
            options = {"aws_endpoint": endpoint, "allow_http": "true", "region": "us-east-1"}
            client.put_object(Bucket="bench", Key=f"warm/{_keys(1)[0]}", Body=samples[0])
            _run(store, "warm", "s3://bench/warm", False, args.threads, options)  # s3fs session set-up
            for hash in (False, True):
                mode = "whole objects (hash)" if hash else "header only"
                rows.append({"source": "moto S3", "mode": mode, **_run(store, f"s{int(hash)}", "s3://bench/day", hash, args.threads, options)})
        finally:
            proc.terminate()
            proc.wait()
    table = pl.DataFrame(rows)
    with pl.Config(tbl_rows=20, tbl_cols=12, tbl_width_chars=220, tbl_hide_dataframe_shape=True):
        print(f"ingest, {args.threads} threads, {os.cpu_count()} CPUs, layout {LAYOUT}; images/s end to end (list, compare, read, write), read images/s for the reads alone")
        print(table)
    for cache in ("cold", "warm"):
        rate = table.filter((pl.col("source") == f"local files ({cache} cache)") & (pl.col("mode") == "header only"))["images/s"][0]
        minutes = DAY / rate / 60
        print(f"65,000-image day from local files ({cache} cache), header only: {DAY} / {rate} images/s = "
              f"{minutes:.1f} min ({'under' if minutes < 5 else 'OVER'} the 5 min target)")


if __name__ == "__main__":
    main()
