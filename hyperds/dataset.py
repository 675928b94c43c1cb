"""Dataset: the user-facing handle on one frames table.

It joins the layers: frames storage (FrameTable) plus the query, versioning and workflow
operations, each implemented in its own package and reached through a method here.
"""

from __future__ import annotations

from .frames.table import FrameTable


class Dataset(FrameTable):
    """A dataset of frames: add, read, query, correct and audit."""

    def __repr__(self) -> str:
        at = f" @v{self._pinned}" if self._pinned is not None else ""
        return f"Dataset({self.name!r}{at}, store={self.store.uri!r})"
