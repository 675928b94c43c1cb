"""What an evaluation reads: the frames and annotations of a View, Dataset or Query at pinned versions.

`read_source` is the one place that reads the source, through the FrameSource protocol only. Besides the pinned rows it restores the model's own output where people took an annotation over:
a relabel, a moved box or a correction with a new label makes the annotation the person's (the model's
label, box and confidence are gone from the row), and a deleted one is gone. Their model values come
from the `before` of the history event that took them over, read up to the pinned version only, so a
pinned view evaluates the same forever.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc

from ..errors import EvaluationError
from ..frames.schema import ANNOTATION_TYPE
from ..source import FrameSource, SourceBase, SourceDescription
from ..versioning.changes import flatten_annotations

FIELDS = ("ann_id", "label", "bbox", "confidence", "source_kind", "source", "review_status", "reviewed_by", "level")


@dataclasses.dataclass
class Source:
    """Pinned frames (manifest order) and their annotations, flattened, with restored model output."""

    source: FrameSource  # what was read, fixed at its pins (a published run is recorded through it)
    described: SourceDescription
    pins: dict[str, int]
    frames: pl.DataFrame  # dataset, frame_id, seq_id
    annotations: pl.DataFrame  # _frame (row in frames), FIELDS, _restored (bool)
    label_map: dict[str, str] | None

    @property
    def store(self) -> Any:
        return self.source.store

    @property
    def name(self) -> str:
        return self.described.name  # view or dataset name

    @property
    def version(self) -> str | None:
        return self.described.version  # view version ("draft" for a draft), None for a dataset

    @property
    def is_view(self) -> bool:
        return self.described.kind == "view"

    def where(self) -> str:
        """What was evaluated, for messages: the view version, or the dataset at its version."""
        if self.is_view:
            return f"view {self.name!r} version {self.version}"
        return f"dataset {self.name!r} at version {self.pins[self.name]}"


def read_source(on: FrameSource) -> Source:
    """Read `on` (a View, Dataset or Query) once, at the versions it pins (a Dataset: its current one).

    `pinned()` fixes a Dataset or Query at one version, so the restored model values below come from
    the same one; a view reads its pins (a draft: each dataset's latest)."""
    if isinstance(on, pa.Table) or not isinstance(on, SourceBase):
        raise EvaluationError(f"evaluate a View, Dataset or Query, not {type(on).__name__}")
    fixed = on.pinned()
    described = fixed.describe()
    cols = ["frame_id", "seq_id", "annotations"]
    many = described.kind == "view"  # a view's rows say their dataset; a Dataset or Query reads one
    rows = fixed.to_arrow(columns=["dataset", *cols] if many else cols)
    pins = dict(fixed.pins)  # recorded for a published view; each dataset's current version for a draft
    if not many:
        (name,) = pins
        rows = rows.append_column("dataset", pa.array([name] * rows.num_rows, pa.string()))
    label_map = None
    if fixed.label_map is not None:  # with unknown='keep' every label the view holds maps to itself
        seen = pc.list_flatten(fixed.to_arrow(columns=["labels"]).column("labels")).unique().to_pylist()
        label_map = fixed.label_map.as_dict(seen)
    frames = pl.from_arrow(rows.select(["dataset", "frame_id", "seq_id"]))
    current = _flatten(rows)
    restored = _restored(fixed.store, pins, frames, current)
    annotations = pl.concat([current, restored], how="vertical_relaxed") if restored.height else current
    return Source(fixed, described, pins, frames, annotations, label_map)


def _flatten(rows: pa.Table) -> pl.DataFrame:
    flat = flatten_annotations(rows.select(["annotations"]))
    return flat.select(pl.col("_f").alias("_frame"), *FIELDS).with_columns(_restored=pl.lit(False))


def _restored(store: Any, pins: dict[str, int], frames: pl.DataFrame, current: pl.DataFrame) -> pl.DataFrame:
    """The model's values of annotations that people took over or deleted, on the source's frames."""
    from ..versioning.history import events

    parts = []
    index = frames.with_row_index("_frame").with_columns(pl.col("_frame").cast(pl.Int64))
    for name, version in pins.items():
        ev = events(store.dataset(name), up_to=version)
        if ev.height == 0:
            continue
        before, after = pl.col("before").struct, pl.col("after").struct
        took = ev.filter(
            (before.field("source_kind") == "model")
            & (
                (pl.col("after").is_null() & (pl.col("author") != before.field("source")))  # deleted by a person
                | (after.field("source_kind") != "model")  # relabelled, moved, corrected with a label
            )
        )
        if took.height == 0:
            continue
        first = took.unique(subset=["frame_id", "ann_id"], keep="first", maintain_order=True)
        rows = first.select("frame_id", pl.col("before").struct.unnest()).with_columns(dataset=pl.lit(name))
        parts.append(rows.join(index, on=["dataset", "frame_id"], how="inner"))
    if not parts:
        return current.clear()
    took = pl.concat(parts, how="vertical_relaxed")
    # Only where the pinned row no longer holds the model's annotation under that ann_id.
    still = current.filter(pl.col("source_kind") == "model").select("_frame", "ann_id")
    took = took.join(still.with_columns(pl.col("_frame").cast(pl.Int64)), on=["_frame", "ann_id"], how="anti")
    return took.select(pl.col("_frame").cast(current.schema["_frame"]), *FIELDS).with_columns(_restored=pl.lit(True))


def bbox_array(bbox: pl.Series) -> np.ndarray:
    """(n, 4) float64 boxes of a non-null list<float32>[4] column."""
    arr = bbox.to_arrow()
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    values = arr.cast(ANNOTATION_TYPE.field("bbox").type).flatten() if len(arr) else pa.array([], pa.float32())
    return np.asarray(values.to_numpy(zero_copy_only=False), dtype=np.float64).reshape(-1, 4)
