"""Per-process memory of the review lists: which frames a review works through, and its progress.

A review's frames (a review-queue or selection draft, a published view, or a query) are resolved
once when the review starts and kept, sorted by frame_id, so each next-frame step is a bisect
instead of re-running the query; the frames' current state is always read fresh. Several worker
processes each resolve their own copy (same frames, no shared state needed).
"""

from __future__ import annotations

import bisect
import threading
import time
from dataclasses import dataclass, field


@dataclass
class ReviewList:
    frame_ids: list[str]
    started: float = field(default_factory=time.time)
    decided: set[str] = field(default_factory=set)
    decisions: int = 0
    first_decision: float | None = None
    labels: list[str] = field(default_factory=list)  # autocomplete: the taxonomy or the labels in use

    def at_or_after(self, frame_id: str | None) -> str | None:
        i = 0 if frame_id is None else bisect.bisect_left(self.frame_ids, frame_id)
        return self.frame_ids[i] if i < len(self.frame_ids) else None

    def after(self, frame_id: str) -> str | None:
        i = bisect.bisect_right(self.frame_ids, frame_id)
        return self.frame_ids[i] if i < len(self.frame_ids) else None

    def before(self, frame_id: str) -> str | None:
        i = bisect.bisect_left(self.frame_ids, frame_id)
        return self.frame_ids[i - 1] if i > 0 else None

    def following(self, frame_id: str, n: int) -> list[str]:
        i = bisect.bisect_right(self.frame_ids, frame_id)
        return self.frame_ids[i : i + n]

    def position(self, frame_id: str) -> int:
        return bisect.bisect_left(self.frame_ids, frame_id) + 1

    def record(self, frame_id: str) -> None:
        self.decided.add(frame_id)
        self.decisions += 1
        self.first_decision = self.first_decision or time.time()

    def rate_per_min(self) -> float | None:
        if not self.first_decision or self.decisions < 2:
            return None
        minutes = max(time.time() - self.first_decision, 1.0) / 60
        return self.decisions / minutes


class ReviewLists:
    """Review lists by key (dataset, kind, name-or-query, version); thread-safe."""

    def __init__(self, max_lists: int = 64):
        self._lists: dict[tuple, ReviewList] = {}
        self._lock = threading.Lock()
        self.max_lists = max_lists

    def get(self, key: tuple) -> ReviewList | None:
        with self._lock:
            return self._lists.get(key)

    def put(self, key: tuple, frame_ids: list[str]) -> ReviewList:
        with self._lock:
            if len(self._lists) >= self.max_lists:  # drop the oldest review
                oldest = min(self._lists, key=lambda k: self._lists[k].started)
                del self._lists[oldest]
            made = self._lists[key] = ReviewList(sorted(frame_ids))
            return made
