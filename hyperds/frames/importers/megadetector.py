"""MegaDetector batch output (format 1.1 and later 1.x) -> frames with model annotations.

Category ids are strings mapped by `detection_categories`; boxes are already normalised; an image
whose processing failed keeps its frame, with the message in a `failure` user column.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ...errors import SourceFormatError
from ..table import FrameTable
from ._common import (
    annotation_struct,
    category_labels,
    check_images as check_image_files,
    check_unique,
    clamp_boxes,
    fail_where,
    image_uris,
    nest,
    read_json,
    require,
    to_arrow,
    write_frames,
)
from .report import ImportReport

_SUPPORTED_VERSION = re.compile(r"^1\.[1-9]\d*$")
_DETECTION = pa.struct([("category", pa.string()), ("conf", pa.float64()), ("bbox", pa.list_(pa.float64()))])
_IMAGE = pa.struct([("file", pa.string()), ("failure", pa.string()), ("detections", pa.list_(_DETECTION))])


def import_megadetector(
    ds: FrameTable, path: str | os.PathLike[str], root: str | None = None, check_images: bool = False
) -> ImportReport:
    """Import a MegaDetector batch-output JSON: one frame per `images[]` entry, keyed by its `file`.

    Detections become `source_kind='model'` annotations from `info.detector`, with confidence.
    """
    path = Path(path)
    doc = read_json(path)
    info = require(doc, "info", path, "", dict)
    version = str(require(info, "format_version", path, "info", (str, int, float)))
    if not _SUPPORTED_VERSION.match(version):
        raise SourceFormatError(
            str(path), "info.format_version", f"unsupported MegaDetector format version {version!r}",
            "hyperds reads batch output format 1.1 and later 1.x; re-run or convert with the MegaDetector tools",
        )
    detector = str(info.get("detector") or "megadetector")
    categories = require(doc, "detection_categories", path, "", dict)
    images = to_arrow(require(doc, "images", path, "", list), _IMAGE, path, "images")

    def at(i: int) -> str:
        return f"images[{i}]"

    fail_where(pc.is_null(images), path, at, "expected an image object")
    files = images.field("file")
    fail_where(pc.is_null(files), path, lambda i: f"{at(i)}.file", "missing required field", "every image needs 'file'")
    check_unique(files, path, lambda i: f"{at(i)}.file", "file")

    detections = images.field("detections")
    flat = pc.list_flatten(detections)
    parents = np.asarray(pc.list_parent_indices(detections), dtype=np.int64)
    lengths = np.asarray(pc.fill_null(pc.list_value_length(detections), 0), dtype=np.int64)
    position = np.arange(len(flat)) - (np.cumsum(lengths) - lengths)[parents]

    def det(field: str):
        return lambda k: f"{at(int(parents[k]))}.detections[{position[k]}].{field}"

    category = flat.field("category")
    fail_where(pc.is_null(category), path, det("category"), "missing required field")
    ids = [str(k) for k in categories]
    labels, shared = category_labels(ids, [str(v) for v in categories.values()])
    index = pc.index_in(category, value_set=pa.array(ids, pa.string()))
    fail_where(pc.is_null(index), path, det("category"), f"category not in detection_categories {ids}")
    confidence = flat.field("conf")
    fail_where(pc.or_(pc.less(confidence, 0), pc.greater(confidence, 1)), path, det("conf"), "confidence outside [0, 1]")
    bbox = flat.field("bbox")
    fail_where(pc.is_null(bbox), path, det("bbox"), "missing required field")
    fail_where(pc.not_equal(pc.list_value_length(bbox), 4), path, det("bbox"), "bbox needs 4 numbers [x, y, width, height]")
    xywh = pc.list_flatten(bbox).to_numpy(zero_copy_only=False).astype(np.float64).reshape(-1, 4)
    boxes, clamped = clamp_boxes(xywh, np.ones(len(flat), dtype=bool), path, det("bbox"))

    annotations = annotation_struct(
        {
            "label": pc.take(pa.array(labels, pa.string()), index),
            "bbox": boxes,
            "confidence": confidence,
            "source_kind": pa.repeat(pa.scalar("model"), len(flat)),
            "source": pa.repeat(pa.scalar(detector), len(flat)),
        }
    )
    uris = image_uris(files, root, ds, path.parent)
    columns = {
        "frame_id": files,
        "uri": uris,
        "annotations": nest(parents, len(images), annotations),
        "failure": images.field("failure"),
    }
    checked = unchecked = 0
    if check_images:
        columns["width"], columns["height"], checked, unchecked = check_image_files(uris, ds, path, lambda i: f"{at(i)}.file")
    return write_frames(
        ds,
        pa.table(columns),
        "megadetector",
        path,
        boxes_clamped=clamped,
        failures=len(images) - images.field("failure").null_count,
        images_checked=checked,
        images_unchecked=unchecked,
        duplicate_categories=shared,
    )
