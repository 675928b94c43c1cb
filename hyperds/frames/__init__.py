"""Frames: the schema, input normalisation, the frames table and the format importers."""

from .schema import ANNOTATION_TYPE, FRAMES_SCHEMA, frames_schema
from .table import AddResult, FrameTable

__all__ = ["ANNOTATION_TYPE", "FRAMES_SCHEMA", "AddResult", "FrameTable", "frames_schema"]
