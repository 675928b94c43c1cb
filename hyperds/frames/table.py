"""FrameTable: one Lance table of frames, read and appended through Arrow.

Every write is one Lance commit (all or nothing); indices are created on first data and refreshed after.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import polars as pl
import pyarrow as pa
import pyarrow.compute as pc

from .. import storage
from ..errors import FrameNotFoundError, SchemaError, StoreError, VersionNotFoundError
from ..query.lance_sql import eq, sql_literal
from ..storage import Handle
from ..storage.rows import locate_rows
from .normalize import FrameInput, normalize_frames
from .schema import CORE_NAMES, INDICES

if TYPE_CHECKING:
    from ..storage import Connection

__all__ = ["AddResult", "FrameTable", "count_annotations", "sql_literal"]

log = logging.getLogger(__name__)

_ADD_COLUMN_ATTEMPTS = 5

@dataclasses.dataclass(frozen=True)
class AddResult:
    """What add_frames() did: frames inserted (with their annotations), frames skipped because their
    frame_id exists, and the version after (unchanged when nothing was new)."""

    inserted: int
    skipped: int
    version: int
    annotations: int = 0


def count_annotations(table: pa.Table) -> int:
    """How many annotations the frame rows of `table` hold."""
    return int(pc.sum(pc.list_value_length(table.column("annotations"))).as_py() or 0)


class FrameTable:
    """A dataset's frames table at its latest version, or pinned read-only to `version`.

    `handle` (optional) is an already opened kernel handle at `version`, reused for every read (a view
    resolves several sub-queries through one handle: each open re-reads the manifest).
    """

    def __init__(self, store: Connection, name: str, version: int | None = None, handle: Handle | None = None):
        self.store = store
        self.name = name
        self._pinned = version
        self._ds: Handle | None = None
        self._handle = handle if version is not None else None

    def __getstate__(self) -> dict[str, Any]:
        # Opened handles (the latest one and a pinned one) hold the store's storage options, secrets
        # included; the store pickles without them (Store.__reduce__), and a handle is reopened on use.
        return {**self.__dict__, "_ds": None, "_handle": None}

    # -- opening ---------------------------------------------------------------------------
    @property
    def uri(self) -> str:
        return self.store.table_uri(self.name)

    @property
    def pinned_version(self) -> int | None:
        """The version this table is pinned to (read-only), or None for the latest (no I/O)."""
        return self._pinned

    def handle(self, version: int | None = None) -> Handle:
        """The storage kernel's handle on the latest (or the pinned / asked) version; pass it to kernel calls."""
        version = version if version is not None else self._pinned
        if version is None:
            if self._ds is None:
                self._ds = self.store.open_lance(self.name)
            else:
                storage.latest(self._ds)
            return self._ds
        if self._handle is not None and version == self._pinned:
            return self._handle
        return self.store.open_lance(self.name, version=version)

    def lance(self, version: int | None = None) -> Handle:
        """The underlying pylance dataset (latest, or the pinned/asked version): an escape hatch for users
        and tests; hyperds' own modules go through `handle()` and the storage kernel."""
        return self.handle(version)

    def invalidate(self) -> None:
        """Forget the cached handle after a write, so the next read opens the new version."""
        self._ds = None

    def require_writable(self) -> None:
        """SchemaError if this table is pinned to a version (read-only)."""
        if self._pinned is not None:
            raise SchemaError(f"dataset {self.name!r} is opened at version {self._pinned}, read-only; use store.dataset()")

    def at(self, version: int) -> FrameTable:
        """A read-only view of this dataset as it was at Lance `version`."""
        available = storage.versions(self.handle())
        if version not in available:
            raise VersionNotFoundError(
                f"dataset {self.name!r} has no version {version}; available versions: {available[0]}..{available[-1]}"
                if available
                else f"dataset {self.name!r} has no versions"
            )
        return type(self)(self.store, self.name, version=version)

    # -- metadata --------------------------------------------------------------------------
    # version / schema / root read the latest manifest on each access of an unpinned table (one small
    # read; the pinned handle is opened once and cached).
    @property
    def version(self) -> int:
        """The Lance version read (latest: re-read on each access)."""
        return storage.version(self.handle())

    @property
    def schema(self) -> pa.Schema:
        """The schema of the version read (latest: re-read on each access)."""
        return storage.schema(self.handle())

    @property
    def extra_schema(self) -> pa.Schema:
        """The user metadata columns (everything outside the core frames schema)."""
        return pa.schema([f for f in self.schema if f.name not in CORE_NAMES])

    @property
    def root(self) -> str | None:
        """Base URI that relative frame `uri`s are resolved against (None: none set)."""
        meta = self.schema.metadata or {}
        root = meta.get(b"hyperds.root")
        return root.decode() if root else None

    def __len__(self) -> int:
        return storage.scan.count(self.handle())

    def count(self, filter: str | None = None) -> int:
        """Rows passing the Lance `filter` (text from hyperds.query.lance_sql)."""
        return storage.scan.count(self.handle(), filter)

    # -- reads -----------------------------------------------------------------------------
    def to_arrow(self, columns: list[str] | None = None, filter: str | None = None) -> pa.Table:
        """Rows passing the Lance `filter` (text from hyperds.query.lance_sql), all columns or `columns`."""
        return storage.scan.read(self.handle(), columns=columns, filter=filter)

    def to_batches(self, columns: list[str] | None = None, batch_size: int = 65_536) -> Iterator[pa.RecordBatch]:
        """The rows in record batches of at most `batch_size`, streamed from one snapshot in storage order."""
        _, batches = storage.scan.batches(self.handle(), columns, batch_size=batch_size)
        return batches

    def to_polars(self, columns: list[str] | None = None, filter: str | None = None) -> pl.DataFrame:
        return pl.from_arrow(self.to_arrow(columns=columns, filter=filter))

    def get(self, frame_id: str, columns: list[str] | None = None) -> dict[str, Any]:
        """One frame as a dict (annotations as a list of dicts); only `columns` when given."""
        rows = self.to_arrow(columns=columns, filter=eq("frame_id", frame_id)).to_pylist()
        if not rows:
            raise FrameNotFoundError(
                f"frame {frame_id!r} is not in dataset {self.name!r}; list frame ids with "
                f"`hyperds show {self.name}` or ds.to_polars()['frame_id']"
            )
        return rows[0]

    def existing_ids(self, frame_ids: pa.Array) -> pa.Array:
        """The subset of `frame_ids` already in the table (see rows.locate_rows), sorted."""
        return locate_rows(self.handle(), frame_ids.to_pylist()).column("frame_id").combine_chunks()

    # -- writes ----------------------------------------------------------------------------

    def add_frames(self, data: FrameInput, assume_tz: str = "UTC") -> AddResult:
        """Insert frames whose frame_id is new; existing frame_ids are skipped (idempotent).

        All rows are validated before anything is written; the insert is one Lance commit.
        """
        self.require_writable()
        table = normalize_frames(data, extra_schema=self.extra_schema, assume_tz=assume_tz)
        return self.insert_normalized(table)

    def insert_normalized(self, table: pa.Table) -> AddResult:
        """Insert the rows of `table` (already in the frames schema, see normalize_frames) whose
        frame_id is new, as one commit; when none is new, nothing is written."""
        self.require_writable()
        empty = len(self) == 0
        ids = table.column("frame_id").combine_chunks()
        new = table if empty else table.filter(pc.invert(pc.is_in(ids, self.existing_ids(ids))))
        skipped = table.num_rows - new.num_rows
        if new.num_rows == 0:
            return AddResult(0, skipped, self.version)
        widened = self._add_columns(new.schema)
        try:
            ds = self.handle()
            # merge_insert, not append: a frame_id inserted concurrently since the check stays single.
            inserted = storage.writes.insert_new(ds, self._align(new, storage.schema(ds)), "frame_id")
        except BaseException:
            if widened is not None:  # the new columns go too: a failed write leaves the schema as it was
                storage.rollback.undo_latest_version(self.store, self.name, widened)
            self.invalidate()
            raise
        self.invalidate()
        self.refresh_indices_after_write()
        annotations = count_annotations(new)
        log.info("%s: inserted %d frames, skipped %d existing", self.name, inserted, table.num_rows - inserted)
        return AddResult(inserted, table.num_rows - inserted, self.version, annotations)

    def _align(self, table: pa.Table, schema: pa.Schema) -> pa.Table:
        cols = []
        for f in schema:
            if f.name in table.column_names:
                cols.append(table.column(f.name).cast(f.type))
            else:
                cols.append(pa.nulls(table.num_rows, f.type))
        return pa.Table.from_arrays(cols, schema=pa.schema(list(schema), metadata=None))

    def _add_columns(self, incoming: pa.Schema) -> int | None:
        """Add the user columns of `incoming` the table lacks (normalize_frames already cast the others
        and checked their names); the version that added them, or None when none was missing.

        A concurrent writer adding columns too (two ingests of one folder add the same EXIF fields) makes
        Lance refuse the later add: the schema is read again, and what is still missing added on top."""
        for attempt in range(1, _ADD_COLUMN_ATTEMPTS + 1):
            ds = self.handle()
            new = [f for f in incoming if f.name not in storage.schema(ds).names]
            if not new:
                return None
            try:
                storage.writes.add_columns(ds, new)
            except storage.CommitConflict:
                self.invalidate()
                if attempt == _ADD_COLUMN_ATTEMPTS:
                    raise
                continue
            self.invalidate()
            log.info("%s: added user column(s) %s", self.name, [f.name for f in new])
            return storage.version(self.handle())
        return None  # not reached: the last attempt returns or raises

    def refresh_indices(self, merge: bool = True) -> None:
        """Create the scalar indices on first data, then fold new rows into their last segment.

        With merge=False (after each write) an index still in one segment gets a delta segment instead,
        since folding into it would rewrite it whole: the cost then follows the rows written, not the table.
        """
        storage.indices.refresh_indices(self.handle(), INDICES, merge)
        self.invalidate()

    def refresh_indices_after_write(self) -> None:
        """refresh_indices(merge=False) after a write that has committed: if it fails (a concurrent
        writer's refresh won, the store hiccuped) the write still stands, so the call that made it must
        not report a failure. The rows stay exactly queryable (Lance scans unindexed fragments) and the
        next write's refresh indexes them."""
        try:
            self.refresh_indices(merge=False)
        except storage.CommitConflict as exc:
            log.info("%s: index refresh deferred to the next write (a concurrent commit won): %s", self.name, exc)
        except StoreError as exc:
            log.warning("%s: index refresh deferred to the next write: %s", self.name, exc)
        finally:
            self.invalidate()
