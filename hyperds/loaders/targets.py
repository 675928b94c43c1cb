"""Target encoders: what a sample's target is, given the frame rows (and box) its plan chose.

A loader is a sample plan (plan.py) x a target encoder x an image pipeline (pipeline.py). Each encoder
turns (sample index, frame rows, resolved URIs, what the pipeline returned beside each image) into the
target; detection also hands the image pipeline each frame's boxes, so the transform moves them with
the pixels. Internal to hyperds.loaders; add a target by adding an encoder here and choosing it in
make_target.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import torch

from ..errors import LoaderError
from .index import Boxes

TARGETS = ("classification", "detection")


def pixel_xyxy(xywh: np.ndarray, width: int, height: int) -> torch.Tensor:
    """Normalised [m, 4] x, y, w, h boxes as float32 pixel x0, y0, x1, y1 on a width x height image."""
    boxes = torch.from_numpy(np.ascontiguousarray(xywh, dtype=np.float32)).reshape(-1, 4)
    scale = torch.tensor([width, height, width, height], dtype=torch.float32)
    return torch.cat([boxes[:, :2], boxes[:, :2] + boxes[:, 2:]], dim=1) * scale


@dataclass
class ClassIndex:
    """Single-label classification: the one class index of the sample's frame."""

    offsets: np.ndarray  # CSR offsets [n + 1] of each frame's class ids
    ids: np.ndarray
    boxes_for = None

    def encode(self, index: int, rows: list[int], uris: list[str], extras: list[Any]) -> torch.Tensor:
        return torch.tensor(int(self.ids[self.offsets[rows[0]]]))


@dataclass
class MultiHot:
    """Multi-label classification (and every sequence): a float multi-hot vector over the classes of the rows."""

    offsets: np.ndarray
    ids: np.ndarray
    num_classes: int
    boxes_for = None

    def encode(self, index: int, rows: list[int], uris: list[str], extras: list[Any]) -> torch.Tensor:
        hot = torch.zeros(self.num_classes, dtype=torch.float32)
        for r in rows:
            ids = self.ids[self.offsets[r] : self.offsets[r + 1]]
            hot[torch.from_numpy(ids.copy())] = 1.0
        return hot


@dataclass
class BoxClass:
    """Crop classification: the class index of the box the crop was cut from (sample index = box index)."""

    cls: np.ndarray
    boxes_for = None

    def encode(self, index: int, rows: list[int], uris: list[str], extras: list[Any]) -> torch.Tensor:
        return torch.tensor(int(self.cls[index]))


@dataclass
class Detection:
    """Detection: pixel xyxy `boxes` (as the transform left them) and their class `labels`."""

    boxes: Boxes

    def boxes_for(self, row: int, width: int, height: int) -> torch.Tensor:
        start, stop = self.boxes.offsets[row], self.boxes.offsets[row + 1]
        return pixel_xyxy(self.boxes.xywh[start:stop], width, height)

    def encode(self, index: int, rows: list[int], uris: list[str], extras: list[Any]) -> dict[str, torch.Tensor]:
        start, stop = self.boxes.offsets[rows[0]], self.boxes.offsets[rows[0] + 1]
        return {"boxes": extras[0], "labels": torch.from_numpy(self.boxes.cls[start:stop].copy())}


@dataclass
class RowTarget:
    """A user callable over the frame's row dict (`uri` resolved; a crop adds `crop_xywh`), or over the
    list of row dicts of a sequence."""

    fn: Callable[[Any], Any]
    table: pa.Table
    crop_xywh: np.ndarray | None  # a crop plan's boxes, else None
    sequence: bool
    boxes_for = None

    def encode(self, index: int, rows: list[int], uris: list[str], extras: list[Any]) -> Any:
        records = [self._row(r, uri) for r, uri in zip(rows, uris)]
        if self.sequence:
            return self.fn(records)
        if self.crop_xywh is not None:
            records[0]["crop_xywh"] = self.crop_xywh[index].tolist()
        return self.fn(records[0])

    def _row(self, row: int, uri: str) -> dict[str, Any]:
        record = self.table.slice(row, 1).to_pylist()[0]
        record["uri"] = uri  # resolved with the batch
        return record


TargetEncoder = ClassIndex | MultiHot | BoxClass | Detection | RowTarget


def make_target(
    target: str | Callable[[Any], Any],
    unit: str,
    multilabel: bool,
    table: pa.Table,
    boxes: Boxes | None,
    frame_classes: tuple[np.ndarray, np.ndarray] | None,
    num_classes: int | None,
) -> TargetEncoder:
    """The encoder for `target` on samples of `unit` (the one place target x unit is decided)."""
    if callable(target):
        return RowTarget(target, table, boxes.xywh if unit == "crop" else None, unit == "sequence")
    if target == "detection":
        return Detection(boxes)
    if unit == "crop":
        return BoxClass(boxes.cls)
    offsets, ids = frame_classes
    return MultiHot(offsets, ids, num_classes) if multilabel else ClassIndex(offsets, ids)


def check_target(target: Any, unit: str, units: tuple[str, ...]) -> None:
    """LoaderError for a target or unit the loader does not know, or a pair that cannot go together."""
    if not callable(target) and target not in TARGETS:
        raise LoaderError(f"unknown target {target!r}: use one of {TARGETS} or a callable over the frame's row")
    if unit not in units:
        raise LoaderError(f"unknown unit {unit!r}: use one of {units}")
    if target == "detection" and unit != "frame":
        raise LoaderError(f"target='detection' needs unit='frame' (got {unit!r}): crops and sequences have no boxes")
