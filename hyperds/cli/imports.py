"""`hyperds import {megadetector,coco,camtrap-dp} PATH --dataset NAME`: import a source file.

Creates the dataset when missing (and drops it again if that first import fails), prints the report.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

from ..frames.importers import ImportReport, import_camtrap_dp, import_coco, import_megadetector
from ._common import dataset_for_writing, open_store

_FORMATS: dict[str, tuple[Callable[..., ImportReport], str, bool]] = {
    # name: (importer, what PATH is, takes --tz)
    "megadetector": (import_megadetector, "MegaDetector batch output JSON (format 1.1 or later)", False),
    "coco": (import_coco, "COCO Camera Traps JSON", True),
    "camtrap-dp": (import_camtrap_dp, "Camtrap DP package folder or its datapackage.json", True),
}


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "import",
        help="import MegaDetector, COCO Camera Traps or Camtrap DP files",
        description="Import frames and annotations from a source file; re-importing adds nothing.",
    )
    formats = p.add_subparsers(dest="format", metavar="FORMAT", required=True)
    for name, (importer, what, has_tz) in _FORMATS.items():
        f = formats.add_parser(name, help=f"import a {what}", description=f"Import a {what} into a dataset.")
        f.add_argument("path", metavar="PATH", help=what)
        f.add_argument("--dataset", required=True, help="dataset name (created if missing)")
        f.add_argument("--root", help="base URI for relative image paths (default: the file's folder)")
        f.add_argument("--check-images", action="store_true", help="check local images exist and read their size")
        if has_tz:
            f.add_argument("--tz", default="UTC", help="time zone of timestamps without an offset (default UTC)")
        f.set_defaults(func=_import, importer=importer)


def _import(args: argparse.Namespace) -> int:
    options = {"tz": args.tz} if "tz" in args else {}
    with dataset_for_writing(open_store(args), args.dataset) as ds:
        report = args.importer(ds, args.path, root=args.root, check_images=args.check_images, **options)
    print(report.summary())
    return 0
