"""Helpers shared by the CLI command modules: opening the store, output flags, writing tables."""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from collections.abc import Iterator
from typing import TextIO

import polars as pl
import pyarrow as pa

from ..dataset import Dataset
from ..errors import OutputError
from ..store import Store, connect

FORMATS = ("table", "csv", "json", "parquet")


def open_store(args: argparse.Namespace) -> Store:
    """The store of --store; an empty --store means the default, never the current folder."""
    return connect(args.store or None)


def positive_int(text: str) -> int:
    """argparse type for counts such as --limit: a whole number of at least 1."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number of at least 1, not {text!r}")
    return value


def add_output_args(parser: argparse.ArgumentParser) -> None:
    """--format and --output/-o; main() refuses --format parquet without --output before any work."""
    parser.add_argument("--format", choices=FORMATS, default="table", help="output format (default: table)")
    parser.add_argument("--output", "-o", metavar="FILE", help="write to FILE instead of stdout (required for parquet)")


@contextlib.contextmanager
def dataset_for_writing(store: Store, name: str) -> Iterator[Dataset]:
    """The dataset `name`, created if missing; a first write that fails in any way (Ctrl-C too) drops it again."""
    created = name not in store.datasets()
    ds = store.create_dataset(name, exist_ok=True)
    try:
        yield ds
    except BaseException:
        if created:
            store.drop_dataset(name)
        raise


def write_table(table: pa.Table | pl.DataFrame, fmt: str = "table", out: str | None = None) -> None:
    """Write a result in one of FORMATS to `out`, or to stdout when `out` is None."""
    df = table if isinstance(table, pl.DataFrame) else pl.from_arrow(table)
    try:
        if fmt == "parquet":
            df.write_parquet(out)
        elif out is None:
            _write_text(df, fmt, sys.stdout)
        else:
            with open(out, "w", encoding="utf-8", newline="") as fh:
                _write_text(df, fmt, fh)
    except OSError as exc:
        raise OutputError(f"cannot write {out}: {exc.strerror or exc}; check the folder exists") from exc


def _write_text(df: pl.DataFrame, fmt: str, fh: TextIO) -> None:
    if fmt == "csv":
        # CSV has no nested values: lists and structs become JSON text in their cell.
        nested = [c for c, t in df.schema.items() if isinstance(t, (pl.List, pl.Struct, pl.Array))]
        as_json = [pl.Series(c, [json.dumps(v, default=str) for v in df[c].to_list()], pl.String) for c in nested]
        df.with_columns(as_json).write_csv(fh)
    elif fmt == "json":
        fh.write(df.write_ndjson())
    else:
        with pl.Config(tbl_rows=50, tbl_cols=12, fmt_str_lengths=60, tbl_width_chars=160):
            print(df, file=fh)
