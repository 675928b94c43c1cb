"""CSV: one row per annotation with its frame's fields; a frame without annotations is one row with empty
annotation cells, so every frame of the source is in the file. `provenance.json` sits beside it."""

from __future__ import annotations

import json
from typing import Any, ClassVar

import polars as pl
import pyarrow as pa

from .base import ISO_Z, ExportContext, write_provenance

FILE = "annotations.csv"
# Annotation columns, in file order, after the frame's.
ANNOTATION_COLUMNS = (
    "ann_id", "label", "class", "bbox_x", "bbox_y", "bbox_w", "bbox_h", "confidence", "count", "source_kind",
    "source", "created_at", "review_status", "reviewed_by", "reviewed_at", "note", "level", "ann_revision",
    "life_stage", "sex", "behavior", "individual_id", "attributes",
)


class CsvWriter:
    """Writes annotations.csv (frame fields first, then annotation fields; lists as JSON text)."""

    name: ClassVar[str] = "csv"
    precheck_columns: ClassVar[tuple[str, ...]] = ()
    columns: ClassVar[tuple[str, ...] | None] = None
    option_names: ClassVar[tuple[str, ...]] = ()

    def __init__(self, ctx: ExportContext):
        self.ctx = ctx
        self.fh: Any = None
        self.header: list[str] | None = None

    def precheck(self, rows: pa.Table) -> None:
        pass

    def write(self, frames: pl.DataFrame, annotations: pl.DataFrame) -> None:
        frames = frames.with_columns(self.ctx.file_path(frames).alias("uri")).drop("abs_uri")
        nested = [c for c, t in frames.schema.items() if isinstance(t, (pl.List, pl.Struct, pl.Array))]
        frames = frames.with_columns(
            pl.Series(c, [None if v is None else json.dumps(v, default=str) for v in frames[c].to_list()], pl.String)
            for c in nested
        )
        anns = annotations.select([c for c in ANNOTATION_COLUMNS if c in annotations.columns] + ["_row"])
        rows = frames.join(anns, on="_row", how="left", suffix="_annotation").sort("_row", maintain_order=True).drop("_row")
        if self.header is None:
            self.header = rows.columns
            self.fh = open(self.ctx.folder / FILE, "w", encoding="utf-8", newline="")
            rows.write_csv(self.fh, datetime_format=ISO_Z)
        else:
            rows.select(self.header).write_csv(self.fh, include_header=False, datetime_format=ISO_Z)

    def finish(self) -> list[str]:
        if self.fh is None:
            (self.ctx.folder / FILE).write_text("")
        else:
            self.fh.close()
        return [FILE, write_provenance(self.ctx.folder, self.ctx.provenance)]
