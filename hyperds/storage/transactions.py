"""Read back what a Lance version's transaction recorded: its properties and the rows it wrote."""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa

from .errors import Missing, lance_errors
from .handle import Handle


@dataclass(frozen=True)
class Written:
    """A version's transaction: its id, its properties, and the data file paths of the fragments it added."""

    uuid: str
    properties: dict[str, str]
    new_files: frozenset[str]


def written(ds: Handle, version: int) -> Written | None:
    """The transaction that made `version`, or None when that version is gone (removed by cleanup)."""
    try:
        with lance_errors(ds.uri, f"reading the transaction of version {version}"):
            tx = ds.read_transaction(version)
    except Missing:
        return None
    if tx is None:
        return None
    new_fragments = getattr(tx.operation, "new_fragments", None) or []
    paths = frozenset(f.path for frag in new_fragments for f in frag.files)
    return Written(str(tx.uuid), dict(tx.transaction_properties or {}), paths)


def rows_in_files(ds: Handle, paths: frozenset[str], columns: list[str]) -> pa.Table:
    """`columns` of the rows of `ds` held by fragments with a data file in `paths`."""
    with lance_errors(ds.uri, "reading fragments"):
        touched = [frag for frag in ds.get_fragments() if any(f.path in paths for f in frag.metadata.files)]
        if not touched:
            return pa.schema([ds.schema.field(c) for c in columns]).empty_table()
        return pa.concat_tables([frag.to_table(columns=columns) for frag in touched])


# Operations that leave every row as it was: index builds, new columns (add_columns, merged embeddings),
# schema metadata, compaction (rows moved, not changed). A pure insert adds fragments and touches none; anything else may change rows.
_SAME_ROWS = frozenset({"CreateIndex", "Merge", "Project", "UpdateConfig", "Rewrite"})


def change_kind(ds: Handle, version: int) -> tuple[str, frozenset[str]]:
    """What the transaction that made `version` did to the rows: ("same", ∅), ("insert", the data files
    of the fragments it added) or ("other", ∅) — also for a version whose transaction is gone."""
    try:
        with lance_errors(ds.uri, f"reading the transaction of version {version}"):
            tx = ds.read_transaction(version)
    except Missing:
        return "other", frozenset()
    if tx is None:
        return "other", frozenset()
    op, name = tx.operation, type(tx.operation).__name__
    if name in _SAME_ROWS:
        return "same", frozenset()
    inserts_only = name == "Append" or (
        name == "Update" and not getattr(op, "removed_fragment_ids", None) and not getattr(op, "updated_fragments", None))
    if inserts_only:
        fragments = (op.fragments if name == "Append" else op.new_fragments) or []
        return "insert", frozenset(f.path for frag in fragments for f in frag.files)
    return "other", frozenset()
