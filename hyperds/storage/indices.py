"""Index build and refresh.

`refresh_indices(merge=False)` relies on an undocumented behaviour of `optimize_indices`: with
`num_indices_to_merge=0` it writes the unindexed rows as a new delta segment instead of rewriting the
index whole (pinned by tests/test_storage_kernel.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from .errors import lance_errors
from .handle import Handle


@dataclass(frozen=True)
class IndexInfo:
    name: str
    column: str
    segments: int
    rows_indexed: int


def describe(ds: Handle) -> list[IndexInfo]:
    with lance_errors(ds.uri, "describing indices"):
        return [IndexInfo(i.name, i.field_names[0], len(i.segments), i.num_rows_indexed)
                for i in ds.describe_indices()]


def refresh_indices(ds: Handle, wanted: Mapping[str, str], merge: bool = True) -> None:
    """Create the `wanted` scalar indices (column -> kind) on first data, then fold new rows in.

    With merge=False an index still in one segment gets a delta segment instead, since folding into it
    would rewrite it whole: the cost then follows the rows written, not the table.
    """
    with lance_errors(ds.uri, "refreshing indices"):
        if ds.count_rows() == 0:
            return
        indices = ds.describe_indices()
        have = {d.field_names[0] for d in indices}
        missing = {c: t for c, t in wanted.items() if c not in have}
        for column, kind in missing.items():
            ds.create_scalar_index(column, kind)
        if not missing:
            single = [] if merge else [i.name for i in indices if len(i.segments) == 1]
            if single:
                ds.optimize.optimize_indices(num_indices_to_merge=0, index_names=single)
            if len(single) < len(indices):
                ds.optimize.optimize_indices(index_names=[i.name for i in indices if i.name not in single])


def create_scalar_index(ds: Handle, column: str, kind: str) -> None:
    with lance_errors(ds.uri, f"indexing {column}"):
        ds.create_scalar_index(column, kind)


def create_vector_index(ds: Handle, column: str, partitions: int, sub_vectors: int) -> None:
    """An IVF_PQ (L2) index on vector `column`."""
    with lance_errors(ds.uri, f"indexing vectors of {column}"):
        ds.create_index(column, "IVF_PQ", metric="l2", num_partitions=partitions, num_sub_vectors=sub_vectors)
