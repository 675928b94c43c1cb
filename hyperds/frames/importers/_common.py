"""Pieces every importer shares: reading with pointed errors, boxes, nesting, image checks, the one write.

Importers turn a source file into one raw frames table (vectorised); `write_frames` validates it in
batches (with a progress bar) and inserts only the new frame_ids in a single Lance commit.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import fsspec
import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
from tqdm.auto import tqdm

from ...errors import SchemaError, SourceFormatError
from ..headers import read_headers
from ..normalize import check_timezone, normalize_frames, parse_timestamps
from ..schema import ANNOTATION_TYPE, BBOX_TYPE
from ..table import FrameTable, count_annotations
from ..uris import is_relative, resolve_uris
from .report import ImportReport

log = logging.getLogger(__name__)

BATCH_ROWS = 50_000
# Boxes may leave the unit square by this much (float noise in real detector output) and are clamped.
BOX_TOLERANCE = 1e-4

Pointer = Callable[[int], str]


# -- reading ---------------------------------------------------------------------------------
def read_json(path: Path) -> Any:
    """Parse a JSON file; malformed JSON names the line and column."""
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except json.JSONDecodeError as exc:
        raise SourceFormatError(
            str(path), f"line {exc.lineno} column {exc.colno}", f"malformed JSON: {exc.msg}", "fix or re-export the file"
        ) from exc
    except UnicodeDecodeError as exc:
        raise SourceFormatError(str(path), f"byte {exc.start}", "not UTF-8 text", "save the file as UTF-8") from exc
    except OSError as exc:  # missing, a directory, unreadable
        raise SourceFormatError(str(path), None, exc.strerror or str(exc), "check the path") from None


def require(obj: Any, key: str, path: Path, where: str, kind: type | tuple[type, ...]) -> Any:
    """obj[key], checked to exist and be of `kind`; `where` is obj's own pointer."""
    element = f"{where}.{key}" if where else key
    if not isinstance(obj, dict) or obj.get(key) is None:
        raise SourceFormatError(str(path), element, "missing required field", f"add {key!r}")
    value = obj[key]
    if not isinstance(value, kind):
        names = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        raise SourceFormatError(str(path), element, f"expected {names}, got {type(value).__name__}")
    return value


def scalar_type(items: Sequence[Any], key: str) -> pa.DataType:
    """Arrow type of the first non-null items[i][key]: ids are ints in some files and strings in others."""
    for item in items:
        value = item.get(key) if isinstance(item, dict) else None
        if value is not None:
            return pa.int64() if isinstance(value, int) and not isinstance(value, bool) else pa.string()
    return pa.string()


def to_arrow(items: Sequence[Any], typ: pa.DataType, path: Path, prefix: str) -> pa.Array:
    """Convert parsed JSON to Arrow in one C++ call; on a type error, point at the first bad element."""
    try:
        return pa.array(items, type=typ)
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        for i, item in enumerate(items):
            where = _locate(item, typ, f"{prefix}[{i}]")
            if where:
                raise SourceFormatError(str(path), where, f"wrong type: {exc}") from exc
        raise SourceFormatError(str(path), prefix, f"cannot read: {exc}") from exc


def _locate(value: Any, typ: pa.DataType, where: str) -> str | None:
    if value is None:
        return None
    if pa.types.is_struct(typ):
        if not isinstance(value, dict):
            return where
        return next((w for f in typ if (w := _locate(value.get(f.name), f.type, f"{where}.{f.name}"))), None)
    if pa.types.is_list(typ):
        if not isinstance(value, list):
            return where
        return next((w for j, v in enumerate(value) if (w := _locate(v, typ.value_type, f"{where}[{j}]"))), None)
    try:
        pa.array([value], type=typ)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return where
    return None


def fail_where(mask: pa.Array | np.ndarray, path: Path | str, pointer: Pointer, problem: str, hint: str = "") -> None:
    """Raise SourceFormatError at the first row where `mask` is true (nulls count as false)."""
    arr = np.asarray(pc.fill_null(mask, False)) if isinstance(mask, (pa.Array, pa.ChunkedArray)) else mask
    hits = np.flatnonzero(arr)
    if len(hits):
        more = f" ({len(hits) - 1} more like it)" if len(hits) > 1 else ""
        raise SourceFormatError(str(path), pointer(int(hits[0])), problem + more, hint)


def check_unique(ids: pa.Array, path: Path | str, pointer: Pointer, what: str) -> None:
    """A frame id appearing twice in one file is an error at its second occurrence."""
    values = pl.Series("id", ids.cast(pa.string()))
    repeated = values.is_first_distinct().not_()
    if repeated.any():
        i = int(repeated.arg_true()[0])
        first = int(values.eq(values[i]).arg_true()[0])
        raise SourceFormatError(
            str(path), pointer(i), f"duplicate {what} {values[i]!r} (first at {pointer(first)})", f"{what} must be unique"
        )


def parse_times(values: pa.Array, tz: str, path: Path | str, pointer: Pointer) -> pa.Array:
    """ISO-8601 text to UTC; naive values are read in `tz`; a bad value (or zone) is named."""
    try:
        check_timezone(tz)
    except SchemaError as exc:
        raise SourceFormatError(str(path), None, str(exc)) from None
    try:
        return parse_timestamps(values, assume_tz=tz)
    except SchemaError as exc:
        for i in range(len(values)):
            try:
                parse_timestamps(values.slice(i, 1), assume_tz=tz)
            except SchemaError as one:
                raise SourceFormatError(str(path), pointer(i), f"timestamp {values[i].as_py()!r}: {one}") from exc
        raise SourceFormatError(str(path), None, str(exc)) from exc


def parse_values(values: pa.Array, typ: pa.DataType, path: Path | str, pointer: Pointer) -> pa.Array:
    """Text (CSV) to numbers or booleans; the first unreadable value is named."""
    try:
        return values.cast(typ)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        for i in range(len(values)):
            try:
                values.slice(i, 1).cast(typ)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                raise SourceFormatError(str(path), pointer(i), f"cannot read {values[i].as_py()!r} as {typ}") from exc
        raise


# -- annotations -----------------------------------------------------------------------------
def category_labels(
    ids: Sequence[str], names: Sequence[str]
) -> tuple[list[str], tuple[tuple[str, tuple[str, ...]], ...]]:
    """Label per category id: its name, or `name#id` when several ids share the name (kept distinct)."""
    by_name: dict[str, list[str]] = {}
    for i, n in zip(ids, names, strict=True):
        by_name.setdefault(n, []).append(i)
    shared = {n: tuple(v) for n, v in by_name.items() if len(v) > 1}
    labels = [f"{n}#{i}" if n in shared else n for i, n in zip(ids, names, strict=True)]
    return labels, tuple(sorted(shared.items()))


def clamp_boxes(xywh: np.ndarray, present: np.ndarray, path: Path | str, pointer: Pointer) -> tuple[pa.Array, int]:
    """Normalised [x, y, w, h] rows as the bbox column; noise within BOX_TOLERANCE is clamped and counted.

    Rows where `present` is false become null boxes. Anything further outside [0, 1] is an error.
    """
    x, y, w, h = xywh.T
    tol = BOX_TOLERANCE
    with np.errstate(invalid="ignore"):
        bad = ~np.isfinite(xywh).all(axis=1) | (x < -tol) | (y < -tol) | (w < -tol) | (h < -tol)
        bad |= (x + w > 1 + tol) | (y + h > 1 + tol)
    bad &= present
    fail_where(bad, path, pointer, "bbox leaves [0, 1] after normalisation", "boxes are [x, y, width, height] inside the image")
    cx, cy = np.clip(x, 0, 1), np.clip(y, 0, 1)
    cw, ch = np.clip(w, 0, 1 - cx), np.clip(h, 0, 1 - cy)
    out = np.stack([cx, cy, cw, ch], axis=1)
    changed = int((present & (out != xywh).any(axis=1)).sum())
    flat = pa.array(np.where(present[:, None], out, 0).astype(np.float32).ravel())
    return pa.FixedSizeListArray.from_arrays(flat, 4, mask=pa.array(~present)).cast(BBOX_TYPE), changed


def annotation_struct(columns: dict[str, pa.Array]) -> pa.StructArray:
    """A struct array of the given annotation fields (the rest are filled by normalize_frames)."""
    fields = [ANNOTATION_TYPE.field(name) for name in columns]
    return pa.StructArray.from_arrays([columns[f.name].cast(f.type) for f in fields], fields=fields)


def nest(parents: np.ndarray, n: int, flat: pa.Array) -> pa.ListArray:
    """Group flat annotations into one list per frame (`parents` = frame row of each), order kept."""
    order = np.argsort(parents, kind="stable")
    offsets = np.concatenate([[0], np.cumsum(np.bincount(parents, minlength=n))]).astype(np.int32)
    return pa.ListArray.from_arrays(pa.array(offsets), flat.take(pa.array(order)), type=pa.list_(flat.type))


# -- image pointers ---------------------------------------------------------------------------
def image_uris(raw: pa.Array, root: str | None, ds: FrameTable, source_dir: Path) -> pa.Array:
    """Pointers as stored: `root` rebases relative paths; without it they stay relative to the
    dataset's root if it has one, else resolve against the import file's folder."""
    if root is None and ds.root:
        return resolve_uris(raw, None)
    return resolve_uris(raw, root if root is not None else str(source_dir.resolve()))


def check_images(
    uris: pa.Array, ds: FrameTable, path: Path | str, pointer: Pointer
) -> tuple[pa.Array, pa.Array, int, int]:
    """Check that local images exist and read their size from the header; remote ones are counted only.

    Returns (width, height, checked, unchecked); width/height are null where not read.
    """
    full = resolve_uris(uris, ds.root) if ds.root else uris
    idx = np.flatnonzero(np.asarray(pc.fill_null(pc.starts_with(full, "file://"), False)))
    paths = [p.removeprefix("file://") for p in pc.take(full, pa.array(idx, pa.int64())).to_pylist()]
    sizes = []
    for i, p in zip(idx, paths, strict=True):
        try:
            sizes.append(os.stat(p).st_size)
        except OSError as exc:
            raise SourceFormatError(
                str(path), pointer(int(i)), f"image {p} cannot be read: {exc.strerror}", "fix the path or pass --root"
            ) from None
    headers = read_headers(fsspec.filesystem("file"), paths, sizes, progress=True)
    errors = headers.column("error").combine_chunks()
    if errors.null_count < len(errors):
        k = int(pc.index(pc.is_valid(errors), True).as_py())
        problem = f"image {paths[k]}: {errors[k].as_py()}"
        raise SourceFormatError(str(path), pointer(int(idx[k])), problem, "fix or remove the image")
    n = len(uris)
    width, height = pa.nulls(n, pa.int32()), pa.nulls(n, pa.int32())
    if len(idx):
        place = np.full(n, -1, dtype=np.int64)
        place[idx] = np.arange(len(idx))
        positions = pa.array(place, mask=place < 0)
        width = headers.column("width").combine_chunks().take(positions)
        height = headers.column("height").combine_chunks().take(positions)
    remote = int(np.asarray(pc.invert(is_relative(full))).sum()) - len(idx)
    return width, height, len(idx), remote


# -- the write --------------------------------------------------------------------------------
def write_frames(ds: FrameTable, frames: pa.Table, fmt: str, path: Path | str, **counts: Any) -> ImportReport:
    """Validate every row in batches, then insert the frame_ids the dataset lacks in one commit."""
    before = ds.version
    now = dt.datetime.now(dt.UTC)
    extra = ds.extra_schema
    parts = []
    with tqdm(total=frames.num_rows, desc=f"{fmt} -> {ds.name}", unit="frame", leave=False) as bar:
        for start in range(0, max(frames.num_rows, 1), BATCH_ROWS):
            batch = frames.slice(start, BATCH_ROWS)
            try:
                parts.append(normalize_frames(batch, extra_schema=extra, now=now))
            except SchemaError as exc:
                raise SourceFormatError(str(path), None, str(exc)) from exc
            bar.update(batch.num_rows)
    table = pa.concat_tables(parts)
    result = ds.insert_normalized(table)
    report = ImportReport(
        format=fmt,
        path=str(path),
        dataset=ds.name,
        frames_read=table.num_rows,
        frames_inserted=result.inserted,
        frames_skipped=result.skipped,
        annotations_read=count_annotations(table),
        annotations_inserted=result.annotations,
        version_before=before,
        version_after=ds.version,
        **counts,
    )
    log.info("%s", report.summary())
    return report

