"""PyTorch datasets over a view's frames: images fetched concurrently, decoded upright, fork- and spawn-safe.

`FrameDataset` is map-style (`__getitems__` fetches a whole batch with threads); `IterableFrameDataset`
shards it over (DDP rank x worker) with a deterministic per-(seed, epoch) shuffle.
"""

from __future__ import annotations

import logging
import math
import multiprocessing
import multiprocessing.context
import os
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import torch
from torch.utils.data import Dataset, IterableDataset, get_worker_info

from ..errors import ImageLoadError, LoaderError
from ..frames.uris import resolve_uris
from ..fsio import split_protocol
from . import manifest
from .decode import DECODE_ERRORS, decode_rgb
from .fetch import Fetcher
from .worker_memory import tune_worker_heap

log = logging.getLogger(__name__)

TARGETS = ("classification", "detection")
UNITS = ("frame", "crop", "sequence")


class _SkipCounter:
    """Frames skipped with on_error='skip', counted across DataLoader worker processes (shared memory)."""

    def __init__(self) -> None:
        # Made in a spawn context: forked workers inherit it, spawned ones may receive it (a fork-context
        # lock refuses to travel to a spawned process).
        self._value = multiprocessing.get_context("spawn").Value("q", 0)

    def add(self, n: int) -> None:
        with self._value.get_lock():
            self._value.value += n

    @property
    def value(self) -> int:
        return int(self._value.value)

    def __getstate__(self) -> dict[str, Any]:
        # Shared memory travels only to a process being started (DataLoader workers under spawn);
        # any other pickle (saving a dataset) carries a detached count.
        if multiprocessing.context.get_spawning_popen() is not None:
            return {"shared": self._value}
        return {"count": self.value}

    def __setstate__(self, state: dict[str, Any]) -> None:
        if "shared" in state:
            self._value = state["shared"]
        else:
            self.__init__()
            self._value.value = state["count"]


def _pixel_xyxy(xywh: np.ndarray, width: int, height: int) -> torch.Tensor:
    """Normalised [m, 4] x, y, w, h boxes as float32 pixel x0, y0, x1, y1 on a width x height image."""
    boxes = torch.from_numpy(np.ascontiguousarray(xywh, dtype=np.float32)).reshape(-1, 4)
    scale = torch.tensor([width, height, width, height], dtype=torch.float32)
    return torch.cat([boxes[:, :2], boxes[:, :2] + boxes[:, 2:]], dim=1) * scale


def _padded_region(xywh: np.ndarray, padding: float) -> tuple[float, float, float, float]:
    """Normalised x0, y0, x1, y1 of a box grown by `padding` x its size on each side, clipped to the image."""
    x, y, w, h = (float(v) for v in xywh)
    return max(0.0, x - w * padding), max(0.0, y - h * padding), min(1.0, x + w * (1 + padding)), min(1.0, y + h * (1 + padding))


class FrameDataset(Dataset):
    """Map-style dataset over the frames of a view, query result or dataset (anything with `to_arrow()`).

    Samples are `(image, target)`. `unit`: 'frame' (one per frame), 'crop' (one per annotation box,
    cropped with `crop_padding` x box size per side, boxes chosen by `box_filter`, a pyarrow
    expression over annotation fields such as `pc.field("confidence") >= 0.9`) or 'sequence' (the
    frames of one seq_id burst by frame_num, up to `max_frames`, stacked). `target`:
    'classification' (class index, or a multi-hot vector with `multilabel=True` and always for
    sequences), 'detection' (dict of pixel xyxy `boxes` after the transform and `labels`), or a
    callable over the frame's row dict. Classes come from `label_map` (raw label -> class name or
    index; default: a view's own label map), `classes` (the index order), else every label
    seen, sorted. Relative URIs resolve against `root` (default: the source's root, or each of a
    view's datasets' own). `split` picks one split of a view.
    Constructing reads no image; with on_error='skip' unreadable frames are dropped and counted in
    `skipped`, else they raise ImageLoadError naming the frame and its URI. `record_run="id"` records
    in the store's `_runs` that run "id" trained on this (published) view version, with `run_info`.
    """

    def __init__(
        self,
        source: Any,
        transform: Callable[..., Any] | None = None,
        target: str | Callable[[dict[str, Any]], Any] = "classification",
        unit: str = "frame",
        on_error: str = "raise",
        cache_dir: str | os.PathLike[str] | None = None,
        storage_options: Mapping[str, Any] | None = None,
        classes: Sequence[str] | None = None,
        label_map: Mapping[str, str | int] | None = None,
        multilabel: bool = False,
        box_filter: pc.Expression | None = None,
        crop_padding: float = 0.0,
        max_frames: int = 8,
        fetch_threads: int = 8,
        root: str | None = None,
        split: str | None = None,
        record_run: str | None = None,
        run_info: Mapping[str, Any] | None = None,
        policy: str | None = None,
    ):
        self._check_arguments(target, unit, on_error, crop_padding, max_frames)
        if record_run is not None and not callable(getattr(source, "record_run", None)):
            raise LoaderError(
                f"record_run={record_run!r} needs a published view as the source, not {type(source).__name__}; "
                "publish a view and pass it (or drop record_run)"
            )
        self.transform = transform
        self.target = target
        self.unit = unit
        self.on_error = on_error
        self.multilabel = multilabel or unit == "sequence"
        self.crop_padding = float(crop_padding)
        self.max_frames = int(max_frames)
        self.fetch_threads = max(1, int(fetch_threads))
        roots = {"": root} if root is not None else manifest.source_roots(source)
        self._roots = list(roots.values())
        self._fetcher = Fetcher(self._storage_options(source, storage_options), cache_dir, self.fetch_threads)
        self._skipped = _SkipCounter()
        self._pool: ThreadPoolExecutor | None = None
        self._pool_pid = -1

        self._uses_boxes = target == "detection" or unit == "crop"
        view_map = None
        if label_map is None and (self._uses_boxes or not callable(target)):
            view_map = manifest.view_label_map(source)
        columns = self._columns(view_map is not None)
        if columns is not None and len(roots) > 1:
            columns.append("dataset")
        if view_map is None:
            table = manifest.read_manifest(source, columns, split)
        else:  # the view maps labels in its one resolve: frames take its `classes`, boxes its label map
            table, view_labels, view_classes = manifest.read_view_manifest(source, columns, split, view_map)
            label_map = view_labels if self._uses_boxes else None
            classes = view_classes if classes is None else classes
        # policy="public": the store's sensitive-data policy (hyperds.workflows.policy) leaves frames out,
        # coarsens coordinates and blurs people boxes on the fly; "full"/None: nothing.
        from ..workflows.policy import build_plan

        self._policy = build_plan(source, policy)
        if self._policy is not None:
            table = self._policy.apply(table)
        self._frame_ids = manifest.column(table, "frame_id")
        self._uris = manifest.column(table, "uri")
        self._root_of_row = None  # which of self._roots each row resolves against, when there are several
        if len(roots) > 1:
            names = pa.array(list(roots), pa.string())
            position = pc.index_in(manifest.column(table, "dataset"), value_set=names)
            self._root_of_row = pc.fill_null(position, 0).to_numpy(zero_copy_only=False).astype(np.int32)
        self._rows = table if callable(target) else None
        self.classes: list[str] | None = None
        self.num_classes: int | None = None
        self._build_indices(table, "classes" if view_map is not None else "labels", label_map, classes, box_filter)
        if record_run is not None:  # in the constructing process only: workers get a pickled copy
            info = {"unit": unit, "split": split, "samples": len(self), "classes": self.classes, **(run_info or {})}
            source.record_run(record_run, info=info)

    # -- construction ----------------------------------------------------------------------
    @staticmethod
    def _check_arguments(target: Any, unit: str, on_error: str, crop_padding: float, max_frames: int) -> None:
        if not callable(target) and target not in TARGETS:
            raise LoaderError(f"unknown target {target!r}: use one of {TARGETS} or a callable over the frame's row")
        if unit not in UNITS:
            raise LoaderError(f"unknown unit {unit!r}: use one of {UNITS}")
        if target == "detection" and unit != "frame":
            raise LoaderError(f"target='detection' needs unit='frame' (got {unit!r}): crops and sequences have no boxes")
        if on_error not in ("raise", "skip"):
            raise LoaderError(f"on_error must be 'raise' or 'skip', not {on_error!r}")
        if crop_padding < 0 or max_frames < 1:
            raise LoaderError(f"crop_padding must be >= 0 and max_frames >= 1 (got {crop_padding}, {max_frames})")

    @staticmethod
    def _storage_options(source: Any, explicit: Mapping[str, Any] | None) -> dict[str, Any]:
        inherited = dict(getattr(manifest.source_store(source), "storage_options", None) or {})
        return {**inherited, **dict(explicit or {})}

    def _columns(self, view_mapped: bool) -> list[str] | None:
        if callable(self.target):
            return None
        columns = ["frame_id", "uri"]
        if self._uses_boxes:
            columns.append("annotations")
        if view_mapped:
            columns.append("classes")
        elif not self._uses_boxes:
            columns.append("labels")
        if self.unit == "sequence":
            columns += ["seq_id", "frame_num"]
        return columns

    def _build_indices(
        self,
        table: pa.Table,
        labels_column: str,
        label_map: Mapping[str, str | int] | None,
        classes: Sequence[str] | None,
        box_filter: pc.Expression | None,
    ) -> None:
        n = table.num_rows
        self._boxes: manifest.Boxes | None = None
        self._class_offsets = self._class_ids = None
        if self._uses_boxes:
            annotations = manifest.column(table, "annotations")
            observed = pc.list_flatten(annotations).field("label") if not (label_map or classes) else pa.array([], pa.string())
            mapping = manifest.Classes.build(label_map, classes, observed)
            self._boxes = manifest.boxes(annotations, mapping, box_filter)
            self.classes = mapping.names
            self.num_classes = mapping.count
        elif not callable(self.target):
            labels = manifest.column(table, labels_column)
            observed = pc.list_flatten(labels) if not (label_map or classes) else pa.array([], pa.string())
            mapping = manifest.Classes.build(label_map, classes, observed)
            self._class_offsets, self._class_ids = manifest.frame_classes(labels, mapping)
            self.classes = mapping.names
            self.num_classes = mapping.count
            if not self.multilabel:
                self._require_one_class()
        self._seq_offsets = self._seq_rows = None
        if self.unit == "sequence":
            frame_num = manifest.column(table, "frame_num") if "frame_num" in table.column_names else None
            self._seq_offsets, self._seq_rows = manifest.sequences(manifest.column(table, "seq_id"), frame_num)
        self._length = {
            "frame": n,
            "crop": len(self._boxes.frame) if self._boxes is not None else 0,
            "sequence": len(self._seq_offsets) - 1 if self._seq_offsets is not None else 0,
        }[self.unit]

    def _require_one_class(self) -> None:
        counts = np.diff(self._class_offsets)
        bad = np.flatnonzero(counts != 1)
        if len(bad):
            shown = ", ".join(f"{self._frame_ids[int(i)].as_py()!r} ({counts[i]} classes)" for i in bad[:5])
            raise LoaderError(
                f"{len(bad)} frame(s) do not have exactly one class, e.g. {shown}; pass multilabel=True for "
                "multi-hot targets, or narrow the view / label_map so each frame has one class"
            )

    # -- pickling: no pools, no secrets ------------------------------------------------------
    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_pool"], state["_pool_pid"] = None, -1
        return state

    # -- public ----------------------------------------------------------------------------
    def __len__(self) -> int:
        return self._length

    @property
    def skipped(self) -> int:
        """Frames skipped so far (all worker processes) because they could not be loaded."""
        return self._skipped.value

    def __repr__(self) -> str:
        return f"FrameDataset({len(self)} {self.unit}s, target={self.target!r}, classes={self.num_classes}, {self._fetcher!r})"

    def __getitem__(self, index: int) -> Any:
        """One sample; with on_error='skip' an unreadable one comes back as None (batches drop it)."""
        got = self.__getitems__([index])
        return got[0] if got else None

    def __getitems__(self, indices: Sequence[int]) -> list[Any]:
        """The samples at `indices`, their images fetched and decoded concurrently; skipped ones left out."""
        if get_worker_info() is not None:
            tune_worker_heap()
        indices = [int(i) if i >= 0 else int(i) + len(self) for i in indices]
        for i in indices:
            if not 0 <= i < len(self):
                raise IndexError(f"sample index {i} out of range for {len(self)} samples")
        jobs = [(slot, row, box) for slot, i in enumerate(indices) for row, box in self._frames_of(i)]
        uris = self._resolved_uris([row for _, row, _ in jobs])
        results = self._run([(row, uri, box) for (_, row, box), uri in zip(jobs, uris)])
        per_sample: list[list[tuple[int, str, Any]]] = [[] for _ in indices]
        failed = []
        for (slot, row, _), uri, result in zip(jobs, uris, results):
            if isinstance(result, ImageLoadError):
                failed.append(result)
            else:
                per_sample[slot].append((row, uri, result))
        if failed:
            if self.on_error == "raise":
                raise failed[0]
            self._skipped.add(len(failed))
            for err in failed:
                log.warning("skipped %s", err)
        return [self._sample(indices[slot], loaded) for slot, loaded in enumerate(per_sample) if loaded]

    # -- per item --------------------------------------------------------------------------
    def _frames_of(self, index: int) -> list[tuple[int, int | None]]:
        """(frame row, box index or None) of every image sample `index` needs."""
        if self.unit == "frame":
            return [(index, None)]
        if self.unit == "crop":
            return [(int(self._boxes.frame[index]), index)]
        start, stop = self._seq_offsets[index], self._seq_offsets[index + 1]
        return [(int(r), None) for r in self._seq_rows[start : min(stop, start + self.max_frames)]]

    def _resolved_uris(self, rows: list[int]) -> list[str]:
        # Resolved per batch: a 10M-frame manifest costs nothing to set up.
        uris = self._uris.take(pa.array(rows, pa.int64()))
        if self._root_of_row is None:
            return resolve_uris(uris, self._roots[0]).to_pylist()
        which = self._root_of_row[rows]
        out: list[str] = [""] * len(rows)
        for code in np.unique(which):
            picked = np.flatnonzero(which == code)
            for j, uri in zip(picked, resolve_uris(uris.take(pa.array(picked)), self._roots[code]).to_pylist()):
                out[j] = uri
        return out

    def _run(self, jobs: list[tuple[int, str, int | None]]) -> list[Any]:
        # Threads hide remote latency, and in the main process spread decoding over idle cores; local
        # files in a DataLoader worker decode inline, as the workers already fill the cores (measured:
        # 8 threads there cost ~1 ms CPU more per thumbnail).
        local = all(split_protocol(uri)[0] == "file" for _, uri, _ in jobs)
        if len(jobs) <= 1 or self.fetch_threads == 1 or (local and get_worker_info() is not None):
            return [self._load(*job) for job in jobs]
        if self._pool is None or self._pool_pid != os.getpid():
            self._pool = ThreadPoolExecutor(self.fetch_threads, thread_name_prefix="hyperds-fetch")
            self._pool_pid = os.getpid()
        return list(self._pool.map(lambda job: self._load(*job), jobs))

    def _load(self, row: int, uri: str, box: int | None) -> Any:
        """Fetch, decode, crop and transform one image; an ImageLoadError is returned, not raised."""
        frame_id = self._frame_ids[row].as_py()
        region = _padded_region(self._boxes.xywh[box], self.crop_padding) if box is not None else None
        try:
            data = self._fetcher.read(uri)
            img = decode_rgb(data, self._draft_request(region))
            if self._policy is not None:
                img = self._policy.blur_image(frame_id, img)
        except FileNotFoundError:
            return ImageLoadError(frame_id, uri, "no such object")
        except DECODE_ERRORS as exc:
            return ImageLoadError(frame_id, uri, f"{type(exc).__name__}: {exc}")
        if region is not None:
            w, h = img.size
            x0, y0, x1, y1 = region
            # Rounded, not floored/ceiled: float32 box edges sit a hair off the pixel grid.
            left, top = round(x0 * w), round(y0 * h)
            img = img.crop((left, top, max(left + 1, round(x1 * w)), max(top + 1, round(y1 * h))))
        if self.target == "detection":
            start, stop = self._boxes.offsets[row], self._boxes.offsets[row + 1]
            boxes = _pixel_xyxy(self._boxes.xywh[start:stop], *img.size)
            return self.transform(img, boxes) if self.transform is not None else (img, boxes)
        return self.transform(img) if self.transform is not None else img

    def _draft_request(self, region: tuple[float, float, float, float] | None) -> Callable[[int, int], Any] | None:
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

    def _sample(self, index: int, loaded: list[tuple[int, str, Any]]) -> tuple[Any, Any]:
        """Sample `index` from its loaded frames: (frame row, resolved uri, image) each."""
        rows = [row for row, _, _ in loaded]
        if self.unit == "sequence":
            images = [img for _, _, img in loaded]
            stacked = torch.stack(images) if all(isinstance(i, torch.Tensor) for i in images) else images
            target = self.target([self._row(r, uri) for r, uri, _ in loaded]) if callable(self.target) else self._multi_hot(rows)
            return stacked, target
        row, uri, image = loaded[0]
        if callable(self.target):
            record = self._row(row, uri)
            if self.unit == "crop":
                record["crop_xywh"] = self._boxes.xywh[index].tolist()
            return image, self.target(record)
        if self.target == "detection":
            image, boxes = image
            start, stop = self._boxes.offsets[row], self._boxes.offsets[row + 1]
            return image, {"boxes": boxes, "labels": torch.from_numpy(self._boxes.cls[start:stop].copy())}
        if self.unit == "crop":
            return image, torch.tensor(int(self._boxes.cls[index]))
        if self.multilabel:
            return image, self._multi_hot(rows)
        return image, torch.tensor(int(self._class_ids[self._class_offsets[row]]))

    def _multi_hot(self, rows: list[int]) -> torch.Tensor:
        hot = torch.zeros(self.num_classes, dtype=torch.float32)
        for r in rows:
            ids = self._class_ids[self._class_offsets[r] : self._class_offsets[r + 1]]
            hot[torch.from_numpy(ids.copy())] = 1.0
        return hot

    def _row(self, row: int, uri: str) -> dict[str, Any]:
        record = self._rows.slice(row, 1).to_pylist()[0]
        record["uri"] = uri  # resolved with the batch in __getitems__
        return record


class IterableFrameDataset(IterableDataset):
    """A FrameDataset streamed in disjoint shards per (DDP rank x DataLoader worker), shuffled per (seed, epoch).

    Call `set_epoch(e)` before each epoch (as with DistributedSampler). `rank`/`world_size` default
    to torch.distributed's when it is initialised, else a world of one. Other arguments go to
    FrameDataset; `chunk_size` samples are fetched concurrently at a time.
    """

    def __init__(
        self,
        source: Any,
        *,
        shuffle: bool = True,
        seed: int = 0,
        rank: int | None = None,
        world_size: int | None = None,
        chunk_size: int = 32,
        **frame_dataset_args: Any,
    ):
        self.frames = FrameDataset(source, **frame_dataset_args)
        self.shuffle = shuffle
        self.seed = int(seed)
        self.epoch = 0
        self.chunk_size = max(1, int(chunk_size))
        self.rank, self.world_size = self._world(rank, world_size)

    @staticmethod
    def _world(rank: int | None, world_size: int | None) -> tuple[int, int]:
        if rank is None or world_size is None:
            dist = torch.distributed
            if dist.is_available() and dist.is_initialized():
                rank = dist.get_rank() if rank is None else rank
                world_size = dist.get_world_size() if world_size is None else world_size
        rank, world_size = int(rank or 0), int(world_size or 1)
        if not 0 <= rank < world_size:
            raise LoaderError(f"rank {rank} is outside a world of {world_size}")
        return rank, world_size

    def set_epoch(self, epoch: int) -> None:
        """Choose the epoch whose shuffle the next iteration uses."""
        self.epoch = int(epoch)

    @property
    def skipped(self) -> int:
        return self.frames.skipped

    def order(self) -> np.ndarray:
        """Every sample index in this epoch's order (the same for every rank and worker)."""
        n = len(self.frames)
        if not self.shuffle:
            return np.arange(n)
        return np.random.default_rng([self.seed, self.epoch]).permutation(n)

    def shard(self, worker: int = 0, num_workers: int = 1) -> np.ndarray:
        """The sample indices that this rank's `worker` of `num_workers` reads this epoch."""
        # Ranks first, then workers: every rank reads len(self) samples (uneven DDP step counts hang).
        return self.order()[self.rank :: self.world_size][worker::num_workers]

    def __len__(self) -> int:
        """Samples this rank reads per epoch (all of its workers together)."""
        return len(range(self.rank, len(self.frames), self.world_size))

    def __iter__(self):
        info = get_worker_info()
        mine = self.shard(info.id, info.num_workers) if info is not None else self.shard()
        for start in range(0, len(mine), self.chunk_size):
            yield from self.frames.__getitems__(mine[start : start + self.chunk_size].tolist())


def collate_detection(batch: list[tuple[Any, dict[str, torch.Tensor]]]) -> tuple[Any, list[dict[str, torch.Tensor]]]:
    """Detection batches: images stacked when they share a shape (else a list), targets as a list."""
    images = [image for image, _ in batch]
    same = all(isinstance(i, torch.Tensor) and i.shape == images[0].shape for i in images)
    return (torch.stack(images) if same and images else images), [target for _, target in batch]


def collate_sequences(batch: list[tuple[torch.Tensor, torch.Tensor]]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Sequence batches: frames zero-padded to [B, T, C, H, W], each sequence's length, stacked targets."""
    lengths = torch.tensor([frames.shape[0] for frames, _ in batch])
    longest = int(lengths.max()) if len(batch) else 0
    padded = batch[0][0].new_zeros((len(batch), longest, *batch[0][0].shape[1:])) if batch else torch.zeros(0)
    for i, (frames, _) in enumerate(batch):
        padded[i, : frames.shape[0]] = frames
    return padded, lengths, torch.stack([target for _, target in batch]) if batch else torch.zeros(0)
