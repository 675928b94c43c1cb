"""The storage kernel: the only package that calls pylance / lancedb.

One small concept per module:

- handle       the opaque `Handle` on one opened table version; open by URI, version / schema / versions
- connection   `Connection`: a store URI, its tables (open, list, create, drop) and catalog tables
- errors       the one map from Lance / lancedb / OS failures to hyperds errors (`lance_errors`):
               Missing, Exists, CommitConflict, else StoreError naming the store and what to retry
- scan         read with a filter, stream batches, count, top-k, take by row id, nearest, explain / analyze
- rows         find and read frame rows by frame_id (index lookups or a scan, then take by row id)
- commit       the hand-built row-rewrite transaction (optimistic concurrency)
- transactions what a version's transaction recorded (properties, rows written)
- tags         named versions; tag creation as a lock
- indices      scalar / vector index build and refresh
- maintenance  compaction and old-version removal
- rollback     take back a table's latest version when the write it prepared failed
- writes       appends, keyed inserts and upserts, column and schema-metadata changes, overwrites

Other modules get Arrow tables, ints and these types back; filter text comes from hyperds.query.lance_sql.
Every private or undocumented Lance behaviour used here is pinned by tests/test_storage_kernel.py.
"""

from __future__ import annotations

import os

# Lance's Rust logger writes warnings such as "No existing dataset at …, it will be created" straight
# to the user's terminal; what matters reaches the user as a hyperds exception instead. Set before
# pylance is first imported (it reads LANCE_LOG then); a LANCE_LOG the user sets wins.
os.environ.setdefault("LANCE_LOG", "error")

from . import commit, indices, maintenance, rollback, rows, scan, tags, transactions, writes
from .connection import Connection
from .errors import CommitConflict, Exists, Missing, lance_errors
from .handle import Handle, content_key, fragment_count, latest, open_uri, schema, version, versions

__all__ = [
    "CommitConflict",
    "fragment_count",
    "Connection",
    "Exists",
    "Handle",
    "Missing",
    "commit",
    "content_key",
    "indices",
    "lance_errors",
    "latest",
    "maintenance",
    "rollback",
    "open_uri",
    "rows",
    "scan",
    "schema",
    "tags",
    "transactions",
    "version",
    "versions",
    "writes",
]
