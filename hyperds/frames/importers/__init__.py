"""Importers for the field's formats: MegaDetector batch output, COCO Camera Traps, Camtrap DP.

Each is a function `import_x(ds, path, root=None, check_images=False) -> ImportReport`: it validates
the whole file first, then inserts the frames the dataset lacks in one write (re-import adds nothing).
"""

from .camtrap_dp import import_camtrap_dp
from .coco_ct import import_coco
from .megadetector import import_megadetector
from .report import ImportReport

__all__ = ["ImportReport", "import_camtrap_dp", "import_coco", "import_megadetector"]
