"""The hand-built row-rewrite commit: replace some rows by new ones in one Lance transaction.

pylance has no public "rewrite these rows, fail on conflict" call, so this builds the transaction by hand:
deletion vectors on the old rows (fragment id = `_rowaddr >> 32`, an undocumented address layout), one new
fragment with the new rows, committed as `LanceOperation.Update(update_mode="rewrite_rows")` based on the
version read and with no retries, so Lance refuses it if a concurrent commit touched those fragments.
Both behaviours are pinned by tests/test_storage_kernel.py.
"""

from __future__ import annotations

from collections.abc import Mapping

import lance
import lance.fragment
import numpy as np
import pyarrow as pa

from .errors import lance_errors
from .handle import Handle


def fragment_ids(addresses: np.ndarray) -> np.ndarray:
    """The fragment id of each row address (its upper 32 bits)."""
    return np.asarray(addresses, dtype=np.uint64) >> np.uint64(32)


def rewrite_rows(ds: Handle, where: pa.Table, after: pa.Table, properties: Mapping[str, str]) -> Handle:
    """Replace the rows at `where` (its `_rowaddr` column, from storage.rows.locate_rows) by `after`, as one
    transaction based on `ds.version` carrying `properties`; returns the dataset at the new version.

    The cost follows the rows changed. Raises storage.CommitConflict, having made nothing visible, if a
    concurrent commit changed a fragment this one touches.
    """
    addresses = np.asarray(where.column("_rowaddr"), dtype=np.uint64)
    fragments = fragment_ids(addresses)
    with lance_errors(ds.uri, f"committing to {ds.uri}"):
        updated, removed = [], []
        for fragment_id in np.unique(fragments).tolist():
            listed = ",".join(map(str, addresses[fragments == fragment_id].tolist()))
            meta = ds.get_fragment(fragment_id).delete(f"_rowaddr IN ({listed})")
            (removed.append(fragment_id) if meta is None else updated.append(meta))
        operation = lance.LanceOperation.Update(
            removed_fragment_ids=removed,
            updated_fragments=updated,
            new_fragments=lance.fragment.write_fragments(after, ds),
            update_mode="rewrite_rows",
        )
        tx = lance.Transaction(read_version=ds.version, operation=operation, transaction_properties=dict(properties))
        return lance.LanceDataset.commit(ds, tx, max_retries=0)
