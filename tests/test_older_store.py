"""A store written before the Camtrap DP observation fields joined the annotation struct keeps working.

The older struct is rebuilt here from today's by leaving those fields out, and the tables are written
as that release wrote them; then today's code adds frames, commits, reads history and publishes.
"""

from __future__ import annotations

import lance
import pyarrow as pa

import hyperds
from hyperds.frames.schema import ANNOTATION_TYPE, FRAMES_SCHEMA
from hyperds.versioning.history import EVENTS, EVENTS_SCHEMA

ADDED = {"life_stage", "sex", "behavior", "individual_id", "attributes"}
OLD_ANN = pa.struct([f for f in ANNOTATION_TYPE if f.name not in ADDED])


def _old(schema: pa.Schema) -> pa.Schema:
    def field(f: pa.Field) -> pa.Field:
        if f.type == ANNOTATION_TYPE:
            return pa.field(f.name, OLD_ANN, f.nullable)
        if f.type == pa.list_(ANNOTATION_TYPE):
            return pa.field(f.name, pa.list_(OLD_ANN), f.nullable)
        return f
    return pa.schema([field(f) for f in schema], metadata=schema.metadata)


def test_an_older_store_takes_frames_commits_and_views(tmp_path):
    store = hyperds.connect(tmp_path / "store")
    frames = _old(FRAMES_SCHEMA).with_metadata({"hyperds.kind": "frames"})
    assert frames.field("annotations").type != FRAMES_SCHEMA.field("annotations").type
    lance.write_dataset(frames.empty_table(), store.table_uri("d"))
    lance.write_dataset(_old(EVENTS_SCHEMA).empty_table(), store.table_uri(EVENTS))

    ds = store.dataset("d")
    ds.add_frames([{"frame_id": "a", "uri": "file:///a.jpg",
                    "annotations": [{"label": "lion", "source_kind": "model", "source": "m@1", "confidence": 0.5}]}])
    store.create_view("v", "any_annotation(label = 'lion')", datasets=["d"]).publish("1.0")
    result = ds.commit([{"op": "relabel", "frame_id": "a", "ann_id": "a:0", "label": "leopard"}], author="ana")

    assert result.updated == 1 and ds.get("a")["labels"] == ["leopard"]
    assert ds.table.schema.field("annotations").type == pa.list_(OLD_ANN)  # the table kept its struct
    hist = ds.history("a")
    assert hist["before"].struct.field("label").to_list() == ["lion"]
    assert hist["after"].struct.field("label").to_list() == ["leopard"]
    assert ds.query("any_annotation(label = 'leopard')").count() == 1
    assert store.view("v", "1.0").verify().ok
