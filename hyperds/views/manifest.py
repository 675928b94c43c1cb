"""Resolve a view definition to its manifest (one Arrow row per frame) at pinned Lance versions, and digest it.

Manifest order is (dataset, frame_id). Derived columns: `dataset`, `subquery` (the first sub-query, in
definition order, that selects the frame), `classes` (labels after the label map), `split`, `weight`.

A view resolves under the rejected-annotations rule it was stored with (`ViewSpec.rule`, see
hyperds.query.rules): rule 2 (current) runs its queries with annotation functions skipping rejected
annotations and drops frames left without a class unless `empty="keep"`; rule 1 (views published before
the rule) sees rejected annotations in its queries and drops class-less frames only under a label map,
so an old pin resolves to exactly the frames, and digest, it was published with.

Digest (SHA-256, hex) of a manifest: the bytes of "hyperds-manifest/1\\n", then one record per row in
manifest order. A record is its fields joined by U+001F and ended by U+001E, the fields being: dataset,
frame_id, uri, revision (decimal), labels, classes, annotations, split, subquery. Lists are joined by
U+001D: labels and classes as stored (distinct, sorted), annotations in stored order, each written as
"ann_id:revision:label:review_status". A null is written as the empty string. Text is UTF-8.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc

from .. import storage
from ..errors import DatasetNotFoundError, IntegrityError
from ..frames.table import FrameTable
from ..query.query import Query

if TYPE_CHECKING:
    from ..storage import Handle
    from ..store import Store
    from .spec import SubQuery, ViewSpec

DIGEST_HEADER = b"hyperds-manifest/1\n"
DERIVED = ("dataset", "subquery", "classes", "split", "weight")
DIGEST_COLUMNS = ("dataset", "frame_id", "uri", "revision", "labels", "classes", "annotations", "split", "subquery")
_US, _RS, _GS = "\x1f", "\x1e", "\x1d"
_DIGEST_BATCH = 500_000


def resolve(store: Store, spec: ViewSpec, pins: dict[str, int], columns: Sequence[str] | None = None,
            handles: dict[str, Handle] | None = None) -> pa.Table:
    """The manifest of `spec` with each dataset read at its pinned Lance version; `columns` projects it.

    `handles` holds datasets already opened at their pins and caches those opened here (index caches stay warm).
    """
    frame_cols = None if columns is None else [c for c in columns if c not in DERIVED]
    if frame_cols is not None:
        frame_cols = list(dict.fromkeys(["frame_id", *frame_cols]))
        if spec.label_map is not None or "classes" in columns or not spec.keeps_empty:
            frame_cols.append("labels")
        if spec.split is not None:
            frame_cols.append(spec.split.by)
        frame_cols = list(dict.fromkeys(frame_cols))
    handles = {} if handles is None else handles
    wanted = None if columns is None else set(columns)
    # the derived key columns cost a string column each: skip them when neither asked for nor needed
    keys = wanted is None or len(spec.datasets) > 1 or len(spec.queries) > 1 or spec.split is not None or bool(
        wanted & {"dataset", "subquery", "weight"})
    for name in spec.datasets:
        if name not in handles:  # `in`, not truthiness: a Lance dataset's truth value counts its rows
            handles[name] = open_pinned(store, name, pins[name])
    parts = [_resolve_dataset(store, spec, name, pins[name], _own_columns(frame_cols, name, handles), handles, keys)
             for name in sorted(spec.datasets)]
    table = parts[0] if len(parts) == 1 else pa.concat_tables(parts, promote_options="permissive")
    table = _derive(table, spec, wanted)
    if columns is None:
        front = ["dataset", "frame_id"]
        rest = [c for c in table.column_names if c not in front and c not in DERIVED]
        return table.select(front + rest + ["classes", "split", "subquery", "weight"])
    return table.select(list(columns))


def _own_columns(columns: list[str] | None, name: str, handles: dict[str, Handle]) -> list[str] | None:
    """The asked columns dataset `name` reads: one only another dataset of the view has is null for its frames
    (as in the whole manifest); one that no dataset has stays, so the query names it as unknown."""
    if columns is None or len(handles) == 1:
        return columns
    own = set(storage.schema(handles[name]).names)
    anywhere = set().union(*(storage.schema(h).names for h in handles.values()))
    return [c for c in columns if c in own or c not in anywhere]


def _resolve_dataset(store: Store, spec: ViewSpec, name: str, version: int, columns: list[str] | None,
                     handles: dict[str, Handle], keys: bool = True) -> pa.Table:
    if name not in handles:  # `in`, not truthiness: a Lance dataset's truth value counts its rows
        handles[name] = open_pinned(store, name, version)
    pinned = FrameTable(store, name, version, handle=handles[name])
    tables = []
    for sub in spec.queries:
        query = Query(pinned, sub.sql, rule=spec.rule)
        t = query.to_arrow(list(pinned.schema.names) if columns is None else columns)
        if query.statement.order:  # results come in frame_id order unless the query orders them otherwise
            t = t.take(_frame_id_order(t))
        tables.append(t.append_column("subquery", _constant(sub.name, t.num_rows)) if keys else t)
    table = tables[0]
    if len(tables) > 1:  # a frame belongs to the first sub-query that selects it
        table = pa.concat_tables(tables)
        table = table.filter(pl.Series(table.column("frame_id").combine_chunks()).is_first_distinct().to_arrow())
        table = table.take(_frame_id_order(table))
    return table.add_column(0, "dataset", _constant(name, table.num_rows)) if keys else table


def open_current(store: Store, datasets: Sequence[str]) -> dict[str, Handle]:
    """Each dataset opened at its latest version (resolve and publish reuse these handles)."""
    have = store.datasets()
    for name in datasets:
        if name not in have:
            raise DatasetNotFoundError(name, have)
    return {name: store.open_lance(name) for name in datasets}


def open_pinned(store: Store, name: str, version: int) -> Handle:
    try:
        return store.open_lance(name, version=version)
    except storage.Missing as exc:
        if name not in store.datasets():
            raise IntegrityError(f"dataset {name!r} pinned at version {version} no longer exists in {store.uri}") from exc
        raise IntegrityError(
            f"dataset {name!r}: pinned Lance version {version} no longer exists (removed outside hyperds, "
            f"e.g. by a Lance cleanup that ignored the view's tag): {exc}"
        ) from exc


def _frame_id_order(table: pa.Table) -> pa.Array:
    return pl.Series(table.column("frame_id").combine_chunks()).arg_sort().to_arrow()


def _constant(value: str, n: int) -> pa.Array:
    return pa.DictionaryArray.from_arrays(pa.array(np.zeros(n, np.int32)), pa.array([value])).cast(pa.string())


def _derive(table: pa.Table, spec: ViewSpec, wanted: set[str] | None) -> pa.Table:
    """Add classes (and drop frames left without one, unless the view keeps them), split and weight, as far as `wanted`."""
    classes = None
    if spec.label_map is not None:
        classes = spec.label_map.apply(table.column("labels"))
    elif wanted is None or "classes" in wanted or not spec.keeps_empty:
        classes = table.column("labels").cast(pa.list_(pa.string()))
    if classes is not None:
        table = table.append_column("classes", classes)
        if not spec.keeps_empty:
            table = table.filter(pc.greater(pc.fill_null(pc.list_value_length(table.column("classes")), 0), 0))
    if wanted is None or "split" in wanted:
        if spec.split is not None:
            fallback = pc.binary_join_element_wise(table.column("dataset"), table.column("frame_id"), "/")
            table = table.append_column("split", spec.split.assign(table.column(spec.split.by), fallback))
        else:
            table = table.append_column("split", pa.nulls(table.num_rows, pa.string()))
    if wanted is None or "weight" in wanted:
        table = table.append_column("weight", _weights(table.column("subquery"), spec.queries))
    return table


def _weights(subquery: pa.ChunkedArray, queries: Sequence[SubQuery]) -> pa.Array:
    """Per-frame sampling weight: sub-query q gets share w_q / sum(w) of draws, spread evenly over its frames.

    Scaled so the mean weight is 1 (all weights are 1 for a single sub-query).
    """
    s = pl.Series("q", subquery)
    n = len(s)
    if n == 0:
        return pa.array([], pa.float64())
    counts = dict(s.value_counts().iter_rows())
    w = {q.name: q.weight for q in queries if counts.get(q.name)}
    total = sum(w.values())
    per_frame = {name: (w[name] / total) * n / counts[name] for name in w}
    return s.replace_strict(per_frame, return_dtype=pl.Float64).to_arrow()


# -- digest ------------------------------------------------------------------------------------
def _list_text(values: pa.Array) -> pa.Array:
    return pc.fill_null(pc.binary_join(values.cast(pa.list_(pa.string())), _GS), "")


def _annotation_text(annotations: pa.Array) -> pa.Array:
    lengths = pc.fill_null(pc.list_value_length(annotations), 0).to_numpy(zero_copy_only=False)
    offsets = np.zeros(len(lengths) + 1, dtype=np.int32)
    np.cumsum(lengths, out=offsets[1:])
    flat = pc.list_flatten(annotations)
    fields = [pc.struct_field(flat, f).cast(pa.string()) for f in ("ann_id", "revision", "label", "review_status")]
    text = pc.binary_join_element_wise(*fields, ":", null_handling="replace", null_replacement="")
    return _list_text(pa.ListArray.from_arrays(pa.array(offsets), text))


def row_records(table: pa.Table) -> pa.Array:
    """One digest record per manifest row (see the module docstring)."""
    fields = []
    for name in DIGEST_COLUMNS:
        col = table.column(name).combine_chunks()
        if name == "annotations":
            fields.append(_annotation_text(col))
        elif name in ("labels", "classes"):
            fields.append(_list_text(col))
        else:
            fields.append(pc.fill_null(col.cast(pa.string()), ""))
    joined = pc.binary_join_element_wise(*fields, _US, null_handling="replace", null_replacement="")
    return pc.binary_join_element_wise(joined, pa.scalar(_RS), "")


def _update(h: hashlib._Hash, records: pa.Array) -> None:
    records = records.combine_chunks() if isinstance(records, pa.ChunkedArray) else records
    if len(records) == 0:
        return
    offsets = np.frombuffer(records.buffers()[1], dtype=np.int32)[records.offset : records.offset + len(records) + 1]
    h.update(memoryview(records.buffers()[2])[int(offsets[0]) : int(offsets[-1])])


def digest(table: pa.Table) -> tuple[str, list[dict[str, object]]]:
    """SHA-256 of the manifest, and (dataset, subquery, frame_count, digest) of each part of it."""
    whole = hashlib.sha256(DIGEST_HEADER)
    keys = pl.DataFrame({"dataset": table.column("dataset"), "subquery": table.column("subquery")})
    part_keys = keys.unique(maintain_order=True).sort(["dataset", "subquery"]).rows()
    hashes = {k: hashlib.sha256(DIGEST_HEADER) for k in part_keys}
    counts = dict.fromkeys(part_keys, 0)
    for start in range(0, max(table.num_rows, 1), _DIGEST_BATCH):
        chunk = table.slice(start, _DIGEST_BATCH)
        if chunk.num_rows == 0:
            break
        records = row_records(chunk)
        _update(whole, records)
        chunk_keys = keys.slice(start, chunk.num_rows)
        for key in part_keys:
            mask = ((chunk_keys["dataset"] == key[0]) & (chunk_keys["subquery"] == key[1])).to_arrow()
            picked = records.filter(mask)
            counts[key] += len(picked)
            _update(hashes[key], picked)
    parts = [
        {"dataset": k[0], "subquery": k[1], "frame_count": counts[k], "digest": hashes[k].hexdigest()}
        for k in part_keys
    ]
    return whole.hexdigest(), parts


def stream(keys: pa.Table, handles: dict[str, Handle], columns: Sequence[str], batch_size: int) -> Iterator[pa.RecordBatch]:
    """`columns` of the manifest rows `keys` holds, `batch_size` rows at a time, in manifest order.

    `keys` is the resolved manifest with only `dataset`, `frame_id` and the derived columns asked for (small:
    no annotations). The frame columns are taken by row id from each pinned dataset one batch at a time, so
    memory follows the batch, not the view: an export or a loader over 10M frames never holds them all.
    """
    frame_cols = [c for c in columns if c not in keys.column_names]
    types: dict[str, pa.DataType] = {}
    for name in sorted(handles):
        schema = storage.schema(handles[name])
        for c in frame_cols:
            if c not in types and c in schema.names:
                types[c] = schema.field(c).type
    datasets = keys.column("dataset")
    for name in pc.unique(datasets).to_pylist():
        part = keys.filter(pc.equal(datasets, name))
        handle = handles[name]
        have = [c for c in frame_cols if c in storage.schema(handle).names]
        where = storage.rows.locate_rows(handle, part.column("frame_id").to_pylist()) if have else None
        if where is not None and not (where.num_rows == part.num_rows and where.column("frame_id").equals(
                part.column("frame_id"))):  # both in frame_id order; anything else is a bug, never silently misaligned
            raise IntegrityError(f"dataset {name!r}: the manifest's frames do not match the pinned table's rows")
        for start in range(0, part.num_rows, batch_size):
            chunk = part.slice(start, batch_size)
            rows = storage.rows.take_rows(handle, where.slice(start, batch_size), have) if have else None
            arrays = [chunk.column(c) if c in chunk.column_names
                      else rows.column(c) if c in have else pa.nulls(chunk.num_rows, types.get(c, pa.null()))
                      for c in columns]
            yield from pa.Table.from_arrays(arrays, names=list(columns)).combine_chunks().to_batches(batch_size)
