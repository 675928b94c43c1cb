"""Commit annotation changes as one Lance version of a frames table, with optimistic concurrency.

Check and write are one step: rows are read at version V, checked against the revisions the caller saw,
and the update is committed as a transaction based on V that Lance refuses if any touched fragment changed
since; on that refusal the whole commit is redone from a fresh read (a real conflict then shows up as a
changed revision and raises ConflictError; disjoint commits go through). Nothing is ever half written.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
import numbers
import random
import time
import uuid
from collections.abc import Sequence
from typing import TYPE_CHECKING

import polars as pl
import pyarrow as pa

from .. import storage
from ..errors import ConflictError, CorrectionError
from ..storage.rows import Snapshot, read_rows
from .changes import ChangeInput, apply_changes, assign_ann_ids, normalize_changes, validate_changes
from .history import commit_properties, record
from ..query.sidecar import carry_forward

if TYPE_CHECKING:
    from ..frames.table import FrameTable

log = logging.getLogger(__name__)

TAXONOMY_KEY = "hyperds.taxonomy"
_MAX_ATTEMPTS = 200
_BACKOFF_S = (0.005, 0.2)


@dataclasses.dataclass(frozen=True)
class CommitResult:
    """One applied commit: its id, the frames versions before and after, and what changed."""

    commit_id: str
    version_before: int
    version: int
    frames: int
    added: int
    updated: int
    deleted: int
    reviewed: int
    attempts: int


def taxonomy(table: FrameTable) -> list[str] | None:
    """The dataset's allowed labels (schema metadata `hyperds.taxonomy`), or None when any label goes."""
    raw = (table.schema.metadata or {}).get(TAXONOMY_KEY.encode())
    return json.loads(raw) if raw else None


def set_taxonomy(table: FrameTable, labels: Sequence[str] | None) -> None:
    """Restrict labels of future changes to `labels` (None lifts the restriction); one Lance version."""
    table.require_writable()
    if isinstance(labels, str):
        raise CorrectionError(f"a taxonomy is a list of labels, e.g. ['lion', 'zebra'], not the string {labels!r}")
    if labels is not None:
        labels = sorted({str(label) for label in labels})
        if not labels or any(not label.strip() for label in labels):
            raise CorrectionError("a taxonomy is a non-empty list of non-empty labels")
    storage.writes.set_schema_metadata(table.handle(), {TAXONOMY_KEY: json.dumps(labels) if labels is not None else None})
    table.invalidate()


def commit(
    table: FrameTable,
    changes: ChangeInput,
    author: str,
    message: str = "",
    based_on: int | None = None,
    source_kind: str = "human",
    read: Snapshot | None = None,
) -> CommitResult:
    """Apply `changes` as one new Lance version of `table`, or raise and write nothing.

    A change's `revision` (or, for changes without one, the frame's revision at version `based_on`) is the
    frame revision the caller saw; if the frame has changed since, ConflictError names the frames.
    Added annotations are `source_kind` ("human", or "model" for predictions, whose author is name@version).
    `read`: rows the caller just read (from its own `open_lance`) to base the first attempt on, instead of re-reading.
    """
    table.require_writable()
    if not isinstance(author, str) or not author.strip():
        raise CorrectionError("author is empty; pass the name of the person making the changes (--author)")
    df = normalize_changes(changes)
    validate_changes(df, taxonomy(table))
    commit_id = uuid.uuid4().hex
    df = assign_ann_ids(df, commit_id)
    now = dt.datetime.now(dt.UTC)
    expected = _expected_revisions(table, df, based_on)
    props = commit_properties(commit_id, author.strip(), message or "", now, based_on)
    frame_ids = df["frame_id"].unique().to_list()
    for attempt in range(1, _MAX_ATTEMPTS + 1):
        if attempt == 1 and read is not None:
            snap = read.only(frame_ids)
        else:
            snap = Snapshot.read(table.store.open_lance(table.name), frame_ids)
        rows = snap.rows
        _check_revisions(rows, expected)
        after = apply_changes(rows, df, author.strip(), now, source_kind)
        committed = _try_write(snap.ds, snap.where, after, props)
        if committed is not None:
            break
        time.sleep(random.uniform(*_BACKOFF_S))
    else:
        raise ConflictError(
            f"commit to {table.name!r} gave up after {_MAX_ATTEMPTS} attempts under heavy concurrent writes; retry"
        )
    version = storage.version(committed)
    summary = record(table, props, version, rows, after)
    table.invalidate()
    table.refresh_indices_after_write()  # a concurrent refresh may win; the next write folds these rows in
    if version == storage.version(snap.ds) + 1:
        try:  # the annotation side tables follow the commit, so queries keep their fast path
            carry_forward(table, version - 1, rows, after)
        except StoreError as exc:  # queries on this version scan instead, still exactly
            log.info("%s: side tables not carried to version %d: %s", table.name, version, exc)
    log.info("%s: commit %s by %s -> version %d (%d frames)", table.name, commit_id, author, version,
             rows.num_rows)
    return CommitResult(
        commit_id=commit_id,
        version_before=version - 1,
        version=version,
        frames=rows.num_rows,
        added=summary["added"],
        updated=summary["updated"],
        deleted=summary["deleted"],
        reviewed=summary["reviewed"],
        attempts=attempt,
    )


def _expected_revisions(table: FrameTable, df: pl.DataFrame, based_on: int | None) -> pl.DataFrame:
    """frame_id -> the revision the caller saw (from the change, else from version `based_on`)."""
    seen = df.filter(pl.col("revision").is_not_null()).select("frame_id", "revision", "_seq")
    if based_on is None:
        return seen
    if not isinstance(based_on, numbers.Integral) or isinstance(based_on, bool):
        raise CorrectionError(f"based_on must be a version number (an int, e.g. ds.version), not {based_on!r}")
    if not 1 <= based_on < 2**63:
        raise CorrectionError(f"based_on must be a version of the dataset (1 or more, e.g. ds.version), not {based_on}")
    try:
        then_ds = table.store.open_lance(table.name, version=int(based_on))
    except storage.Missing:
        table.at(based_on)  # raises the error naming the versions there are
        raise
    missing = df.filter(pl.col("revision").is_null())["frame_id"].unique().to_list()
    then = pl.from_arrow(read_rows(then_ds, missing, columns=["frame_id", "revision"]))
    gone = sorted(set(missing) - set(then["frame_id"].to_list()))
    # Frames that exist now but not then were added since; unknown ones are left to apply_changes to name.
    added = table.existing_ids(pa.array(gone, pa.string())).to_pylist() if gone else []
    if added:
        raise ConflictError(
            f"frame(s) {added[:20]} did not exist at version {based_on}; base the commit on a newer version", added
        )
    return pl.concat([seen, then.with_columns(_seq=pl.lit(-1, pl.Int64)).select(seen.columns)])


def _check_revisions(rows: pa.Table, expected: pl.DataFrame) -> None:
    if expected.height == 0:
        return
    current = pl.from_arrow(rows.select(["frame_id", "revision"])).rename({"revision": "_now"})
    stale = expected.join(current, on="frame_id", how="inner").filter(pl.col("revision") != pl.col("_now"))
    if stale.height:
        frames = sorted(set(stale["frame_id"].to_list()))
        detail = "; ".join(
            f"{r['frame_id']} (saw revision {r['revision']}, now {r['_now']})"
            for r in stale.unique("frame_id").sort("frame_id").head(20).iter_rows(named=True)
        )
        raise ConflictError(
            f"{len(frames)} frame(s) changed since they were read, nothing was written: {detail}. "
            "Re-read them (ds.get / ds.to_polars) and apply the changes again.",
            frames,
        )


def _try_write(ds: storage.Handle, where: pa.Table, after: pa.Table, props: dict) -> storage.Handle | None:
    """Replace the rows at `where` by `after` in one transaction based on the version `ds` reads
    (storage.commit.rewrite_rows: the cost follows the rows changed).

    Returns None, having made nothing visible, if a concurrent commit changed a fragment this one touches.
    """
    try:
        return storage.commit.rewrite_rows(ds, where, after, props)
    except storage.CommitConflict as exc:
        log.debug("commit conflict at version %d, retrying: %s", storage.version(ds), exc)
        return None
