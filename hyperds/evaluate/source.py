"""What an evaluation reads: the frames and annotations of a View, Dataset or Query at pinned versions.

`read_source` is the one place that touches the source objects (to switch to the FrameSource protocol
later). Besides the pinned rows it restores the model's own output where people took an annotation over:
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
from ..versioning.changes import flatten_annotations

FIELDS = ("ann_id", "label", "bbox", "confidence", "source_kind", "source", "review_status", "reviewed_by", "level")


@dataclasses.dataclass
class Source:
    """Pinned frames (manifest order) and their annotations, flattened, with restored model output."""

    store: Any
    view: Any  # the View, or None for a Dataset / Query
    name: str  # view or dataset name
    version: str | None  # view version ("draft" for a draft), None for a dataset
    pins: dict[str, int]
    frames: pl.DataFrame  # dataset, frame_id, seq_id
    annotations: pl.DataFrame  # _frame (row in frames), FIELDS, _restored (bool)
    label_map: dict[str, str] | None


def read_source(on: Any) -> Source:
    """Read `on` (a View, Dataset or Query) once, at the versions it pins (a Dataset: its current one)."""
    from ..dataset import Dataset
    from ..query.query import Query
    from ..views.handle import View

    cols = ["frame_id", "seq_id", "annotations"]
    store = on.store
    if isinstance(on, View):
        rows = on.to_arrow(columns=["dataset", *cols])
        pins = dict(on.pins)  # recorded for a published view; each dataset's current version for a draft
        lm = on.label_map  # with unknown='keep' every label the view holds maps to itself
        seen = pc.list_flatten(on.to_arrow(columns=["labels"]).column("labels")).unique().to_pylist()
        label_map = lm.as_dict(seen) if lm is not None else None
        name, version, view = on.name, on.version, on
    elif isinstance(on, (Query, Dataset)):
        # Read one dataset at one version, so the restored model values below come from the same one.
        table = on.table if isinstance(on, Query) else on
        pinned = table if table.pinned_version is not None else table.at(table.version)
        rows = (Query(pinned, on.text) if isinstance(on, Query) else pinned).to_arrow(columns=cols)
        rows = rows.append_column("dataset", pa.array([table.name] * rows.num_rows, pa.string()))
        pins, name, version, view, label_map = {table.name: pinned.version}, table.name, None, None, None
    else:
        raise EvaluationError(f"evaluate a View, Dataset or Query, not {type(on).__name__}")
    frames = pl.from_arrow(rows.select(["dataset", "frame_id", "seq_id"]))
    current = _flatten(rows)
    restored = _restored(store, pins, frames, current)
    annotations = pl.concat([current, restored], how="vertical_relaxed") if restored.height else current
    return Source(store, view, name, version, pins, frames, annotations, label_map)


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
