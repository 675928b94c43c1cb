"""Images served by the web app: upright RGB JPEGs from any colour mode, scaled to the route's size,
from local files and S3 (through the store's storage options); a truncated file is a placeholder."""

from __future__ import annotations

import io

import httpx
from PIL import Image, ImageOps

from conftest import DATA
from web_support import serve

EDGE = DATA / "edge-cases"


def _frames(uri_of) -> list[dict]:
    names = ["african_elephants_cmyk.jpg", "african_elephants_bw.jpg", "african_elephants_with_exif_orientation.jpg",
             "african_elephants_truncated_file.jpg"]
    return [{"frame_id": name, "uri": uri_of(name)} for name in names]


def _check(http, dataset: str) -> None:
    for name in ("african_elephants_cmyk.jpg", "african_elephants_bw.jpg", "african_elephants_with_exif_orientation.jpg"):
        with Image.open(EDGE / name) as src:
            upright = ImageOps.exif_transpose(src).size
        for size, longest in (("thumb", 256), ("display", 1280)):
            r = http.get(f"/image/{size}", params={"dataset": dataset, "frame_id": name})
            assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg", (name, size)
            img = Image.open(io.BytesIO(r.content))
            assert img.mode == "RGB" and max(img.size) == min(longest, max(upright))
            assert abs(img.size[0] / img.size[1] - upright[0] / upright[1]) < 0.02, (name, img.size, upright)
    r = http.get("/image/thumb", params={"dataset": dataset, "frame_id": "african_elephants_truncated_file.jpg"})
    assert r.status_code == 200 and r.headers["content-type"] == "image/svg+xml"
    assert r.headers["x-hyperds-image-error"]


def test_local_images_any_mode_upright(store):
    store.create_dataset("edge").add_frames(_frames(lambda name: str(EDGE / name)))
    with serve(store) as server, httpx.Client(base_url=server.url) as http:
        _check(http, "edge")


def test_s3_images_through_store_options(tmp_path, s3_bucket, s3_storage_options):
    import hyperds

    bucket, client = s3_bucket
    for name in [f["frame_id"] for f in _frames(str)]:
        client.put_object(Bucket=bucket, Key=f"traps/{name}", Body=(EDGE / name).read_bytes())
    store = hyperds.connect(tmp_path / "store", storage_options=s3_storage_options)
    store.create_dataset("edge", root=f"s3://{bucket}/traps").add_frames(_frames(lambda name: name))
    with serve(store) as server, httpx.Client(base_url=server.url) as http:
        _check(http, "edge")


def test_disk_cache_stays_within_its_bound(store, tmp_path):
    cache, bound = tmp_path / "cache", 200_000
    store.create_dataset("many").add_frames(
        [{"frame_id": f"f{i:02d}", "uri": str(EDGE / "african_elephants.jpg")} for i in range(24)])
    with serve(store, cache_dir=str(cache), cache_bytes=bound) as server, httpx.Client(base_url=server.url) as http:
        sizes = []
        for i in range(24):
            r = http.get("/image/thumb", params={"dataset": "many", "frame_id": f"f{i:02d}"})
            assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg"
            sizes.append(len(r.content))
            total = sum(p.stat().st_size for p in cache.glob("*.jpg"))
            assert total <= bound + bound // 10 + max(sizes)  # trimmed back under the bound as it fills
    assert sum(sizes) > 2 * bound  # the bound was really exercised
    kept = sorted(cache.glob("*.jpg"))
    assert 0 < len(kept) < 24
