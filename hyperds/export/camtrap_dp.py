"""Camtrap DP 1.0.2: deployments.csv, media.csv, observations.csv and datapackage.json.

- media: one row per frame (mediaID = frame_id, timestamp in UTC with `Z`, filePath as written, the
  Camtrap media columns an import kept as frame fields: capture_method, file_public, file_name, ...).
- observations: media-level annotations once per frame; an event-level annotation (the same ann_id on
  every frame of its event) once per event, its eventStart/End the event's stored values, else its frames'
  first and last timestamps. classificationMethod machine/human from source_kind, classifiedBy = source,
  classificationProbability = confidence, normalised bbox, observationComments = note, and the review
  state as `hyperds:review_status=…` / `hyperds:reviewed_by=…` / `hyperds:reviewed_at=…` observationTags
  (after the source's own tags); what the importer kept in `attributes` (observationType, eventStart/End,
  cameraSetupType, individual position and speed, tags; classificationTimestamp while the annotation is
  unchanged since import, i.e. revision 0) is written back as it was.
- deployments: the stored deployments table of each dataset (as the package had it) for the deployments
  the frames use; others are built from the frames (deploymentID = deployment, else site/camera; start and
  end from the timestamps; latitude/longitude from the frames' `latitude`/`longitude` fields).
- datapackage.json: the required properties: profile, created, contributors, project, spatial, temporal,
  taxonomic, resources. project, contributors, licenses and the other descriptive properties come from the
  `package` option, else the source package (when the dataset was imported from one), else defaults;
  spatial, temporal and taxonomic are computed from what is exported. `hyperds` holds the provenance.

Memory: the rows stream; what is kept until the end is one entry per deployment, per event-level
observation and per scientific name.
"""

from __future__ import annotations

import json
from typing import Any, ClassVar

import polars as pl
import pyarrow as pa

from ..errors import ExportError
from ..frames.package_meta import deployment_id, read_deployments, read_package
from .base import ExportContext, precheck_frames

PROFILE = "https://raw.githubusercontent.com/tdwg/camtrap-dp/1.0.2/camtrap-dp-profile.json"
SCHEMA_URL = "https://raw.githubusercontent.com/tdwg/camtrap-dp/1.0.2/{}-table-schema.json"
TS = "%Y-%m-%dT%H:%M:%SZ"  # the schemas' timestamp format has no fractional seconds
OBSERVATION_TYPES = ("animal", "human", "vehicle", "blank", "unknown", "unclassified")
_TYPE_OF_LABEL = {"empty": "blank", "person": "human"}
ATTRIBUTES = pl.Struct({k: pl.String for k in (
    "observationType", "eventStart", "eventEnd", "cameraSetupType", "individualPositionRadius",
    "individualPositionAngle", "individualSpeed", "observationTags", "classificationTimestamp",
)})
MEDIA_COLUMNS = ("mediaID", "deploymentID", "captureMethod", "timestamp", "filePath", "filePublic", "fileName",
                 "fileMediatype", "exifData", "favorite", "mediaComments")
# frame field an import keeps -> media column
MEDIA_FIELDS = {"capture_method": "captureMethod", "file_public": "filePublic", "file_name": "fileName",
                "file_mediatype": "fileMediatype", "exif_data": "exifData", "favorite": "favorite",
                "media_comments": "mediaComments"}
OBSERVATION_COLUMNS = (
    "observationID", "deploymentID", "mediaID", "eventID", "eventStart", "eventEnd", "observationLevel",
    "observationType", "cameraSetupType", "scientificName", "count", "lifeStage", "sex", "behavior",
    "individualID", "individualPositionRadius", "individualPositionAngle", "individualSpeed", "bboxX", "bboxY",
    "bboxWidth", "bboxHeight", "classificationMethod", "classifiedBy", "classificationTimestamp",
    "classificationProbability", "observationTags", "observationComments",
)
DEPLOYMENT_COLUMNS = ("deploymentID", "locationID", "locationName", "latitude", "longitude", "coordinateUncertainty",
                      "deploymentStart", "deploymentEnd", "setupBy", "cameraID", "cameraModel", "cameraDelay",
                      "cameraHeight", "cameraDepth", "cameraTilt", "cameraHeading", "detectionDistance",
                      "timestampIssues", "baitUse", "featureType", "habitat", "deploymentGroups", "deploymentTags",
                      "deploymentComments")
_MEDIATYPES = {".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".png": "image/png", ".tif": "image/tiff",
               ".tiff": "image/tiff", ".gif": "image/gif", ".mp4": "video/mp4", ".avi": "video/x-msvideo"}


def _text(expr: pl.Expr) -> pl.Expr:
    return expr.cast(pl.String)


class CamtrapDpWriter:
    """Writes a Camtrap DP 1.0.2 package (see the module docstring)."""

    name: ClassVar[str] = "camtrap-dp"
    precheck_columns: ClassVar[tuple[str, ...]] = ("captured_at", "deployment", "site", "camera", "latitude",
                                                   "longitude", "dataset")
    columns: ClassVar[tuple[str, ...] | None] = (
        "frame_id", "uri", "captured_at", "site", "camera", "deployment", "seq_id", "latitude", "longitude",
        *MEDIA_FIELDS,
    )
    option_names: ClassVar[tuple[str, ...]] = ("package",)

    def __init__(self, ctx: ExportContext):
        self.ctx = ctx
        self.stored: dict[str, dict[str, dict[str, Any]]] = {}  # dataset -> deploymentID -> stored row
        self.fields: list[str] = list(DEPLOYMENT_COLUMNS)
        self.package: dict[str, Any] = {}
        for name, pin in ctx.info.pins.items():
            schema = ctx.info.store.dataset(name).at(pin).schema
            table = read_deployments(schema)
            if table is not None:
                self.stored[name] = {r["deploymentID"]: r for r in table.to_pylist()}
                self.fields += [f for f in table.column_names if f not in self.fields]
            if not self.package:
                self.package = read_package(schema) or {}
        self.deployments: dict[str, dict[str, Any]] = {}  # deploymentID -> aggregates of its frames
        plan = ctx.policy
        if plan is not None and plan.sensitive_locations and plan.policy.coordinates == "drop":
            raise ExportError("the store's policy drops the coordinates of sensitive locations, but Camtrap DP "
                              "requires deployment latitude/longitude; set the policy to coordinates='round' "
                              "(`hyperds policy set --coordinates round --km N`) or export another format")
        self.events: dict[str, dict[str, Any]] = {}  # event-level ann_id -> observation row
        self.names: set[str] = set()
        self.levels: set[str] = set()
        self.media_fh: Any = None

    # -- checks before anything is written ------------------------------------------------------
    def precheck(self, rows: pa.Table) -> None:
        precheck_frames(rows, "captured_at", "timestamp (captured_at)",
                        "Camtrap DP media need one: ingest reads it from EXIF, or add it to the frames")
        df = pl.DataFrame(pl.from_arrow(rows))
        deps = df.select(
            "dataset", deployment_id(df),
            *(pl.col(c) if c in df.columns else pl.lit(None, pl.Float64).alias(c) for c in ("latitude", "longitude")),
        )
        stored = pl.DataFrame([(d, k) for d, rows in self.stored.items() for k in rows],
                              schema={"dataset": pl.String, "deploymentID": pl.String}, orient="row")
        lacking = deps.join(stored, on=["dataset", "deploymentID"], how="anti").group_by("deploymentID").agg(pl.col("latitude").drop_nulls().first(), pl.col("longitude").drop_nulls().first())
        missing = lacking.filter(pl.col("latitude").is_null() | pl.col("longitude").is_null())["deploymentID"].to_list()
        if missing:
            raise ExportError(
                f"{len(missing)} deployment(s) have no latitude/longitude (e.g. {', '.join(map(repr, missing[:5]))}); "
                "Camtrap DP requires them: add `latitude` and `longitude` frame fields or import the package's deployments"
            )

    # -- rows ----------------------------------------------------------------------------------
    def write(self, frames: pl.DataFrame, annotations: pl.DataFrame) -> None:
        if self.media_fh is None:
            folder = self.ctx.folder
            self.media_fh = open(folder / "media.csv", "w", encoding="utf-8", newline="")
            self.obs_fh = open(folder / "observations.csv", "w", encoding="utf-8", newline="")
            pl.DataFrame(schema=dict.fromkeys(MEDIA_COLUMNS, pl.String)).write_csv(self.media_fh)
            pl.DataFrame(schema=dict.fromkeys(OBSERVATION_COLUMNS, pl.String)).write_csv(self.obs_fh)
        frames = frames.with_columns(deployment_id(frames), self.ctx.file_path(frames).alias("filePath"))
        self._media(frames)
        self._aggregate(frames)
        self._observations(frames, annotations)

    def _media(self, frames: pl.DataFrame) -> None:
        def field(name: str, default: pl.Expr) -> pl.Expr:
            expr = _text(pl.col(name)) if name in frames.columns else pl.lit(None, pl.String)
            return pl.coalesce(expr, default).alias(MEDIA_FIELDS[name])

        ext = pl.col("filePath").str.extract(r"(\.[A-Za-z0-9]+)$").str.to_lowercase()
        media = frames.select(
            pl.col("frame_id").alias("mediaID"),
            "deploymentID",
            field("capture_method", pl.lit(None, pl.String)),
            pl.col("captured_at").dt.strftime(TS).alias("timestamp"),
            "filePath",
            field("file_public", pl.lit("true")),
            field("file_name", pl.lit(None, pl.String)),
            field("file_mediatype", ext.replace_strict(_MEDIATYPES, default="image/jpeg")),
            field("exif_data", pl.lit(None, pl.String)),
            field("favorite", pl.lit(None, pl.String)),
            field("media_comments", pl.lit(None, pl.String)),
        ).with_columns(pl.col("filePublic").str.to_lowercase(), pl.col("favorite").str.to_lowercase())
        media.select(MEDIA_COLUMNS).write_csv(self.media_fh, include_header=False)

    def _aggregate(self, frames: pl.DataFrame) -> None:
        def first(name: str) -> pl.Expr:
            return (pl.col(name).drop_nulls().first() if name in frames.columns else pl.lit(None)).alias(name)

        agg = frames.group_by("deploymentID", maintain_order=True).agg(
            pl.col("dataset").first(), pl.col("captured_at").min().alias("start"),
            pl.col("captured_at").max().alias("end"), first("site"), first("camera"), first("latitude"),
            first("longitude"),
        )
        for row in agg.iter_rows(named=True):
            have = self.deployments.get(row["deploymentID"])
            if have is None:
                self.deployments[row["deploymentID"]] = row
                continue
            have["start"], have["end"] = min(have["start"], row["start"]), max(have["end"], row["end"])
            for key in ("site", "camera", "latitude", "longitude"):
                if have[key] is None:
                    have[key] = row[key]

    def _observations(self, frames: pl.DataFrame, annotations: pl.DataFrame) -> None:
        if annotations.height == 0:
            return
        ctx = frames.select("_row", "frame_id", "deploymentID", "seq_id", "captured_at")
        anns = annotations.join(ctx, on="_row", how="left").sort("_row", maintain_order=True)
        anns = anns.with_columns(pl.col("attributes").str.json_decode(ATTRIBUTES).alias("_attr")).unnest("_attr")
        label = pl.col("class")
        derived_type = (
            pl.when(label.str.to_lowercase().is_in(OBSERVATION_TYPES)).then(label.str.to_lowercase())
            .otherwise(label.str.to_lowercase().replace_strict(_TYPE_OF_LABEL, default="animal"))
        )
        obs_type = pl.coalesce("observationType", derived_type)
        review = pl.concat_str(
            [
                pl.when(pl.col("review_status") != "unreviewed").then(pl.format("hyperds:review_status={}", "review_status")),
                pl.format("hyperds:reviewed_by={}", "reviewed_by"),
                pl.format("hyperds:reviewed_at={}", pl.col("reviewed_at").dt.strftime(TS)),
            ],
            separator=" | ", ignore_nulls=True,
        )
        tags = pl.concat_str([pl.col("observationTags"), pl.when(review != "").then(review)], separator=" | ",
                             ignore_nulls=True)
        obs = anns.select(
            pl.col("ann_id").alias("observationID"),
            "deploymentID",
            pl.when(pl.col("level") == "event").then(None).otherwise("frame_id").alias("mediaID"),
            pl.col("seq_id").alias("eventID"),
            pl.coalesce("eventStart", pl.col("captured_at").dt.strftime(TS)).alias("eventStart"),
            pl.coalesce("eventEnd", pl.col("captured_at").dt.strftime(TS)).alias("eventEnd"),
            pl.col("level").alias("observationLevel"),
            obs_type.alias("observationType"),
            "cameraSetupType",
            pl.when((label.str.to_lowercase() == obs_type) & (obs_type != "animal")).then(None).otherwise(label)
            .alias("scientificName"),
            _text(pl.col("count")).alias("count"),
            pl.col("life_stage").alias("lifeStage"),
            "sex",
            "behavior",
            pl.col("individual_id").alias("individualID"),
            "individualPositionRadius",
            "individualPositionAngle",
            "individualSpeed",
            _text(pl.col("bbox_x")).alias("bboxX"),
            _text(pl.col("bbox_y")).alias("bboxY"),
            _text(pl.col("bbox_w")).alias("bboxWidth"),
            _text(pl.col("bbox_h")).alias("bboxHeight"),
            pl.when(pl.col("source_kind") == "model").then(pl.lit("machine")).otherwise(pl.lit("human"))
            .alias("classificationMethod"),
            pl.col("source").alias("classifiedBy"),
            pl.when(pl.col("attributes").is_not_null() & (pl.col("ann_revision") == 0))
            .then(pl.col("classificationTimestamp"))  # as imported (maybe empty) until the annotation changes
            .otherwise(pl.col("created_at").dt.strftime(TS)).alias("classificationTimestamp"),
            _text(pl.col("confidence")).alias("classificationProbability"),
            pl.when(tags != "").then(tags).alias("observationTags"),
            pl.col("note").alias("observationComments"),
            pl.col("captured_at").alias("_ts"),
            pl.col("eventStart").is_null().alias("_no_start"),
            pl.col("eventEnd").is_null().alias("_no_end"),
        )
        self.names.update(n for n in obs["scientificName"].unique().to_list() if n is not None)
        self.levels.update(obs["observationLevel"].unique().to_list())
        media_level = obs.filter(pl.col("observationLevel") != "event")
        media_level.select(OBSERVATION_COLUMNS).write_csv(self.obs_fh, include_header=False)
        self._keep_events(obs.filter(pl.col("observationLevel") == "event"))

    def _keep_events(self, events: pl.DataFrame) -> None:
        """Event-level observations repeat on every frame of their event: keep one row each, widening the
        computed start/end to all its frames."""
        per = events.group_by("observationID", maintain_order=True).agg(
            pl.all().exclude("_ts").first(), pl.col("_ts").min().alias("_min"), pl.col("_ts").max().alias("_max"))
        for row in per.iter_rows(named=True):
            have = self.events.get(row["observationID"])
            if have is None:
                self.events[row["observationID"]] = row
            else:
                have["_min"], have["_max"] = min(have["_min"], row["_min"]), max(have["_max"], row["_max"])

    # -- the end -------------------------------------------------------------------------------
    def finish(self) -> list[str]:
        if self.media_fh is None:
            self.write(*_empty_batch())
        if self.events:
            rows = pl.DataFrame(list(self.events.values()), infer_schema_length=None)
            rows = rows.with_columns(
                pl.when(pl.col("_no_start")).then(pl.col("_min").dt.strftime(TS)).otherwise("eventStart").alias("eventStart"),
                pl.when(pl.col("_no_end")).then(pl.col("_max").dt.strftime(TS)).otherwise("eventEnd").alias("eventEnd"),
            )
            rows.select(pl.col(c).cast(pl.String) for c in OBSERVATION_COLUMNS).write_csv(self.obs_fh, include_header=False)
        self.media_fh.close()
        self.obs_fh.close()
        deployments = self._deployments()
        deployments.write_csv(self.ctx.folder / "deployments.csv")
        package = self._package(deployments)
        with open(self.ctx.folder / "datapackage.json", "w", encoding="utf-8") as fh:
            json.dump(package, fh, indent=2, ensure_ascii=False)
            fh.write("\n")
        return ["datapackage.json", "deployments.csv", "media.csv", "observations.csv"]

    def _deployments(self) -> pl.DataFrame:
        rows = []
        for dep_id, agg in sorted(self.deployments.items()):
            stored = self.stored.get(agg["dataset"], {}).get(dep_id)
            if stored is None:
                stored = {
                    "deploymentID": dep_id, "locationName": agg["site"], "cameraID": agg["camera"],
                    "latitude": _num(agg["latitude"]), "longitude": _num(agg["longitude"]),
                    "deploymentStart": agg["start"].strftime(TS) if agg["start"] else None,
                    "deploymentEnd": agg["end"].strftime(TS) if agg["end"] else None,
                }
            plan = self.ctx.policy
            if plan is not None and (agg["dataset"], dep_id) in plan.sensitive_locations:
                lat, lon = plan.coarsen_text(stored.get("latitude"), stored.get("longitude"))
                stored = {**stored, "latitude": lat, "longitude": lon,
                          "coordinateUncertainty": str(round(plan.policy.round_km * 1000))}
            rows.append([stored.get(f) for f in self.fields])
        return pl.DataFrame(rows, schema=dict.fromkeys(self.fields, pl.String), orient="row")

    def _package(self, deployments: pl.DataFrame) -> dict[str, Any]:
        prov = self.ctx.provenance
        src = prov["source"]
        base = {k: v for k, v in self.package.items() if k not in ("resources", "profile", "created", "spatial",
                                                                   "temporal", "taxonomic", "hyperds")}
        base.update(self.ctx.options.get("package") or {})
        lat = deployments["latitude"].cast(pl.Float64, strict=False).drop_nulls()
        lon = deployments["longitude"].cast(pl.Float64, strict=False).drop_nulls()
        starts = deployments["deploymentStart"].drop_nulls().str.slice(0, 10)
        ends = deployments["deploymentEnd"].drop_nulls().str.slice(0, 10)
        known = {t.get("scientificName"): t for t in self.package.get("taxonomic", []) if isinstance(t, dict)}
        levels = sorted(self.levels) or ["media"]
        project = base.pop("project", None) or {
            "title": f"{src['name']}", "samplingDesign": "opportunistic", "captureMethod": ["activityDetection"],
            "individualAnimals": False, "observationLevel": levels,
        }
        contributors = base.pop("contributors", None) or [{"title": "hyperds export", "role": "publisher"}]
        resources = [
            {"name": n, "path": f"{n}.csv", "profile": "tabular-data-resource", "format": "csv",
             "mediatype": "text/csv", "encoding": "utf-8", "schema": SCHEMA_URL.format(n)}
            for n in ("deployments", "media", "observations")
        ]
        out: dict[str, Any] = {"resources": resources, "profile": PROFILE}
        out.update({"name": _slug(src["name"])} if "name" not in base else {})
        out.update(base)
        out.update(
            created=prov["exported_at"],
            contributors=contributors,
            project=project,
            spatial=_bbox_polygon(lon.min(), lat.min(), lon.max(), lat.max()) if lat.len() else None,
            temporal={"start": starts.min(), "end": ends.max()} if starts.len() else None,
            taxonomic=[known.get(n, {"scientificName": n}) for n in sorted(self.names)],
            hyperds=prov,
        )
        return out


def _num(value: Any) -> str | None:
    return None if value is None else repr(float(value))


def _slug(name: str) -> str:
    import re

    return re.sub(r"[^a-z0-9._-]+", "-", name.lower()).strip("-") or "hyperds-export"


def _bbox_polygon(x0: float, y0: float, x1: float, y1: float) -> dict[str, Any]:
    return {"type": "Polygon", "coordinates": [[[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]]]}


def _empty_batch() -> tuple[pl.DataFrame, pl.DataFrame]:
    frames = pl.DataFrame(schema={"_row": pl.Int64, "frame_id": pl.String, "abs_uri": pl.String, "dataset": pl.String,
                                  "captured_at": pl.Datetime("us", "UTC"), "seq_id": pl.String})
    anns = pl.DataFrame(schema={"_row": pl.Int64})
    return frames, anns

