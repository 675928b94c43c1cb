"""Camtrap DP 1.x data package -> one frame per media row, observations as annotations.

Deployments give site, camera and deployment; an event becomes the frame's `seq_id`; event-level
observations are attached to every frame of their event with `level='event'`. Other resources are ignored.
"""

from __future__ import annotations

import csv
import os
import re
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from ... import storage
from ...errors import SourceFormatError
from ..package_meta import merged_metadata
from ..table import FrameTable
from ._common import (
    annotation_struct,
    check_images as check_image_files,
    check_unique,
    clamp_boxes,
    fail_where,
    image_uris,
    nest,
    parse_times,
    parse_values,
    read_json,
    require,
    write_frames,
)
from .report import ImportReport

_PROFILE = re.compile(r"camtrap-dp/(\d+)\.(\d+)(?:\.\d+)?/")
_REQUIRED = {
    "deployments": ("deploymentID",),
    "media": ("mediaID", "deploymentID", "timestamp", "filePath"),
    "observations": ("observationID", "deploymentID", "observationLevel", "observationType"),
}
_BBOX = ("bboxX", "bboxY", "bboxWidth", "bboxHeight")
# media columns kept as text frame fields (the exporter writes them back)
_MEDIA_TEXT = {"capture_method": "captureMethod", "file_name": "fileName", "file_mediatype": "fileMediatype",
               "exif_data": "exifData", "media_comments": "mediaComments"}
# observation columns without an annotation field of their own, kept in its `attributes` JSON
_ATTRIBUTES = ("observationType", "eventStart", "eventEnd", "cameraSetupType", "individualPositionRadius",
               "individualPositionAngle", "individualSpeed", "observationTags", "classificationTimestamp")
# review state an export writes into observationTags
_REVIEW_TAG = re.compile(r"^hyperds:(review_status|reviewed_by|reviewed_at)=(.*)$")


def _row(column: str):
    """Pointer to a CSV cell; row 1 is the header, as in a spreadsheet."""
    return lambda i: f"row {i + 2}, {column}"


class _Resource:
    """One CSV resource of the package, all columns read as text (empty cells are null)."""

    def __init__(self, pkg: dict, pkg_file: Path, name: str):
        resources = require(pkg, "resources", pkg_file, "", list)
        found = [r for r in resources if isinstance(r, dict) and r.get("name") == name]
        if not found:
            raise SourceFormatError(
                str(pkg_file), "resources", f"no resource named {name!r}",
                "a Camtrap DP package has deployments, media and observations",
            )
        where = f"resources[{resources.index(found[0])}]"
        self.path = pkg_file.parent / require(found[0], "path", pkg_file, where, str)
        self.table = _read_csv(self.path)
        for column in _REQUIRED[name]:
            if column not in self.table.column_names:
                raise SourceFormatError(
                    str(self.path), f"column {column!r}", "missing required column",
                    f"columns are {self.table.column_names}",
                )
            fail_where(pc.is_null(self.table.column(column)), self.path, _row(column), "missing required value")

    def col(self, name: str) -> pa.Array:
        if name not in self.table.column_names:
            return pa.nulls(self.table.num_rows, pa.string())
        return self.table.column(name).combine_chunks()


def _read_csv(path: Path) -> pa.Table:
    try:
        with open(path, newline="", encoding="utf-8") as f:
            header = next(csv.reader(f), None)
    except UnicodeDecodeError as exc:
        raise SourceFormatError(str(path), "row 1", "not UTF-8 text", "save the file as UTF-8") from exc
    except OSError as exc:  # missing, a directory, unreadable
        raise SourceFormatError(str(path), None, exc.strerror or str(exc), "check the package's resource paths") from None
    if not header:
        raise SourceFormatError(str(path), "row 1", "empty file: no header row")
    convert = pacsv.ConvertOptions(
        column_types=dict.fromkeys(header, pa.string()), strings_can_be_null=True, null_values=[""]
    )
    try:
        return pacsv.read_csv(path, convert_options=convert)
    except pa.ArrowInvalid as exc:
        bad: list = []

        def record(row):  # the threaded reader cannot number rows; this re-read can
            bad.append(row)
            return "error"

        try:
            pacsv.read_csv(
                path,
                read_options=pacsv.ReadOptions(use_threads=False),
                parse_options=pacsv.ParseOptions(invalid_row_handler=record),
                convert_options=convert,
            )
        except pa.ArrowInvalid:
            pass
        where = f"row {bad[0].number}" if bad and bad[0].number else None
        raise SourceFormatError(
            str(path), where, f"malformed CSV: {exc}",
            f"every row needs {len(header)} values; quote values that hold commas",
        ) from exc


def import_camtrap_dp(
    ds: FrameTable,
    path: str | os.PathLike[str],
    root: str | None = None,
    check_images: bool = False,
    tz: str = "UTC",
) -> ImportReport:
    """Import a Camtrap DP package (its folder or its datapackage.json); frames are keyed by mediaID.

    Relative `filePath`s resolve against the package folder unless `root` is given; URLs are kept.
    """
    path = Path(path)
    pkg_file = path / "datapackage.json" if path.is_dir() else path
    pkg = read_json(pkg_file)
    profile = require(pkg, "profile", pkg_file, "", str)
    version = _PROFILE.search(profile)
    if not version or version.group(1) != "1":
        raise SourceFormatError(
            str(pkg_file), "profile", f"unsupported Camtrap DP version: {profile!r}",
            "hyperds reads Camtrap DP 1.x packages",
        )
    deployments = _Resource(pkg, pkg_file, "deployments")
    media = _Resource(pkg, pkg_file, "media")
    obs = _Resource(pkg, pkg_file, "observations")

    dep_ids = deployments.col("deploymentID")
    check_unique(dep_ids, deployments.path, _row("deploymentID"), "deploymentID")
    media_ids = media.col("mediaID")
    check_unique(media_ids, media.path, _row("mediaID"), "mediaID")
    dep_index = pc.index_in(media.col("deploymentID"), value_set=dep_ids)
    fail_where(pc.is_null(dep_index), media.path, _row("deploymentID"), "no deployment has this deploymentID")
    captured_at = parse_times(media.col("timestamp"), tz, media.path, _row("timestamp"))
    uris = image_uris(media.col("filePath"), root, ds, pkg_file.parent)

    annotations, media_index, event_level, clamped = _observations(obs, media_ids, tz)
    seq_id = _events(obs, media, media_index, event_level, captured_at, tz)
    owner, picked, unattached = _attach(obs, media_index, event_level, seq_id)
    frames = {
        "frame_id": media_ids,
        "uri": uris,
        "captured_at": captured_at,
        "site": pc.take(pc.coalesce(deployments.col("locationName"), deployments.col("locationID")), dep_index),
        "camera": pc.take(pc.coalesce(deployments.col("cameraID"), deployments.col("cameraModel")), dep_index),
        "deployment": media.col("deploymentID"),
        "seq_id": seq_id,
        "frame_num": _frame_numbers(seq_id, captured_at, media_ids),
        "annotations": nest(owner, len(media_ids), annotations.take(pa.array(picked))),
        "file_public": parse_values(media.col("filePublic"), pa.bool_(), media.path, _row("filePublic")),
        "latitude": pc.take(parse_values(deployments.col("latitude"), pa.float64(), deployments.path, _row("latitude")),
                            dep_index),
        "longitude": pc.take(parse_values(deployments.col("longitude"), pa.float64(), deployments.path,
                                          _row("longitude")), dep_index),
        **{field: media.col(column) for field, column in _MEDIA_TEXT.items()},
        "favorite": parse_values(media.col("favorite"), pa.bool_(), media.path, _row("favorite")),
    }
    checked = unchecked = 0
    if check_images:
        sizes = check_image_files(uris, ds, media.path, _row("filePath"))
        frames["width"], frames["height"], checked, unchecked = sizes
    report = write_frames(
        ds,
        pa.table(frames),
        "camtrap-dp",
        pkg_file,
        boxes_clamped=clamped,
        event_observations=int(event_level.sum()),
        images_checked=checked,
        images_unchecked=unchecked,
        warnings=unattached,
    )
    _keep_package(ds, deployments.table, pkg)
    return report


def _keep_package(ds: FrameTable, deployments: pa.Table, pkg: dict) -> None:
    """Store the deployments table and the package's descriptive properties with the dataset (schema
    metadata, one Lance version, only when something is new), so an export can give them back."""
    entries = merged_metadata(ds.schema, deployments, {k: v for k, v in pkg.items() if k != "resources"})
    if entries:
        storage.writes.set_schema_metadata(ds.handle(), entries)
        ds.invalidate()


def _observations(obs: _Resource, media_ids: pa.Array, tz: str) -> tuple[pa.StructArray, np.ndarray, np.ndarray, int]:
    """Every observation row as an annotation, plus its media row (-1 if event-level) and the event-level mask."""
    path = obs.path

    def check(mask: pa.Array | np.ndarray, column: str, problem: str) -> None:
        fail_where(mask, path, _row(column), problem)

    def number(column: str, typ: pa.DataType) -> pa.Array:
        return parse_values(obs.col(column), typ, path, _row(column))

    check_unique(obs.col("observationID"), path, _row("observationID"), "observationID")
    level = obs.col("observationLevel")
    check(pc.invert(pc.is_in(level, pa.array(["media", "event"]))), "observationLevel", "must be 'media' or 'event'")
    event_level = np.asarray(pc.equal(level, "event"))
    check(event_level & np.asarray(pc.is_null(obs.col("eventID"))), "eventID", "event-level observations need an eventID")
    media_index = pc.index_in(obs.col("mediaID"), value_set=media_ids)
    check(~event_level & np.asarray(pc.is_null(media_index)), "mediaID", "no media row has this mediaID")
    method = obs.col("classificationMethod")
    check(pc.invert(pc.is_in(method, pa.array(["human", "machine"]))), "classificationMethod", "must be human or machine")
    confidence = number("classificationProbability", pa.float64())
    check(pc.or_(pc.less(confidence, 0), pc.greater(confidence, 1)), "classificationProbability", "outside [0, 1]")
    box = [number(c, pa.float64()) for c in _BBOX]
    given = np.stack([np.asarray(pc.is_valid(b)) for b in box], axis=1)
    check(given.any(axis=1) & ~given.all(axis=1), "bboxX", f"a box needs all of {', '.join(_BBOX)}")
    xywh = np.stack([pc.fill_null(b, 0.0).to_numpy(zero_copy_only=False) for b in box], axis=1)
    bbox, clamped = clamp_boxes(xywh, given.all(axis=1), path, _row("bboxX"))
    annotations = annotation_struct(
        {
            "ann_id": obs.col("observationID"),
            "label": pc.coalesce(obs.col("scientificName"), obs.col("observationType")),
            "bbox": bbox,
            "confidence": confidence,
            "count": number("count", pa.int32()),
            "source_kind": pc.if_else(pc.fill_null(pc.equal(method, "machine"), False), "model", "human"),
            "source": obs.col("classifiedBy"),
            "created_at": parse_times(obs.col("classificationTimestamp"), tz, path, _row("classificationTimestamp")),
            "level": level,
            "note": obs.col("observationComments"),
            "life_stage": obs.col("lifeStage"),
            "sex": obs.col("sex"),
            "behavior": obs.col("behavior"),
            "individual_id": obs.col("individualID"),
            **_review_and_attributes(obs, tz),
        }
    )
    return annotations, np.asarray(pc.fill_null(media_index, -1), dtype=np.int64), event_level, clamped


def _review_and_attributes(obs: _Resource, tz: str) -> dict[str, pa.Array]:
    """review_status / reviewed_by / reviewed_at from `hyperds:` observationTags (an export's), and the
    `attributes` JSON of the other observation columns (null when all are empty)."""
    tags = pl.Series(obs.col("observationTags")).str.split(" | ")
    parts = pl.DataFrame({"tags": tags}).with_row_index("r").explode("tags")
    found = parts.with_columns(pl.col("tags").str.extract_groups(_REVIEW_TAG.pattern).alias("m")).unnest("m")
    review = found.filter(pl.col("1").is_not_null()).pivot(on="1", index="r", values="2", aggregate_function="first")
    own = found.filter(pl.col("1").is_null() & pl.col("tags").is_not_null()).group_by("r").agg(pl.col("tags").str.join(" | "))
    n = len(obs.col("observationID"))
    base = pl.DataFrame({"r": np.arange(n, dtype=np.uint32)})
    review = base.join(review, on="r", how="left") if review.height else base
    own = base.join(own.with_columns(pl.col("r").cast(pl.UInt32)), on="r", how="left")["tags"]
    values = {c: pl.Series(obs.col(c)) for c in _ATTRIBUTES if c != "observationTags"}
    values["observationTags"] = own
    attrs = pl.DataFrame(values).select(
        pl.when(pl.any_horizontal(pl.all().is_not_null())).then(pl.struct(pl.all()).struct.json_encode()).alias("a"))
    out: dict[str, pa.Array] = {"attributes": attrs["a"].to_arrow().cast(pa.string())}
    for field in ("review_status", "reviewed_by", "reviewed_at"):
        col = review[field].to_arrow().cast(pa.string()) if field in review.columns else pa.nulls(n, pa.string())
        out[field] = parse_times(col, tz, obs.path, _row("observationTags")) if field == "reviewed_at" else col
    return out


def _events(
    obs: _Resource, media: _Resource, media_index: np.ndarray, event_level: np.ndarray, captured_at: pa.Array, tz: str
) -> pa.Array:
    """Each media row's event: the eventID of its media-level observations, else the event-level
    observation of its deployment whose [eventStart, eventEnd] holds its timestamp."""
    media_level = ~event_level
    from_obs = (
        pl.DataFrame({"m": media_index[media_level], "event": pl.Series(obs.col("eventID")).filter(media_level)})
        .drop_nulls()
        .group_by("m", maintain_order=True)
        .first()
    )
    windows = pl.DataFrame(
        {
            "deployment": pl.Series(obs.col("deploymentID")),
            "window_event": pl.Series(obs.col("eventID")),
            "start": pl.Series(parse_times(obs.col("eventStart"), tz, obs.path, _row("eventStart"))),
            "end": pl.Series(parse_times(obs.col("eventEnd"), tz, obs.path, _row("eventEnd"))),
        }
    ).filter(pl.Series(event_level))
    frames = pl.DataFrame(
        {
            "m": np.arange(media.table.num_rows, dtype=np.int64),
            "deployment": pl.Series(media.col("deploymentID")),
            "ts": pl.Series(captured_at),
        }
    )
    by_window = (
        frames.join(windows, on="deployment")
        .filter((pl.col("ts") >= pl.col("start")) & (pl.col("ts") <= pl.col("end")))
        .group_by("m", maintain_order=True)
        .agg(pl.col("window_event").sort().first())
    )
    events = (
        frames.select("m")
        .join(from_obs, on="m", how="left")
        .join(by_window, on="m", how="left")
        .sort("m")
        .select(pl.coalesce("event", "window_event"))
    )
    return events.to_series().to_arrow().cast(pa.string())


def _attach(
    obs: _Resource, media_index: np.ndarray, event_level: np.ndarray, seq_id: pa.Array
) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    """(frame row, observation row) for each annotation: media-level ones once, event-level ones on every
    frame of their event. Event-level observations whose event has no media are reported."""
    rows = np.flatnonzero(event_level)
    members = pl.DataFrame({"m": np.arange(len(seq_id), dtype=np.int64), "event": pl.Series(seq_id)}).drop_nulls()
    pairs = (
        pl.DataFrame({"o": rows, "event": pl.Series(obs.col("eventID")).gather(rows)})
        .join(members, on="event", how="left")
        .sort("o", "m")
    )
    lost = pairs.filter(pl.col("m").is_null())
    pairs = pairs.drop_nulls("m")
    media_rows = np.flatnonzero(~event_level)
    owner = np.concatenate([media_index[media_rows], pairs["m"].to_numpy()]).astype(np.int64)
    picked = np.concatenate([media_rows, pairs["o"].to_numpy()]).astype(np.int64)
    ids = obs.col("observationID")
    warnings = tuple(
        f"event-level observation {ids[o].as_py()!r} (event {e!r}) matches no media row; not imported"
        for o, e in lost.select("o", "event").iter_rows()
    )
    return owner, picked, warnings


def _frame_numbers(seq_id: pa.Array, captured_at: pa.Array, media_ids: pa.Array) -> pa.Array:
    """1-based position of each frame in its event by timestamp (then mediaID); null outside events."""
    df = pl.DataFrame({"seq": pl.Series(seq_id), "ts": pl.Series(captured_at), "id": pl.Series(media_ids)})
    numbered = (
        df.with_row_index("r")
        .sort("ts", "id")
        .with_columns(n=(pl.int_range(pl.len()).over("seq") + 1).cast(pl.Int32))
        .sort("r")
    )
    return numbered.select(pl.when(pl.col("seq").is_not_null()).then("n")).to_series().to_arrow()
