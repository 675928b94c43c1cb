"""Remove old, unpinned Lance versions from every table of a store, never one a published view needs.

Before deleting anything it re-creates any missing `view.<name>.<version>` tag from the `_views`
catalog (the source of truth), and frees the locks of publishes interrupted long ago.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .. import storage
from . import catalog as cat

if TYPE_CHECKING:
    from ..store import Store

log = logging.getLogger(__name__)

STALE_LOCK = dt.timedelta(minutes=15)


@dataclass(frozen=True)
class CleanupResult:
    """Per table: old versions removed and bytes freed; tags re-created; stale publish locks freed."""

    versions_removed: dict[str, int]
    bytes_removed: dict[str, int]
    tags_restored: list[str]
    locks_freed: list[str]


def cleanup(store: Store, older_than: dt.timedelta = dt.timedelta(days=7)) -> CleanupResult:
    """Delete versions older than `older_than` that no tag protects, in every table of `store`."""
    published = [r for r in cat.read_rows(store, columns=["name", "version", "status", "datasets"])
                 if r["status"] == cat.PUBLISHED]
    restored = _restore_tags(store, published)
    freed = _free_stale_locks(store, {cat.tag_name(r["name"], r["version"]) for r in published})
    removed: dict[str, int] = {}
    freed_bytes: dict[str, int] = {}
    for table in store.table_names():
        if table in (cat.VIEWS, cat.RUNS):  # one small fragment per publish or run: merge them
            storage.maintenance.compact(store.open_lance(table))
        removed[table], freed_bytes[table] = storage.maintenance.remove_old_versions(store.open_lance(table), older_than)
    log.info("cleanup: removed %d old versions (%d bytes)", sum(removed.values()), sum(freed_bytes.values()))
    return CleanupResult(removed, freed_bytes, restored, freed)


def _restore_tags(store: Store, published: list[dict]) -> list[str]:
    wanted: dict[str, dict[str, int]] = {}
    for row in published:
        for pin in row["datasets"]:
            wanted.setdefault(pin["dataset"], {})[cat.tag_name(row["name"], row["version"])] = pin["version"]
    restored = []
    have_datasets = set(store.datasets())
    for ds_name, tags in wanted.items():
        if ds_name not in have_datasets:
            log.warning("cleanup: dataset %s, pinned by views, no longer exists", ds_name)
            continue
        ds = store.open_lance(ds_name)
        existing = storage.tags.list_tags(ds)
        versions = set(storage.versions(ds))
        for tag, version in tags.items():
            if tag in existing:
                continue
            if version not in versions:
                log.warning("cleanup: %s needs %s version %d, which is already gone", tag, ds_name, version)
                continue
            storage.tags.create_tag(ds, tag, version)
            restored.append(f"{ds_name}:{tag}")
    return restored


def _free_stale_locks(store: Store, published_tags: set[str]) -> list[str]:
    """Drop `view.*` tags of publishes that never wrote their catalog row, once older than STALE_LOCK."""
    now = dt.datetime.now(dt.timezone.utc)
    views = cat.views_table(store)
    freed = []
    for tag, info in storage.tags.list_tags(views).items():
        if not tag.startswith("view.") or tag in published_tags or now - info.created_at < STALE_LOCK:
            continue
        for ds_name in store.datasets():
            ds = store.open_lance(ds_name)
            if tag in storage.tags.list_tags(ds):
                storage.tags.delete_tag(ds, tag)
        storage.tags.delete_tag(views, tag)
        freed.append(tag)
    return freed
