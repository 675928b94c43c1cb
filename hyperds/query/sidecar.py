"""Flattened annotation side table: one row per annotation (frame_id + scalar fields) for one frames version.

It lives inside the frames table's folder (`<table>.lance/_hyperds/annotations.lance`), so it goes
wherever the table goes and is dropped with it. Each build is one Lance version of the side table,
tagged `frames-v<N>` after the frames version it was built from: a query on frames version N uses
it only when that tag exists, and scans the nested lists otherwise (always exact, just slower).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import TYPE_CHECKING

import lance
import pyarrow as pa
import pyarrow.compute as pc

from ..frames.schema import ANNOTATION_TYPE

if TYPE_CHECKING:
    from ..frames.table import FrameTable

log = logging.getLogger(__name__)

SIDE_FIELDS = [f for f in ANNOTATION_TYPE if f.name != "bbox"]
SIDE_SCHEMA = pa.schema([pa.field("frame_id", pa.string()), *SIDE_FIELDS])


def side_uri(table: FrameTable) -> str:
    return f"{table.uri}/_hyperds/annotations.lance"


def _tag(frames_version: int) -> str:
    return f"frames-v{frames_version}"


def build_annotation_table(table: FrameTable) -> int:
    """(Re)build the side table from the frames version `table` reads; returns that frames version.

    Call after every write that creates a frames version (a full rebuild: one scan of the annotations).
    """
    frames = table.lance()
    version = frames.version
    scanner = frames.scanner(columns=["frame_id", "annotations"])
    reader = pa.RecordBatchReader.from_batches(SIDE_SCHEMA, _flatten(scanner.to_batches()))
    opts = table.store.storage_options or None
    side = lance.write_dataset(reader, side_uri(table), mode="overwrite", storage_options=opts)
    if side.count_rows():
        side.create_scalar_index("label", "BITMAP")
    side = lance.dataset(side_uri(table), storage_options=opts)
    if _tag(version) in side.tags.list():
        side.tags.update(_tag(version), side.version)
    else:
        side.tags.create(_tag(version), side.version)
    log.info("%s: annotation side table built for frames version %d", table.name, version)
    return version


def _flatten(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    for batch in batches:
        ann = batch.column("annotations")
        flat = pc.list_flatten(ann)
        cols = [pc.take(batch.column("frame_id"), pc.list_parent_indices(ann))]
        cols += [pc.struct_field(flat, f.name) for f in SIDE_FIELDS]
        yield pa.RecordBatch.from_arrays(cols, schema=SIDE_SCHEMA)


def open_annotation_table(table: FrameTable, frames_version: int) -> lance.LanceDataset | None:
    """The side table built from `frames_version`, or None when there is none."""
    opts = table.store.storage_options or None
    try:
        side = lance.dataset(side_uri(table), storage_options=opts)
    except (ValueError, OSError):
        return None
    tag = side.tags.list().get(_tag(frames_version))
    if tag is None:
        return None
    return lance.dataset(side_uri(table), version=tag["version"], storage_options=opts)
