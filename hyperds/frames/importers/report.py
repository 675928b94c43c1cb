"""ImportReport: what one import read, wrote, skipped, clamped and flagged.

Returned by every importer and printed by `hyperds import`; a re-import shows 0 new frames.
"""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class ImportReport:
    """Counts of one import; `warnings` names anything kept but worth a look (shared category names...)."""

    format: str
    path: str
    dataset: str
    frames_read: int
    frames_inserted: int
    frames_skipped: int
    annotations_read: int
    annotations_inserted: int
    boxes_clamped: int = 0
    failures: int = 0
    event_observations: int = 0
    images_checked: int = 0
    images_unchecked: int = 0
    duplicate_categories: tuple[tuple[str, tuple[str, ...]], ...] = ()
    warnings: tuple[str, ...] = ()
    version_before: int = 0
    version_after: int = 0

    @property
    def written(self) -> bool:
        """True when the import added frames (a new dataset version)."""
        return self.frames_inserted > 0

    def summary(self) -> str:
        """A few human-readable lines for the CLI and logs."""
        lines = [
            f"{self.format} import of {self.path} into dataset {self.dataset!r}:",
            f"  frames: {self.frames_read} read, {self.frames_inserted} new, "
            f"{self.frames_skipped} already in the dataset",
            f"  annotations: {self.annotations_read} read, {self.annotations_inserted} written",
        ]
        optional = [
            ("boxes clamped into [0, 1] (float noise)", self.boxes_clamped),
            ("images with a detector failure (kept, see column 'failure')", self.failures),
            ("event-level observations (attached to every frame of their event)", self.event_observations),
            ("local images checked", self.images_checked),
            ("remote images not checked", self.images_unchecked),
        ]
        lines += [f"  {text}: {n}" for text, n in optional if n]
        for name, ids in self.duplicate_categories:
            labels = ", ".join(f"'{name}#{i}'" for i in ids)
            lines.append(f"  category name {name!r} is shared by ids {', '.join(ids)}: kept distinct as {labels}")
        lines += [f"  warning: {w}" for w in self.warnings]
        if self.written:
            lines.append(f"  dataset version {self.version_before} -> {self.version_after}")
        else:
            lines.append(f"  nothing new: dataset stays at version {self.version_after}")
        return "\n".join(lines)
