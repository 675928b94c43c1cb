"""Catalog tables of views: `_views` (one row per view version or draft) and `_runs` (who used which).

Published `_views` rows are only ever appended, never updated; the single draft row of a view is
replaced in place (one merge_insert commit on (name, version)).
"""

from __future__ import annotations

import getpass
import re
import socket
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc

from .. import storage
from ..errors import StoreError, ViewError
from ..frames.schema import UTC_US

if TYPE_CHECKING:
    from ..storage import Connection as Store
    from ..storage import Handle

VIEWS = "_views"
RUNS = "_runs"
DRAFT = "draft"
PUBLISHED = "published"

# View names become part of Lance tag names (`view.<name>.<version>`): ASCII letters, digits, '.', '-',
# '_' only, no '..', not ending in '.' or '.lock' (Lance's rules for refs).
_VIEW_NAME = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9_-]|\.(?!\.)){0,126}[A-Za-z0-9_-]$|^[A-Za-z0-9]$")
_VERSION = re.compile(r"^(0|[1-9][0-9]{0,8})\.(0|[1-9][0-9]{0,8})$")

VIEWS_SCHEMA = pa.schema(
    [
        pa.field("name", pa.string(), nullable=False),
        pa.field("version", pa.string(), nullable=False),  # "1.2", or "draft"
        pa.field("status", pa.string(), nullable=False),  # draft | published
        pa.field(
            "queries",
            pa.list_(pa.struct([("name", pa.string()), ("sql", pa.string()), ("weight", pa.float64())])),
        ),
        pa.field("datasets", pa.list_(pa.struct([("dataset", pa.string()), ("version", pa.int64())]))),
        pa.field("label_map", pa.list_(pa.struct([("source", pa.string()), ("target", pa.string())]))),
        pa.field("unknown_labels", pa.string()),
        pa.field("split_by", pa.string()),
        pa.field("split_fractions", pa.list_(pa.struct([("name", pa.string()), ("fraction", pa.float64())]))),
        pa.field("split_seed", pa.int64()),
        pa.field("frame_count", pa.int64()),
        pa.field("digest", pa.string()),
        # per (dataset, sub-query) frame counts and digests, so verify() can say which part differs
        pa.field(
            "parts",
            pa.list_(
                pa.struct(
                    [("dataset", pa.string()), ("subquery", pa.string()), ("frame_count", pa.int64()),
                     ("digest", pa.string())]
                )
            ),
        ),
        pa.field("parent", pa.string()),
        pa.field("created_by", pa.string()),
        pa.field("created_at", UTC_US),
        pa.field("message", pa.string()),
        # the identity (views.identity) of each pinned dataset; added to older `_views` tables on open
        pa.field("dataset_ids", pa.list_(pa.struct([("dataset", pa.string()), ("id", pa.string())]))),
        # added with the rejected-annotations rule; a `_views` table written before it lacks them (see
        # views_table), and a row without them reads as rule 1 (hyperds.query.rules) and empty = "drop"
        pa.field("empty", pa.string()),  # frames left without a class: drop | keep
        pa.field("rule", pa.int64()),  # the rejected-annotations rule the version resolves under
    ]
)
# columns a `_views` table made by an older hyperds may lack: added (all null) before the first write
LATER_VIEW_COLUMNS = ("dataset_ids", "empty", "rule")

RUNS_SCHEMA = pa.schema(
    [
        pa.field("run_id", pa.string(), nullable=False),
        pa.field("view", pa.string(), nullable=False),
        pa.field("version", pa.string(), nullable=False),
        pa.field("digest", pa.string()),
        pa.field("frame_count", pa.int64()),
        pa.field("recorded_at", UTC_US),
        pa.field("user", pa.string()),
        pa.field("host", pa.string()),
        pa.field("info", pa.string()),  # JSON object
    ]
)


def check_view_name(name: str) -> None:
    if not isinstance(name, str) or not _VIEW_NAME.match(name) or name.endswith(".lock"):
        raise ViewError(
            f"invalid view name {name!r}: use ASCII letters, digits, '_', '-' and single '.', starting with a "
            "letter or digit and not ending in '.' (view names become Lance tag names)"
        )


def check_version(version: str) -> None:
    if not isinstance(version, str) or not _VERSION.match(version):
        raise ViewError(f"invalid view version {version!r}: use MAJOR.MINOR, e.g. '1.2'")


def version_key(version: str) -> tuple[int, int]:
    major, minor = version.split(".")
    return int(major), int(minor)


def sort_key(version: str) -> tuple[int, int]:
    """Order of a view's versions: published ones by number, the draft after them all."""
    return version_key(version) if version != DRAFT else (1 << 62, 0)


def published_versions(rows: list[dict[str, Any]]) -> list[str]:
    """The published versions among `_views` rows, oldest first."""
    return sorted((r["version"] for r in rows if r["status"] == PUBLISHED), key=version_key)


def tag_name(name: str, version: str) -> str:
    """The Lance tag that pins a published view version's tables (and locks its publish)."""
    return f"view.{name}.{version}"


def current_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def current_host() -> str:
    return socket.gethostname()


def views_table(store: Store) -> Handle:
    """`_views` for writing: created if missing; columns a table from an older hyperds lacks are added first."""
    table = store.catalog(VIEWS, VIEWS_SCHEMA)
    missing = [VIEWS_SCHEMA.field(c) for c in LATER_VIEW_COLUMNS if c not in storage.schema(table).names]
    if missing:
        try:  # all-null columns: a metadata-only Lance commit; old rows then read as null (rule 1)
            storage.writes.add_columns(table, missing)
        except StoreError:
            table = store.open_lance(VIEWS)  # another process added them first
            if any(c not in storage.schema(table).names for c in LATER_VIEW_COLUMNS):
                raise
        table = store.open_lance(VIEWS)
    return table


def runs_table(store: Store) -> Handle:
    return store.catalog(RUNS, RUNS_SCHEMA)


def read_rows(store: Store, name: str | None = None, columns: list[str] | None = None) -> list[dict[str, Any]]:
    """`_views` rows, optionally of one view, from the snapshot of its latest version."""
    table = _views_snapshot(store)
    if table is None:
        return []
    if name is not None:
        table = table.filter(pc.equal(table.column("name"), name))
    return (table if columns is None else table.select(columns)).to_pylist()


# `_views` read whole, per store URI, until its latest Lance version changes: opening a view then costs
# one manifest read instead of a scan of one small fragment per published version. The key also holds
# the newest data file's name (random per write), so a store re-created at the same URI never matches.
_SNAPSHOTS: dict[str, tuple[tuple[int, str], pa.Table]] = {}


def _views_snapshot(store: Store) -> pa.Table | None:
    handle = existing(store, VIEWS)
    if handle is None:
        return None
    key = storage.content_key(handle)
    cached = _SNAPSHOTS.get(store.uri)
    if cached is None or cached[0] != key:
        cached = (key, storage.scan.read(handle))
        _SNAPSHOTS[store.uri] = cached
    return cached[1]


def existing(store: Store, name: str) -> Handle | None:
    """Catalog table `name` if it exists (reads never create catalog tables); None only for a real not-found:
    an unreachable store raises StoreError rather than reading as "no views yet"."""
    return store.existing(name)


def append_row(store: Store, row: dict[str, Any]) -> None:
    storage.writes.append(views_table(store), pa.Table.from_pylist([row], schema=VIEWS_SCHEMA))


def upsert_draft(store: Store, row: dict[str, Any]) -> None:
    """Create or replace the draft row of `row['name']` in one commit."""
    storage.writes.upsert(views_table(store), pa.Table.from_pylist([row], schema=VIEWS_SCHEMA), ["name", "version"])
