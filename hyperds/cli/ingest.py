"""`hyperds ingest`: add new raw photos from a folder or s3:// prefix to a dataset (headers only)."""

from __future__ import annotations

import argparse

from ._common import dataset_for_writing, finite_float, int_between, open_store


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "ingest",
        help="ingest new images from a folder or s3:// prefix",
        description="List URI, read only the header of each image not yet in DATASET (size, EXIF capture time, "
        "camera make/model), take fields from the path layout, derive bursts, and add them in one commit. "
        "Objects that cannot be ingested are listed with the reason. S3 credentials come from the environment.",
    )
    p.add_argument("uri", help="local folder or s3://bucket/prefix")
    p.add_argument("--dataset", required=True, help="dataset to add to (created if missing)")
    p.add_argument("--layout", help='path layout below URI, e.g. "{site}/{camera}/{name}"')
    p.add_argument(
        "--hash", action="store_true", help="read whole objects for a SHA-256 (de-duplication, truncation check)"
    )
    p.add_argument("--engine", choices=("local", "ray"), default="local", help="where reads run (default: threads)")
    p.add_argument("--tz", default="UTC", help="zone of EXIF times without an offset (default UTC), e.g. +01:00")
    p.add_argument("--threads", type=int_between(1, 1024), default=16, help="concurrent reads (default 16)")
    p.add_argument("--burst-gap", type=finite_float(0), default=60.0, help="gap in seconds that starts a new burst (default 60)")
    p.add_argument("--endpoint-url", help="S3-compatible endpoint for the source bucket")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=_ingest)


def _ingest(args: argparse.Namespace) -> int:
    with dataset_for_writing(open_store(args), args.dataset) as ds:
        report = ds.ingest(
            args.uri,
            layout=args.layout,
            hash=args.hash,
            storage_options={"aws_endpoint": args.endpoint_url} if args.endpoint_url else None,
            engine=args.engine,
            tz=args.tz,
            threads=args.threads,
            burst_gap_s=args.burst_gap,
            progress=not args.no_progress,
        )
    print(report.summary())
    return 0
