"""Sample plans: which frame rows (and which region of each) make up sample i.

A loader is a sample plan x a target encoder (targets.py) x an image pipeline (pipeline.py). The plan
is the "unit": one sample per frame, per annotation box (a crop), or per burst (a sequence). It holds
only flat numpy arrays (index.py), so forked DataLoader workers share it unchanged. Internal to
hyperds.loaders; add a unit by adding a plan here and naming it in UNITS.
"""

from __future__ import annotations

from dataclasses import dataclass

from typing import Any

import numpy as np
import torch

from .index import Boxes

Region = tuple[float, float, float, float]  # normalised x0, y0, x1, y1
Job = tuple[int, "Region | None"]  # (frame row, crop region or None: the whole image)


def padded_region(xywh: np.ndarray, padding: float) -> Region:
    """Normalised x0, y0, x1, y1 of a box grown by `padding` x its size on each side, clipped to the image."""
    x, y, w, h = (float(v) for v in xywh)
    return max(0.0, x - w * padding), max(0.0, y - h * padding), min(1.0, x + w * (1 + padding)), min(1.0, y + h * (1 + padding))


@dataclass
class FramePlan:
    """One sample per frame row, the whole image."""

    rows: int

    def __len__(self) -> int:
        return self.rows

    def jobs(self, index: int) -> list[Job]:
        return [(index, None)]

    def collect(self, images: list[Any]) -> Any:
        return images[0]


@dataclass
class CropPlan:
    """One sample per kept annotation box: its frame, cropped to the box grown by `padding` per side."""

    boxes: Boxes
    padding: float

    def __len__(self) -> int:
        return len(self.boxes.frame)

    def jobs(self, index: int) -> list[Job]:
        return [(int(self.boxes.frame[index]), padded_region(self.boxes.xywh[index], self.padding))]

    def collect(self, images: list[Any]) -> Any:
        return images[0]


@dataclass
class SequencePlan:
    """One sample per burst (seq_id): its frames by frame_num, at most `max_frames`, whole images."""

    offsets: np.ndarray  # int64 [s + 1]
    rows: np.ndarray  # int64 frame rows, burst by burst
    max_frames: int

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def jobs(self, index: int) -> list[Job]:
        start, stop = self.offsets[index], self.offsets[index + 1]
        return [(int(r), None) for r in self.rows[start : min(stop, start + self.max_frames)]]

    def collect(self, images: list[Any]) -> Any:
        """The burst's frames stacked [T, ...] when the transform made tensors, else as a list."""
        return torch.stack(images) if all(isinstance(i, torch.Tensor) for i in images) else images


SamplePlan = FramePlan | CropPlan | SequencePlan
UNITS = ("frame", "crop", "sequence")
