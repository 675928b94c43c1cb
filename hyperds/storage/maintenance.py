"""Compaction and removal of old versions."""

from __future__ import annotations

import datetime as dt

from .errors import lance_errors
from .handle import Handle


def compact(ds: Handle) -> None:
    """Merge small fragments into larger ones (one new version)."""
    with lance_errors(ds.uri, "compacting"):
        ds.optimize.compact_files()


def remove_old_versions(ds: Handle, older_than: dt.timedelta) -> tuple[int, int]:
    """Delete versions older than `older_than` that no tag keeps; (versions removed, bytes freed)."""
    with lance_errors(ds.uri, "removing old versions"):
        stats = ds.cleanup_old_versions(older_than=older_than, error_if_tagged_old_versions=False)
    return stats.old_versions, stats.bytes_removed
