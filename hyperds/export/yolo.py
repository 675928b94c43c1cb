"""YOLO detection: `labels/<stem>.txt` per frame (`class cx cy w h`, normalised; empty for a frame
without boxes), `data.yaml` with the class names, one image list per split (`train.txt`, `val.txt`, ...
from the view's splits; `images.txt` without splits) holding the image URIs, `index.csv` (stem ->
dataset, frame_id, uri, split) to trace each label file back, and `provenance.json`.

A stem is the frame_id without its image extension, characters other than letters, digits, `.`, `-`, `_`
replaced, plus a short hash of the original when that replaced any or the stem was taken (prefixed by the
dataset name when the source spans several), so stems are unique. With `copy_images=True` the images are copied to `images/<stem><ext>` and the lists
hold those relative paths (YOLO trainers then find `labels/` beside `images/`).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import PurePosixPath
from typing import Any, ClassVar

import polars as pl
import pyarrow as pa

from ..fsio import open_filesystem, split_protocol
from ..errors import ExportError
from .base import ExportContext, write_provenance

_UNSAFE = r"[^A-Za-z0-9._-]"
_IMAGE_EXT = r"(?i)\.(jpe?g|png|tiff?|bmp|gif|webp)$"


def stems(frame_ids: pl.Series, datasets: pl.Series, prefix_dataset: bool, seen: set[str]) -> pl.Series:
    """File-name-safe stems for frame ids, unique across the export (`seen` holds those given out)."""
    keys = (datasets + "/" + frame_ids) if prefix_dataset else frame_ids
    safe = keys.str.replace(_IMAGE_EXT, "").str.replace_all(_UNSAFE, "_")
    changed = (safe != keys.str.replace(_IMAGE_EXT, "")) | safe.str.starts_with(".") | (safe == "")
    out = safe.to_list()
    for i, (stem, alter) in enumerate(zip(out, changed.to_list(), strict=True)):
        if alter or stem in seen:
            stem = f"{stem.lstrip('.')}_{hashlib.blake2b(keys[i].encode(), digest_size=4).hexdigest()}"
            out[i] = stem
        seen.add(stem)
    return pl.Series("stem", out, pl.String)


class YoloWriter:
    """Writes labels/, data.yaml, the split lists, index.csv and provenance.json."""

    name: ClassVar[str] = "yolo"
    precheck_columns: ClassVar[tuple[str, ...]] = ()
    columns: ClassVar[tuple[str, ...] | None] = ("frame_id", "uri")
    option_names: ClassVar[tuple[str, ...]] = ("copy_images",)

    def __init__(self, ctx: ExportContext):
        self.ctx = ctx
        self.lists: dict[str, Any] = {}
        self.index: Any = None
        self.multi = len(ctx.info.pins) > 1
        self.fs: dict[str, Any] = {}
        self.seen: set[str] = set()

    def precheck(self, rows: pa.Table) -> None:
        pass

    def write(self, frames: pl.DataFrame, annotations: pl.DataFrame) -> None:
        folder = self.ctx.folder
        if self.index is None:
            (folder / "labels").mkdir()
            self.ids = {c: i for i, c in enumerate(self.ctx.classes)}
            self.index = open(folder / "index.csv", "w", encoding="utf-8", newline="")
            self.index.write("stem,dataset,frame_id,uri,split\n")
        copy = bool(self.ctx.options.get("copy_images"))
        if copy:
            (folder / "images").mkdir(exist_ok=True)
        frames = frames.with_columns(
            stems(frames["frame_id"], frames["dataset"], self.multi, self.seen),
            pl.col("split").fill_null("images" if not self.ctx.info.splits else "unsplit").alias("_list"),
        )
        boxed = annotations.filter(pl.col("bbox_x").is_not_null())
        self.ctx.skip("annotations without a box", annotations.height - boxed.height)
        lines = boxed.select(
            "_row",
            pl.format(
                "{} {} {} {} {}",
                pl.col("class").replace_strict(self.ids, return_dtype=pl.Int64),
                (pl.col("bbox_x") + pl.col("bbox_w") / 2).round(6),
                (pl.col("bbox_y") + pl.col("bbox_h") / 2).round(6),
                pl.col("bbox_w").round(6),
                pl.col("bbox_h").round(6),
            ).alias("line"),
        ).group_by("_row", maintain_order=True).agg(pl.col("line").str.join("\n"))
        per_frame = frames.join(lines, on="_row", how="left").sort("_row", maintain_order=True)
        for stem, line in zip(per_frame["stem"], per_frame["line"], strict=True):
            (folder / "labels" / f"{stem}.txt").write_text(line + "\n" if line else "")
        listed = per_frame["abs_uri"].to_list()
        if copy:
            listed = [self._copy(uri, stem) for uri, stem in zip(listed, per_frame["stem"], strict=True)]
        for name, path in zip(per_frame["_list"], listed, strict=True):
            if name not in self.lists:
                self.lists[name] = open(folder / f"{name}.txt", "w", encoding="utf-8")
            self.lists[name].write(path + "\n")
        per_frame.select("stem", "dataset", "frame_id", "abs_uri", "split").write_csv(self.index, include_header=False)

    def _copy(self, uri: str, stem: str) -> str:
        protocol, path = split_protocol(uri)
        if protocol not in self.fs:
            options = self.ctx.info.store.storage_options if protocol in ("s3", "s3a") else {}
            self.fs[protocol] = open_filesystem(protocol, options, error=ExportError)
        rel = f"images/{stem}{PurePosixPath(path).suffix.lower() or '.jpg'}"
        try:
            self.fs[protocol].get_file(path, str(self.ctx.folder / rel))
        except (OSError, ValueError) as exc:
            raise ExportError(f"cannot copy image {uri}: {exc}; fix the pointer or export without copy_images") from exc
        return rel

    def finish(self) -> list[str]:
        folder = self.ctx.folder
        if self.index is None:
            self.write(pl.DataFrame(schema={"_row": pl.Int64, "frame_id": pl.String, "dataset": pl.String,
                                            "abs_uri": pl.String, "split": pl.String}),
                       pl.DataFrame(schema={"_row": pl.Int64, "bbox_x": pl.Float32, "bbox_y": pl.Float32,
                                            "bbox_w": pl.Float32, "bbox_h": pl.Float32, "class": pl.String}))
        for fh in self.lists.values():
            fh.close()
        self.index.close()
        names = sorted(self.lists)
        data = {"path": ".", "nc": len(self.ids), "names": dict(enumerate(self.ctx.classes))}
        if "train" in names:
            data["train"] = "train.txt"
        for key, split in (("val", "val"), ("val", "validation"), ("test", "test")):
            if split in names and key not in data:
                data[key] = f"{split}.txt"
        if "train" not in data and names:
            data["train"] = f"{names[0]}.txt"
        data.setdefault("val", data.get("train"))
        with open(folder / "data.yaml", "w", encoding="utf-8") as fh:
            for key in ("path", "train", "val", "test", "nc"):
                if data.get(key) is not None:
                    fh.write(f"{key}: {json.dumps(data[key])}\n")
            fh.write("names:\n" + "".join(f"  {i}: {json.dumps(n)}\n" for i, n in data["names"].items()))
        return ["data.yaml", "index.csv", *(f"{n}.txt" for n in names), "labels/", write_provenance(folder, self.ctx.provenance)]
