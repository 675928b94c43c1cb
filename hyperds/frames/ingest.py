"""Ingest raw images from a local folder or an `s3://` prefix into a dataset, incrementally.

List objects, skip those already ingested (same uri and ETag/mtime), read only image headers,
take fields from the path layout, derive bursts, and insert in one commit; every object that is
not ingested is reported with its reason.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import re
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import polars as pl
import pyarrow as pa

from ..errors import IngestError, SchemaError
from ..fsio import open_filesystem, split_protocol
from ..query.lance_sql import not_null, starts_with
from .bursts import DEFAULT_GAP_S, assign_bursts
from .headers import DEFAULT_BLOCK, HEADER_SCHEMA, read_headers
from .normalize import check_timezone, parse_timestamps
from .schema import CORE_NAMES, UTC_US

if TYPE_CHECKING:
    from .table import FrameTable

log = logging.getLogger(__name__)

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".tif", ".tiff", ".webp")
# Layout fields that fill a core column; any other named field becomes a user string column.
LAYOUT_CORE = ("site", "camera", "deployment", "seq_id")
# Layout fields that only match (the file name), never stored.
LAYOUT_IGNORED = ("name",)
SOURCE_COLUMNS = ("source_etag", "source_mtime", "source_size")

# (fs, paths, sizes) -> one HEADER_SCHEMA row per path, in order.
HeaderReader = Callable[[Any, list[str], list[int]], pa.Table]

_FIELD = re.compile(r"\{([^{}]*)\}")
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_PROBLEMS = {"uri": pl.String, "problem": pl.String, "reason": pl.String}

@dataclasses.dataclass
class IngestReport:
    """What an ingest did: counts, every object not ingested with its reason, and the new version."""

    dataset: str
    uri: str
    listed: int
    ingested: int
    already_ingested: int
    skipped: pl.DataFrame  # uri, problem (ignored|layout|unreadable|duplicate|changed), reason
    warnings: pl.DataFrame  # uri, problem, reason for frames ingested with a caveat
    version: int
    bytes_read: int
    seconds: float  # end to end: list, compare, read, write
    read_seconds: float  # reading objects only

    def summary(self, limit: int = 50) -> str:
        rate = self.ingested / self.seconds if self.seconds else 0.0
        lines = [
            f"ingest {self.uri} -> dataset {self.dataset!r} (version {self.version}): {self.listed} objects listed, "
            f"{self.ingested} ingested, {self.already_ingested} already ingested (skipped), "
            f"{self.skipped.height} not ingested; {self.seconds:.1f} s, {rate:.0f} images/s, "
            f"{self.bytes_read / 1e6:.1f} MB read"
        ]
        for title, table in (("not ingested", self.skipped), ("ingested with warnings", self.warnings)):
            if table.height and limit:
                lines.append(f"{title}:")
                lines += [f"  [{p}] {u}: {r}" for u, p, r in table.head(limit).iter_rows()]
                if table.height > limit:
                    lines.append(f"  ... and {table.height - limit} more (see the report's table)")
        return "\n".join(lines)


def source_filesystem(
    uri: str, storage_options: dict[str, Any] | None = None, threads: int = 16
) -> tuple[Any, str]:
    """The fsspec filesystem holding `uri` and the path of `uri` inside it."""
    protocol = split_protocol(uri)[0]
    try:
        fs = open_filesystem(protocol, dict(storage_options or {}), threads, IngestError)
    except (ValueError, TypeError) as exc:
        raise IngestError(f"cannot open {uri}: {exc}") from exc
    return fs, fs._strip_protocol(uri).rstrip("/")


def compile_layout(layout: str) -> tuple[str, list[str]]:
    """A path layout like "{site}/{camera}/{name}" as an anchored regex and its field names."""
    fields = _FIELD.findall(layout)
    parts = _FIELD.split(layout)
    stray = any("{" in p or "}" in p for p in parts[::2])
    bad = [f for f in fields if not _IDENT.match(f)]
    taken = {*CORE_NAMES, *SOURCE_COLUMNS, *HEADER_SCHEMA.names, "path", "rel", "sha256", "_seen"}
    reserved = [f for f in fields if f in taken and f not in LAYOUT_CORE]
    if not fields or stray or bad or reserved or len(set(fields)) != len(fields):
        problem = (
            "a '{' or '}' does not pair up" if stray
            else f"invalid field name(s) {bad}" if bad
            else f"field(s) {reserved} are computed by hyperds" if reserved
            else "a field appears twice" if fields else "it has no {field}"
        )
        raise IngestError(
            f"bad layout {layout!r}: {problem}. Write path parts as {{field}} separated by '/', e.g. "
            f"'{{site}}/{{camera}}/{{name}}'; fields {list(LAYOUT_CORE)} fill those columns, {{name}} is ignored"
        )
    regex = "".join(re.escape(p) if i % 2 == 0 else f"(?P<{p}>[^/]+)" for i, p in enumerate(parts))
    return f"^{regex}$", fields


def _problems(df: pl.DataFrame, problem: str, reason: pl.Expr) -> pl.DataFrame:
    return df.select(pl.col("uri"), pl.lit(problem).alias("problem"), reason.alias("reason")).cast(_PROBLEMS)


def _list(fs: Any, root: str) -> pl.DataFrame:
    try:
        fs.invalidate_cache()
        found = fs.find(root, detail=True)
    except (OSError, ValueError) as exc:
        raise IngestError(f"cannot list {fs.unstrip_protocol(root)}: {exc}") from exc
    if not found and not fs.exists(root):
        raise IngestError(f"nothing found at {fs.unstrip_protocol(root)}; check the path or bucket prefix")
    names = sorted(found)
    infos = [found[n] for n in names]
    return pl.DataFrame(
        {
            "path": names,
            "uri": [fs.unstrip_protocol(n) for n in names],
            "rel": [n[len(root) :].lstrip("/") or n.rsplit("/", 1)[-1] for n in names],
            "source_size": pl.Series([i.get("size") for i in infos], dtype=pl.Int64),
            "source_etag": pl.Series([i.get("ETag") or i.get("etag") for i in infos], dtype=pl.String),
            "source_mtime": _mtimes([i.get("LastModified") or i.get("mtime") for i in infos]),
        }
    )


def _mtimes(raw: list[Any]) -> pl.Series:
    """Modification times as UTC microseconds: s3fs gives datetimes, local files epoch seconds."""
    if raw and isinstance(raw[0], (int, float)):
        return (pl.Series(raw, dtype=pl.Float64) * 1e6).cast(pl.Int64).cast(pl.Datetime("us", "UTC"))
    return pl.Series(raw, dtype=pl.Datetime("us", "UTC"))


def _existing(table: FrameTable, prefix: str) -> pl.DataFrame:
    """uri and source columns of the frames already ingested from under `prefix`."""
    names = table.schema.names
    columns = ["uri"] + [c for c in SOURCE_COLUMNS if c in names]
    df = pl.from_arrow(table.to_arrow(columns=columns, filter=starts_with("uri", prefix)))
    missing = {"source_etag": pl.String, "source_mtime": pl.Datetime("us", "UTC"), "source_size": pl.Int64}
    return df.with_columns(
        *(pl.lit(None, t).alias(c) for c, t in missing.items() if c not in df.columns), pl.lit(True).alias("_seen")
    ).select("uri", *SOURCE_COLUMNS, "_seen")


def _known_hashes(table: FrameTable) -> pl.DataFrame:
    """(sha256, uri) of every frame of the dataset that has a content hash."""
    if "sha256" not in table.schema.names:
        return pl.DataFrame(schema={"sha256": pl.String, "uri": pl.String})
    return pl.from_arrow(table.to_arrow(columns=["sha256", "uri"], filter=not_null("sha256")))


def ingest(
    table: FrameTable,
    uri: str,
    layout: str | None = None,
    hash: bool = False,
    storage_options: dict[str, Any] | None = None,
    tz: str = "UTC",
    threads: int = 16,
    burst_gap_s: float = DEFAULT_GAP_S,
    block_size: int = DEFAULT_BLOCK,
    progress: bool = True,
    reader: HeaderReader | None = None,
) -> IngestReport:
    """Add the images under `uri` that the dataset does not hold yet (see the module docstring)."""
    start = time.perf_counter()
    table.require_writable()
    pattern, fields = compile_layout(layout) if layout else (None, [])
    try:
        check_timezone(tz)
    except SchemaError as exc:
        raise IngestError(f"{exc} (tz is the zone of EXIF times without an offset)") from exc
    if burst_gap_s < 0:
        raise IngestError(f"burst gap must be >= 0 seconds, got {burst_gap_s}; 60 is the usual camera-trap choice")
    fs, root = source_filesystem(uri, storage_options, threads)
    listing = _list(fs, root)
    todo, problems = _candidates(listing, layout, pattern, fields)
    todo, already, changed = _unseen(todo, _existing(table, fs.unstrip_protocol(root)))
    problems.append(changed)

    read = reader or functools.partial(
        read_headers, hash=hash, block_size=block_size, threads=threads, progress=progress
    )
    read_start = time.perf_counter()
    headers = pl.from_arrow(read(fs, todo["path"].to_list(), todo["source_size"].to_list())) if todo.height else None
    read_seconds = time.perf_counter() - read_start
    bytes_read, warnings, result = 0, pl.DataFrame(schema=_PROBLEMS), None
    if headers is not None:
        todo = pl.concat([todo, headers], how="horizontal")
        bytes_read = int(todo["bytes_read"].sum())
        problems.append(_problems(todo.filter(pl.col("error").is_not_null()), "unreadable", pl.col("error")))
        todo = todo.filter(pl.col("error").is_null())
        if hash:
            todo, dups = _dedupe(todo, _known_hashes(table))
            problems.append(dups)
        todo, warnings = _capture_times(todo, tz)
        if todo.height:
            frames = _frames(_bursts(todo, burst_gap_s), fields, hash)
            result = table.add_frames(frames, assume_tz=tz)
    skipped = pl.concat(problems).sort(["problem", "uri"])
    report = IngestReport(
        dataset=table.name, uri=uri, listed=listing.height, ingested=result.inserted if result else 0,
        already_ingested=already, skipped=skipped, warnings=warnings,
        version=result.version if result else table.version, bytes_read=bytes_read,
        seconds=time.perf_counter() - start, read_seconds=read_seconds,
    )
    log.info("%s", report.summary(limit=0))
    if skipped.height:
        log.warning("ingest %s: %d object(s) not ingested; see report.skipped", uri, skipped.height)
    return report


def _candidates(
    listing: pl.DataFrame, layout: str | None, pattern: str | None, fields: list[str]
) -> tuple[pl.DataFrame, list[pl.DataFrame]]:
    """Objects with an image file name whose path fits the layout (fields as columns), and the rest."""
    ext = pl.col("rel").str.to_lowercase().str.extract(r"(\.[^./]*)$")
    is_image = ext.is_in(list(IMAGE_EXTENSIONS)).fill_null(False)
    reason = pl.format("not an image file name ({})", ext.fill_null("no extension"))
    problems = [_problems(listing.filter(~is_image), "ignored", reason)]
    todo = listing.filter(is_image)
    if pattern:
        todo = todo.with_columns(pl.col("rel").str.extract_groups(pattern).alias("_layout")).unnest("_layout")
        bad = pl.col(fields[0]).is_null()
        reason = pl.format("path {} does not match layout {}", pl.col("rel"), pl.lit(layout))
        problems.append(_problems(todo.filter(bad), "layout", reason))
        todo = todo.filter(~bad).drop([f for f in fields if f in LAYOUT_IGNORED])
    return todo, problems


def _unseen(todo: pl.DataFrame, existing: pl.DataFrame) -> tuple[pl.DataFrame, int, pl.DataFrame]:
    """Objects not ingested yet, how many were (unchanged), and those changed since (listed)."""
    joined = todo.join(existing, on="uri", how="left", suffix="_old")
    seen = pl.col("_seen").fill_null(False)
    both_etags = pl.col("source_etag").is_not_null() & pl.col("source_etag_old").is_not_null()
    same = (
        pl.when(both_etags)
        .then(pl.col("source_etag") == pl.col("source_etag_old"))
        .otherwise(
            pl.col("source_mtime").eq_missing(pl.col("source_mtime_old"))
            & pl.col("source_size").eq_missing(pl.col("source_size_old"))
        )
    )
    changed = _problems(
        joined.filter(seen & ~same),
        "changed",
        pl.lit("changed since it was ingested (ETag/mtime differ); not re-ingested, its frame is kept as it was"),
    )
    return joined.filter(~seen).select(todo.columns), joined.filter(seen & same).height, changed


def _dedupe(todo: pl.DataFrame, known: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Drop objects whose content equals a known frame's or an earlier object's in this run."""
    known = known.select("sha256", pl.col("uri").alias("_first"))
    first_here = todo.group_by("sha256").agg(pl.col("uri").min().alias("_here"))
    marked = todo.join(known.unique("sha256"), on="sha256", how="left").join(first_here, on="sha256", how="left")
    dup = pl.col("_first").is_not_null() | (pl.col("uri") != pl.col("_here"))
    original = pl.coalesce("_first", "_here")
    dups = _problems(marked.filter(dup), "duplicate", pl.format("same content (SHA-256) as {}", original))
    return marked.filter(~dup).drop("_first", "_here"), dups


def _capture_times(todo: pl.DataFrame, tz: str) -> tuple[pl.DataFrame, pl.DataFrame]:
    """EXIF times -> UTC `captured_at`: OffsetTimeOriginal where present, else the zone `tz`."""
    parsed = pl.col("exif_time").str.strptime(pl.Datetime("us"), "%Y:%m:%d %H:%M:%S", strict=False)
    offset = pl.col("exif_offset").str.extract(r"^([+-]\d{2}:\d{2})$")
    todo = todo.with_columns(
        pl.concat_str([parsed.dt.strftime("%Y-%m-%dT%H:%M:%S"), offset.fill_null("")]).alias("_iso")
    )
    bad = pl.col("exif_time").is_not_null() & pl.col("_iso").is_null()
    reason = pl.format("EXIF capture time {} is not a valid date; captured_at left empty", pl.col("exif_time"))
    warnings = _problems(todo.filter(bad), "capture_time", reason)
    captured, errors = _parse_times(todo["_iso"].to_arrow(), tz)
    if errors:
        unplaced = todo[list(errors)].with_columns(pl.Series("_error", list(errors.values()), pl.String))
        reason = pl.format("EXIF capture time {}: {}; captured_at left empty", pl.col("exif_time"), pl.col("_error"))
        warnings = pl.concat([warnings, _problems(unplaced, "capture_time", reason)])
    return todo.with_columns(pl.from_arrow(captured).alias("captured_at")), warnings


def _parse_times(iso: pa.Array, tz: str) -> tuple[pa.Array, dict[int, str]]:
    """parse_timestamps, with null and its error at each row it rejects (a local time `tz`'s DST
    change skips or repeats); halves the input on failure, so a few bad rows cost a few retries."""
    try:
        return parse_timestamps(iso, assume_tz=tz), {}
    except SchemaError as exc:
        if len(iso) == 1:
            return pa.nulls(1, UTC_US), {0: str(exc)}
    mid = len(iso) // 2
    (head, head_errors), (tail, tail_errors) = _parse_times(iso[:mid], tz), _parse_times(iso[mid:], tz)
    return pa.concat_arrays([head, tail]), {**head_errors, **{mid + i: e for i, e in tail_errors.items()}}


def _bursts(todo: pl.DataFrame, gap_s: float) -> pl.DataFrame:
    """Bursts per site/camera from the layout, else per folder (a folder is one camera's card)."""
    if "camera" in todo.columns:
        return assign_bursts(todo, by=[c for c in ("site", "camera") if c in todo.columns], gap_s=gap_s)
    folder = todo.with_columns(pl.col("uri").str.replace(r"/[^/]*$", "").alias("_folder"))
    return assign_bursts(folder, by=["_folder"], gap_s=gap_s).drop("_folder")


def _frames(todo: pl.DataFrame, fields: list[str], hash: bool) -> pl.DataFrame:
    layout_cols = [f for f in fields if f not in (*LAYOUT_IGNORED, "seq_id")]
    return todo.select(
        pl.col("uri").alias("frame_id"),
        "uri", "width", "height", "captured_at", *layout_cols, "seq_id", "frame_num",
        "camera_make", "camera_model", *SOURCE_COLUMNS, *(["sha256"] if hash else []),
    )
