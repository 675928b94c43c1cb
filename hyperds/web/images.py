"""Thumbnails and display-size images, made with Pillow from a frame's stored URI and cached on disk.

The request names a dataset and a frame_id only; the image is read from the URI stored on that
frame (resolved against the dataset's root) through the store's storage options, so no path or URL
from a request reaches a file system. JPEGs decode at reduced scale (`draft`), EXIF orientation is
applied and every mode becomes RGB (images.decode). Results are kept in a size-bounded disk cache
keyed by (store, dataset, frame_id, size): a frame's URI never changes through commits, so a cached
image is served without reading the frame row. An unreadable image gives a placeholder naming why.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import escape

import pyarrow as pa
from PIL import Image

from ..frames.uris import resolve_uris
from ..images.decode import DECODE_ERRORS, decode_rgb
from ..images.fetch import Fetcher

log = logging.getLogger(__name__)

SIZES = {"thumb": 256, "display": 1280}
QUALITY = {"thumb": 80, "display": 85}


@dataclass(frozen=True)
class Rendered:
    body: bytes
    media_type: str
    etag: str
    error: str | None = None


class ImageService:
    """Makes and caches the images of frames; one per app."""

    def __init__(self, store, cache_dir: str | os.PathLike[str] | None = None, max_bytes: int = 512 << 20):
        self.store = store
        self.dir = Path(cache_dir) if cache_dir else Path(tempfile.gettempdir()) / f"hyperds-web-{os.getuid()}"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.max_bytes = max_bytes
        self.fetcher = Fetcher(store.storage_options)
        self._written = 0
        self._lock = threading.Lock()

    def key(self, dataset: str, frame_id: str, size: str) -> str:
        return hashlib.sha256("\x1f".join((self.store.uri, dataset, frame_id, size)).encode()).hexdigest()[:32]

    def cached(self, dataset: str, frame_id: str, size: str) -> Rendered | None:
        """The cached image, or None; checks nothing else (the caller checked the dataset name)."""
        key = self.key(dataset, frame_id, size)
        try:
            body = (self.dir / f"{key}.jpg").read_bytes()
        except FileNotFoundError:
            return None
        return Rendered(body, "image/jpeg", key)

    def render(self, ds, frame: dict, size: str) -> Rendered:
        """Read, decode, scale and encode the frame's image, caching the result; a placeholder if unreadable."""
        key = self.key(ds.name, frame["frame_id"], size)
        uri = resolve_uris(pa.array([frame["uri"]], pa.string()), ds.root)[0].as_py()
        try:
            data = self.fetcher.read(uri)
            body = make_jpeg(data, SIZES[size], QUALITY[size])
        except (*DECODE_ERRORS, Exception) as exc:  # noqa: BLE001 - any failure is a placeholder, never a 500
            reason = _reason(exc)
            log.info("image of %s/%s unreadable: %s", ds.name, frame["frame_id"], reason)
            return Rendered(placeholder(reason, SIZES[size]), "image/svg+xml", key + "-error", reason)
        self._store(key, body)
        return Rendered(body, "image/jpeg", key)

    def _store(self, key: str, body: bytes) -> None:
        tmp = self.dir / f".{key}.{os.getpid()}.{threading.get_ident()}.tmp"
        tmp.write_bytes(body)
        os.replace(tmp, self.dir / f"{key}.jpg")  # atomic: readers see the old file or the whole new one
        with self._lock:
            self._written += len(body)
            if self._written < self.max_bytes // 10:
                return
            self._written = 0
        self.trim()

    def trim(self) -> None:
        """Delete the least recently written images until the cache is under its size bound."""
        files = [(p.stat().st_mtime, p.stat().st_size, p) for p in self.dir.glob("*.jpg")]
        total = sum(s for _, s, _ in files)
        for _, size, path in sorted(files):
            if total <= self.max_bytes * 0.8:
                break
            path.unlink(missing_ok=True)
            total -= size


def make_jpeg(data: bytes, longest: int, quality: int) -> bytes:
    """Decode at the smallest draft scale that still covers `longest`, shrink to fit, encode as JPEG."""

    def need(w: int, h: int) -> tuple[int, int]:
        scale = min(1.0, longest / max(w, h))
        return (w * scale, h * scale)

    im = decode_rgb(data, draft=need)
    if max(im.size) > longest:
        im.thumbnail((longest, longest), Image.Resampling.BILINEAR, reducing_gap=None)
    out = io.BytesIO()
    im.save(out, "JPEG", quality=quality)
    return out.getvalue()


def placeholder(reason: str, size: int) -> bytes:
    """A grey SVG saying why there is no image (text escaped)."""
    h = size * 3 // 4
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{size}" height="{h}" viewBox="0 0 {size} {h}">'
        f'<rect width="100%" height="100%" fill="#ddd"/><text x="8" y="{h // 2}" font-size="12" fill="#333">'
        f"image unavailable: {escape(reason[:80])}</text></svg>"
    ).encode()


def _reason(exc: BaseException) -> str:
    if isinstance(exc, FileNotFoundError):
        return "file not found"
    if isinstance(exc, PermissionError):
        return "permission denied"
    name = type(exc).__name__
    text = str(exc).split("\n")[0][:120]
    # never echo a URI with its query string (signed URLs carry credentials)
    return f"{name}: {text}".split("?")[0]
