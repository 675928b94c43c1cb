"""A dataset's identity: an id written into its schema metadata when it is created.

A name and a version number do not name data for good: drop a dataset, create one of the same
name and write to it until it reaches the version a view pinned, and name and number match other
frames. Published views record the id of each dataset they pin; resolving one against a dataset
with another id (or none left) is an error naming the view, never another dataset's frames.
Datasets created before ids existed have none, and their pins are not checked.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

from .. import storage
from ..errors import IntegrityError

if TYPE_CHECKING:
    from ..store import Store

ID_KEY = "hyperds.id"


def new_id() -> str:
    return uuid.uuid4().hex


def dataset_id(handle: Any) -> str | None:
    """The id in a Lance dataset's schema metadata (None for datasets created before ids)."""
    value = (storage.schema(handle).metadata or {}).get(ID_KEY.encode())
    return value.decode() if value else None


def check_pins(store: Store, view: str, version: str, pins: dict[str, int], ids: dict[str, str | None],
               handles: dict[str, Any]) -> None:
    """Raise IntegrityError unless every pinned dataset is still the one the view recorded; fills `handles`."""
    for name, pin in pins.items():
        want = ids.get(name)
        if want is None:
            continue
        if name not in handles:
            if name not in store.datasets():
                raise IntegrityError(
                    f"view {view!r} version {version} pins dataset {name!r}, which was dropped from {store.uri}; "
                    "the view cannot be read any more (publish a new view over the datasets there are)"
                )
            latest = store.open_lance(name)
            if pin in storage.versions(latest):
                handles[name] = store.open_lance(name, version=pin)
                got = dataset_id(handles[name])
            else:  # the pinned version is gone: resolving says so, unless the dataset itself is another one
                got = dataset_id(latest)
        else:
            got = dataset_id(handles[name])
        if got != want:
            handles.pop(name, None)
            raise IntegrityError(
                f"view {view!r} version {version} pins dataset {name!r} (id {want}) at version {pin}, but the dataset "
                f"{name!r} in the store now is another one (id {got}): it was dropped and created again. The view's "
                "frames are gone; publish a new view over the new dataset"
            )


def views_pinning(store: Store, dataset: str) -> list[str]:
    """'name version' of every published view that pins `dataset`."""
    from . import catalog as cat

    rows = cat.read_rows(store, columns=["name", "version", "status", "datasets"])
    return [f"{r['name']} {r['version']}" for r in rows
            if r["status"] == cat.PUBLISHED and any(d["dataset"] == dataset for d in r["datasets"] or [])]
