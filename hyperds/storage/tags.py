"""Lance tags: named versions that cleanup keeps, also used as locks.

Tag creation is atomic and refuses an existing name (storage.Exists), which is what makes a tag a lock
(views' publish relies on it; pinned by tests/test_storage_kernel.py).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from .errors import Exists, lance_errors
from .handle import Handle


@dataclass(frozen=True)
class Tag:
    version: int
    created_at: dt.datetime | None


def list_tags(ds: Handle) -> dict[str, Tag]:
    with lance_errors(ds.uri, "listing tags"):
        raw = ds.tags.list()
    return {name: Tag(info["version"], info.get("created_at")) for name, info in raw.items()}


def create_tag(ds: Handle, name: str, version: int) -> None:
    """Tag `version` as `name`; storage.Exists if the tag exists (the lock is held)."""
    with lance_errors(ds.uri, f"creating tag {name!r}"):
        ds.tags.create(name, version)


def set_tag(ds: Handle, name: str, version: int) -> None:
    """Point tag `name` at `version`, creating it or moving it."""
    try:
        create_tag(ds, name, version)
    except Exists:
        with lance_errors(ds.uri, f"moving tag {name!r}"):
            ds.tags.update(name, version)


def delete_tag(ds: Handle, name: str) -> None:
    with lance_errors(ds.uri, f"deleting tag {name!r}"):
        ds.tags.delete(name)
