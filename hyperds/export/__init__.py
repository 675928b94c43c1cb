"""Exports of a View, Dataset or Query to the field's formats, each file set traceable to its source version.

`export(source, format, dest, **options)` (also `View.export`, `Dataset.export`, `Query.export` and
`hyperds export`). One module per format, each a writer class (see base.py); add a format by writing
one and listing it in FORMATS.
"""

from __future__ import annotations

from .base import ExportResult, export
from .camtrap_dp import CamtrapDpWriter
from .coco_ct import CocoWriter
from .csv_table import CsvWriter
from .megadetector import MegaDetectorWriter
from .yolo import YoloWriter

FORMATS = {w.name: w for w in (CamtrapDpWriter, CocoWriter, MegaDetectorWriter, YoloWriter, CsvWriter)}

__all__ = ["FORMATS", "ExportResult", "export"]
