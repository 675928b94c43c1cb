"""Writes to a table: appends, keyed inserts / upserts, column changes, schema metadata, deletes, overwrites.

Each call is one Lance commit (all or nothing).
"""

from __future__ import annotations

from collections.abc import Mapping

import lance
import pyarrow as pa

from .errors import lance_errors
from .handle import Handle


def append(ds: Handle, data: pa.Table) -> None:
    """Append `data` (in the table's schema) as one new version."""
    with lance_errors(ds.uri, f"appending to {ds.uri}"):
        lance.write_dataset(data, ds, mode="append")


PRIMARY_KEY = "lance-schema:unenforced-primary-key"


def insert_new(ds: Handle, data: pa.Table, key: str) -> int:
    """Insert the rows of `data` whose `key` is not in the table; inserted count.

    A concurrent insert of the same key stays single: `key` is declared as the table's unenforced
    primary key (field metadata, once for a table made without it), so the merge records the keys it
    inserted and Lance's conflict check makes the later of two racing inserts retry against the rows
    the first wrote (it then inserts nothing). Measured with pylance 14.0.3: without the declaration,
    or through the scalar-index join (`use_index(True)`, whose transaction records no inserted keys),
    2-3 racing inserts of the same new keys all commit and every frame is stored 2-3 times; hence
    the join without the index (~0.1 s per 1M rows for a small insert, against ~0.02 s indexed).
    """
    with lance_errors(ds.uri, f"inserting into {ds.uri}"):
        if not _is_primary_key(ds, key):
            try:
                ds.update_field_metadata({key: {PRIMARY_KEY: "true"}})  # the handle moves to that version
            except OSError:
                ds.checkout_latest()  # two first inserts racing: one declaration wins, the other conflicts
                if not _is_primary_key(ds, key):
                    raise
        builder = ds.merge_insert(key).when_not_matched_insert_all().use_index(False)
        return int(builder.execute(data)["num_inserted_rows"])


def _is_primary_key(ds: Handle, key: str) -> bool:
    return (ds.schema.field(key).metadata or {}).get(PRIMARY_KEY.encode()) == b"true"


def upsert(ds: Handle, data: pa.Table, keys: str | list[str]) -> None:
    """Replace the rows matching `keys` and insert the others, in one commit."""
    with lance_errors(ds.uri, f"upserting into {ds.uri}"):
        ds.merge_insert(keys).when_matched_update_all().when_not_matched_insert_all().execute(data)


def update_matched(ds: Handle, data: pa.Table, key: str) -> None:
    """Set the columns of `data` on the rows matching `key` (a partial-schema update)."""
    with lance_errors(ds.uri, f"updating {ds.uri}"):
        ds.merge_insert(key).when_matched_update_all().execute(data)


def merge_columns(ds: Handle, data: pa.Table, key: str) -> None:
    """Add the new columns of `data` joined on `key` (rows not listed get nulls)."""
    with lance_errors(ds.uri, f"adding columns to {ds.uri}"):
        ds.merge(data, left_on=key)


def add_columns(ds: Handle, fields: list[pa.Field]) -> None:
    """Add all-null columns."""
    with lance_errors(ds.uri, f"adding columns to {ds.uri}"):
        ds.add_columns(fields)


def set_schema_metadata(ds: Handle, values: Mapping[str, str | None]) -> None:
    """Set (None: remove) schema metadata keys, as one version."""
    with lance_errors(ds.uri, f"writing schema metadata of {ds.uri}"):
        ds.update_schema_metadata(dict(values))


def delete(ds: Handle, filter: str) -> None:
    with lance_errors(ds.uri, f"deleting from {ds.uri}"):
        ds.delete(filter)


def overwrite(uri: str, data: pa.Table, storage_options: dict[str, str] | None = None) -> Handle:
    """Write `data` as the new content of the table at `uri` (created if missing)."""
    with lance_errors(uri, f"writing {uri}"):
        return lance.write_dataset(data, uri, mode="overwrite", storage_options=storage_options or None)
