"""Helpers shared by the CLI command modules: opening the store, output flags, writing tables."""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

import polars as pl
import pyarrow as pa

from ..dataset import Dataset
from ..errors import DatasetExistsError, HyperdsError
from ..store import Store, connect

log = logging.getLogger(__name__)

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


def json_arg(value: str | None, flag: str, error: type[HyperdsError] = HyperdsError) -> object:
    """A flag given as inline JSON or as the path of a .json file (None when not given)."""
    if not value:
        return None
    try:
        text = Path(value).read_text() if value.endswith(".json") else value
    except OSError as exc:
        raise error(f"cannot read {flag} file {value}: {exc.strerror}") from exc
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise error(f"{flag} is not valid JSON: {exc}") from exc


@contextlib.contextmanager
def dataset_for_writing(store: Store, name: str) -> Iterator[Dataset]:
    """The dataset `name`, created if missing; a first write that fails in any way (Ctrl-C too) drops it again.

    Only the writer whose create call made the dataset drops it, and only while it is still at the
    version that call made: another command may have created the same new dataset at the same moment
    and committed to it, and its data must stay (it is left, and a warning says so).
    """
    try:
        ds = store.create_dataset(name)
        created: int | None = ds.version
    except DatasetExistsError:
        ds, created = store.dataset(name), None
    try:
        yield ds
    except BaseException:
        if created is not None:
            _drop_if_untouched(store, name, created)
        raise


def _drop_if_untouched(store: Store, name: str, created: int) -> None:
    """Drop the dataset this command created if it is still at version `created`; else keep it and say so."""
    try:
        now = store.open_lance(name).version
        if now == created:
            store.drop_dataset(name)
            return
        why = f"another write was committed to it (now version {now})"
    except Exception as exc:  # the failed write's own error is the one to report
        why = f"it could not be checked ({exc})"
    log.warning("dataset %r, created by this command, is kept: %s", name, why)


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
        raise HyperdsError(f"cannot write {out}: {exc.strerror or exc}; check the folder exists") from exc


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
