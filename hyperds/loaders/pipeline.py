"""The image pipeline: resolve a frame's URI, fetch its bytes, decode upright, crop, transform.

A loader is a sample plan (plan.py) x a target encoder (targets.py) x this pipeline. It knows nothing
of units or targets: it loads (frame row, region) jobs, concurrently when that pays, and returns
each image with whatever the transform returned beside it (detection boxes). Unreadable images come
back as ImageLoadError values, so a batch can skip them. Internal to hyperds.loaders.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from torch.utils.data import get_worker_info

from ..errors import ImageLoadError
from ..frames.uris import resolve_uris
from ..fsio import split_protocol
from ..images.decode import DECODE_ERRORS, decode_rgb
from ..images.fetch import Fetcher
from .plan import Region

BoxesFor = Callable[[int, int, int], Any]  # (frame row, width, height) -> boxes handed to the transform


class ImagePipeline:
    """Fetch, decode, crop and transform the images of frame rows.

    `roots` are the roots relative URIs resolve against; with several, `root_of_row[r]` picks row r's.
    """

    def __init__(
        self,
        frame_ids: pa.Array,
        uris: pa.Array,
        roots: list[str | None],
        root_of_row: np.ndarray | None,
        fetcher: Fetcher,
        transform: Callable[..., Any] | None,
        boxes_for: BoxesFor | None,
        fetch_threads: int,
        redact: Callable[[str, Any], Any] | None = None,
    ):
        self.frame_ids, self.uris, self.roots, self.root_of_row = frame_ids, uris, roots, root_of_row
        self.redact = redact  # (frame_id, decoded image) -> image, e.g. a policy blurring people; None: as decoded
        self.fetcher, self.transform, self.boxes_for = fetcher, transform, boxes_for
        self.fetch_threads = max(1, int(fetch_threads))
        self._pool: ThreadPoolExecutor | None = None
        self._pool_pid = -1

    @staticmethod
    def root_codes(dataset: pa.Array, names: list[str]) -> np.ndarray:
        """Position in `names` of each row's dataset (0 when not found): root_of_row for a multi-root source."""
        position = pc.index_in(dataset, value_set=pa.array(names, pa.string()))
        return pc.fill_null(position, 0).to_numpy(zero_copy_only=False).astype(np.int32)

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_pool"], state["_pool_pid"] = None, -1  # pools do not travel to workers
        return state

    def resolve(self, rows: list[int]) -> list[str]:
        """The absolute URIs of `rows`, resolved per batch: a 10M-frame manifest costs nothing to set up."""
        uris = self.uris.take(pa.array(rows, pa.int64()))
        if self.root_of_row is None:
            return resolve_uris(uris, self.roots[0]).to_pylist()
        which = self.root_of_row[rows]
        out: list[str] = [""] * len(rows)
        for code in np.unique(which):
            picked = np.flatnonzero(which == code)
            for j, uri in zip(picked, resolve_uris(uris.take(pa.array(picked)), self.roots[code]).to_pylist()):
                out[j] = uri
        return out

    def run(self, jobs: list[tuple[int, str, Region | None]]) -> list[Any]:
        """load() each (row, uri, region) job; in threads when there are several and it pays."""
        # Threads hide remote latency, and in the main process spread decoding over idle cores; local
        # files in a DataLoader worker decode inline, as the workers already fill the cores (measured:
        # 8 threads there cost ~1 ms CPU more per thumbnail).
        local = all(split_protocol(uri)[0] == "file" for _, uri, _ in jobs)
        if len(jobs) <= 1 or self.fetch_threads == 1 or (local and get_worker_info() is not None):
            return [self.load(*job) for job in jobs]
        if self._pool is None or self._pool_pid != os.getpid():
            self._pool = ThreadPoolExecutor(self.fetch_threads, thread_name_prefix="hyperds-fetch")
            self._pool_pid = os.getpid()
        return list(self._pool.map(lambda job: self.load(*job), jobs))

    def load(self, row: int, uri: str, region: Region | None) -> tuple[Any, Any] | ImageLoadError:
        """(image, what the transform returned beside it or None); an ImageLoadError is returned, not raised."""
        try:
            data = self.fetcher.read(uri)
            img = decode_rgb(data, self._draft_request(region))
            if self.redact is not None:  # before any crop, so box coordinates are the whole image's
                img = self.redact(self.frame_ids[row].as_py(), img)
        except FileNotFoundError:
            return ImageLoadError(self.frame_ids[row].as_py(), uri, "no such object")
        except DECODE_ERRORS as exc:
            return ImageLoadError(self.frame_ids[row].as_py(), uri, f"{type(exc).__name__}: {exc}")
        if region is not None:
            w, h = img.size
            x0, y0, x1, y1 = region
            # Rounded, not floored/ceiled: float32 box edges sit a hair off the pixel grid.
            left, top = round(x0 * w), round(y0 * h)
            img = img.crop((left, top, max(left + 1, round(x1 * w)), max(top + 1, round(y1 * h))))
        if self.boxes_for is not None:
            boxes = self.boxes_for(row, *img.size)
            return self.transform(img, boxes) if self.transform is not None else (img, boxes)
        return (self.transform(img) if self.transform is not None else img), None

    def _draft_request(self, region: Region | None) -> Callable[[int, int], Any] | None:
        # A transform may say how large its input must be (draft_size), so JPEGs decode reduced.
        wants = getattr(self.transform, "draft_size", None)
        if wants is None:
            return None
        if region is None:
            return wants
        x0, y0, x1, y1 = region

        def for_crop(w: int, h: int) -> tuple[float, float] | None:
            # The crop must come out at least as large as the transform needs from it.
            cw, ch = max(1.0, (x1 - x0) * w), max(1.0, (y1 - y0) * h)
            need = wants(math.ceil(cw), math.ceil(ch))
            return None if need is None else (w * need[0] / cw, h * need[1] / ch)

        return for_crop
