"""The opaque handle on one opened Lance table version, and the reads of its metadata.

A `Handle` is a pylance dataset, but only the kernel calls its methods: other modules pass it back to
kernel functions (a read, a commit, a tag) so that one snapshot serves a whole operation.
"""

from __future__ import annotations

from typing import TypeAlias

import lance
import pyarrow as pa

from .errors import lance_errors

Handle: TypeAlias = lance.LanceDataset


def open_uri(uri: str, version: int | str | None = None, storage_options: dict[str, str] | None = None,
             store: str | None = None) -> Handle:
    """The Lance table at `uri` (at a version number or tag); Missing when it (or that version) does not exist."""
    where = f" version {version!r}" if version is not None else ""
    with lance_errors(store or uri, f"opening table {uri}{where}"):
        return lance.dataset(uri, version=version, storage_options=storage_options or None)


def version(handle: Handle) -> int:
    """The Lance version the handle reads (no I/O)."""
    return handle.version


def schema(handle: Handle) -> pa.Schema:
    """The schema of the version the handle reads (no I/O)."""
    return handle.schema


def latest(handle: Handle) -> Handle:
    """Move the handle to the table's latest version (reads the newest manifest); returns it."""
    with lance_errors(handle.uri, "reading the latest version"):
        handle.checkout_latest()
    return handle


def versions(handle: Handle) -> list[int]:
    """Every version of the table still present, oldest first."""
    with lance_errors(handle.uri, "listing versions"):
        return [v["version"] for v in handle.versions()]


def content_key(handle: Handle) -> tuple[int, str]:
    """(version, newest data file): differs whenever the table is written, or re-created at the same URI."""
    with lance_errors(handle.uri, "reading fragments"):
        fragments = handle.get_fragments()
        return handle.version, fragments[-1].data_files()[-1].path if fragments else ""


def uri(handle: Handle) -> str:
    return handle.uri


def fragment_count(handle: Handle) -> int:
    """How many fragments the version the handle reads has (from its manifest, no data read)."""
    with lance_errors(handle.uri, "listing fragments"):
        return len(handle.get_fragments())
