"""MegaDetector batch output, format 1.4: images with detections (category, conf, normalised bbox),
detection_categories, classification_categories, and `info` with the provenance in `info.hyperds`.

Only annotations with a box are detections (others are counted as skipped). A detection needs a
confidence: a person's annotation (no confidence) is written with conf 1.0. `detection_categories`
numbers the exported classes "1".. in sorted order; `classification_categories` is empty (hyperds
keeps one label per box). `info.detector` is the annotations' source when they share one.
"""

from __future__ import annotations

import json
from typing import Any, ClassVar

import polars as pl
import pyarrow as pa

from .base import ExportContext, write_json_array

FILE = "megadetector.json"
FORMAT_VERSION = "1.4"


class MegaDetectorWriter:
    """Writes megadetector.json, one image entry per frame (detections [] when it has none)."""

    name: ClassVar[str] = "megadetector"
    precheck_columns: ClassVar[tuple[str, ...]] = ()
    columns: ClassVar[tuple[str, ...] | None] = ("frame_id", "uri")
    option_names: ClassVar[tuple[str, ...]] = ("detector",)

    def __init__(self, ctx: ExportContext):
        self.ctx = ctx
        self.fh: Any = None
        self.first = True
        self.sources: set[str] = set()

    def precheck(self, rows: pa.Table) -> None:
        pass

    def write(self, frames: pl.DataFrame, annotations: pl.DataFrame) -> None:
        if self.fh is None:
            self._open()
        boxed = annotations.filter(pl.col("bbox_x").is_not_null())
        self.ctx.skip("annotations without a box", annotations.height - boxed.height)
        self.sources.update(s for s in boxed["source"].unique().to_list() if s is not None)
        detections = boxed.group_by("_row", maintain_order=True).agg(
            pl.struct(
                pl.col("class").replace_strict(self.ids, return_dtype=pl.String).alias("category"),
                pl.col("confidence").fill_null(1.0).alias("conf"),
                pl.concat_list("bbox_x", "bbox_y", "bbox_w", "bbox_h").alias("bbox"),
            ).alias("detections")
        )
        images = (
            frames.select("_row", self.ctx.file_path(frames).alias("file"))
            .join(detections, on="_row", how="left")
            .sort("_row", maintain_order=True)
            .select("file", pl.col("detections").fill_null(pl.lit([], dtype=detections.schema["detections"])))
        )
        self.first = write_json_array(self.fh, images, self.first)

    def _open(self) -> None:
        self.ids = {c: str(i + 1) for i, c in enumerate(self.ctx.classes)}
        self.fh = open(self.ctx.folder / FILE, "w", encoding="utf-8")
        self.fh.write('{"images":[')

    def finish(self) -> list[str]:
        if self.fh is None:
            self._open()
        detector = self.ctx.options.get("detector") or (next(iter(self.sources)) if len(self.sources) == 1 else "hyperds-export")
        info = {
            "format_version": FORMAT_VERSION,
            "detector": detector,
            "detection_completion_time": self.ctx.provenance["exported_at"],
            "hyperds": self.ctx.provenance,
        }
        self.fh.write('],"detection_categories":' + json.dumps({i: c for c, i in self.ids.items()}) + ',"classification_categories":{}'
                      + ',"info":' + json.dumps(info, sort_keys=True) + "}")
        self.fh.close()
        return [FILE]
