"""Annotation history: the `_commits` and `_events` catalogs, written after each commit and rebuilt if lost.

Every commit's id, author, message and time also travel in the frames table's Lance transaction properties,
so a crash between the frames commit and the catalog writes is repaired by `reconcile` on the next read.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc

from .. import storage
from ..errors import StoreError
from ..frames.schema import ANNOTATION_TYPE, UTC_US
from ..query.lance_sql import all_of, eq, gt, isin, le
from ..storage.rows import read_rows
from .changes import flatten_annotations

if TYPE_CHECKING:
    from ..frames.table import FrameTable

log = logging.getLogger(__name__)

COMMITS = "_commits"
EVENTS = "_events"
COMMITS_SCHEMA = pa.schema(
    [
        ("commit_id", pa.string()),
        ("dataset", pa.string()),
        ("version_before", pa.int64()),
        ("version_after", pa.int64()),
        ("author", pa.string()),
        ("message", pa.string()),
        ("created_at", UTC_US),
        ("based_on", pa.int64()),
        ("frames", pa.int64()),
        ("added", pa.int64()),
        ("updated", pa.int64()),
        ("deleted", pa.int64()),
        ("reviewed", pa.int64()),
    ]
)
EVENTS_SCHEMA = pa.schema(
    [
        ("commit_id", pa.string()),
        ("dataset", pa.string()),
        ("version", pa.int64()),
        ("frame_id", pa.string()),
        ("ann_id", pa.string()),
        ("op", pa.string()),
        ("author", pa.string()),
        ("created_at", UTC_US),
        ("note", pa.string()),
        ("before", ANNOTATION_TYPE),
        ("after", ANNOTATION_TYPE),
    ]
)
# Keys of the frames commit's Lance transaction properties.
PROP = "hyperds.commit."
_WATERMARK = "hyperds.reconciled."  # + dataset: frames versions up to here are all in the catalogs
_REVIEW_FIELDS = ("review_status", "reviewed_by", "reviewed_at", "note")


def commit_properties(commit_id: str, author: str, message: str, now: dt.datetime, based_on: int | None) -> dict:
    """What a commit stores in the frames table's Lance transaction (enough to rebuild its history)."""
    props = {"id": commit_id, "author": author, "message": message, "created_at": now.isoformat()}
    if based_on is not None:
        props["based_on"] = str(based_on)
    return {PROP + k: v for k, v in props.items()}


def diff_events(before: pa.Table, after: pa.Table) -> pl.DataFrame:
    """Annotation events between two versions of the same frames, listed in the same order in both tables.

    An annotation changed iff its revision did (every change bumps it); only changed ones are materialised.
    """

    def keys(rows: pa.Table, side: str) -> tuple[pl.DataFrame, pa.Array]:
        ann = rows.column("annotations").combine_chunks()
        flat = pc.list_flatten(ann).cast(ANNOTATION_TYPE)
        df = pl.DataFrame(
            {
                "_f": pl.Series(pc.list_parent_indices(ann).to_numpy().astype(np.int64)),
                "ann_id": pl.from_arrow(pc.struct_field(flat, "ann_id")),
                f"_{side}_rev": pl.from_arrow(pc.struct_field(flat, "revision")),
            }
        ).with_row_index(f"_{side}_i")
        return df, flat

    b_keys, b_flat = keys(before, "before")
    a_keys, a_flat = keys(after, "after")
    changed = (
        b_keys.join(a_keys, on=["_f", "ann_id"], how="full", coalesce=True)
        .filter(pl.col("_before_i").is_null() | pl.col("_after_i").is_null()
                | (pl.col("_before_rev") != pl.col("_after_rev")))
        .sort("_f", "ann_id")
    )
    frame_ids = after.column("frame_id").combine_chunks().take(pa.array(changed["_f"].to_numpy()))
    sides = pa.table(
        {
            "before": b_flat.take(changed["_before_i"].cast(pl.Int64).to_arrow()),
            "after": a_flat.take(changed["_after_i"].cast(pl.Int64).to_arrow()),
        }
    )
    events = pl.from_arrow(sides).with_columns(
        frame_id=pl.from_arrow(frame_ids), ann_id=changed["ann_id"]
    )
    b, a = pl.col("before"), pl.col("after")
    review_changed = pl.any_horizontal([b.struct.field(f).ne_missing(a.struct.field(f)) for f in _REVIEW_FIELDS])
    op = (
        pl.when(b.is_null()).then(pl.lit("add"))
        .when(a.is_null()).then(pl.lit("delete"))
        .when(review_changed).then(pl.lit("review"))
        .otherwise(pl.lit("update"))
    )
    return events.with_columns(op=op).with_columns(
        note=pl.when(pl.col("op") == "review").then(a.struct.field("note"))
    ).select("frame_id", "ann_id", "op", "note", "before", "after")


def record(table: FrameTable, props: Mapping[str, str], version: int, before: pa.Table, after: pa.Table) -> dict:
    """Write the `_events` rows, then the `_commits` row, of the commit that made frames `version`."""
    events = diff_events(before, after)
    store, name = table.store, table.name
    meta = {k.removeprefix(PROP): v for k, v in props.items() if k.startswith(PROP)}
    created = dt.datetime.fromisoformat(meta["created_at"])
    counts = events["op"].value_counts()
    count = dict(zip(counts["op"].to_list(), counts["count"].to_list(), strict=True))
    if events.height:
        rows = events.select(
            pl.lit(meta["id"]).alias("commit_id"),
            pl.lit(name).alias("dataset"),
            pl.lit(version, pl.Int64).alias("version"),
            "frame_id",
            "ann_id",
            "op",
            pl.lit(meta["author"]).alias("author"),
            pl.lit(created).alias("created_at"),
            "note",
            "before",
            "after",
        ).to_arrow()
        events = store.catalog(EVENTS, EVENTS_SCHEMA)  # an older store's keeps its own annotation struct
        storage.writes.append(events, _conform(rows, storage.schema(events)))
        _compact_when_fragmented(events)
    summary = {
        "commit_id": meta["id"],
        "dataset": name,
        "version_before": version - 1,
        "version_after": version,
        "author": meta["author"],
        "message": meta["message"],
        "created_at": created,
        "based_on": int(meta["based_on"]) if "based_on" in meta else None,
        "frames": after.num_rows,
        **{key: int(count.get(op, 0)) for key, op in _COUNTS.items()},
    }
    commit_row = pa.Table.from_pylist([summary], schema=COMMITS_SCHEMA)
    commits = store.catalog(COMMITS, COMMITS_SCHEMA)
    storage.writes.append(commits, commit_row)
    _compact_when_fragmented(commits)
    return summary


# Each commit appends one small fragment to each history catalog, and a read pays ~1 ms per fragment
# (a frame's history with 63 commits recorded: 75 ms for 95 rows); past this many, merge them.
_MAX_FRAGMENTS = 32


def _compact_when_fragmented(catalog: storage.Handle) -> None:
    try:
        catalog = storage.latest(catalog)
        if storage.fragment_count(catalog) > _MAX_FRAGMENTS:
            storage.maintenance.compact(catalog)
    except StoreError as exc:  # a concurrent compaction won, or the store hiccuped: the next commit retries
        log.debug("history catalog not compacted: %s", exc)


_COUNTS = {"added": "add", "updated": "update", "deleted": "delete", "reviewed": "review"}


def _conform(rows: pa.Table, schema: pa.Schema) -> pa.Table:
    return pa.Table.from_arrays([rows.column(f.name).cast(f.type) for f in schema], schema=schema)


# How many frames versions a read may scan for unrecorded commits before it moves the watermark.
_WATERMARK_STEP = 64


# (store uri, dataset, its id: a dataset re-created under the name starts afresh) -> the frames version up to which this process found every commit recorded (or rebuilt
# it). A commit still being recorded at a version checked here was rebuilt by that check, so a later
# read need not walk those transactions again (the web app reads history on every frame page).
_CHECKED: dict[tuple[str, str, bytes | None], int] = {}


def reconcile(table: FrameTable) -> int:
    """Rebuild catalog rows of frames commits a crash left unrecorded; returns how many were rebuilt.

    Only frames versions after the dataset's watermark (kept in `_commits` schema metadata) are checked.
    """
    frames = table.store.open_lance(table.name)
    latest = storage.version(frames)
    checked = (table.store.uri, table.name, (storage.schema(frames).metadata or {}).get(b"hyperds.id"))
    if _CHECKED.get(checked, -1) >= latest:  # this process already found every version up to here recorded
        return 0
    catalog = table.store.existing(COMMITS)  # None until the first commit (or rebuild) records one
    key = _WATERMARK + table.name
    mark = int(((storage.schema(catalog).metadata if catalog else None) or {}).get(key.encode(), b"0"))
    if latest <= mark:
        return 0
    recorded = set() if catalog is None else set(
        storage.scan.read(
            catalog, columns=["commit_id"], filter=all_of(eq("dataset", table.name), gt("version_after", mark))
        ).column("commit_id").to_pylist()
    )
    rebuilt = 0
    for version in range(mark + 1, latest + 1):
        tx = storage.transactions.written(frames, version)  # None: a version removed by cleanup
        if tx is not None and tx.properties.get(PROP + "id") and tx.properties[PROP + "id"] not in recorded:
            _rebuild(table, version, tx)
            rebuilt += 1
    _CHECKED[checked] = latest
    if not rebuilt and (catalog is None or latest - mark < _WATERMARK_STEP):
        return 0  # a read stays a read: the watermark moves only after a repair or every few dozen versions
    catalog = catalog or table.store.existing(COMMITS)  # a rebuild has just created it
    try:
        storage.writes.set_schema_metadata(catalog, {key: str(latest)})
    except StoreError as exc:  # the watermark only saves work; a lost update is redone next time
        log.debug("could not move the history watermark of %s: %s", table.name, exc)
    return rebuilt


def _rebuild(table: FrameTable, version: int, tx: storage.transactions.Written) -> None:
    after_ds = table.store.open_lance(table.name, version=version)
    ids = storage.transactions.rows_in_files(after_ds, tx.new_files, ["frame_id"]).column("frame_id")
    after = read_rows(after_ds, ids.to_pylist())
    before = read_rows(table.store.open_lance(table.name, version=version - 1), ids.to_pylist())
    record(table, tx.properties, version, before, after)
    log.warning("%s: rebuilt the history of commit %s (frames version %d)", table.name, tx.uuid, version)


def _read(table: FrameTable, name: str, schema: pa.Schema, filter: str, keys: list[str]) -> pl.DataFrame:
    """Rows of catalog `name` (the columns of `schema`); empty when no commit has created it yet."""
    handle = table.store.existing(name)
    rows = schema.empty_table() if handle is None else storage.scan.read(handle, columns=schema.names, filter=filter)
    # A rebuild racing the committer's own writes may record a row twice; both copies are identical.
    return pl.from_arrow(_conform(rows, schema)).unique(subset=keys, keep="first", maintain_order=True)


_MESSAGES = pa.schema([COMMITS_SCHEMA.field("commit_id"), COMMITS_SCHEMA.field("message")])


def commits(table: FrameTable) -> pl.DataFrame:
    """Every commit of the dataset, oldest first."""
    reconcile(table)
    df = _read(table, COMMITS, COMMITS_SCHEMA, eq("dataset", table.name), ["commit_id"])
    return df.sort("version_after")


def history(table: FrameTable, frame_id: str) -> pl.DataFrame:
    """Every annotation event of one frame, oldest first, with its commit's message (up to a pinned version)."""
    reconcile(table)
    pinned = table.pinned_version
    flt = all_of(eq("dataset", table.name), eq("frame_id", frame_id),
                 le("version", int(pinned)) if pinned is not None else None)
    events = _read(table, EVENTS, EVENTS_SCHEMA, flt, ["commit_id", "frame_id", "ann_id"])
    if events.height == 0:
        table.get(frame_id)  # FrameNotFoundError for a frame the dataset never held
        return events.with_columns(message=pl.lit(None, pl.String)).drop("dataset")
    ids = isin("commit_id", events["commit_id"].unique().sort().to_list())
    messages = _read(table, COMMITS, _MESSAGES, all_of(eq("dataset", table.name), ids), ["commit_id"])
    return events.join(messages, on="commit_id", how="left").sort("version", "ann_id").drop("dataset")


def events(table: FrameTable, up_to: int | None = None) -> pl.DataFrame:
    """Every annotation event of the dataset up to frames version `up_to` (all when None), oldest first.

    Evaluation reads a model's original output from the `before` of the events that took it over.
    """
    reconcile(table)
    flt = all_of(eq("dataset", table.name), le("version", int(up_to)) if up_to is not None else None)
    return _read(table, EVENTS, EVENTS_SCHEMA, flt, ["commit_id", "frame_id", "ann_id"]).sort("version", maintain_order=True)


def blame(table: FrameTable, frame_id: str) -> pl.DataFrame:
    """Who set each current label of a frame, when and why (commit message, or the import's source)."""
    row = table.to_arrow(columns=["annotations"], filter=eq("frame_id", frame_id))
    if row.num_rows == 0:
        table.get(frame_id)  # raises FrameNotFoundError, naming how to list frame ids
    current = flatten_annotations(row)
    events = history(table, frame_id)
    label_set = (pl.col("op") == "add") | (
        pl.col("after").struct.field("label").ne_missing(pl.col("before").struct.field("label"))
    )
    setters = (
        events.filter(pl.col("after").is_not_null() & label_set)
        .sort("version")
        .group_by("ann_id")
        .agg(pl.all().last())
        .select("ann_id", "commit_id", "version", pl.col("author").alias("set_by"),
                pl.col("created_at").alias("set_at"), "message")
    )
    return (
        current.join(setters, on="ann_id", how="left")
        .with_columns(
            set_by=pl.coalesce("set_by", "source"),
            set_at=pl.coalesce("set_at", "created_at"),
            why=pl.coalesce("message", pl.lit("imported from ") + pl.col("source_kind") + pl.lit(" source")),
        )
        .sort("_pos")
        .select(
            "ann_id", "label", "set_by", "set_at", "why", "commit_id", "version", "source_kind", "source",
            "confidence", "review_status", "reviewed_by", "reviewed_at", "note",
        )
    )
