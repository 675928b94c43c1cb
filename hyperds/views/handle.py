"""The View: one version (or the draft) of a named view, and create / open / list.

A draft is editable and resolves against its datasets' latest versions each time it is read; a published
version is pinned and immutable (views.publish). The View is a FrameSource (hyperds.source): it owns the
rules its consumers share (label map, classes, splits, roots), and delegates each other concept to its
module in this package (spec, codec, manifest, publish, audit, diff).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import polars as pl
import pyarrow as pa
import pyarrow.compute as pc

from .. import consumers, storage
from ..errors import ViewError, ViewImmutableError, ViewNotFoundError
from ..source import DEFAULT_BATCH_SIZE, SourceBase, SourceDescription
from . import audit, catalog as cat
from .checks import check_column_types
from .codec import spec_from_row, to_row
from .diff import DIFF_COLUMNS, ViewDiff, diff_manifests, mark_rejected
from .identity import check_pins
from .labelmap import LabelMap
from .manifest import DERIVED, DIGEST_COLUMNS, digest, open_current, open_pinned, resolve, stream
from .publish import publish
from .spec import build_spec
from .splits import SplitSpec

if TYPE_CHECKING:
    from ..export import ExportResult
    from ..store import Store

log = logging.getLogger(__name__)


# -- creating and opening ----------------------------------------------------------------------
def create_view(
    store: Store,
    name: str,
    query: str | Mapping[str, str],
    datasets: Sequence[str],
    label_map: Mapping[str, str] | None = None,
    weights: Mapping[str, float] | None = None,
    split: SplitSpec | Mapping[str, Any] | None = None,
    message: str = "",
    unknown_labels: str = "drop",
    empty: str = "drop",
) -> View:
    """Create, or redefine, the draft of view `name`; every sub-query is validated against every dataset.

    `empty`: a frame the query selects whose classes end up empty (every label rejected, or none mapped)
    is dropped ("drop", the default: a classification view never hands out frames without a class) or
    kept ("keep", e.g. for review or detection views that want frames without labels).
    """
    cat.check_view_name(name)
    spec = build_spec(store, query, datasets, label_map, unknown_labels, weights, split, empty)
    check_column_types(name, {n: storage.schema(h) for n, h in open_current(store, spec.datasets).items()})
    existing = cat.published_versions(cat.read_rows(store, name=name, columns=["version", "status"]))
    row = to_row(name, cat.DRAFT, cat.DRAFT, spec, {}, existing[-1] if existing else None, message)
    view = View(store, row)
    if unknown_labels == "error":
        view.frame_ids()  # an unmapped label raises now, before the draft is saved
    cat.upsert_draft(store, row)
    log.info("draft view %s saved (%d sub-queries over %s)", name, len(spec.queries), ", ".join(spec.datasets))
    return view


def open_view(store: Store, name: str, version: str | None = None) -> View:
    """A view version (None: the latest published; "draft": the draft) from one catalog read."""
    rows = cat.read_rows(store, name=name)
    if not rows:
        names = sorted({r["name"] for r in cat.read_rows(store, columns=["name"])})
        raise ViewNotFoundError(
            f"view {name!r} does not exist; existing views: {', '.join(names) or 'none yet'}. "
            "Create one with store.create_view(...) or `hyperds view create`."
        )
    published = cat.published_versions(rows)
    if version is None:
        if not published:
            raise ViewNotFoundError(
                f"view {name!r} has no published version yet (only a draft); open it with version='draft' "
                "or publish it with view.publish()"
            )
        version = published[-1]
    for row in rows:
        if row["version"] == version:
            return View(store, row)
    have = published + ([cat.DRAFT] if any(r["status"] == cat.DRAFT for r in rows) else [])
    raise ViewNotFoundError(f"view {name!r} has no version {version!r}; existing versions: {', '.join(have)}")


def list_views(store: Store) -> pa.Table:
    """One row per view version and draft: name, version, status, frame_count, digest, parent, who, when, message."""
    cols = ["name", "version", "status", "frame_count", "digest", "parent", "created_by", "created_at", "message"]
    rows = cat.read_rows(store, columns=cols)
    rows.sort(key=lambda r: (r["name"], r["status"] == cat.DRAFT, cat.sort_key(r["version"])))
    return pa.Table.from_pylist(rows, schema=pa.schema([cat.VIEWS_SCHEMA.field(c) for c in cols]))


# -- the view handle ---------------------------------------------------------------------------
class View(SourceBase):
    """One version (or the draft) of a named view; frames are resolved on first use.

    A FrameSource (hyperds.source): it owns the rules its consumers share — the label map and its
    classes, the splits, and each dataset's root — so loaders and exports ask it instead of re-deriving them.
    """

    def __init__(self, store: Store, row: dict[str, Any]):
        self.store = store
        self._row = row
        self.name: str = row["name"]
        self.version: str = row["version"]
        self.status: str = row["status"]
        self.spec = spec_from_row(row)
        self._pins: dict[str, int] = {d["dataset"]: d["version"] for d in row["datasets"] if d["version"] is not None}
        self.frame_count: int | None = row["frame_count"]
        self.created_by: str | None = row["created_by"]
        self.created_at: dt.datetime | None = row["created_at"]
        self.message: str | None = row["message"]
        self._parent: str | None = row["parent"]
        # The last resolved (whole-view, unsplit) table and the pins it was resolved at: a later read of
        # some of its columns at the same pins reuses it (a loader's rows, then its classes: one resolve).
        self._manifest: tuple[dict[str, int], list[str] | None, pa.Table] | None = None
        self._handles: dict[str, Any] = {}  # pinned Lance datasets, opened once per published view

    def __getstate__(self) -> dict[str, Any]:
        # Pinned Lance handles carry the storage options, secrets included; reopened on use.
        return {**self.__dict__, "_handles": {}}

    def __repr__(self) -> str:
        extra = f", {self.frame_count} frames" if self.published else ""
        return f"View({self.name!r}, {self.version!r}, {self.status}{extra})"

    @property
    def published(self) -> bool:
        return self.status == cat.PUBLISHED

    @property
    def datasets(self) -> list[str]:
        return list(self.spec.datasets)

    @property
    def queries(self) -> dict[str, str]:
        """Sub-query name -> normalised SQL."""
        return {q.name: q.sql for q in self.spec.queries}

    @property
    def query(self) -> str:
        """The SQL of the only sub-query (ViewError when there are several: see `queries`)."""
        if len(self.spec.queries) != 1:
            raise ViewError(f"view {self.name!r} has {len(self.spec.queries)} sub-queries; use view.queries")
        return self.spec.queries[0].sql

    @property
    def weights(self) -> dict[str, float]:
        return {q.name: q.weight for q in self.spec.queries}

    @property
    def split_spec(self) -> SplitSpec | None:
        return self.spec.split

    @property
    def empty(self) -> str:
        """What the view does with frames left without a class: "drop" or "keep" (see create_view)."""
        return "keep" if self.spec.keeps_empty else "drop"

    @property
    def rule(self) -> int:
        """The rejected-annotations rule this version resolves under (hyperds.query.rules; 1 = published before it)."""
        return self.spec.rule

    @property
    def unknown_labels(self) -> str | None:
        return self.spec.label_map.unknown if self.spec.label_map else None

    @property
    def pins(self) -> dict[str, int]:
        """Dataset name -> Lance version read: the recorded pins, or (draft) each dataset's latest now."""
        return self._pins if self.published else self._pins_now()[0]

    @property
    def label_map(self) -> LabelMap | None:
        """Source label -> class (a Mapping; with unknown_labels='keep' an unmapped label maps to itself)."""
        return self.spec.label_map

    @property
    def classes(self) -> list[str]:
        """Sorted class names: the label map's targets (stable across versions), plus with
        unknown_labels='keep' every class the view holds in any split; without a map, the labels seen."""
        lm = self.spec.label_map
        if lm is not None and lm.unknown != "keep":
            return lm.targets
        flat = pc.list_flatten(self.to_arrow(["classes"]).column("classes"))
        seen = flat.unique().to_pylist()
        if lm is not None:
            return sorted(set(lm.as_dict(seen).values()))
        return sorted(v for v in seen if v is not None)

    @property
    def splits(self) -> list[str]:
        """The split names, in definition order ([] without a split)."""
        return [n for n, _ in self.spec.split.fractions] if self.spec.split is not None else []

    def roots(self) -> dict[str, str | None]:
        """Dataset name -> the root its relative URIs resolve against (each dataset's own)."""
        return {name: self.store.dataset(name).root for name in self.spec.datasets}

    @property
    def column_names(self) -> list[str]:
        """The frame columns of every pinned dataset, then `dataset`, `classes`, `split`."""
        names: list[str] = []
        for d, pin in self.pins.items():
            names += [n for n in self.store.dataset(d).at(pin).schema.names if n not in names]
        return names + ["dataset", "classes", "split"]

    def describe(self) -> SourceDescription:
        """kind "view": its name, version, status, digest, its SQL when it has one sub-query, its empty rule."""
        return SourceDescription("view", self.name, self.version, self.status, self.digest,
                                 None if len(self.spec.queries) > 1 else self.query, self.empty)

    def count(self) -> int:
        """Frames in the view (a published version: the recorded count)."""
        return len(self)

    def pinned(self) -> View:
        """The view itself: a published version reads its pins; a draft resolves against the latest versions."""
        return self

    # -- resolution ------------------------------------------------------------------------
    def _pins_now(self) -> tuple[dict[str, int], dict[str, Any]]:
        """Pinned versions and their opened handles: the recorded pins, or (draft) each dataset's latest."""
        if self.published:
            ids = {d["dataset"]: d["id"] for d in self._row.get("dataset_ids") or []}
            check_pins(self.store, self.name, self.version, self._pins, ids, self._handles)
            return self._pins, self._handles
        handles = open_current(self.store, self.spec.datasets)
        return {n: storage.version(h) for n, h in handles.items()}, handles

    def _opened(self) -> dict[str, Any]:
        """Every dataset of the view opened at the version it reads (pinned, or for a draft the latest)."""
        pins, handles = self._pins_now()
        for ds_name, version in pins.items():
            if ds_name not in handles:
                handles[ds_name] = open_pinned(self.store, ds_name, version)
        return handles

    def to_arrow(self, columns: Sequence[str] | None = None, split: str | None = None) -> pa.Table:
        """The manifest (one row per frame, ordered by dataset, frame_id), optionally projected / one split."""
        cols = None if columns is None else list(dict.fromkeys(columns))
        if split is not None:
            self.check_split(split)
            want = cols
            cols = None if cols is None else list(dict.fromkeys([*cols, "split"]))
        pins, handles = self._pins_now()
        if self._manifest is not None and _covers(self._manifest, pins, cols):
            table = self._manifest[2] if cols is None else self._manifest[2].select(cols)
        else:
            table = resolve(self.store, self.spec, pins, cols, handles)
            self._manifest = (pins, cols, table)
        if split is not None:
            table = table.filter(pc.equal(table.column("split"), split))
            table = table if want is None else table.select(want)
        return table

    def to_batches(
        self, columns: Sequence[str] | None = None, *, batch_size: int = DEFAULT_BATCH_SIZE, split: str | None = None
    ) -> Iterator[pa.RecordBatch]:
        """to_arrow() in record batches of at most `batch_size` rows.

        The frames are resolved once with only their keys and derived columns; every other column is read
        one batch at a time (`manifest.stream`), so memory follows the batch size, not the view.
        """
        if batch_size < 1:
            raise ViewError(f"batch_size must be a positive number of rows, not {batch_size!r}")
        cols = self._all_columns() if columns is None else list(dict.fromkeys(columns))
        light = [c for c in cols if c in DERIVED or c == "frame_id"]
        pins, handles = self._pins_now()
        cached = self._manifest is not None and _covers(self._manifest, pins, cols)
        # a column no pinned dataset has: to_arrow names it (a QueryError) exactly as it would
        anywhere = set().union(*(storage.schema(h).names for h in handles.values()))
        lacking = any(c not in anywhere for c in cols if c not in light)
        if cached or lacking or len(light) == len(cols):
            yield from self.to_arrow(cols, split).to_batches(max_chunksize=batch_size)
            return
        keys = self.to_arrow(list(dict.fromkeys(["dataset", "frame_id", *light])), split)
        yield from stream(keys, handles, cols, batch_size)

    def _all_columns(self) -> list[str]:
        """to_arrow()'s columns: dataset, frame_id, every frame column of the pinned datasets, the derived ones."""
        _, handles = self._pins_now()
        rest: list[str] = []
        for name in sorted(handles):
            rest += [c for c in storage.schema(handles[name]).names if c not in rest and c not in DERIVED and c != "frame_id"]
        return ["dataset", "frame_id", *rest, "classes", "split", "subquery", "weight"]

    def to_polars(self, columns: Sequence[str] | None = None, split: str | None = None) -> pl.DataFrame:
        """to_arrow() as a polars DataFrame."""
        return pl.from_arrow(self.to_arrow(columns, split))

    def frame_ids(self, split: str | None = None) -> pa.Array:
        """The view's frame ids in manifest order (resolves only frame_id and what the definition needs)."""
        return self.to_arrow(["frame_id"], split).column("frame_id").combine_chunks()

    def __len__(self) -> int:
        if self.published and self.frame_count is not None:
            return self.frame_count
        return self.to_arrow(["frame_id"]).num_rows

    @property
    def digest(self) -> str:
        """SHA-256 of the resolved manifest (see views.manifest); recorded at publish, computed for a draft."""
        if self.published:
            return self._row["digest"]
        return digest(self.to_arrow(DIGEST_COLUMNS))[0]

    def check_split(self, split: str) -> None:
        """Raise ViewError unless `split` is one of this view's splits."""
        if self.spec.split is None:
            raise ViewError(f"view {self.name!r} {self.version} has no split; create it with split={{'by': ...}}")
        names = [n for n, _ in self.spec.split.fractions]
        if split not in names:
            raise ViewError(f"view {self.name!r} has no split {split!r}; its splits: {', '.join(names)}")

    # -- versions --------------------------------------------------------------------------
    def versions(self) -> list[str]:
        """Published versions of this view, oldest first."""
        return cat.published_versions(cat.read_rows(self.store, name=self.name, columns=["version", "status"]))

    @property
    def parent_version(self) -> str | None:
        return self._parent

    @property
    def parent(self) -> View | None:
        """The version this one followed (the latest published when it was published or drafted)."""
        return open_view(self.store, self.name, self._parent) if self._parent else None

    def diff(self, other: str | View) -> ViewDiff:
        """What changed from `other` (a version of this view, or any view) to this one."""
        old = other if isinstance(other, View) else open_view(self.store, self.name, other)
        result = diff_manifests(
            old.to_arrow(DIFF_COLUMNS), self.to_arrow(DIFF_COLUMNS),
            f"{old.name} {old.version}", f"{self.name} {self.version}",
        )
        return mark_rejected(result, old._opened(), self._opened(), old.spec.label_map, old.rule < self.rule)

    # -- editing and publishing --------------------------------------------------------------
    def _require_draft(self, action: str) -> None:
        if self.published:
            raise ViewImmutableError(
                f"view {self.name!r} version {self.version} is published and cannot be {action}; edit the draft "
                f"(store.view({self.name!r}, 'draft') or store.create_view({self.name!r}, ...)) and publish a new version"
            )

    def update(
        self,
        query: str | Mapping[str, str] | None = None,
        datasets: Sequence[str] | None = None,
        label_map: Mapping[str, str] | None = None,
        weights: Mapping[str, float] | None = None,
        split: SplitSpec | Mapping[str, Any] | None = None,
        message: str | None = None,
        unknown_labels: str | None = None,
        empty: str | None = None,
    ) -> View:
        """Change the draft (only the given fields); returns the saved draft."""
        self._require_draft("edited")
        lm = self.spec.label_map
        return create_view(
            self.store,
            self.name,
            query if query is not None else self.queries,
            datasets if datasets is not None else self.datasets,
            label_map=label_map if label_map is not None else (lm.as_dict() if lm else None),
            weights=weights if weights is not None else self.weights,
            split=split if split is not None else self.spec.split,
            message=message if message is not None else (self.message or ""),
            unknown_labels=unknown_labels or (lm.unknown if lm else "drop"),
            empty=empty or self.spec.empty,
        )

    def publish(self, version: str | None = None, message: str | None = None, author: str | None = None) -> View:
        """Pin every dataset at its current version, digest the manifest and store it as `version` for good
        (views.publish). `version` defaults to the next minor after the latest published ("1.0" for the first).
        """
        self._require_draft("published again")
        spec = open_view(self.store, self.name, cat.DRAFT).spec  # the draft as stored now
        row = publish(self.store, self.name, spec, version, self.message if message is None else message, author)
        return View(self.store, row)

    # -- audit -------------------------------------------------------------------------------
    def verify(self) -> audit.VerifyReport:
        """Re-resolve at the pinned versions and compare with the recorded count and digest; say what differs."""
        if not self.published:
            raise ViewError(f"view {self.name!r} draft has no recorded digest to verify; publish it first")
        # _pins_now checks the pinned datasets are still the ones recorded (views.identity)
        return audit.verify(self.store, self._row, self.spec, self._pins_now)

    def record_run(self, run_id: str, info: Mapping[str, Any] | None = None, user: str | None = None) -> None:
        """Record that run `run_id` used this published version (with free-form JSON `info`)."""
        if not self.published:
            raise ViewError(f"view {self.name!r}: record runs against a published version; publish the draft first")
        audit.record_run(self.store, self._row, run_id, info, user)

    # -- consumers (registered by the top layer: hyperds.consumers) ----------------------------
    def evaluate(self, predictions: str, truth: str | None = None, iou: float = 0.5, **options: Any) -> Any:
        """Score a model on this view's pinned frames (hyperds.evaluate); recorded in `_runs` when published."""
        return consumers.call("evaluate", self, predictions, truth=truth, iou=iou, **options)

    def export(self, format: str, dest: str, **options: Any) -> ExportResult:
        """Write this version's frames and annotations to `dest` (folder or s3:// prefix) as `format`
        (camtrap-dp, coco-ct, megadetector, yolo, csv), with provenance; a published version's export is
        recorded in the audit (`store.runs()`). See hyperds.export.export for the options."""
        return consumers.call("export", self, format, dest, **options)


# -- helpers -----------------------------------------------------------------------------------
def _covers(cached: tuple[dict[str, int], list[str] | None, pa.Table], pins: dict[str, int], cols: list[str] | None) -> bool:
    """Whether a cached resolve (pins, its columns or None for all, table) answers a read of `cols` at `pins`."""
    have_pins, have_cols, _ = cached
    return have_pins == pins and (have_cols is None or (cols is not None and set(cols) <= set(have_cols)))


