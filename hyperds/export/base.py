"""The export driver and what every format shares: the writer protocol, the provenance block, and the
per-batch split of frame rows into a frames frame and an annotations frame.

A format is a `Writer` class: `precheck(rows)` sees the light pre-pass columns of every row (errors
there come before anything is written), `write(frames, annotations)` gets each batch, `finish()`
writes what needs the whole set (categories, deployments, package metadata). Writers write into
`ctx.folder`, a local staging folder that `Destination` moves into place at the end.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Protocol

import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
from tqdm.auto import tqdm

from ..errors import ExportError
from .destination import Destination
from .source import SourceInfo, describe, iter_batches, resolved_uris

log = logging.getLogger(__name__)

DEFAULT_BATCH_SIZE = 65_536
ISO_Z = "%Y-%m-%dT%H:%M:%S%.fZ"  # UTC timestamps as written in every format
# Columns of the frame rows no format writes as a frame field.
_NOT_FRAME_FIELDS = ("annotations", "labels", "subquery", "weight")


@dataclass
class ExportResult:
    """What an export wrote: format, destination, frames and annotations written, and the provenance block."""

    format: str
    dest: str
    frames: int
    annotations: int
    files: list[str]
    provenance: dict[str, Any]
    skipped: dict[str, int] = field(default_factory=dict)

    def summary(self) -> str:
        skipped = "".join(f", {n} {what} skipped" for what, n in self.skipped.items() if n)
        src = self.provenance["source"]
        of = f"view {src['name']} {src.get('version')}" if src["kind"] == "view" else f"{src['kind']} {src['name']}"
        return f"exported {of} as {self.format} to {self.dest}: {self.frames} frames, {self.annotations} annotations{skipped}"


@dataclass
class ExportContext:
    """What a writer knows: the source, its options, the staging folder and the running counts."""

    info: SourceInfo
    folder: Path
    provenance: dict[str, Any]
    options: dict[str, Any]
    classes: list[str] = field(default_factory=list)  # sorted label (or class) names of the exported annotations
    frames: int = 0
    annotations: int = 0
    skipped: dict[str, int] = field(default_factory=dict)
    policy: Any = None  # a hyperds.workflows.policy.PolicyPlan when exported with policy="public"

    def skip(self, what: str, n: int) -> None:
        if n:
            self.skipped[what] = self.skipped.get(what, 0) + n

    def file_path(self, frames: pl.DataFrame) -> pl.Series:
        """Each frame's image path as written: its absolute URI, relative to `image_root` where it lies below it."""
        uris = frames["abs_uri"]
        root = self.options.get("image_root")
        if not root:
            return uris
        root = str(root).rstrip("/") + "/"
        if root.startswith("/"):
            root = "file://" + root
        return pl.select(
            pl.when(uris.str.starts_with(root)).then(uris.str.slice(len(root))).otherwise(uris)
        ).to_series().alias("file")


class Writer(Protocol):
    """One export format (see the module docstring)."""

    name: ClassVar[str]
    precheck_columns: ClassVar[tuple[str, ...]]
    columns: ClassVar[tuple[str, ...] | None]  # frame columns to read (None: all)
    option_names: ClassVar[tuple[str, ...]]  # options of this format (besides include_rejected, image_root)

    def __init__(self, ctx: ExportContext) -> None: ...
    def precheck(self, rows: pa.Table) -> None: ...
    def write(self, frames: pl.DataFrame, annotations: pl.DataFrame) -> None: ...
    def finish(self) -> list[str]: ...


def provenance(info: SourceInfo, fmt: str, exported_at: dt.datetime, options: dict[str, Any]) -> dict[str, Any]:
    """The block every file set carries: source (view name, version, digest, pinned datasets), tool, time."""
    from .._version import __version__

    shown = {k: v for k, v in sorted(options.items()) if k not in ("storage_options", "exported_at") and v is not None}
    return {
        "source": info.provenance(),
        "format": fmt,
        "hyperds_version": __version__,
        "exported_at": exported_at.astimezone(dt.UTC).isoformat().replace("+00:00", "Z"),
        "options": json.loads(json.dumps(shown, default=str)),
    }


def split_rows(table: pa.Table, ctx: ExportContext) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(frames, annotations) of one batch. Frames: frame columns plus `_row`, `abs_uri`; annotations: one row
    per kept annotation, `_row` pointing at its frame, bbox as bbox_x/y/w/h, `class` after the label map.

    Rejected annotations are left out unless `include_rejected`; with a label map, annotations whose label
    maps to no class are left out (counted as skipped)."""
    n = table.num_rows
    frames = table.drop_columns([c for c in _NOT_FRAME_FIELDS if c in table.column_names])
    frames = frames.append_column("_row", pa.array(range(n), pa.int64()))
    frames = frames.append_column("abs_uri", resolved_uris(table, ctx.info.roots))
    ann_list = table.column("annotations").combine_chunks()
    flat = pc.list_flatten(ann_list)
    ann_cols: dict[str, Any] = {"_row": pc.list_parent_indices(ann_list).cast(pa.int64())}
    for f in flat.type:
        if f.name == "bbox":
            for i, part in enumerate(("bbox_x", "bbox_y", "bbox_w", "bbox_h")):
                ann_cols[part] = pc.list_element(flat.field("bbox"), i)
        else:
            ann_cols["ann_revision" if f.name == "revision" else f.name] = flat.field(f.name)
    anns = pl.DataFrame(pl.from_arrow(pa.table(ann_cols)))
    if not ctx.options.get("include_rejected"):
        before = anns.height
        anns = anns.filter(pl.col("review_status").fill_null("") != "rejected")
        ctx.skip("rejected annotations", before - anns.height)
    mapping = ctx.info.label_map
    if mapping is not None:
        before = anns.height
        anns = anns.with_columns(pl.col("label").replace_strict(mapping, default=None).alias("class"))
        anns = anns.filter(pl.col("class").is_not_null())
        ctx.skip("annotations without a class", before - anns.height)
    else:
        anns = anns.with_columns(pl.col("label").alias("class"))
    return pl.DataFrame(pl.from_arrow(frames)), anns


def precheck_frames(rows: pa.Table, column: str, what: str, hint: str) -> None:
    """ExportError naming up to five frames where `column` is null."""
    missing = pc.is_null(rows.column(column)) if column in rows.column_names else pa.repeat(pa.scalar(True), rows.num_rows)
    bad = pc.indices_nonzero(missing)
    if len(bad):
        ids = rows.column("frame_id").take(bad[:5]).to_pylist()
        raise ExportError(f"{len(bad)} frame(s) have no {what} (e.g. {', '.join(map(repr, ids))}); {hint}")


def export(source: Any, format: str, dest: str, **options: Any) -> ExportResult:
    """Export `source` (View, Dataset or Query) as `format` to `dest` (local folder or s3:// prefix).

    Options (all formats): overwrite, include_rejected, image_root (write image paths relative to it),
    batch_size, exported_at (a datetime, for reproducible files), storage_options (for an s3:// dest;
    default: the store's), run_id (audit record id). Format options: see each writer's docstring.
    """
    from . import FORMATS

    writer_cls = FORMATS.get(format)
    if writer_cls is None:
        raise ExportError(f"unknown export format {format!r}; formats: {', '.join(FORMATS)}")
    info = describe(source)
    batch_size = int(options.pop("batch_size", DEFAULT_BATCH_SIZE))
    if batch_size < 1:
        raise ExportError(f"batch_size must be at least 1, not {batch_size}")
    exported_at = options.pop("exported_at", None) or dt.datetime.now(dt.UTC)
    run_id = options.pop("run_id", None)
    policy = options.pop("policy", None)
    overwrite = bool(options.pop("overwrite", False))
    storage = options.pop("storage_options", None)
    destination = Destination(dest, overwrite=overwrite,
                              storage_options=storage if storage is not None else info.store.storage_options)
    destination.check()
    prov = provenance(info, format, exported_at, options)
    plan = _policy_plan(source, info, policy, prov)
    ctx = ExportContext(info=info, folder=Path("."), provenance=prov, options=options, policy=plan)
    takes = {*writer_cls.option_names, "include_rejected", "image_root"}
    if set(options) - takes:
        raise ExportError(f"unknown option(s) {sorted(set(options) - takes)} for format {format!r}; it takes "
                          f"{sorted(takes)} and overwrite, batch_size, exported_at, storage_options, run_id, policy")
    writer: Writer = writer_cls(ctx)
    _prepass(source, ctx, writer, batch_size)
    ctx.folder = destination.stage()
    try:
        total = source.count()
        columns = writer_cls.columns or source.column_names
        with tqdm(total=total, desc=f"export {format}", unit="frame", leave=False) as bar:
            for table in iter_batches(source, info, [*columns, "annotations", "dataset", "classes", "split"], batch_size):
                bar.update(table.num_rows)
                if plan is not None:
                    n = table.num_rows
                    table = plan.apply(table, info.name)
                    ctx.skip("frames with people or vehicles", n - table.num_rows)
                frames, anns = split_rows(table, ctx)
                if plan is not None and plan.blur:
                    frames = plan.write_blurred(frames, ctx.folder, info.store.storage_options)
                writer.write(frames, anns)
                ctx.frames += frames.height
                ctx.annotations += anns.height
        files = writer.finish() + (plan.files if plan is not None else [])
        destination.commit()
    except BaseException:
        destination.abort()
        raise
    result = ExportResult(format, str(destination), ctx.frames, ctx.annotations, files, prov, dict(ctx.skipped))
    if info.described.published:
        source.record_run(
            run_id or f"export-{uuid.uuid4().hex[:12]}",
            info={"kind": "export", "format": format, "dest": str(destination), "frames": ctx.frames,
                  "annotations": ctx.annotations, "exported_at": prov["exported_at"]},
        )
    log.info("%s", result.summary())
    return result


def _policy_plan(source: Any, info: SourceInfo, policy: str | None, prov: dict[str, Any]) -> Any:
    """The sensitive-data plan of `policy` ('public' | 'full' | None) for the source's current labels; recorded
    in the provenance block (see hyperds.workflows.policy)."""
    from ..errors import PolicyError
    from ..workflows.policy import build_plan

    try:
        plan = build_plan(source, policy, store=info.store, dataset=info.name)
    except PolicyError as exc:
        raise ExportError(str(exc)) from None
    if plan is not None:
        prov["policy"] = plan.describe()
    elif policy is not None:
        prov["policy"] = {"name": "full"}
    return plan


def _prepass(source: Any, ctx: ExportContext, writer: Writer, batch_size: int) -> None:
    """Read the light columns of every row once: the writer's checks, and the sorted classes (from `classes`
    for a mapped view, else `labels`; the annotations themselves when rejected ones are included)."""
    info = ctx.info
    if ctx.options.get("include_rejected"):
        label_col = "annotations"
    else:
        label_col = "classes" if info.label_map is not None else "labels"
    cols = ["frame_id", label_col, *writer.precheck_columns]
    seen: set[str] = set()
    for rows in iter_batches(source, info, cols, batch_size):
        if ctx.policy is not None:
            rows = ctx.policy.apply(rows, info.name)
        writer.precheck(rows)
        if label_col not in rows.column_names:  # a SELECT query without them
            continue
        values = pc.list_flatten(rows.column(label_col).combine_chunks())
        if label_col == "annotations":
            values = values.field("label")
            if info.label_map is not None:
                values = pa.array([info.label_map.get(v) for v in values.unique().to_pylist()], pa.string())
        seen.update(v for v in values.unique().to_pylist() if v is not None)
    ctx.classes = sorted(seen)


def write_json_array(fh: Any, df: pl.DataFrame, first: bool) -> bool:
    """Append `df`'s rows as JSON objects to an open JSON array; returns whether the array is still empty."""
    if df.height == 0:
        return first
    body = df.write_json()[1:-1]
    fh.write(body if first else "," + body)
    return False


def write_provenance(folder: Path, prov: dict[str, Any]) -> str:
    """provenance.json beside formats without a metadata block of their own."""
    (folder / "provenance.json").write_text(json.dumps({"hyperds": prov}, indent=2, sort_keys=True) + "\n")
    return "provenance.json"
