"""Undo a table's last commit when the write it prepared failed, so a failed write leaves no trace.

Adding rows with new user columns takes two Lance commits (add the columns, then insert), since
Lance's merge-insert cannot widen the schema. When the insert fails, the first commit is taken
back by removing its manifest: the table is then at the version, with the schema, it had before.
Only a version still latest is removed; one another writer has built on is left, and logged.
Lance has no API to take a version back, so this relies on its manifest naming (both schemes);
tests/test_failed_writes.py fails if a pylance upgrade changes it.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from ..fsio import open_filesystem, split_protocol
from .handle import version as handle_version

if TYPE_CHECKING:
    from .connection import Connection

log = logging.getLogger(__name__)

_U64_MAX = 2**64 - 1


def manifest_paths(table_path: str, version: int) -> list[str]:
    """Where Lance may keep the manifest of `version`: the V2 (inverted) and V1 naming schemes."""
    return [f"{table_path}/_versions/{_U64_MAX - version:020d}.manifest", f"{table_path}/_versions/{version}.manifest"]


def undo_latest_version(store: Connection, name: str, version: int) -> bool:
    """Remove `version` of table `name` if it is still the latest; True when it was removed."""
    try:
        latest = handle_version(store.open_lance(name))
        if latest != version:
            log.warning("%s: cannot undo version %d, another writer committed version %d on top", name, version, latest)
            return False
        protocol, path = split_protocol(store.table_uri(name))
        fs = open_filesystem(protocol, dict(store.storage_options) if protocol != "file" else {})
        removed = False
        for candidate in manifest_paths(path, version):
            if fs.exists(candidate):
                fs.rm(candidate)
                removed = True
        hint = f"{path}/_versions/latest_version_hint.json"
        if removed and fs.exists(hint):
            fs.rm(hint)  # it names the removed version; Lance lists the versions without it
        log.info("%s: undid version %d after a failed write", name, version)
        return removed
    except Exception as exc:  # the write's own error is what the caller reports
        log.warning("%s: could not undo version %d after a failed write: %s", name, version, exc)
        return False
