"""The `hyperds` console script: one argparse sub-command per command-group module.

Each module in COMMAND_MODULES exposes `register(subparsers)`, which adds its commands and
sets `func(args) -> int` on them. Bad flags exit 2 before any work; HyperdsError becomes a
one-line message and exit status 2.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from ..errors import HyperdsError

COMMAND_MODULES = ("datasets", "imports", "query", "ingest", "review", "commit", "view", "export", "evaluate", "serve",
                   "field")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hyperds", description="Queryable, versioned hyper-dataset store for camera-trap images."
    )
    parser.add_argument("--store", help="store URI (default: $HYPERDS_STORE or ~/.hyperds/store)")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(f"{__package__}.{name}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if "output" in args and args.format == "parquet" and not args.output:
        parser.error("--format parquet needs --output FILE")
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )
    try:
        return int(args.func(args) or 0)
    except HyperdsError as exc:
        print(f"hyperds: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
