"""COCO Camera Traps JSON: images (file_name, width, height, location, datetime, seq_id, frame_num),
annotations with absolute pixel boxes, categories with stable ids (1.. in sorted class order), and the
provenance in `info.hyperds`.

Streaming: images go straight into the output file, annotations into a side file appended at the end,
so memory follows the batch. `datetime` is written in UTC without an offset, as COCO-CT has it; the
importer reads such times as UTC by default. An event-level (sequence) annotation sits on every frame of
its event; the first keeps its ann_id and the others get `<ann_id>:<frame_id>` (COCO ids are unique);
media-level annotations keep their ann_id.
"""

from __future__ import annotations

import json
import shutil
from typing import Any, ClassVar

import polars as pl
import pyarrow as pa

from .base import ExportContext, precheck_frames, write_json_array

FILE = "coco_ct.json"


class CocoWriter:
    """Writes coco_ct.json; every frame needs width and height (boxes are in pixels)."""

    name: ClassVar[str] = "coco-ct"
    precheck_columns: ClassVar[tuple[str, ...]] = ("width", "height")
    columns: ClassVar[tuple[str, ...] | None] = (
        "frame_id", "uri", "width", "height", "captured_at", "site", "seq_id", "frame_num",
    )
    option_names: ClassVar[tuple[str, ...]] = ("description", "contributor")

    def __init__(self, ctx: ExportContext):
        self.ctx = ctx
        self.fh: Any = None
        self.side: Any = None
        self.first_image = self.first_ann = True
        self.event_ids: set[str] = set()

    def precheck(self, rows: pa.Table) -> None:
        hint = "COCO boxes are in pixels: read the sizes (import with --check-images, or ingest) first"
        precheck_frames(rows, "width", "width", hint)
        precheck_frames(rows, "height", "height", hint)

    def _open(self) -> None:
        self.fh = open(self.ctx.folder / FILE, "w", encoding="utf-8")
        self.side = open(self.ctx.folder / f".{FILE}.annotations", "w+", encoding="utf-8")
        self.fh.write('{"images":[')
        self.ids = {c: i + 1 for i, c in enumerate(self.ctx.classes)}

    def write(self, frames: pl.DataFrame, annotations: pl.DataFrame) -> None:
        if self.fh is None:
            self._open()
        images = frames.select(
            pl.col("frame_id").alias("id"),
            self.ctx.file_path(frames).alias("file_name"),
            "width",
            "height",
            pl.col("site").alias("location"),
            pl.col("captured_at").dt.strftime("%Y-%m-%d %H:%M:%S").alias("datetime"),
            "seq_id",
            "frame_num",
        )
        self.first_image = write_json_array(self.fh, images, self.first_image)
        sizes = frames.select("_row", "frame_id", "width", "height")
        anns = annotations.join(sizes, on="_row", how="left").sort("_row", maintain_order=True)
        event = pl.col("level") == "event"
        box = pl.col("bbox_x").is_not_null()
        w, h = pl.col("width").cast(pl.Float64), pl.col("height").cast(pl.Float64)
        repeat = self._repeated_events(anns)
        out = anns.select(
            pl.when(repeat).then(pl.concat_str("ann_id", pl.lit(":"), "frame_id")).otherwise("ann_id").alias("id"),
            pl.col("frame_id").alias("image_id"),
            pl.col("class").replace_strict(self.ids, return_dtype=pl.Int64).alias("category_id"),
            pl.when(box).then(pl.concat_list(
                pl.col("bbox_x").cast(pl.Float64) * w, pl.col("bbox_y").cast(pl.Float64) * h,
                pl.col("bbox_w").cast(pl.Float64) * w, pl.col("bbox_h").cast(pl.Float64) * h,
            )).alias("bbox"),
            event.alias("sequence_level_annotation"),
        )
        self.first_ann = write_json_array(self.side, out, self.first_ann)

    def _repeated_events(self, anns: pl.DataFrame) -> pl.Series:
        """True for an event-level annotation whose ann_id was already written (on another frame of its event)."""
        ids = anns["ann_id"].to_list()
        out = [False] * len(ids)
        for i in anns.with_row_index("i").filter(pl.col("level") == "event")["i"].to_list():
            out[i] = ids[i] in self.event_ids
            self.event_ids.add(ids[i])
        return pl.Series(out, dtype=pl.Boolean)

    def finish(self) -> list[str]:
        if self.fh is None:
            self._open()
        self.fh.write('],"annotations":[')
        self.side.seek(0)
        shutil.copyfileobj(self.side, self.fh)
        self.side.close()
        (self.ctx.folder / f".{FILE}.annotations").unlink()
        categories = [{"id": i, "name": c} for c, i in self.ids.items()]
        src = self.ctx.provenance["source"]
        info = {
            "version": src.get("version") or str(src["datasets"][0]["version"]),
            "description": self.ctx.options.get("description") or f"hyperds export of {src['kind']} {src['name']}",
            "contributor": self.ctx.options.get("contributor") or "hyperds",
            "date_created": self.ctx.provenance["exported_at"],
            "datetime_zone": "UTC",
            "hyperds": self.ctx.provenance,
        }
        self.fh.write('],"categories":' + json.dumps(categories) + ',"info":' + json.dumps(info, sort_keys=True) + "}")
        self.fh.close()
        return [FILE]
