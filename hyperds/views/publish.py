"""Publishing a view version: pin, digest, record, all or nothing.

1. Take the lock: create Lance tag `view.<name>.<version>` on `_views` (tag creation is atomic, so of two
   processes publishing one version exactly one wins; every lock tags the same `_views` version, so
   cleanup can still compact the rest). A `merge_insert` on (name, version) is no lock: concurrent
   insert-only merges of one key all succeed.
2. Pin every dataset at its current Lance version and tag that version with the same name (cleanup
   keeps tagged versions).
3. Resolve, digest and append the published row: the commit point. Any failure deletes the tags made.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from .. import storage
from ..errors import ViewExistsError
from . import catalog as cat
from .checks import check_column_types
from .codec import to_row
from .identity import dataset_id
from .manifest import DIGEST_COLUMNS, digest, open_current, resolve

if TYPE_CHECKING:
    from ..store import Store
    from .spec import ViewSpec

log = logging.getLogger(__name__)


def publish(store: Store, name: str, spec: ViewSpec, version: str | None, message: str | None,
            author: str | None) -> dict[str, Any]:
    """Publish draft `spec` of view `name` as `version` (None: the next minor after the latest published,
    "1.0" for the first); returns the published `_views` row."""
    existing = cat.published_versions(cat.read_rows(store, name=name, columns=["version", "status"]))
    if version is None:
        major, minor = cat.version_key(existing[-1]) if existing else (1, -1)
        version = f"{major}.{minor + 1}"
    cat.check_version(version)
    if version in existing:
        raise ViewExistsError(
            f"view {name!r} version {version} is already published; existing versions: {', '.join(existing)}. "
            "Publish under a new version (omit version for the next minor)"
        )
    tag = cat.tag_name(name, version)
    views = cat.views_table(store)
    try:
        storage.tags.create_tag(views, tag, _lock_version(views))
    except storage.Exists as exc:
        raise ViewExistsError(
            f"view {name!r} version {version} was just published, or is being published, by another process "
            "(an interrupted publish frees the version after store.cleanup() once 15 minutes have passed)"
        ) from exc
    tagged: list[str] = []
    try:
        handles = open_current(store, spec.datasets)
        pins = {ds_name: storage.version(handle) for ds_name, handle in handles.items()}
        check_column_types(name, {n: storage.schema(h) for n, h in handles.items()})
        for ds_name, handle in handles.items():
            _tag(handle, tag, pins[ds_name])
            tagged.append(ds_name)
        manifest = resolve(store, spec, pins, DIGEST_COLUMNS, handles)
        whole, parts = digest(manifest)
        row = to_row(name, version, cat.PUBLISHED, spec, pins, existing[-1] if existing else None, message, author)
        row.update(frame_count=manifest.num_rows, digest=whole, parts=parts,
                   dataset_ids=[{"dataset": n, "id": dataset_id(h)} for n, h in sorted(handles.items())])
        cat.append_row(store, row)
    except BaseException:
        for ds_name in tagged:
            storage.tags.delete_tag(handles[ds_name], tag)
        storage.tags.delete_tag(cat.views_table(store), tag)
        raise
    log.info("published view %s %s: %d frames, digest %s", name, version, row["frame_count"], whole)
    return row


def _lock_version(views: Any) -> int:
    """The `_views` version lock tags point at: the one existing `view.*` tags hold, else the current one.

    One tagged version for all publishes, so cleanup's compaction can drop every other version.
    """
    held = [info.version for tag, info in storage.tags.list_tags(views).items() if tag.startswith("view.")]
    return min(held, default=storage.version(views))


def _tag(ds: Any, tag: str, version: int) -> None:
    # create, or move a tag left by a publish interrupted before its catalog row: we hold the lock now
    storage.tags.set_tag(ds, tag, version)
