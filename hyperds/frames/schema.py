"""The frames table schema: one row per image, annotations nested with provenance.

Core columns are fixed; any other column is user metadata and keeps its own Arrow type.
"""

from __future__ import annotations

import pyarrow as pa

UTC_US = pa.timestamp("us", tz="UTC")

SOURCE_KINDS = ("human", "model")
REVIEW_STATUSES = ("unreviewed", "accepted", "rejected", "corrected")
OBSERVATION_LEVELS = ("media", "event")

BBOX_TYPE = pa.list_(pa.float32(), 4)

ANNOTATION_TYPE = pa.struct(
    [
        pa.field("ann_id", pa.string()),
        pa.field("label", pa.string()),
        pa.field("bbox", BBOX_TYPE),
        pa.field("confidence", pa.float32()),
        pa.field("count", pa.int32()),
        pa.field("source_kind", pa.string()),
        pa.field("source", pa.string()),
        pa.field("created_at", UTC_US),
        pa.field("review_status", pa.string()),
        pa.field("reviewed_by", pa.string()),
        pa.field("reviewed_at", UTC_US),
        pa.field("note", pa.string()),
        pa.field("revision", pa.int64()),
        # 'media' for a label on this image, 'event' for a Camtrap DP event-level
        # observation attached to every frame of its event.
        pa.field("level", pa.string()),
        # What a Camtrap DP observation says about the animal (null elsewhere), so an export gives it back.
        pa.field("life_stage", pa.string()),
        pa.field("sex", pa.string()),
        pa.field("behavior", pa.string()),
        pa.field("individual_id", pa.string()),
        # JSON object of the source format's other per-annotation values (e.g. Camtrap DP observationType,
        # eventStart/End, individualSpeed, observationTags), kept verbatim for the exporters.
        pa.field("attributes", pa.string()),
    ]
)

# frame_id is declared to Lance as the table's (unenforced) primary key: an insert-only merge then records
# the keys it inserted, so of two concurrent inserts of one frame_id the second retries and skips it
# instead of writing the frame twice (storage.writes.insert_new; tables made before get it on first insert).
PRIMARY_KEY_METADATA = {"lance-schema:unenforced-primary-key": "true"}

CORE_FIELDS = (
    pa.field("frame_id", pa.string(), nullable=False, metadata=PRIMARY_KEY_METADATA),
    pa.field("uri", pa.string(), nullable=False),
    pa.field("width", pa.int32()),
    pa.field("height", pa.int32()),
    pa.field("captured_at", UTC_US),
    pa.field("site", pa.string()),
    pa.field("camera", pa.string()),
    pa.field("deployment", pa.string()),
    pa.field("seq_id", pa.string()),
    pa.field("frame_num", pa.int32()),
    pa.field("revision", pa.int64(), nullable=False),
    pa.field("labels", pa.list_(pa.string())),
    pa.field("annotations", pa.list_(ANNOTATION_TYPE)),
)
CORE_NAMES = tuple(f.name for f in CORE_FIELDS)
FRAMES_SCHEMA = pa.schema(list(CORE_FIELDS))

# Scalar indices the store keeps on every frames table: column -> Lance index type.
INDICES = {
    "frame_id": "BTREE",
    "captured_at": "BTREE",
    "site": "BITMAP",
    "camera": "BITMAP",
    "labels": "LABEL_LIST",
}


def frames_schema(extra: pa.Schema | None = None) -> pa.Schema:
    """The core schema followed by the dataset's extra (user metadata) columns."""
    fields = list(CORE_FIELDS)
    if extra is not None:
        fields += [f for f in extra if f.name not in CORE_NAMES]
    return pa.schema(fields)
