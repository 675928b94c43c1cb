"""Annotation changes (add, relabel, move, delete, review): parse, validate, apply to frame rows.

Everything is vectorised (Arrow in, polars joins, Arrow out); applying a batch only computes new rows.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc

from ..errors import CorrectionError, SchemaError
from ..frames.normalize import bbox_out_of_range, derive_labels, to_arrow_table
from ..frames.schema import ANNOTATION_TYPE, BBOX_TYPE

ChangeInput = pa.Table | pl.DataFrame | Iterable[Mapping[str, Any]]

CHANGE_OPS = ("add", "relabel", "move", "delete", "review")
# "reopen" puts a reviewed annotation back to unreviewed (how an undo restores a review); it clears reviewed_by/at.
REVIEW_ACTIONS = {"accept": "accepted", "reject": "rejected", "correct": "corrected", "reopen": "unreviewed"}
_REQUIRED = {
    "add": ("label",),
    "relabel": ("ann_id", "label"),
    "move": ("ann_id", "bbox"),
    "delete": ("ann_id",),
    "review": ("ann_id", "status"),
}
# Every field each op takes besides op, frame_id and revision; any other non-null field is an error.
_TAKES = {
    "add": ("label", "ann_id", "bbox", "confidence", "count", "note"),
    "relabel": ("ann_id", "label"),
    "move": ("ann_id", "bbox"),
    "delete": ("ann_id",),
    "review": ("ann_id", "status", "note", "label"),
}
CHANGE_SCHEMA = pa.schema(
    [
        ("op", pa.string()),
        ("frame_id", pa.string()),
        ("ann_id", pa.string()),
        ("label", pa.string()),
        ("bbox", BBOX_TYPE),
        ("confidence", pa.float32()),
        ("count", pa.int32()),
        ("status", pa.string()),
        ("note", pa.string()),
        ("revision", pa.int64()),
    ]
)
_CAST_ERRORS = (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError)
_READS_AS = {  # what a value of each change field must be, as error messages say it
    "bbox": "4 numbers [x, y, w, h], normalised to the image",
    "confidence": "a number in [0, 1]",
    "count": "a whole number >= 0",
    "revision": "a whole number (the frame revision the change was based on)",
    **{name: "text" for name in ("op", "frame_id", "ann_id", "label", "status", "note")},
}
_KEYS = ["_f", "ann_id"]
_ADDED_POS = 1 << 40  # added annotations go after the existing ones, in input order


def normalize_changes(changes: ChangeInput) -> pl.DataFrame:
    """Changes as a polars frame in CHANGE_SCHEMA plus `_seq` (input position); bad columns or values raise."""
    if isinstance(changes, (pa.Table, pa.RecordBatch, pl.DataFrame)):
        _check_fields(changes.columns if isinstance(changes, pl.DataFrame) else changes.schema.names)
        table = to_arrow_table(changes)
    else:
        rows = list(changes)
        if not rows:
            raise CorrectionError("no changes given; pass at least one change with an 'op' and a 'frame_id'")
        not_dicts = [f"change {i}: {row!r}" for i, row in enumerate(rows) if not isinstance(row, Mapping)]
        if not_dicts:
            raise CorrectionError("every change must be an object with an 'op' and a 'frame_id'", not_dicts)
        _check_fields(list(dict.fromkeys(name for row in rows for name in row)))
        try:
            table = to_arrow_table(rows)
        except SchemaError as exc:
            raise CorrectionError(f"changes: {exc}") from exc
    if table.num_rows == 0:
        raise CorrectionError("no changes given; pass at least one change with an 'op' and a 'frame_id'")
    cast, wrong = cast_to(table, CHANGE_SCHEMA)
    out = pl.from_arrow(cast).with_row_index("_seq").with_columns(pl.col("_seq").cast(pl.Int64))
    if wrong:
        problems = pl.DataFrame(wrong, schema={"_seq": pl.Int64, "_problem": pl.String}, orient="row")
        _raise_for(out.join(problems, on="_seq").sort("_seq"), "changes hold values of the wrong type, nothing was written")
    return out


def _check_fields(names: list[str]) -> None:
    unknown = [name for name in names if name not in CHANGE_SCHEMA.names]
    if unknown:
        raise CorrectionError(f"unknown change field(s) {unknown}; change fields are {CHANGE_SCHEMA.names}")
    for required in ("op", "frame_id"):
        if required not in names:
            raise CorrectionError(f"every change needs an {required!r}; got fields {names}")


def cast_to(table: pa.Table, schema: pa.Schema) -> tuple[pa.Table, list[tuple[int, str]]]:
    """`table` in `schema` (absent columns null), and (row, problem) for each value of the wrong type."""
    cols, wrong = [], []
    for field in schema:
        col = table.column(field.name).combine_chunks() if field.name in table.column_names else None
        try:
            cols.append(pa.nulls(table.num_rows, field.type) if col is None else col.cast(field.type))
        except _CAST_ERRORS:
            cols.append(pa.nulls(table.num_rows, field.type))
            bad = _uncastable(col, field.type)
            wrong += [(i, f"{field.name} {col[i].as_py()!r} is not {_READS_AS[field.name]}") for i in bad]
    return pa.Table.from_arrays(cols, schema=schema), wrong


def _uncastable(col: pa.Array, typ: pa.DataType, limit: int = 50) -> list[int]:
    """Positions of the non-null values of `col` that Arrow cannot cast to `typ`, at most `limit` (error path only)."""
    try:
        col.cast(typ)
        return []
    except _CAST_ERRORS:
        if len(col) <= 1:
            return [0] if len(col) == 1 and col.null_count == 0 else []
    half = len(col) // 2
    first = _uncastable(col.slice(0, half), typ, limit)
    rest = _uncastable(col.slice(half), typ, limit - len(first)) if len(first) < limit else []
    return first + [half + i for i in rest]


def describe(row: Mapping[str, Any]) -> str:
    """`change 3 (relabel f1/f1:0)`: how error messages name one change."""
    ann = f"/{row['ann_id']}" if row.get("ann_id") else ""
    return f"change {row['_seq']} ({row['op']} {row['frame_id']}{ann})"


def _raise_for(bad: pl.DataFrame, message: str, problem: str | None = None) -> None:
    if bad.height:
        rows = [describe(r) + (f": {problem or r['_problem']}") for r in bad.head(50).iter_rows(named=True)]
        raise CorrectionError(message, rows)


def validate_changes(changes: pl.DataFrame, taxonomy: list[str] | None) -> None:
    """Raise CorrectionError listing every change that is malformed on its own (before any read)."""
    problems = [
        (pl.col("frame_id").is_null(), pl.lit("frame_id is missing")),
        (~pl.col("op").is_in(CHANGE_OPS) | pl.col("op").is_null(), pl.lit(f"op must be one of {CHANGE_OPS}")),
    ]
    for op, fields in _REQUIRED.items():
        for name in fields:
            problems.append(((pl.col("op") == op) & pl.col(name).is_null(), pl.lit(f"{op} needs {name!r}")))
    for op, takes in _TAKES.items():
        for name in [n for n in CHANGE_SCHEMA.names if n not in {"op", "frame_id", "revision", *takes}]:
            unused = f"{op} does not use {name!r} (it takes {', '.join(takes)}); drop it or use another op"
            problems.append(((pl.col("op") == op) & pl.col(name).is_not_null(), pl.lit(unused)))
    problems.append(
        (
            (pl.col("op") == "review") & pl.col("status").is_not_null() & ~pl.col("status").is_in(list(REVIEW_ACTIONS)),
            pl.lit(f"review status must be one of {list(REVIEW_ACTIONS)}"),
        )
    )
    problems.append(
        (
            (pl.col("op") == "review") & (pl.col("status") != "correct") & pl.col("label").is_not_null(),
            pl.lit("only a 'correct' review may set a new label"),
        )
    )
    problems.append(((pl.col("confidence") < 0) | (pl.col("confidence") > 1), pl.lit("confidence must lie in [0, 1]")))
    problems.append((pl.col("count") < 0, pl.lit("count must be >= 0")))
    bbox_bad = np.asarray(bbox_out_of_range(changes["bbox"].to_arrow().cast(BBOX_TYPE)), dtype=bool)
    problems.append(
        (pl.Series(bbox_bad), pl.lit("bbox must be normalised [x, y, w, h] with x + w <= 1 and y + h <= 1, all >= 0"))
    )
    if taxonomy is not None:
        problems.append(
            (
                pl.col("label").is_not_null() & ~pl.col("label").is_in(taxonomy),
                pl.lit(f"label is outside the dataset's taxonomy ({len(taxonomy)} labels; see ds.taxonomy)"),
            )
        )
    flagged = changes.with_columns(
        pl.concat_list([pl.when(cond.fill_null(False)).then(text) for cond, text in problems])
        .list.drop_nulls()
        .list.join("; ")
        .alias("_problem")
    ).filter(pl.col("_problem") != "")
    _raise_for(flagged, "invalid changes, nothing was written")


def assign_ann_ids(changes: pl.DataFrame, commit_id: str) -> pl.DataFrame:
    """Give `add` changes without an ann_id a stable new one: `<frame_id>:<commit id prefix>-<position>`."""
    generated = pl.concat_str([pl.col("frame_id"), pl.lit(f":{commit_id[:12]}-"), pl.col("_seq").cast(pl.String)])
    return changes.with_columns(
        ann_id=pl.when((pl.col("op") == "add") & pl.col("ann_id").is_null()).then(generated).otherwise(pl.col("ann_id"))
    )


def flatten_annotations(rows: pa.Table) -> pl.DataFrame:
    """One polars row per annotation: `_f` (row index in `rows`), `_pos` (position in its list), fields."""
    ann = rows.column("annotations").combine_chunks()
    flat = pc.list_flatten(ann)
    df = pl.from_arrow(pa.table({"a": flat.cast(ANNOTATION_TYPE)})).unnest("a")
    parents = pc.list_parent_indices(ann).to_numpy().astype(np.int64)
    starts = np.zeros(len(ann) + 1, dtype=np.int64)
    np.cumsum(np.bincount(parents, minlength=len(ann)), out=starts[1:])
    pos = np.arange(len(parents), dtype=np.int64) - starts[parents]
    return df.with_columns(_f=pl.Series(parents), _pos=pl.Series(pos))


def nest_annotations(flat: pl.DataFrame, n_rows: int) -> pa.ListArray:
    """Inverse of flatten_annotations: a list<annotation> array of `n_rows` rows, in `_pos` order."""
    flat = flat.sort(["_f", "_pos"])
    fields = flat.select(ANNOTATION_TYPE.names).to_arrow()
    struct = pa.StructArray.from_arrays(
        [fields.column(f.name).combine_chunks().cast(f.type) for f in ANNOTATION_TYPE], fields=list(ANNOTATION_TYPE)
    )
    counts = np.bincount(flat["_f"].to_numpy(), minlength=n_rows) if flat.height else np.zeros(n_rows, np.int64)
    offsets = np.zeros(n_rows + 1, dtype=np.int32)
    np.cumsum(counts, out=offsets[1:])
    return pa.ListArray.from_arrays(pa.array(offsets), struct, type=pa.list_(ANNOTATION_TYPE))


def apply_changes(
    rows: pa.Table, changes: pl.DataFrame, author: str, now: dt.datetime, source_kind: str = "human"
) -> pa.Table:
    """The touched frame rows after `changes` (in input order), revisions bumped and labels re-derived.

    `rows` are the current rows of exactly the frames the changes name; provenance is `author` at `now`,
    and added annotations get `source_kind` ("model" when `author` is a model name@version).
    Raises CorrectionError for unknown frames or annotations and for adds of an existing ann_id.
    """
    index = pl.DataFrame({"frame_id": rows.column("frame_id").combine_chunks().cast(pa.string())}).with_row_index("_f")
    changes = changes.join(index.with_columns(pl.col("_f").cast(pl.Int64)), on="frame_id", how="left")
    _raise_for(changes.filter(pl.col("_f").is_null()), "unknown frame(s), nothing was written", "no such frame_id")
    # The k-th change of one annotation applies in round k, so later changes see earlier ones.
    changes = changes.sort("_seq").with_columns(_round=pl.int_range(pl.len()).over(_KEYS))
    flat = flatten_annotations(rows)
    for r in range(int(changes["_round"].max()) + 1):
        flat = _apply_round(flat, changes.filter(pl.col("_round") == r), author, now, source_kind)
    new_ann = nest_annotations(flat, rows.num_rows)
    out = rows.set_column(rows.schema.get_field_index("annotations"), rows.schema.field("annotations"), new_ann)
    out = out.set_column(out.schema.get_field_index("labels"), out.schema.field("labels"), derive_labels(new_ann))
    revision = pc.add(out.column("revision"), 1)
    return out.set_column(out.schema.get_field_index("revision"), out.schema.field("revision"), revision)


def _apply_round(
    flat: pl.DataFrame, round_: pl.DataFrame, author: str, now: dt.datetime, source_kind: str = "human"
) -> pl.DataFrame:
    adds = round_.filter(pl.col("op") == "add")
    edits = round_.filter(pl.col("op") != "add")
    _raise_for(edits.join(flat, on=_KEYS, how="anti"), "unknown annotation(s), nothing was written", "no such ann_id")
    _raise_for(adds.join(flat, on=_KEYS, how="semi"), "annotation(s) already exist", "ann_id is taken in this frame")
    flat = flat.join(edits.filter(pl.col("op") == "delete"), on=_KEYS, how="anti")
    updates = edits.filter(pl.col("op") != "delete").select(
        *_KEYS, *[pl.col(c).alias(f"_c_{c}") for c in ("op", "label", "bbox", "status", "note")]
    )
    flat = flat.join(updates, on=_KEYS, how="left")
    op = pl.col("_c_op")
    status = pl.col("_c_status")
    new_label = (op == "relabel") | ((op == "review") & (status == "correct") & pl.col("_c_label").is_not_null())
    # A relabel or a moved box makes the annotation the author's: it is no longer the model's output
    # (so a re-run of the model never replaces it); the model's values stay in the history.
    human_made = new_label | (op == "move")
    reviewed = op == "review"
    reopened = reviewed & (status == "reopen")
    flat = flat.with_columns(
        label=pl.when(new_label).then(pl.col("_c_label")).otherwise(pl.col("label")),
        source_kind=pl.when(human_made).then(pl.lit("human")).otherwise(pl.col("source_kind")),
        source=pl.when(human_made).then(pl.lit(author)).otherwise(pl.col("source")),
        created_at=pl.when(human_made).then(pl.lit(now)).otherwise(pl.col("created_at")),
        confidence=pl.when(human_made).then(None).otherwise(pl.col("confidence")),
        bbox=pl.when(op == "move").then(pl.col("_c_bbox")).otherwise(pl.col("bbox")),
        review_status=pl.when(reviewed).then(status.replace_strict(REVIEW_ACTIONS, default=None)).otherwise(
            pl.col("review_status")
        ),
        reviewed_by=pl.when(reopened).then(None).when(reviewed).then(pl.lit(author)).otherwise(pl.col("reviewed_by")),
        reviewed_at=pl.when(reopened).then(None).when(reviewed).then(pl.lit(now)).otherwise(pl.col("reviewed_at")),
        note=pl.when(reviewed).then(pl.col("_c_note")).otherwise(pl.col("note")),
        revision=pl.when(op.is_not_null()).then(pl.col("revision") + 1).otherwise(pl.col("revision")),
    ).drop(pl.selectors.starts_with("_c_"))
    if adds.height:
        added = adds.select(
            "ann_id",
            "label",
            "bbox",
            "confidence",
            "count",
            pl.col("_f"),
            (pl.col("_seq") + _ADDED_POS).alias("_pos"),
            source_kind=pl.lit(source_kind),
            source=pl.lit(author),
            created_at=pl.lit(now),
            review_status=pl.lit("unreviewed"),
            reviewed_by=pl.lit(None, pl.String),
            reviewed_at=pl.lit(None, flat.schema["reviewed_at"]),
            note=pl.col("note"),
            revision=pl.lit(0, pl.Int64),
            level=pl.lit("media"),
        )
        # Fields an add does not set (life_stage, sex, ... attributes) start out null.
        added = added.with_columns(pl.lit(None, flat.schema[c]).alias(c) for c in flat.columns if c not in added.columns)
        flat = pl.concat([flat, added.select(flat.columns).cast(flat.schema)])
    return flat
