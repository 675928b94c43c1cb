"""`hyperds commit`, `hyperds history`, `hyperds blame`, `hyperds log`: corrections and their audit trail."""

from __future__ import annotations

import argparse
import io
import json
from pathlib import Path
from typing import Any

import polars as pl

from ..errors import CorrectionError
from ..versioning.changes import ChangeInput
from ._common import add_output_args, int_between, open_store, write_table


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "commit",
        help="apply annotation corrections from a CSV or JSON file as one version",
        description="Apply the changes in FILE (CSV, JSON array or JSON lines; columns op, frame_id, ann_id, label, "
        "bbox as '[x, y, w, h]', confidence, count, status, note, revision) to DATASET as one new version. "
        "Nothing is written if any change is invalid or any frame changed since its `revision`.",
    )
    p.add_argument("dataset")
    p.add_argument("file", help="corrections: .csv, .json (array of objects) or .jsonl")
    p.add_argument("--author", required=True, help="who makes the changes (recorded as provenance)")
    p.add_argument("--message", "-m", default="", help="why (shown by `hyperds log` and `hyperds blame`)")
    p.add_argument("--based-on", type=int_between(1, 2**63 - 1), help="dataset version the changes were made against")
    p.set_defaults(func=_commit)
    for name, text in (("history", "every annotation event of one frame"), ("blame", "who set each current label")):
        p = sub.add_parser(name, help=text, description=f"Print {text}, oldest first.")
        p.add_argument("dataset")
        p.add_argument("frame_id")
        add_output_args(p)
        p.set_defaults(func=_history if name == "history" else _blame)
    p = sub.add_parser("log", help="list the commits of a dataset", description="List commits of DATASET, oldest first")
    p.add_argument("dataset")
    add_output_args(p)
    p.set_defaults(func=_log)


def read_changes(path: Path) -> ChangeInput:
    """Corrections from a UTF-8 CSV, JSON array or JSON-lines file; a CSV bbox is a JSON list '[x, y, w, h]'."""
    suffix = path.suffix.lower()
    if path.is_dir():
        raise CorrectionError(f"{path} is a folder; give the corrections file inside it")
    if suffix not in (".csv", ".json", ".jsonl", ".ndjson"):
        raise CorrectionError(f"{path}: corrections must be .csv, .json or .jsonl, not {suffix or 'no extension'}")
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except FileNotFoundError:
        raise CorrectionError(f"corrections file {str(path)!r} does not exist") from None
    except OSError as exc:
        raise CorrectionError(f"cannot read corrections file {path}: {exc.strerror}") from exc
    except UnicodeDecodeError:
        as_what = "CSV UTF-8" if suffix == ".csv" else "UTF-8"
        raise CorrectionError(f"{path} is not UTF-8 text; save it as {as_what}") from None
    if suffix == ".csv":
        return _read_csv(path, text)
    if suffix == ".json":
        rows = _json(path, text)
        if not isinstance(rows, list):
            raise CorrectionError(f"{path}: expected a JSON array of change objects")
        return rows
    return [_json(path, line, n) for n, line in enumerate(text.splitlines(), 1) if line.strip()]


def _json(path: Path, text: str, line: int | None = None) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        where = f"line {line}" if line is not None else f"line {exc.lineno} column {exc.colno}"
        raise CorrectionError(f"{path}: {where}: not valid JSON ({exc.msg})") from exc


def _read_csv(path: Path, text: str) -> pl.DataFrame:
    try:
        df = pl.read_csv(io.StringIO(text), infer_schema=False)
    except pl.exceptions.PolarsError as exc:
        ragged = "truncate_ragged_lines" in str(exc)
        why = "a row has more fields than the header; quote values with commas, e.g. \"[0.1, 0.2, 0.3, 0.4]\""
        raise CorrectionError(f"cannot read corrections from {path}: {why if ragged else exc}") from exc
    if "bbox" in df.columns:
        try:
            df = df.with_columns(pl.col("bbox").str.json_decode(pl.List(pl.Float64)))
        except pl.exceptions.PolarsError:
            raise CorrectionError(f"{path}: bbox must be a JSON list '[x, y, w, h]', e.g. \"[0.1, 0.2, 0.3, 0.4]\" "
                                  "(quoted, as it contains commas)") from None
    return df


def _commit(args: argparse.Namespace) -> int:
    ds = open_store(args).dataset(args.dataset)
    changes = read_changes(Path(args.file))
    res = ds.commit(changes, author=args.author, message=args.message, based_on=args.based_on)
    print(
        f"commit {res.commit_id}: {args.dataset} version {res.version_before} -> {res.version}, {res.frames} frame(s): "
        f"{res.added} added, {res.updated} updated, {res.deleted} deleted, {res.reviewed} reviewed"
    )
    return 0


def _history(args: argparse.Namespace) -> int:
    events = open_store(args).dataset(args.dataset).history(args.frame_id)
    b, a = pl.col("before").struct, pl.col("after").struct
    shown = events.select(
        "version", "created_at", "author", "op", "ann_id",
        b.field("label").alias("label_before"), a.field("label").alias("label_after"),
        a.field("review_status").alias("status"), "note", "message", pl.col("commit_id").str.slice(0, 12),
    )
    write_table(shown, args.format, args.output)
    return 0


def _blame(args: argparse.Namespace) -> int:
    write_table(open_store(args).dataset(args.dataset).blame(args.frame_id), args.format, args.output)
    return 0


def _log(args: argparse.Namespace) -> int:
    write_table(open_store(args).dataset(args.dataset).commits().drop("dataset"), args.format, args.output)
    return 0
