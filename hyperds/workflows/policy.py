"""The sensitive-species and people policy of a store, and how exports and the loader apply it.

One policy per store, versioned in the `_policy` catalog: every `set_policy` appends a row (the version is the
row's place in commit order, so concurrent sets never collide) and `policy(version)` reads any of them back.
It names sensitive labels (an endangered-species list), how to coarsen their locations (round to a grid of
`round_km`, or drop), and what to do with frames showing people or vehicles (`omit` them, or `blur` their boxes).

`policy="public"` applies the current policy; `"full"` (or None) applies nothing. The plan is computed from the
source's *current* labels each time, so a frame relabelled to a sensitive species is coarsened in the next
export. Coordinates are coarsened for every frame of a location (dataset + deployment, else site/camera) where a
sensitive label is seen: the location's other frames would give the exact point away. A people frame whose
people annotation has no box cannot be blurred and is left out. Blurring happens on the fly from the stored
boxes; source images are never written.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc

from .. import storage
from ..errors import PolicyError
from ..frames.package_meta import deployment_id
from ..frames.schema import UTC_US
from ..source import read_present

if TYPE_CHECKING:
    from PIL import Image

    from ..store import Store

POLICY = "_policy"
NAMES = ("public", "full")
COORDINATES = ("round", "drop")
PEOPLE = ("omit", "blur")
KM_PER_DEGREE = 111.32
POLICY_SCHEMA = pa.schema(
    [
        ("policy_id", pa.string()),
        ("sensitive_labels", pa.list_(pa.string())),
        ("coordinates", pa.string()),
        ("round_km", pa.float64()),
        ("people_labels", pa.list_(pa.string())),
        ("people", pa.string()),
        ("people_min_confidence", pa.float64()),
        ("based_on", pa.int64()),
        ("author", pa.string()),
        ("created_at", UTC_US),
        ("message", pa.string()),
    ]
)
SETTINGS = ("sensitive_labels", "coordinates", "round_km", "people_labels", "people", "people_min_confidence")


@dataclasses.dataclass(frozen=True)
class Policy:
    """One version of a store's policy (version 0: the default, before anyone set one)."""

    version: int = 0
    sensitive_labels: tuple[str, ...] = ()
    coordinates: str = "round"
    round_km: float = 10.0
    people_labels: tuple[str, ...] = ("human", "person", "vehicle")
    people: str = "blur"
    people_min_confidence: float = 0.2
    author: str | None = None
    created_at: dt.datetime | None = None
    message: str = ""

    def settings(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items() if k in SETTINGS}


def _rows(store: Store) -> pl.DataFrame:
    handle = store.existing(POLICY)
    if handle is None:
        return pl.from_arrow(POLICY_SCHEMA.empty_table())
    return pl.from_arrow(storage.scan.read(handle))


def _from_row(row: dict[str, Any], version: int) -> Policy:
    return Policy(version=version, sensitive_labels=tuple(row["sensitive_labels"] or ()),
                  coordinates=row["coordinates"], round_km=row["round_km"],
                  people_labels=tuple(row["people_labels"] or ()), people=row["people"],
                  people_min_confidence=row["people_min_confidence"], author=row["author"],
                  created_at=row["created_at"], message=row["message"] or "")


def get_policy(store: Store, version: int | None = None) -> Policy:
    """The store's policy (latest, or `version`); the default Policy() when none was ever set."""
    rows = _rows(store)
    if version is None:
        return _from_row(rows.row(-1, named=True), rows.height) if rows.height else Policy()
    if isinstance(version, bool) or not isinstance(version, int) or not 0 <= version <= rows.height:
        raise PolicyError(f"no policy version {version!r}; versions are 0 (the default) to {rows.height}")
    return _from_row(rows.row(version - 1, named=True), version) if version else Policy()


def policy_history(store: Store) -> pl.DataFrame:
    """Every version of the policy, oldest first, with who set it and why."""
    rows = _rows(store).drop("policy_id")
    return rows.with_row_index("version", offset=1).with_columns(pl.col("version").cast(pl.Int64))


def set_policy(store: Store, author: str, message: str = "", **settings: Any) -> Policy:
    """A new policy version: the latest with `settings` changed (sensitive_labels, coordinates ('round' |
    'drop'), round_km, people_labels, people ('omit' | 'blur'), people_min_confidence). One appended row."""
    if not isinstance(author, str) or not author.strip():
        raise PolicyError("author is empty; pass who sets the policy (--author)")
    unknown = sorted(set(settings) - set(SETTINGS))
    if unknown:
        raise PolicyError(f"unknown policy setting(s) {unknown}; settings are {list(SETTINGS)}")
    current = get_policy(store)
    merged = {**current.settings(), **{k: v for k, v in settings.items() if v is not None}}
    checked = _check(merged)
    policy_id = uuid.uuid4().hex
    row = {"policy_id": policy_id, **checked, "based_on": current.version, "author": author.strip(),
           "created_at": dt.datetime.now(dt.UTC), "message": message or ""}
    storage.writes.append(store.catalog(POLICY, POLICY_SCHEMA), pa.Table.from_pylist([row], schema=POLICY_SCHEMA))
    ids = _rows(store)["policy_id"].to_list()
    return get_policy(store, ids.index(policy_id) + 1)


def _labels(value: Any, name: str) -> list[str]:
    if isinstance(value, str):
        value = [value]
    try:
        labels = sorted({str(v).strip() for v in value})
    except TypeError:
        raise PolicyError(f"{name} is a list of labels, not {value!r}") from None
    if any(not label for label in labels):
        raise PolicyError(f"{name} holds an empty label")
    return labels


def _check(s: dict[str, Any]) -> dict[str, Any]:
    if s["coordinates"] not in COORDINATES:
        raise PolicyError(f"coordinates must be one of {COORDINATES}, not {s['coordinates']!r}")
    if s["people"] not in PEOPLE:
        raise PolicyError(f"people must be one of {PEOPLE}, not {s['people']!r}")
    km = s["round_km"]
    if isinstance(km, bool) or not isinstance(km, (int, float)) or not 0 < km <= 20_000:
        raise PolicyError(f"round_km must be a distance in km above 0 (e.g. 10), not {km!r}")
    conf = s["people_min_confidence"]
    if isinstance(conf, bool) or not isinstance(conf, (int, float)) or not 0 <= conf <= 1:
        raise PolicyError(f"people_min_confidence must be a number in [0, 1], not {conf!r}")
    return {**s, "round_km": float(km), "people_min_confidence": float(conf),
            "sensitive_labels": _labels(s["sensitive_labels"], "sensitive_labels"),
            "people_labels": _labels(s["people_labels"], "people_labels")}


# -- coarsening and blurring ----------------------------------------------------------------------------------

def coarsen(lat: np.ndarray, lon: np.ndarray, km: float) -> tuple[np.ndarray, np.ndarray]:
    """Each point moved to the centre of its cell in a grid of about `km` x `km` (rows of km/111.32 degrees of
    latitude, each cut into cells of `km` at its centre's latitude): every point of a cell gives the same answer."""
    lat = np.asarray(lat, dtype=np.float64)
    lon = np.asarray(lon, dtype=np.float64)
    dlat = km / KM_PER_DEGREE
    lat_c = np.clip((np.floor(lat / dlat) + 0.5) * dlat, -90.0, 90.0)
    dlon = np.minimum(km / (KM_PER_DEGREE * np.maximum(np.cos(np.radians(lat_c)), 1e-6)), 360.0)
    lon_c = (np.floor(lon / dlon) + 0.5) * dlon
    return np.round(lat_c, 6), np.round(lon_c, 6)


def blur_boxes(img: Image.Image, boxes: list[list[float]]) -> Image.Image:
    """A copy of `img` with each normalised [x, y, w, h] box pixelated and blurred (edges rounded outwards, so the
    whole box is covered); pixels outside every box are unchanged."""
    from PIL import ImageFilter

    out = img.copy()
    width, height = img.size
    for x, y, w, h in boxes:
        left, top = max(0, math.floor(x * width)), max(0, math.floor(y * height))
        right, bottom = min(width, math.ceil((x + w) * width)), min(height, math.ceil((y + h) * height))
        if right <= left or bottom <= top:
            continue
        region = out.crop((left, top, right, bottom))
        block = max(4, min(region.size) // 8)
        small = region.resize((max(1, region.width // block), max(1, region.height // block)))
        region = small.resize(region.size).filter(ImageFilter.GaussianBlur(block / 2))
        out.paste(region, (left, top))
    return out


@dataclasses.dataclass
class PolicyPlan:
    """What a policy does to one source's rows: frames left out, frames to blur (their boxes), and the
    locations (dataset, deploymentID) whose coordinates are coarsened. Picklable (loader workers get a copy)."""

    name: str
    policy: Policy
    omit: set[str]
    blur: dict[str, list[list[float]]]
    sensitive_locations: set[tuple[str, str]]
    sensitive_frames: int = 0
    files: list[str] = dataclasses.field(default_factory=list)

    def describe(self) -> dict[str, Any]:
        """The provenance entry: which policy version was applied and what it did."""
        return {"name": self.name, "version": self.policy.version, **self.policy.settings(),
                "frames_left_out": len(self.omit), "frames_blurred": len(self.blur),
                "sensitive_frames": self.sensitive_frames, "locations_coarsened": len(self.sensitive_locations)}

    def apply(self, table: pa.Table, dataset: str | None = None) -> pa.Table:
        """`table` without the omitted frames and with `latitude`/`longitude` coarsened (or nulled) at sensitive
        locations. Rows carry `dataset` (a view's) or are all of `dataset`."""
        if self.omit:
            keep = pc.invert(pc.is_in(table.column("frame_id"), value_set=pa.array(sorted(self.omit), pa.string())))
            table = table.filter(keep)
        if not self.sensitive_locations or "latitude" not in table.column_names or "longitude" not in table.column_names:
            return table
        df = pl.from_arrow(table.select([c for c in table.column_names if c in _LOCATION_COLUMNS]))
        if "dataset" not in df.columns:
            df = df.with_columns(dataset=pl.lit(dataset or ""))
        keys = set(self.sensitive_locations)
        hit = np.array([k in keys for k in zip(df["dataset"].to_list(), location_ids(df).to_list(), strict=True)],
                       dtype=bool)
        if not hit.any():
            return table
        def values(name: str) -> np.ndarray:
            return np.asarray(table.column(name).cast(pa.float64()).to_numpy(zero_copy_only=False), dtype=np.float64)

        lat, lon = values("latitude"), values("longitude")
        c_lat, c_lon = coarsen(lat, lon, self.policy.round_km)
        for name, old, coarse in (("latitude", lat, c_lat), ("longitude", lon, c_lon)):
            if self.policy.coordinates == "drop":
                new = pa.array(np.where(hit, np.nan, old), pa.float64(), mask=hit | np.isnan(old))
            else:
                new = pa.array(np.where(hit, coarse, old), pa.float64(), mask=np.isnan(old))
            table = table.set_column(table.schema.get_field_index(name), name, new.cast(table.column(name).type))
        return table

    def coarsen_text(self, lat: str | None, lon: str | None) -> tuple[str | None, str | None]:
        """Coordinates written as text (Camtrap DP deployments) coarsened by the policy."""
        if self.policy.coordinates == "drop" or lat is None or lon is None:
            return None, None
        c_lat, c_lon = coarsen(np.array([float(lat)]), np.array([float(lon)]), self.policy.round_km)
        return repr(float(c_lat[0])), repr(float(c_lon[0]))

    def blur_image(self, frame_id: str, img: Image.Image) -> Image.Image:
        boxes = self.blur.get(frame_id)
        return img if not boxes else blur_boxes(img, boxes)

    def write_blurred(self, frames: pl.DataFrame, folder: Path, storage_options: dict[str, Any] | None) -> pl.DataFrame:
        """Export: write a blurred copy of each people frame of `frames` under `folder/blurred/` and point its
        `abs_uri` there (relative to the export); the source images are only read."""
        rows = frames.filter(pl.col("frame_id").is_in(list(self.blur)))
        if rows.height == 0:
            return frames
        from ..images.decode import DECODE_ERRORS, decode_rgb
        from ..images.fetch import Fetcher

        fetcher = Fetcher(storage_options or {})
        (folder / "blurred").mkdir(exist_ok=True)
        new: dict[str, str] = {}
        for fid, uri in rows.select("frame_id", "abs_uri").iter_rows():
            name = f"blurred/{_safe(fid)}.jpg"
            try:
                img = decode_rgb(fetcher.read(uri))
            except DECODE_ERRORS as exc:
                raise PolicyError(f"cannot blur frame {fid!r}: its image {uri} cannot be read ({exc}); fix the "
                                  "pointer, or set the policy to people='omit' to leave such frames out") from exc
            blur_boxes(img, self.blur[fid]).save(folder / name, quality=95)
            new[fid] = name
            self.files.append(name)
        return frames.with_columns(
            abs_uri=pl.col("frame_id").replace_strict(new, default=None).fill_null(pl.col("abs_uri")))


_LOCATION_COLUMNS = ("dataset", "deployment", "site", "camera")


def _safe(text: str) -> str:
    import hashlib
    import re

    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", text)[-80:]
    return f"{stem}-{hashlib.blake2b(text.encode(), digest_size=4).hexdigest()}"


def location_ids(df: pl.DataFrame) -> pl.Series:
    """Each row's location: its deploymentID as Camtrap DP export writes it (deployment, else site/camera)."""
    return df.select(deployment_id(df)).to_series()


def build_plan(source: Any, name: str | None, store: Store | None = None, dataset: str | None = None) -> PolicyPlan | None:
    """The plan of policy `name` ('public' applies the store's current policy; 'full' or None: nothing) for the
    current rows of `source` (a Dataset, Query, View or Arrow table with `store` given)."""
    if name is None or name == "full":
        return None
    if name not in NAMES:
        raise PolicyError(f"unknown policy {name!r}; use 'public' (apply the store's policy) or 'full' (none)")
    store = store if store is not None else _store_of(source)
    policy = get_policy(store)
    rows = read_present(source, ["frame_id", "dataset", "labels", "annotations", "deployment", "site", "camera"])
    df = pl.from_arrow(rows.drop_columns([c for c in ("annotations", "labels") if c in rows.column_names]))
    if "dataset" not in df.columns:
        one = dataset or ("" if isinstance(source, pa.Table) else next(iter(source.pins), ""))
        df = df.with_columns(dataset=pl.lit(one))
    sensitive = {s.lower() for s in policy.sensitive_labels}
    labels = rows.column("labels").combine_chunks() if "labels" in rows.column_names else pa.nulls(rows.num_rows, pa.list_(pa.string()))
    flat = pc.utf8_lower(pc.list_flatten(labels))
    hit = np.zeros(rows.num_rows, dtype=bool)
    if sensitive and len(flat):
        parents = pc.list_parent_indices(labels).to_numpy()
        marks = np.asarray(pc.is_in(flat, value_set=pa.array(sorted(sensitive))).to_numpy(zero_copy_only=False), bool)
        hit[parents[marks]] = True
    locations = set(zip(df["dataset"].filter(pl.Series(hit)).to_list(),
                        location_ids(df.filter(pl.Series(hit))).to_list(), strict=True)) if hit.any() else set()
    omit, blur = _people(rows, policy)
    return PolicyPlan(name, policy, omit, blur, locations, int(hit.sum()))


def _people(rows: pa.Table, policy: Policy) -> tuple[set[str], dict[str, list[list[float]]]]:
    """(frames to leave out, frame -> boxes to blur) for frames with a live people annotation."""
    from .boxes import flatten

    if "annotations" not in rows.column_names or not policy.people_labels:
        return set(), {}
    anns = flatten(rows, ("frame_id",))
    people = anns.filter(
        pl.col("label").str.to_lowercase().is_in([p.lower() for p in policy.people_labels])
        & (pl.col("review_status") != "rejected")
        & (pl.col("confidence").is_null() | (pl.col("confidence") >= policy.people_min_confidence))
    )
    if people.height == 0:
        return set(), {}
    if policy.people == "omit":
        return set(people["frame_id"].to_list()), {}
    boxless = set(people.filter(pl.col("x").is_null())["frame_id"].to_list())
    boxes = people.filter(~pl.col("frame_id").is_in(list(boxless))).group_by("frame_id").agg(
        pl.concat_list("x", "y", "w", "h").alias("box"))
    return boxless, dict(zip(boxes["frame_id"].to_list(), boxes["box"].to_list(), strict=True))


def _store_of(source: Any) -> Store:
    store = None if isinstance(source, pa.Table) else source.store
    if store is None:
        raise PolicyError(f"cannot tell which store's policy applies to a {type(source).__name__}; pass store=")
    return store
