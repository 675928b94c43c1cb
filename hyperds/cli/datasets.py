"""`hyperds datasets` and `hyperds show`: list datasets, summarise one, print one frame."""

from __future__ import annotations

import argparse
import json

import polars as pl

from .. import storage
from ._common import open_store, write_table


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("datasets", help="list the datasets in the store", description="List datasets with frame counts.")
    p.set_defaults(func=_datasets)
    p = sub.add_parser(
        "show", help="summarise a dataset or print one frame", description="Summarise DATASET, or print FRAME_ID as JSON."
    )
    p.add_argument("dataset")
    p.add_argument("frame_id", nargs="?")
    p.set_defaults(func=_show)
    p = sub.add_parser(
        "optimize",
        help="refresh indices and annotation side tables",
        description="Refresh DATASET's scalar indices and rebuild its annotation side tables, so queries on "
        "annotation fields read an indexed flat table instead of scanning nested lists. Run after large writes.",
    )
    p.add_argument("dataset")
    p.set_defaults(func=_optimize)


def _datasets(args: argparse.Namespace) -> int:
    store = open_store(args)
    handles = {n: store.open_lance(n) for n in store.datasets()}
    rows = [{"dataset": n, "frames": storage.scan.count(h), "version": storage.version(h)} for n, h in handles.items()]
    write_table(pl.DataFrame(rows, schema={"dataset": pl.String, "frames": pl.Int64, "version": pl.Int64}))
    return 0


def _optimize(args: argparse.Namespace) -> int:
    ds = open_store(args).dataset(args.dataset)
    version = ds.optimize()
    print(f"{ds.name}: indices fresh, annotation side tables built for version {version}")
    return 0


def _show(args: argparse.Namespace) -> int:
    ds = open_store(args).dataset(args.dataset)
    if args.frame_id:
        print(json.dumps(ds.get(args.frame_id), default=str, indent=2))
        return 0
    from ..frames.summary import summarize

    for title, table in summarize(ds).items():
        print(f"\n{title}")
        write_table(table)
    return 0
