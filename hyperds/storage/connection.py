"""Connection: one store URI (local folder or s3://bucket/prefix) and its Lance tables; the catalog layer.

Tables are opened with pylance, listed / created / dropped through lancedb (imported on first use: ~1 s of
imports that loader workers never need). Catalog tables (names starting with `_`) are opened here too: a
read never creates one, and only a real not-found counts as "does not exist" (an unreachable store raises).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from ..errors import StoreError
from ..fsio import without_secrets
from .errors import Missing, lance_errors
from .handle import Handle, open_uri

if TYPE_CHECKING:
    import lancedb


class Connection:
    """A set of Lance tables under one URI, opened with its storage options."""

    def __init__(self, uri: str, storage_options: dict[str, str] | None = None):
        if "://" not in uri or uri.startswith("file://"):
            path = Path(uri.removeprefix("file://")).expanduser().resolve()
            try:
                path.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StoreError(
                    f"cannot use {path} as a store: {exc}. Pass a folder you can write to (it is created if missing), "
                    "not a file"
                ) from exc
            uri = str(path)
        self.uri = uri.rstrip("/")
        self.storage_options = dict(storage_options or {})
        self._conn: lancedb.DBConnection | None = None

    def __reduce__(self) -> tuple[Any, ...]:
        # A pickled connection (e.g. inside a DataLoader worker under spawn) never carries secrets:
        # credentials come back from the environment or a named profile.
        return (type(self), (self.uri, without_secrets(self.storage_options)))

    @property
    def _db(self) -> lancedb.DBConnection:
        # Connected on first use, so a connection can be built (or unpickled in a worker) cheaply.
        if self._conn is None:
            import lancedb

            with lance_errors(self.uri, f"opening store {self.uri}"):
                self._conn = lancedb.connect(self.uri, storage_options=self.storage_options or None)
        return self._conn

    def errors(self, doing: str) -> Any:
        """Context manager mapping Lance failures of `doing` in this store to hyperds errors."""
        return lance_errors(self.uri, doing)

    # -- tables ------------------------------------------------------------------------------
    def table_uri(self, name: str) -> str:
        return f"{self.uri}/{name}.lance"

    def open_lance(self, name: str, version: int | str | None = None) -> Handle:
        """Table `name` (optionally at a version or tag): the kernel's opaque handle (a pylance dataset).

        Raises storage.Missing when the table, version or tag does not exist, StoreError on any other failure.
        """
        return open_uri(self.table_uri(name), version, self.storage_options, self.uri)

    def table_names(self) -> list[str]:
        names: list[str] = []
        token = None
        while True:
            with self.errors(f"listing the tables of store {self.uri}"):
                page = self._db.list_tables(page_token=token) if token else self._db.list_tables()
            names += list(page.tables)
            token = page.page_token
            if not token:
                return sorted(names)

    def create_table(self, name: str, schema: pa.Schema, exist_ok: bool = False) -> None:
        """Create empty table `name` (storage.Exists if it exists and not `exist_ok`)."""
        with self.errors(f"creating table {name!r}"):
            self._db.create_table(name, schema=schema, exist_ok=exist_ok)

    def drop_table(self, name: str) -> None:
        with self.errors(f"dropping table {name!r}"):
            self._db.drop_table(name)

    # -- catalog tables ------------------------------------------------------------------------
    def existing(self, name: str) -> Handle | None:
        """Table `name` if it exists; None only when it really does not (reads never create tables)."""
        try:
            return self.open_lance(name)
        except Missing:
            return None

    def catalog(self, name: str, schema: pa.Schema) -> Handle:
        """Catalog table `name` (e.g. "_views"), created empty with `schema` if missing."""
        if not name.startswith("_"):
            raise ValueError("catalog table names start with '_'")
        handle = self.existing(name)
        if handle is None:
            self.create_table(name, schema, exist_ok=True)
            handle = self.open_lance(name)
        return handle
