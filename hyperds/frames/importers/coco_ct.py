"""COCO Camera Traps JSON -> frames with human annotations.

`location` becomes `site`, `datetime` is read in a given zone when it has none, absolute pixel boxes
are normalised by the image size, and categories are keyed by id: ids sharing a name stay distinct.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

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
    parse_times,
    read_json,
    require,
    scalar_type,
    to_arrow,
    write_frames,
)
from .report import ImportReport


def import_coco(
    ds: FrameTable,
    path: str | os.PathLike[str],
    root: str | None = None,
    check_images: bool = False,
    tz: str = "UTC",
) -> ImportReport:
    """Import a COCO Camera Traps JSON: one frame per `images[]` entry, keyed by its `id`.

    Naive `datetime`s are read in `tz`. With `check_images`, missing width/height come from the image header.
    A `sequence_level_annotation` is stored with `level='event'`.
    """
    path = Path(path)
    doc = read_json(path)
    raw_images = require(doc, "images", path, "", list)
    raw_categories = require(doc, "categories", path, "", list)
    raw_annotations = require(doc, "annotations", path, "", list) if "annotations" in doc else []
    info = doc.get("info") if isinstance(doc.get("info"), dict) else {}
    source = str(info.get("contributor") or path.name)

    cats = to_arrow(
        raw_categories,
        pa.struct([("id", scalar_type(raw_categories, "id")), ("name", pa.string())]),
        path,
        "categories",
    )
    for field in ("id", "name"):
        fail_where(pc.is_null(cats.field(field)), path, lambda i, f=field: f"categories[{i}].{f}", "missing required field")
    cat_ids = cats.field("id").cast(pa.string())
    check_unique(cat_ids, path, lambda i: f"categories[{i}].id", "category id")
    labels, shared = category_labels(cat_ids.to_pylist(), cats.field("name").to_pylist())

    images = to_arrow(
        raw_images,
        pa.struct(
            [
                ("id", scalar_type(raw_images, "id")),
                ("file_name", pa.string()),
                ("width", pa.int64()),
                ("height", pa.int64()),
                ("location", scalar_type(raw_images, "location")),
                ("datetime", pa.string()),
                ("seq_id", scalar_type(raw_images, "seq_id")),
                ("frame_num", pa.int64()),
            ]
        ),
        path,
        "images",
    )
    fail_where(pc.is_null(images), path, lambda i: f"images[{i}]", "expected an image object")
    for field in ("id", "file_name"):
        fail_where(pc.is_null(images.field(field)), path, lambda i, f=field: f"images[{i}].{f}", "missing required field")
    image_ids = images.field("id").cast(pa.string())
    check_unique(image_ids, path, lambda i: f"images[{i}].id", "image id")
    uris = image_uris(images.field("file_name"), root, ds, path.parent)
    width, height = images.field("width"), images.field("height")
    checked = unchecked = 0
    if check_images:
        header_w, header_h, checked, unchecked = check_image_files(uris, ds, path, lambda i: f"images[{i}].file_name")
        width, height = pc.coalesce(width, header_w.cast(pa.int64())), pc.coalesce(height, header_h.cast(pa.int64()))

    anns = to_arrow(
        raw_annotations,
        pa.struct(
            [
                ("id", scalar_type(raw_annotations, "id")),
                ("image_id", scalar_type(raw_annotations, "image_id")),
                ("category_id", scalar_type(raw_annotations, "category_id")),
                ("bbox", pa.list_(pa.float64())),
                ("sequence_level_annotation", pa.bool_()),
            ]
        ),
        path,
        "annotations",
    )

    def ann_at(field: str):
        return lambda i: f"annotations[{i}].{field}"

    fail_where(pc.is_null(anns), path, lambda i: f"annotations[{i}]", "expected an annotation object")
    # a null id gets a position-based one; given ids are each annotation's key, so they must differ
    check_unique(pc.drop_null(anns.field("id").cast(pa.string())), path, _given_id_at(anns), "annotation id")
    image_index = pc.index_in(anns.field("image_id").cast(pa.string()), value_set=image_ids)
    fail_where(pc.is_null(image_index), path, ann_at("image_id"), "no image has this id")
    cat_index = pc.index_in(anns.field("category_id").cast(pa.string()), value_set=cat_ids)
    fail_where(pc.is_null(cat_index), path, ann_at("category_id"), "no category has this id")
    boxes, clamped = _normalised_boxes(
        anns.field("bbox"), pc.take(width, image_index), pc.take(height, image_index), path, ann_at("bbox")
    )
    sequence_level = pc.fill_null(anns.field("sequence_level_annotation"), False)
    n_ann = len(anns)
    annotations = annotation_struct(
        {
            "ann_id": anns.field("id").cast(pa.string()),
            "label": pc.take(pa.array(labels, pa.string()), cat_index),
            "bbox": boxes,
            "source_kind": pa.repeat(pa.scalar("human"), n_ann),
            "source": pa.repeat(pa.scalar(source), n_ann),
            "level": pc.if_else(sequence_level, "event", "media"),
        }
    )
    frames = pa.table(
        {
            "frame_id": image_ids,
            "uri": uris,
            "width": width.cast(pa.int32()),
            "height": height.cast(pa.int32()),
            "captured_at": parse_times(images.field("datetime"), tz, path, lambda i: f"images[{i}].datetime"),
            "site": images.field("location").cast(pa.string()),
            "seq_id": images.field("seq_id").cast(pa.string()),
            "frame_num": images.field("frame_num").cast(pa.int32()),
            "annotations": nest(np.asarray(image_index, dtype=np.int64), len(images), annotations),
        }
    )
    return write_frames(
        ds,
        frames,
        "coco",
        path,
        boxes_clamped=clamped,
        event_observations=int(pc.sum(sequence_level).as_py() or 0),
        images_checked=checked,
        images_unchecked=unchecked,
        duplicate_categories=shared,
    )


def _normalised_boxes(bbox: pa.Array, width: pa.Array, height: pa.Array, path: Path, pointer) -> tuple[pa.Array, int]:
    """Absolute [x, y, w, h] pixels / image size; boxes need the image's width and height."""
    present = np.asarray(pc.is_valid(bbox))
    wrong_length = pc.and_(pc.is_valid(bbox), pc.not_equal(pc.list_value_length(bbox), 4))
    fail_where(wrong_length, path, pointer, "bbox needs 4 numbers [x, y, width, height]")
    no_size = pc.and_(pc.is_valid(bbox), pc.or_(pc.is_null(width), pc.is_null(height)))
    hint = "add them to the image or pass --check-images"
    fail_where(no_size, path, pointer, "the image of this box has no width/height", hint)
    filled = bbox.fill_null([0.0, 0.0, 0.0, 0.0]) if bbox.null_count else bbox
    xywh = pc.list_flatten(filled).to_numpy(zero_copy_only=False).astype(np.float64).reshape(-1, 4)
    w = pc.fill_null(width, 1).to_numpy(zero_copy_only=False).astype(np.float64)
    h = pc.fill_null(height, 1).to_numpy(zero_copy_only=False).astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        xywh = xywh / np.stack([w, h, w, h], axis=1)
    return clamp_boxes(xywh, present, path, pointer)


def _given_id_at(anns: pa.Array):
    """Pointer to the i-th annotation among those that carry an id (check_unique sees only those)."""
    given = pc.indices_nonzero(pc.is_valid(anns.field("id"))).to_pylist()
    return lambda i: f"annotations[{given[i]}].id"
