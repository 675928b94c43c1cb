"""Frames: the schema, input normalisation, the frames table and the format importers.

Public: `hyperds.frames.importers` (the format importers) and `hyperds.frames.summary` (dataset
summaries). The other modules are internal: reach them through Store / Dataset.
"""

from .schema import ANNOTATION_TYPE, FRAMES_SCHEMA, frames_schema
from .table import AddResult, FrameTable

__all__ = ["ANNOTATION_TYPE", "FRAMES_SCHEMA", "AddResult", "FrameTable", "frames_schema"]
