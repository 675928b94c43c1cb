"""Helpers shared by the CLI command modules: opening the store, writing tables."""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from collections.abc import Iterator

import polars as pl
import pyarrow as pa

from ..dataset import Dataset
from ..errors import HyperdsError
from ..store import Store, connect

FORMATS = ("table", "csv", "json", "parquet")


def open_store(args: argparse.Namespace) -> Store:
    return connect(args.store)


@contextlib.contextmanager
def dataset_for_writing(store: Store, name: str) -> Iterator[Dataset]:
    """The dataset `name`, created if missing; a failing first write drops it again, leaving no trace."""
    created = name not in store.datasets()
    ds = store.create_dataset(name, exist_ok=True)
    try:
        yield ds
    except HyperdsError:
        if created:
            store.drop_dataset(name)
        raise


def write_table(table: pa.Table | pl.DataFrame, fmt: str = "table", out: str | None = None) -> None:
    """Write a result to stdout (or `out` for parquet) in one of FORMATS."""
    df = table if isinstance(table, pl.DataFrame) else pl.from_arrow(table)
    if fmt == "parquet":
        if not out:
            raise SystemExit("hyperds: --format parquet needs --output FILE")
        df.write_parquet(out)
        return
    nested = [c for c, t in df.schema.items() if isinstance(t, (pl.List, pl.Struct, pl.Array))]
    if fmt == "csv":
        # CSV has no nested values: lists and structs become JSON text in their cell.
        as_json = [pl.Series(c, [json.dumps(v, default=str) for v in df[c].to_list()], pl.String) for c in nested]
        df.with_columns(as_json).write_csv(sys.stdout)
    elif fmt == "json":
        sys.stdout.write(df.write_ndjson())
    else:
        with pl.Config(tbl_rows=50, tbl_cols=12, fmt_str_lengths=60, tbl_width_chars=160):
            print(df)
