"""`hyperds export VIEW --version V --format FORMAT --output DIR`: write a view version to a field format.

The export is recorded in the store's audit (`hyperds audit runs` shows kind and destination).
"""

from __future__ import annotations

import argparse

from ..export import FORMATS
from ._common import open_store, positive_int


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "export",
        help="export a view version as Camtrap DP, COCO Camera Traps, MegaDetector, YOLO or CSV",
        description="Export a view version's frames and annotations to DIR (a folder or s3://bucket/prefix), "
        "with a provenance block naming the view, version, digest and pinned dataset versions. "
        "Nothing is written when a check fails; a failed export leaves no partial file set.",
    )
    p.add_argument("view", metavar="VIEW", help="view name")
    p.add_argument("--version", help="view version (default: the latest published; 'draft' for the draft)")
    p.add_argument("--format", required=True, choices=list(FORMATS), help="file format to write")
    p.add_argument("--output", "-o", required=True, metavar="DIR", help="destination folder or s3:// prefix")
    p.add_argument("--overwrite", action="store_true", help="replace DIR when it exists and is not empty")
    p.add_argument("--copy-images", action="store_true", help="yolo: copy the images into DIR/images")
    p.add_argument("--include-rejected", action="store_true", help="also write annotations reviewed as rejected")
    p.add_argument("--image-root", metavar="URI", help="write image paths relative to URI where they lie below it")
    p.add_argument("--batch-size", type=positive_int, default=65_536, help="frames per batch (default: 65536)")
    p.add_argument("--policy", choices=("public", "full"), help="public: apply the store's sensitive-species and "
                   "people policy (`hyperds policy show`); full: everything as stored (default)")
    p.set_defaults(func=_export)


def _export(args: argparse.Namespace) -> int:
    view = open_store(args).view(args.view, args.version)
    options = {"overwrite": args.overwrite, "include_rejected": args.include_rejected,
               "image_root": args.image_root, "batch_size": args.batch_size}
    if args.policy:
        options["policy"] = args.policy
    if args.copy_images:
        options["copy_images"] = True
    result = view.export(args.format, args.output, **options)
    print(result.summary())
    return 0
