"""Time the web app (`hyperds serve`) on a large synthetic dataset: browse, frame, thumbnails, review decisions.

Usage: python benchmarks/serve.py [--n 1000000] [--repeat 7]
Server time: requests go straight into the ASGI app (httpx.ASGITransport) from this process, so no
socket or client thread scheduling is counted; medians of warm runs. Decisions commit to a shallow
clone (benchmarks/.data/serve/) of synth.py's dataset, never to it. Thumbnails come from a
2-megapixel JPEG written here (synthetic frames point at no real image); the cold-thumbnail ratio
compares one served thumbnail (frame lookup, read, draft decode, resize, encode, cache write) with
Pillow's draft decode + resize + encode alone on the same bytes.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import re
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np
from PIL import Image

import hyperds
from hyperds.web import create_app

sys.path.insert(0, str(Path(__file__).resolve().parent))
from commits import _dataset  # noqa: E402  (the shallow clone of the shared synthetic dataset)

DATA = Path(__file__).resolve().parent / ".data" / "serve"
IMAGES = 200
CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def photo(path: Path) -> None:
    """A 1632x1224 (2 MP) JPEG with camera-like noise, so decode cost is realistic."""
    rng = np.random.default_rng(0)
    base = np.linspace(0, 255, 1632, dtype=np.float32)[None, :, None] * np.ones((1224, 1, 3), np.float32)
    noisy = np.clip(base + rng.normal(0, 40, (1224, 1632, 3)), 0, 255).astype(np.uint8)
    Image.fromarray(noisy).save(path, "JPEG", quality=90)


def pillow_alone(data: bytes) -> None:
    im = Image.open(io.BytesIO(data))
    im.draft("RGB", (256, 256))
    im = im.convert("RGB")
    im.thumbnail((256, 256), Image.Resampling.BILINEAR, reducing_gap=None)
    im.save(io.BytesIO(), "JPEG", quality=80)


async def run(store: hyperds.Store, name: str, jpeg: Path, repeat: int) -> list:
    rows: list[tuple[str, tuple[float, float], str]] = []  # (measure, (wall, process CPU), target)
    cache = tempfile.mkdtemp(prefix="hyperds-serve-bench-")
    app = create_app(store, cache_dir=cache)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1",
                                 follow_redirects=True, timeout=600) as http:
        page = await http.get("/signin")
        home = await http.post("/signin", data={"csrf": CSRF.search(page.text).group(1), "name": "bench"})
        csrf = CSRF.search(home.text).group(1)

        async def get(url, **params):
            r = await http.get(url, params=params)
            assert r.status_code == 200, (url, r.status_code, r.text[-300:])
            return r

        async def median_ms(make, times=repeat) -> tuple[float, float]:
            await make()  # warm
            spent, cpu = [], []
            for _ in range(times):
                t0, c0 = time.perf_counter(), time.process_time()
                await make()
                spent.append(time.perf_counter() - t0)
                cpu.append(time.process_time() - c0)
            return statistics.median(spent) * 1000, statistics.median(cpu) * 1000

        ds = store.dataset(name)
        ids = ds.to_arrow(["frame_id"])["frame_id"]
        middle = ids[len(ids) // 2].as_py()
        rows.append(("browse page 1 (100 frames)", await median_ms(lambda: get("/browse", dataset=name)), "150"))
        rows.append(("browse deep page (after=middle frame)",
                     await median_ms(lambda: get("/browse", dataset=name, after=middle)), "150"))
        rows.append(("browse with SQL site = 'S07'",
                     await median_ms(lambda: get("/browse", dataset=name, q="site = 'S07'")), "150"))
        rows.append(("label facets, whole dataset (own request)",
                     await median_ms(lambda: get("/api/facets", dataset=name), 3), "-"))
        rows.append(("frame page (no image bytes)",
                     await median_ms(lambda: get("/frame", dataset=name, frame_id=middle)), "100"))

        data = jpeg.read_bytes()
        cold, cold_cpu, alone, alone_cpu = [], [], [], []
        for i in range(40):
            t0, c0 = time.perf_counter(), time.process_time()
            await get("/image/thumb", dataset="photos", frame_id=f"p{i:04d}")
            cold.append(time.perf_counter() - t0)
            cold_cpu.append(time.process_time() - c0)
            t0, c0 = time.perf_counter(), time.process_time()
            pillow_alone(data)
            alone.append(time.perf_counter() - t0)
            alone_cpu.append(time.process_time() - c0)
        med = statistics.median
        rows.append(("cold thumbnail, 2 MP JPEG", (med(cold) * 1000, med(cold_cpu) * 1000), "-"))
        rows.append(("  Pillow draft decode + resize + encode alone", (med(alone) * 1000, med(alone_cpu) * 1000), "-"))
        rows.append(("  ratio (x)", (med(cold) / med(alone), med(cold_cpu) / med(alone_cpu)), "1.3"))
        for i in range(40, IMAGES):
            await get("/image/thumb", dataset="photos", frame_id=f"p{i:04d}")
        t0, c0, served = time.perf_counter(), time.process_time(), 0
        while time.perf_counter() - t0 < 3:
            await get("/image/thumb", dataset="photos", frame_id=f"p{served % IMAGES:04d}")
            served += 1
        rate = (served / (time.perf_counter() - t0), served / (time.process_time() - c0))
        rows.append(("cached thumbnails per second (one at a time)", rate, ">=1000"))

        # review: a query worklist on the big dataset; each decision = POST accept, commit, next review page
        q = "site = 'S07' AND any_annotation(source_kind = 'model' AND review_status = 'unreviewed')"
        t0, c0 = time.perf_counter(), time.process_time()
        start = await http.post("/review/start", data={"csrf": csrf, "dataset": name, "kind": "query", "q": q})
        assert start.status_code == 200, start.text[-300:]
        rows.append(("review start (resolve the worklist once)",
                     ((time.perf_counter() - t0) * 1000, (time.process_time() - c0) * 1000), "-"))
        spent, cpu = [], []
        for fid in ds.query(q).frame_ids().to_pylist()[: repeat + 1]:
            frame = (await get("/api/frame", dataset=name, frame_id=fid)).json()
            t0, c0 = time.perf_counter(), time.process_time()
            r = await http.post("/review/decide", data={"csrf": csrf, "dataset": name, "q": q, "frame_id": fid,
                                                         "revision": str(frame["revision"]), "action": "accept"})
            spent.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - c0)
            assert r.status_code == 200, r.text[-300:]
        rows.append(("review decision (POST, commit, next frame page)",
                     (statistics.median(spent[1:]) * 1000, statistics.median(cpu[1:]) * 1000), "300"))
    shutil.rmtree(cache, ignore_errors=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    DATA.mkdir(parents=True, exist_ok=True)
    store = hyperds.connect(DATA / "store")
    ds = _dataset(store, args.n, 0)
    jpeg = DATA / "photo_2mp.jpg"
    photo(jpeg)
    if "photos" in store.datasets():
        store.drop_dataset("photos")
    store.create_dataset("photos").add_frames([{"frame_id": f"p{i:04d}", "uri": str(jpeg)} for i in range(IMAGES)])
    rows = asyncio.run(run(store, ds.name, jpeg, args.repeat))
    print(f"\nhyperds serve on {args.n:,} synthetic frames (server time, medians, ms unless said;")
    print("process CPU = CPU time of this process over the same span, all threads: the cost on a shared machine)")
    print(f"{'measure':<52} {'wall':>9} {'CPU':>9} {'target':>8}")
    for label, (wall, cpu), target in rows:
        print(f"{label:<52} {wall:>9.1f} {cpu:>9.1f} {target:>8}")


if __name__ == "__main__":
    main()
