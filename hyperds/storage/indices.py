"""Index build and refresh.

`refresh_indices(merge=False)` (every add and commit) relies on two undocumented behaviours of
`optimize_indices`, pinned by tests/test_storage_kernel.py: with `num_indices_to_merge=0` it writes the
unindexed rows as a new delta segment, and with `num_indices_to_merge=N` it merges the N newest segments
(in `describe_indices` order) with them, leaving the older ones untouched.

Why a policy: folding new rows into the newest segment rewrites that segment, and after a bulk ingest the
newest segment holds a large share of the table (half of it after two 500k batches), so each one-label
commit rewrote megabytes of index at 1M frames and ~230 MB at 10M. A write therefore adds a delta, and
only when `MAX_SMALL` small deltas (each under 1/`SMALL_SHARE` of the index) have piled up at the end are
those merged into one (an LSM-style compaction): bytes written per commit follow the rows changed, and
the segment count stays bounded for the readers.
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
        if missing:
            return
        if merge:
            ds.optimize.optimize_indices(index_names=[i.name for i in indices])
            return
        by_merge: dict[int, list[str]] = {}
        for index in indices:
            by_merge.setdefault(segments_to_merge([s.size_bytes for s in index.segments]), []).append(index.name)
        for n, names in sorted(by_merge.items()):
            ds.optimize.optimize_indices(num_indices_to_merge=n, index_names=names)


SMALL_SHARE = 16  # a segment under 1/16 of its index's bytes counts as a small delta
MAX_SMALL = 8  # this many small deltas at the end of an index are merged into one


def segments_to_merge(sizes: list[int]) -> int:
    """How many of the newest segments (sizes in bytes, oldest first) a write merges with its new rows:
    0 (add a delta) until `MAX_SMALL` small ones trail the index, then all of those and nothing larger."""
    total = sum(sizes)
    small = 0
    for size in reversed(sizes):
        if size * SMALL_SHARE > total:
            break
        small += 1
    return small if small >= MAX_SMALL else 0


def create_scalar_index(ds: Handle, column: str, kind: str) -> None:
    with lance_errors(ds.uri, f"indexing {column}"):
        ds.create_scalar_index(column, kind)


def create_vector_index(ds: Handle, column: str, partitions: int, sub_vectors: int) -> None:
    """An IVF_PQ (L2) index on vector `column`."""
    with lance_errors(ds.uri, f"indexing vectors of {column}"):
        ds.create_index(column, "IVF_PQ", metric="l2", num_partitions=partitions, num_sub_vectors=sub_vectors)
