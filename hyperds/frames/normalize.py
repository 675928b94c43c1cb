"""Turn user input (Arrow, polars, dicts) into rows of the frames schema, vectorised.

Fills provenance defaults, validates values, and derives the `labels` column from annotations.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc

from ..errors import DuplicateFrameError, SchemaError
from .names import check_column_names
from .schema import (
    ANNOTATION_TYPE,
    CORE_NAMES,
    OBSERVATION_LEVELS,
    REVIEW_STATUSES,
    SOURCE_KINDS,
    UTC_US,
    frames_schema,
)

FrameInput = pa.Table | pa.RecordBatch | pl.DataFrame | Iterable[Mapping[str, Any]]

# A zone suffix only counts after a time of day: "2024-03-01" is a naive date, not offset -01.
_ZONED = r"\d{2}:\d{2}(:\d{2}(\.\d+)?)?\s*(Z|z|[+-]\d{2}(:?\d{2})?)$"


_ZONE_HINT = "pass a UTC offset like +01:00 or an IANA time zone name like Europe/Berlin"


def check_timezone(tz: str) -> None:
    """Raise SchemaError unless Arrow knows the zone `tz` (an IANA name or a UTC offset like +01:00)."""
    try:
        pc.assume_timezone(pa.array([0], pa.timestamp("us")), tz)  # an empty array would not check the zone
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError) as exc:
        raise SchemaError(f"unknown time zone {tz!r}; {_ZONE_HINT}") from exc


def _assume_timezone(arr: pa.Array, tz: str) -> pa.Array:
    """Naive timestamps read as local times in `tz`; a time its DST change skips or repeats raises."""
    check_timezone(tz)
    try:
        return pc.assume_timezone(arr, tz)
    except pa.ArrowInvalid as exc:
        raise SchemaError(
            f"{' '.join(str(exc).split())}; write the value with its UTC offset (e.g. 2024-03-31T02:30:00+01:00) "
            "or pass the camera clock's fixed UTC offset (like +01:00) as the time zone"
        ) from exc


def parse_timestamps(values: pa.Array | pa.ChunkedArray, assume_tz: str = "UTC") -> pa.Array:
    """Cast ISO-8601 strings or timestamps to UTC microseconds; naive values are in `assume_tz`."""
    arr = values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values
    if pa.types.is_timestamp(arr.type):
        if arr.type.tz is None:
            arr = _assume_timezone(arr.cast(pa.timestamp("us")), assume_tz)
        return arr.cast(UTC_US)
    if pa.types.is_date(arr.type):
        return parse_timestamps(arr.cast(pa.timestamp("us")), assume_tz)
    if pa.types.is_null(arr.type):
        return pa.nulls(len(arr), UTC_US)
    if not (pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type)):
        raise SchemaError(f"timestamps must be ISO-8601 strings or timestamps, not {arr.type}")
    arr = pc.utf8_trim_whitespace(arr.cast(pa.string()))
    arr = pc.if_else(pc.equal(arr, ""), pa.scalar(None, pa.string()), arr)
    # Arrow's ISO parser wants a 'T' or ' ' separator; EXIF-style 'YYYY:MM:DD hh:mm:ss' is fixed here.
    arr = pc.replace_substring_regex(arr, r"^(\d{4}):(\d{2}):(\d{2})", r"\1-\2-\3")
    zoned = pc.fill_null(pc.match_substring_regex(arr, _ZONED), False)
    try:
        with_zone = pc.if_else(zoned, arr, pa.scalar(None, pa.string())).cast(UTC_US)
        naive = pc.if_else(zoned, pa.scalar(None, pa.string()), arr).cast(pa.timestamp("us"))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise SchemaError(f"cannot parse timestamp: {exc}. Use ISO-8601, e.g. 2024-03-01T06:30:00+02:00") from exc
    naive = _assume_timezone(naive, assume_tz).cast(UTC_US)
    return pc.if_else(zoned, with_zone, naive)


def to_arrow_table(data: FrameInput) -> pa.Table:
    """Accept an Arrow table/batch, a polars DataFrame, or an iterable of dict rows."""
    if isinstance(data, pa.Table):
        return data
    if isinstance(data, pa.RecordBatch):
        return pa.Table.from_batches([data])
    if isinstance(data, pl.DataFrame):
        return data.to_arrow()
    if not isinstance(data, Iterable) or isinstance(data, (str, bytes, Mapping)):
        raise SchemaError(f"rows must be a list of dicts, an Arrow table or a polars DataFrame, not {type(data).__name__}")
    rows = list(data)
    for i, r in enumerate(rows):
        if not isinstance(r, Mapping):
            raise SchemaError(f"row {i} is {r!r}, not a dict; pass each row as a dict of column -> value")
    if not rows:
        return pa.table({"frame_id": pa.array([], pa.string()), "uri": pa.array([], pa.string())})
    names: dict[str, None] = {}
    for r in rows:
        names.update(dict.fromkeys(r))
    columns = {}
    for name in names:
        vals = [_plain(r.get(name)) for r in rows]
        if name == "annotations":
            vals = [_ann_list(v, i) for i, v in enumerate(vals)]
        elif name == "captured_at":
            vals = [v.isoformat() if isinstance(v, dt.datetime) else v for v in vals]
        columns[name] = _column(name, vals, pa.list_(ANNOTATION_TYPE) if name == "annotations" else None)
    return pa.table(columns)


def _column(name: str, vals: list[Any], typ: pa.DataType | None) -> pa.Array:
    """One column of dict rows as Arrow; a value of the wrong type is named with its row."""
    try:
        return pa.array(vals, typ)
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError) as exc:
        row = _first_bad_row(vals, typ)
        hint = (
            "an annotation's bbox is 4 numbers [x, y, w, h], its confidence a number, its count an integer"
            if name == "annotations"
            else "give the column one type in every row"
        )
        raise SchemaError(
            f"column {name!r} has a value of the wrong type (row {row}: {vals[row]!r}): {exc}; {hint}"
        ) from exc


def _first_bad_row(vals: list[Any], typ: pa.DataType | None) -> int:
    """The row at which converting `vals` to Arrow first fails (binary search on prefixes; error path only)."""
    good, bad = 0, len(vals)  # vals[:good] converts, vals[:bad] does not
    while bad - good > 1:
        mid = (good + bad) // 2
        try:
            pa.array(vals[:mid], typ)
            good = mid
        except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError):
            bad = mid
    return bad - 1


def _plain(v: Any) -> Any:
    return v.tolist() if isinstance(v, np.ndarray) else v


def _ann_list(v: Any, row: int) -> list[dict]:
    """A row's annotations as dicts; anything but a list of dicts raises SchemaError naming the row."""
    if v is None:
        return []
    if not isinstance(v, (list, tuple)) or not all(isinstance(a, Mapping) for a in v):
        raise SchemaError(f"row {row}: annotations must be a list of dicts (e.g. [{{'label': 'deer'}}]), not {v!r}")
    return [_ann_dict(a) for a in v]


def _ann_dict(a: Mapping[str, Any]) -> dict:
    out = dict(a)
    for k in ("created_at", "reviewed_at"):
        v = out.get(k)
        if isinstance(v, str):
            out[k] = parse_timestamps(pa.array([v]))[0].as_py()
    unknown = set(out) - set(ANNOTATION_TYPE.names)
    if unknown:
        raise SchemaError(
            f"unknown annotation field(s) {sorted(unknown)}; annotation fields are {list(ANNOTATION_TYPE.names)}"
        )
    return out


def normalize_frames(
    data: FrameInput,
    extra_schema: pa.Schema | None = None,
    now: dt.datetime | None = None,
    assume_tz: str = "UTC",
) -> pa.Table:
    """Validate `data` and return it in the frames schema (core columns, then extras).

    `extra_schema` holds the dataset's existing user columns; new user columns keep their type.
    """
    table = to_arrow_table(data)
    for required in ("frame_id", "uri"):
        if required not in table.column_names:
            raise SchemaError(f"frames need a {required!r} column; got columns {table.column_names}")
    n = table.num_rows
    now = now or dt.datetime.now(dt.UTC)
    extra_types = {f.name: f.type for f in (extra_schema or [])}
    check_column_names([c for c in table.column_names if c not in CORE_NAMES], [*CORE_NAMES, *extra_types])
    # A new user column whose values are all null has no type to store; it is left out (nothing is
    # lost) and added by the first write that carries a value, with that value's type (polars'
    # large_string stored as plain string, like the core columns).
    extras = [
        pa.field(name, extra_types.get(name, _plain_string(table.schema.field(name).type)))
        for name in table.column_names
        if name not in CORE_NAMES and not (name not in extra_types and pa.types.is_null(table.schema.field(name).type))
    ]
    target = frames_schema(pa.schema(extras))
    frame_id = table.column("frame_id").combine_chunks().cast(pa.string())
    cols: dict[str, pa.Array] = {}
    for field in target:
        if field.name in table.column_names:
            col = table.column(field.name).combine_chunks()
        else:
            col = pa.nulls(n, field.type)
        cols[field.name] = _coerce(field, col, n, frame_id, now, assume_tz)
    _check_keys(cols["frame_id"], cols["uri"])
    cols["labels"] = derive_labels(cols["annotations"])
    return pa.Table.from_arrays([cols[f.name] for f in target], schema=target)


def _plain_string(typ: pa.DataType) -> pa.DataType:
    return pa.string() if pa.types.is_large_string(typ) else typ


def _coerce(
    field: pa.Field, col: pa.Array, n: int, frame_id: pa.Array, now: dt.datetime, assume_tz: str
) -> pa.Array:
    name = field.name
    try:
        if name == "captured_at":
            return parse_timestamps(col, assume_tz)
        if name == "revision":
            revision = pc.fill_null(col.cast(pa.int64()), 0)
            if pc.any(pc.less(revision, 0)).as_py():
                first = pc.index(pc.less(revision, 0), True).as_py()
                raise SchemaError(f"row {first}: revision is {revision[first].as_py()}; a revision is >= 0")
            return revision
        if name == "annotations":
            return normalize_annotations(col, frame_id, now)
        if name == "labels":
            return pa.nulls(n, field.type)  # derived below
        return col.cast(field.type)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError) as exc:
        raise SchemaError(f"column {name!r} cannot be read as {field.type}: {exc}") from exc


def _check_keys(frame_id: pa.Array, uri: pa.Array) -> None:
    for name, col in (("frame_id", frame_id), ("uri", uri)):
        if col.null_count:
            first = pc.index(pc.is_null(col), True).as_py()
            raise SchemaError(f"row {first}: {name} is null; every frame needs a {name}")
    counts = pc.value_counts(frame_id)
    dups = counts.filter(pc.greater(counts.field("counts"), 1)).field("values")
    if len(dups):
        shown = ", ".join(repr(v) for v in dups.to_pylist()[:10])
        raise DuplicateFrameError(
            f"{len(dups)} frame_id(s) appear more than once in the input: {shown}. frame_id is the key; make it unique."
        )


def normalize_annotations(col: pa.Array, frame_id: pa.Array, now: dt.datetime) -> pa.ListArray:
    """Fill provenance defaults and validate every annotation of a list<struct> column.

    An annotation without an `ann_id` gets `<frame_id>:<position>`, stable across re-imports.
    """
    if pa.types.is_null(col.type):
        col = pa.nulls(len(col), pa.list_(ANNOTATION_TYPE))
    col = pc.if_else(pc.is_null(col), pa.scalar([], col.type), col) if col.null_count else col
    flat = pc.list_flatten(col)
    parents = pc.list_parent_indices(col)
    m = len(flat)
    present = set(flat.type.names) if m or pa.types.is_struct(flat.type) else set()
    unknown = present - set(ANNOTATION_TYPE.names)
    if unknown:
        raise SchemaError(f"unknown annotation field(s) {sorted(unknown)}; fields are {list(ANNOTATION_TYPE.names)}")

    def field(name: str) -> pa.Array:
        t = ANNOTATION_TYPE.field(name).type
        return pc.struct_field(flat, name).cast(t) if name in present else pa.nulls(m, t)

    ann = {name: field(name) for name in ANNOTATION_TYPE.names}
    if m:
        offsets = col.offsets.to_numpy()
        starts = offsets[:-1] - offsets[0]
        parent_np = parents.to_numpy()
        position = pa.array(np.arange(m) - starts[parent_np]).cast(pa.string())
        default_ids = pc.binary_join_element_wise(pc.take(frame_id, parents), position, ":")
    else:
        default_ids = pa.array([], pa.string())
    ann["ann_id"] = pc.coalesce(ann["ann_id"], default_ids)
    ann["source_kind"] = pc.coalesce(ann["source_kind"], pa.scalar("human"))
    ann["review_status"] = pc.coalesce(ann["review_status"], pa.scalar("unreviewed"))
    ann["level"] = pc.coalesce(ann["level"], pa.scalar("media"))
    ann["created_at"] = pc.coalesce(ann["created_at"], pa.scalar(now, UTC_US))
    ann["revision"] = pc.coalesce(ann["revision"], pa.scalar(0, pa.int64()))
    if m:
        _check_annotations(ann, parents)
    struct = pa.StructArray.from_arrays([ann[n] for n in ANNOTATION_TYPE.names], fields=list(ANNOTATION_TYPE))
    offsets = col.offsets if col.offset == 0 else pc.subtract(col.offsets, col.offsets[0])
    return pa.ListArray.from_arrays(offsets, struct, type=pa.list_(ANNOTATION_TYPE))


def _check_annotations(ann: dict[str, pa.Array], parents: pa.Array) -> None:
    def fail(mask: pa.Array, what: str) -> None:
        mask = pc.fill_null(mask, False)
        if pc.any(mask).as_py():
            idx = pc.indices_nonzero(mask).to_pylist()[:5]
            where = ", ".join(f"row {parents[i].as_py()} annotation {ann['ann_id'][i].as_py()!r}" for i in idx)
            raise SchemaError(f"{what} ({where})")

    fail(pc.is_null(ann["label"]), "annotation label is null; every annotation needs a label")
    fail(pc.invert(pc.is_in(ann["source_kind"], pa.array(SOURCE_KINDS))), f"source_kind must be one of {SOURCE_KINDS}")
    fail(
        pc.invert(pc.is_in(ann["review_status"], pa.array(REVIEW_STATUSES))),
        f"review_status must be one of {REVIEW_STATUSES}",
    )
    fail(pc.invert(pc.is_in(ann["level"], pa.array(OBSERVATION_LEVELS))), f"level must be one of {OBSERVATION_LEVELS}")
    conf = ann["confidence"]
    # the rules commit() applies to changes: NaN is no confidence (it would never enter a review queue)
    fail(pc.or_(pc.or_(pc.less(conf, 0), pc.greater(conf, 1)), pc.is_nan(conf)), "confidence must lie in [0, 1]")
    fail(pc.less(ann["count"], 0), "count must be >= 0")
    fail(pc.less(ann["revision"], 0), "annotation revision must be >= 0")
    fail(_repeated_ann_ids(ann["ann_id"], parents), "ann_id appears twice in one frame; give each annotation its own")
    bad = bbox_out_of_range(ann["bbox"])
    fail(bad, "bbox must be normalised [x, y, w, h] with x, y, w, h >= 0 and x + w, y + h <= 1")


def _repeated_ann_ids(ann_id: pa.Array, parents: pa.Array) -> pa.Array:
    """True at every annotation whose (frame, ann_id) occurs more than once: a change could not tell them apart."""
    df = pl.DataFrame({"p": pl.from_arrow(parents), "a": pl.from_arrow(ann_id)})
    return df.select(pl.struct("p", "a").is_duplicated()).to_series().to_arrow()


def bbox_out_of_range(bbox: pa.Array, tolerance: float = 1e-6) -> pa.Array:
    """True where a normalised [x, y, w, h] box leaves the unit square by more than `tolerance`."""
    n = len(bbox)
    if n == 0:
        return pa.array([], pa.bool_())
    vals = pc.list_flatten(bbox.fill_null([0.0, 0.0, 0.0, 0.0]) if bbox.null_count else bbox)
    xywh = vals.to_numpy(zero_copy_only=False).reshape(n, 4).astype(np.float64)
    x, y, w, h = xywh.T
    bad = (
        (x < -tolerance) | (y < -tolerance) | (w < 0) | (h < 0)
        | (x + w > 1 + tolerance) | (y + h > 1 + tolerance) | ~np.isfinite(xywh).all(axis=1)
    )
    bad &= ~np.asarray(pc.is_null(bbox))
    return pa.array(bad)


def derive_labels(annotations: pa.ListArray) -> pa.ListArray:
    """Distinct, sorted labels of each frame's annotations that are not rejected."""
    n = len(annotations)
    flat = pc.list_flatten(annotations)
    if len(flat) == 0:  # n empty lists, built from offsets alone
        return pa.ListArray.from_arrays(pa.array(np.zeros(n + 1, np.int32)), pa.array([], pa.string()))
    df = pl.DataFrame(
        {
            "p": pl.from_arrow(pc.list_parent_indices(annotations)),
            "label": pl.from_arrow(pc.struct_field(flat, "label")),
            "status": pl.from_arrow(pc.struct_field(flat, "review_status")),
        }
    )
    grouped = (
        df.filter(pl.col("status") != "rejected")
        .group_by("p")
        .agg(pl.col("label").drop_nulls().unique().sort())
    )
    full = pl.DataFrame({"p": np.arange(n, dtype=np.int64)}).join(
        grouped.with_columns(pl.col("p").cast(pl.Int64)), on="p", how="left"
    ).sort("p")
    labels = full["label"].fill_null(pl.lit([], dtype=pl.List(pl.String)))
    return labels.to_arrow().cast(pa.list_(pa.string()))
