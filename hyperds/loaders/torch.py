"""PyTorch datasets over a view's frames: images fetched concurrently, decoded upright, fork- and spawn-safe.

`FrameDataset` is map-style (`__getitems__` fetches a whole batch with threads); `IterableFrameDataset`
shards it over (DDP rank x worker) with a deterministic per-(seed, epoch) shuffle.
"""

from __future__ import annotations

import logging
import multiprocessing
import multiprocessing.context
import os
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import torch
from torch.utils.data import Dataset, IterableDataset, get_worker_info

from ..errors import ImageLoadError, LoaderError
from ..source import single_root
from . import index
from ..images.fetch import Fetcher
from .pipeline import ImagePipeline
from .plan import UNITS, CropPlan, FramePlan, SamplePlan, SequencePlan
from .targets import TARGETS, TargetEncoder, check_target, make_target
from .worker_memory import tune_worker_heap

if TYPE_CHECKING:
    from ..source import FrameSource

__all__ = [
    "FrameDataset", "IterableFrameDataset", "TARGETS", "UNITS", "collate_detection", "collate_sequences",
]

log = logging.getLogger(__name__)


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


class FrameDataset(Dataset):
    """Map-style dataset over the frames of a FrameSource (View, Query, Dataset) or a pyarrow Table of frames.

    Samples are `(image, target)`. `unit`: 'frame' (one per frame), 'crop' (one per annotation box,
    cropped with `crop_padding` x box size per side, boxes chosen by `box_filter`, a pyarrow
    expression over annotation fields such as `pc.field("confidence") >= 0.9`) or 'sequence' (the
    frames of one seq_id burst by frame_num, up to `max_frames`, stacked). `target`:
    'classification' (class index, or a multi-hot vector with `multilabel=True` and always for
    sequences), 'detection' (dict of pixel xyxy `boxes` after the transform and `labels`), or a
    callable over the frame's row dict. Classes come from `label_map` (raw label -> class name or
    index; default: the source's own label map), `classes` (the index order), else every label
    seen, sorted. Relative URIs resolve against `root` (default: the source's roots, each of a
    view's datasets its own). `split` picks one split of a view.
    Constructing reads no image; with on_error='skip' unreadable frames are dropped and counted in
    `skipped`, else they raise ImageLoadError naming the frame and its URI. `record_run="id"` records
    in the store's `_runs` that run "id" trained on this (published) view version, with `run_info`.

    Composed of a sample plan (plan.py: which frame rows and regions make sample i), a target encoder
    (targets.py) and an image pipeline (pipeline.py: fetch, decode, crop, transform).
    """

    def __init__(
        self,
        source: FrameSource | pa.Table,
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
        table_source = isinstance(source, pa.Table)
        if record_run is not None and (table_source or source.describe().kind != "view"):
            raise LoaderError(
                f"record_run={record_run!r} needs a published view as the source, not {type(source).__name__}; "
                "publish a view and pass it (or drop record_run)"
            )
        self.target = target
        self.unit = unit
        self.on_error = on_error
        self.multilabel = multilabel or unit == "sequence"
        self._skipped = _SkipCounter()

        uses_boxes = target == "detection" or unit == "crop"
        # The source's label map applies unless one is given (a callable frame target needs none).
        view_map = None
        if not table_source and label_map is None and (uses_boxes or not callable(target)):
            view_map = source.label_map
        roots = {"": root} if root is not None else {"": None} if table_source else source.roots()
        one_root, the_root = single_root(roots)
        columns = self._columns(target, unit, uses_boxes, view_map is not None)
        if columns is not None and not one_root:
            columns.append("dataset")
        table = index.read_rows(source, columns, split)
        if view_map is not None:  # frames take the view's `classes` column and classes, boxes its label map
            view_classes = source.classes
            label_map = view_map.as_dict(view_classes) if uses_boxes else None
            classes = view_classes if classes is None else classes
        # policy="public": the store's sensitive-data policy (hyperds.workflows.policy) leaves frames out,
        # coarsens coordinates and blurs people boxes on the fly; "full"/None: nothing.
        from ..workflows.policy import build_plan

        plan = build_plan(source, policy)
        if plan is not None:
            table = plan.apply(table)
        labels_column = "classes" if view_map is not None else "labels"
        boxes, frame_classes = self._indices(table, target, uses_boxes, labels_column, label_map, classes, box_filter)

        self._plan: SamplePlan = self._make_plan(table, unit, boxes, crop_padding, max_frames)
        self._target: TargetEncoder = make_target(
            target, unit, self.multilabel, table, boxes, frame_classes, self.num_classes
        )
        root_of_row = None if one_root else ImagePipeline.root_codes(index.column(table, "dataset"), list(roots))
        fetcher = Fetcher(self._storage_options(source, storage_options), cache_dir, max(1, int(fetch_threads)))
        self._images = ImagePipeline(
            index.column(table, "frame_id"), index.column(table, "uri"),
            [the_root] if one_root else list(roots.values()), root_of_row,
            fetcher, transform, self._target.boxes_for, fetch_threads,
            plan.blur_image if plan is not None and plan.blur else None,
        )
        if record_run is not None:  # in the constructing process only: workers get a pickled copy
            info = {"unit": unit, "split": split, "samples": len(self), "classes": self.classes, **(run_info or {})}
            source.record_run(record_run, info=info)

    # -- construction ----------------------------------------------------------------------
    @staticmethod
    def _check_arguments(target: Any, unit: str, on_error: str, crop_padding: float, max_frames: int) -> None:
        check_target(target, unit, UNITS)
        if on_error not in ("raise", "skip"):
            raise LoaderError(f"on_error must be 'raise' or 'skip', not {on_error!r}")
        if crop_padding < 0 or max_frames < 1:
            raise LoaderError(f"crop_padding must be >= 0 and max_frames >= 1 (got {crop_padding}, {max_frames})")

    @staticmethod
    def _storage_options(source: FrameSource | pa.Table, explicit: Mapping[str, Any] | None) -> dict[str, Any]:
        inherited = {} if isinstance(source, pa.Table) else dict(source.store.storage_options or {})
        return {**inherited, **dict(explicit or {})}

    @staticmethod
    def _columns(target: Any, unit: str, uses_boxes: bool, view_mapped: bool) -> list[str] | None:
        """The columns the plan and target read (None: every column, for a callable target's rows)."""
        if callable(target):
            return None
        columns = ["frame_id", "uri"]
        if uses_boxes:
            columns.append("annotations")
        if view_mapped:
            columns.append("classes")
        elif not uses_boxes:
            columns.append("labels")
        if unit == "sequence":
            columns += ["seq_id", "frame_num"]
        return columns

    def _indices(
        self,
        table: pa.Table,
        target: Any,
        uses_boxes: bool,
        labels_column: str,
        label_map: Mapping[str, str | int] | None,
        classes: Sequence[str] | None,
        box_filter: pc.Expression | None,
    ) -> tuple[index.Boxes | None, tuple[np.ndarray, np.ndarray] | None]:
        """The boxes (detection, crops) or each frame's class ids (frame classification), and the classes."""
        self.classes: list[str] | None = None
        self.num_classes: int | None = None
        if uses_boxes:
            annotations = index.column(table, "annotations")
            observed = pc.list_flatten(annotations).field("label") if not (label_map or classes) else pa.array([], pa.string())
            mapping = index.Classes.build(label_map, classes, observed)
            self.classes, self.num_classes = mapping.names, mapping.count
            return index.boxes(annotations, mapping, box_filter), None
        if callable(target):
            return None, None
        labels = index.column(table, labels_column)
        observed = pc.list_flatten(labels) if not (label_map or classes) else pa.array([], pa.string())
        mapping = index.Classes.build(label_map, classes, observed)
        self.classes, self.num_classes = mapping.names, mapping.count
        offsets, ids = index.frame_classes(labels, mapping)
        if not self.multilabel:
            self._require_one_class(offsets, index.column(table, "frame_id"))
        return None, (offsets, ids)

    @staticmethod
    def _make_plan(table: pa.Table, unit: str, boxes: index.Boxes | None, padding: float, max_frames: int) -> SamplePlan:
        if unit == "crop":
            return CropPlan(boxes, float(padding))
        if unit == "sequence":
            frame_num = index.column(table, "frame_num") if "frame_num" in table.column_names else None
            offsets, rows = index.sequences(index.column(table, "seq_id"), frame_num)
            return SequencePlan(offsets, rows, int(max_frames))
        return FramePlan(table.num_rows)

    @staticmethod
    def _require_one_class(offsets: np.ndarray, frame_ids: pa.Array) -> None:
        counts = np.diff(offsets)
        bad = np.flatnonzero(counts != 1)
        if len(bad):
            shown = ", ".join(f"{frame_ids[int(i)].as_py()!r} ({counts[i]} classes)" for i in bad[:5])
            raise LoaderError(
                f"{len(bad)} frame(s) do not have exactly one class, e.g. {shown}; pass multilabel=True for "
                "multi-hot targets, or narrow the view / label_map so each frame has one class"
            )

    # -- public ----------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._plan)

    @property
    def transform(self) -> Callable[..., Any] | None:
        return self._images.transform

    @property
    def skipped(self) -> int:
        """Frames skipped so far (all worker processes) because they could not be loaded."""
        return self._skipped.value

    def __repr__(self) -> str:
        return f"FrameDataset({len(self)} {self.unit}s, target={self.target!r}, classes={self.num_classes}, {self._images.fetcher!r})"

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
        jobs = [(slot, row, region) for slot, i in enumerate(indices) for row, region in self._plan.jobs(i)]
        uris = self._images.resolve([row for _, row, _ in jobs])
        results = self._images.run([(row, uri, region) for (_, row, region), uri in zip(jobs, uris)])
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

    def _sample(self, index: int, loaded: list[tuple[int, str, Any]]) -> tuple[Any, Any]:
        """Sample `index` from its loaded frames: (frame row, resolved uri, (image, extra)) each."""
        rows = [row for row, _, _ in loaded]
        uris = [uri for _, uri, _ in loaded]
        image = self._plan.collect([out[0] for _, _, out in loaded])
        return image, self._target.encode(index, rows, uris, [out[1] for _, _, out in loaded])


class IterableFrameDataset(IterableDataset):
    """A FrameDataset streamed in disjoint shards per (DDP rank x DataLoader worker), shuffled per (seed, epoch).

    Call `set_epoch(e)` before each epoch (as with DistributedSampler). `rank`/`world_size` default
    to torch.distributed's when it is initialised, else a world of one. Other arguments go to
    FrameDataset; `chunk_size` samples are fetched concurrently at a time.
    """

    def __init__(
        self,
        source: FrameSource | pa.Table,
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
