"""Views: named, versioned stored queries. A draft is editable; a published version is pinned and immutable.

Publishing takes a Lance tag `view.<name>.<version>` on the `_views` table as the lock (tag creation is
atomic, so of two processes publishing the same version exactly one wins; every lock tags the same `_views`
version, so cleanup can still compact the rest), tags every pinned dataset version with the same name
(cleanup keeps tagged versions), then appends the catalog row (the commit point).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import polars as pl
import pyarrow as pa
import pyarrow.compute as pc

from ..errors import (
    DatasetNotFoundError,
    IntegrityError,
    ViewError,
    ViewExistsError,
    ViewImmutableError,
    ViewNotFoundError,
)
from .. import storage
from ..query.lance_sql import all_of, eq
from ..source import DEFAULT_BATCH_SIZE
from ..query.rules import CURRENT_RULE, RULE_SEES_REJECTED, RULES
from . import catalog as cat
from .diff import DIFF_COLUMNS, ViewDiff, diff_manifests, mark_rejected
from .labelmap import LabelMap
from .manifest import DERIVED, DIGEST_COLUMNS, SubQuery, ViewSpec, _open_pinned, digest, resolve, stream
from .splits import SplitSpec
from .identity import check_pins, dataset_id
from .view_checks import check_column_types

if TYPE_CHECKING:
    from ..export import ExportResult
    from ..store import Store

log = logging.getLogger(__name__)

DEFAULT_SUBQUERY = "default"
EMPTY_POLICIES = ("drop", "keep")


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
    spec = _spec(store, query, datasets, label_map, unknown_labels, weights, split, empty)
    check_column_types(name, {n: storage.schema(h) for n, h in _open_current(store, spec.datasets).items()})
    existing = _published_versions(cat.read_rows(store, name=name, columns=["version", "status"]))
    row = _row(name, cat.DRAFT, cat.DRAFT, spec, {}, existing[-1] if existing else None, message)
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
    published = _published_versions(rows)
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
    rows.sort(key=lambda r: (r["name"], r["status"] == cat.DRAFT, _sort_key(r["version"])))
    return pa.Table.from_pylist(rows, schema=pa.schema([cat.VIEWS_SCHEMA.field(c) for c in cols]))


def runs(store: Store, view: str | None = None, version: str | None = None) -> pa.Table:
    """Recorded runs, oldest first, optionally of one view (and version)."""
    clauses = [eq(col, val) for col, val in (("view", view), ("version", version)) if val is not None]
    handle = cat.existing(store, cat.RUNS)
    if handle is None:
        return cat.RUNS_SCHEMA.empty_table()
    table = storage.scan.read(handle, filter=all_of(*clauses))
    return table.sort_by([("recorded_at", "ascending"), ("run_id", "ascending")])


# -- the view handle ---------------------------------------------------------------------------
@dataclass(frozen=True)
class VerifyReport:
    """What verify() found: ok, the problems (each a sentence), and the recorded vs re-resolved values."""

    view: str
    version: str
    recorded_digest: str
    actual_digest: str | None
    recorded_count: int
    actual_count: int | None
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def __str__(self) -> str:
        head = f"view {self.view} {self.version}: " + ("OK" if self.ok else "FAILED")
        head += f" ({self.recorded_count} frames, digest {self.recorded_digest[:16]}…)"
        return "\n".join([head, *(f"  problem: {p}" for p in self.problems), *(f"  warning: {w}" for w in self.warnings)])

    def raise_for_problems(self) -> None:
        if self.problems:
            raise IntegrityError(str(self))


class View:
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
        self.spec = _spec_from_row(row)
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

    # -- resolution ------------------------------------------------------------------------
    def _pins_now(self) -> tuple[dict[str, int], dict[str, Any]]:
        """Pinned versions and their opened handles: the recorded pins, or (draft) each dataset's latest."""
        if self.published:
            ids = {d["dataset"]: d["id"] for d in self._row.get("dataset_ids") or []}
            check_pins(self.store, self.name, self.version, self._pins, ids, self._handles)
            return self._pins, self._handles
        handles = _open_current(self.store, self.spec.datasets)
        return {n: storage.version(h) for n, h in handles.items()}, handles

    def _opened(self) -> dict[str, Any]:
        """Every dataset of the view opened at the version it reads (pinned, or for a draft the latest)."""
        pins, handles = self._pins_now()
        for ds_name, version in pins.items():
            if ds_name not in handles:
                handles[ds_name] = _open_pinned(self.store, ds_name, version)
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
        """SHA-256 of the resolved manifest (see versioning.manifest); recorded at publish, computed for a draft."""
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
        return _published_versions(cat.read_rows(self.store, name=self.name, columns=["version", "status"]))

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
        """Pin every dataset at its current version, digest the manifest and store it as `version` for good.

        `version` defaults to the next minor after the latest published ("1.0" for the first).
        """
        self._require_draft("published again")
        store, name = self.store, self.name
        spec = open_view(store, name, cat.DRAFT).spec  # the draft as stored now
        existing = _published_versions(cat.read_rows(store, name=name, columns=["version", "status"]))
        if version is None:
            major, minor = cat.version_key(existing[-1]) if existing else (1, -1)
            version = f"{major}.{minor + 1}"
        cat.check_version(version)
        if version in existing:
            raise ViewExistsError(
                f"view {name!r} version {version} is already published; existing versions: {', '.join(existing)}. "
                "Publish under a new version (omit version for the next minor)"
            )
        tag = cat.tag_name(name, version)
        views = cat.views_table(store)
        try:
            storage.tags.create_tag(views, tag, _lock_version(views))
        except storage.Exists as exc:
            raise ViewExistsError(
                f"view {name!r} version {version} was just published, or is being published, by another process "
                "(an interrupted publish frees the version after store.cleanup() once 15 minutes have passed)"
            ) from exc
        tagged: list[str] = []
        try:
            handles = _open_current(store, spec.datasets)
            pins = {ds_name: storage.version(handle) for ds_name, handle in handles.items()}
            check_column_types(name, {n: storage.schema(h) for n, h in handles.items()})
            for ds_name, handle in handles.items():
                _tag(handle, tag, pins[ds_name])
                tagged.append(ds_name)
            manifest = resolve(store, spec, pins, DIGEST_COLUMNS, handles)
            whole, parts = digest(manifest)
            row = _row(name, version, cat.PUBLISHED, spec, pins, existing[-1] if existing else None,
                       self.message if message is None else message, author)
            row.update(frame_count=manifest.num_rows, digest=whole, parts=parts,
                       dataset_ids=[{"dataset": n, "id": dataset_id(h)} for n, h in sorted(handles.items())])
            cat.append_row(store, row)
        except BaseException:
            for ds_name in tagged:
                storage.tags.delete_tag(handles[ds_name], tag)
            storage.tags.delete_tag(cat.views_table(store), tag)
            raise
        log.info("published view %s %s: %d frames, digest %s", name, version, row["frame_count"], whole)
        return View(store, row)

    # -- audit -------------------------------------------------------------------------------
    def verify(self) -> VerifyReport:
        """Re-resolve at the pinned versions and compare with the recorded count and digest; say what differs."""
        if not self.published:
            raise ViewError(f"view {self.name!r} draft has no recorded digest to verify; publish it first")
        problems: list[str] = []
        warnings = self._check_tags()
        actual_digest = actual_count = None
        try:
            self._pins_now()  # the pinned datasets are still the ones recorded (versioning.identity)
            manifest = resolve(self.store, self.spec, self.pins, DIGEST_COLUMNS)
        except IntegrityError as exc:
            problems.append(str(exc))
        else:
            actual_digest, parts = digest(manifest)
            actual_count = manifest.num_rows
            if actual_count != self.frame_count:
                problems.append(f"resolves to {actual_count} frames; {self.frame_count} were recorded")
            if actual_digest != self._row["digest"]:
                problems.append(f"digest is {actual_digest}; {self._row['digest']} was recorded")
                problems += _part_differences(self._row["parts"] or [], parts)
        return VerifyReport(self.name, self.version, self._row["digest"], actual_digest, self.frame_count or 0,
                            actual_count, problems, warnings)

    def _check_tags(self) -> list[str]:
        tag = cat.tag_name(self.name, self.version)
        out = []
        have = set(self.store.datasets())
        for ds_name, pin in self.pins.items():
            if ds_name not in have:
                continue  # resolution reports it
            tags = storage.tags.list_tags(self.store.open_lance(ds_name))
            if tag not in tags:
                out.append(f"dataset {ds_name!r} has no tag {tag!r}: cleanup could remove version {pin}; "
                           "store.cleanup() re-creates it")
            elif tags[tag].version != pin:
                out.append(f"tag {tag!r} of dataset {ds_name!r} points at version {tags[tag].version}, not {pin}")
        return out

    def evaluate(self, predictions: str, truth: str | None = None, iou: float = 0.5, **options: Any) -> Any:
        """Score a model on this view's pinned frames (hyperds.evaluate); recorded in `_runs` when published."""
        from ..evaluate import evaluate

        return evaluate(self, predictions, truth=truth, iou=iou, **options)

    def export(self, format: str, dest: str, **options: Any) -> ExportResult:
        """Write this version's frames and annotations to `dest` (folder or s3:// prefix) as `format`
        (camtrap-dp, coco-ct, megadetector, yolo, csv), with provenance; a published version's export is
        recorded in the audit (`store.runs()`). See hyperds.export.export for the options."""
        from ..export import export

        return export(self, format, dest, **options)

    def record_run(self, run_id: str, info: Mapping[str, Any] | None = None, user: str | None = None) -> None:
        """Record that run `run_id` used this published version (with free-form JSON `info`)."""
        if not self.published:
            raise ViewError(f"view {self.name!r}: record runs against a published version; publish the draft first")
        if not isinstance(run_id, str) or not run_id:
            raise ViewError(f"run_id must be a non-empty string, got {run_id!r}")
        try:
            info_text = json.dumps(dict(info or {}), sort_keys=True, default=str)
        except (TypeError, ValueError) as exc:
            raise ViewError(f"run info must be JSON-serialisable: {exc}") from exc
        row = {
            "run_id": run_id, "view": self.name, "version": self.version, "digest": self.digest,
            "frame_count": self.frame_count, "recorded_at": _now(), "user": user or cat.current_user(),
            "host": cat.current_host(), "info": info_text,
        }
        storage.writes.append(cat.runs_table(self.store), pa.Table.from_pylist([row], schema=cat.RUNS_SCHEMA))


# -- helpers -----------------------------------------------------------------------------------
def _covers(cached: tuple[dict[str, int], list[str] | None, pa.Table], pins: dict[str, int], cols: list[str] | None) -> bool:
    """Whether a cached resolve (pins, its columns or None for all, table) answers a read of `cols` at `pins`."""
    have_pins, have_cols, _ = cached
    return have_pins == pins and (have_cols is None or (cols is not None and set(cols) <= set(have_cols)))


def _open_current(store: Store, datasets: Sequence[str]) -> dict[str, Any]:
    """Each dataset opened at its latest version (resolve and publish reuse these handles)."""
    have = store.datasets()
    for name in datasets:
        if name not in have:
            raise DatasetNotFoundError(name, have)
    return {name: store.open_lance(name) for name in datasets}


def _lock_version(views: Any) -> int:
    """The `_views` version lock tags point at: the one existing `view.*` tags hold, else the current one.

    One tagged version for all publishes, so cleanup's compaction can drop every other version.
    """
    held = [info.version for tag, info in storage.tags.list_tags(views).items() if tag.startswith("view.")]
    return min(held, default=storage.version(views))


def _tag(ds: Any, tag: str, version: int) -> None:
    # create, or move a tag left by a publish interrupted before its catalog row: we hold the lock now
    storage.tags.set_tag(ds, tag, version)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def _sort_key(version: str) -> tuple[int, int]:
    return cat.version_key(version) if version != cat.DRAFT else (1 << 62, 0)


def _published_versions(rows: list[dict[str, Any]]) -> list[str]:
    return sorted((r["version"] for r in rows if r["status"] == cat.PUBLISHED), key=cat.version_key)


def _part_differences(recorded: list[dict[str, Any]], actual: list[dict[str, Any]]) -> list[str]:
    before = {(p["dataset"], p["subquery"]): p for p in recorded}
    after = {(p["dataset"], p["subquery"]): p for p in actual}
    out = []
    for key in sorted(set(before) | set(after)):
        b, a = before.get(key), after.get(key)
        where = f"dataset {key[0]!r} sub-query {key[1]!r}"
        if b is None or a is None or b["digest"] != a["digest"]:
            nb = b["frame_count"] if b else 0
            na = a["frame_count"] if a else 0
            out.append(f"{where}: {na} frames now, {nb} recorded; its frames or labels differ")
    return out


def _spec(
    store: Store,
    query: str | Mapping[str, str],
    datasets: Sequence[str],
    label_map: Mapping[str, str] | None,
    unknown_labels: str,
    weights: Mapping[str, float] | None,
    split: SplitSpec | Mapping[str, Any] | None,
    empty: str = "drop",
) -> ViewSpec:
    if empty not in EMPTY_POLICIES:
        raise ViewError(f"empty must be one of {', '.join(EMPTY_POLICIES)} (frames left without a class), not {empty!r}")
    if isinstance(datasets, str):
        datasets = [datasets]
    names = list(dict.fromkeys(datasets or []))
    if not names:
        raise ViewError("a view needs at least one dataset: pass datasets=['name', ...]")
    handles = [store.dataset(n) for n in names]  # DatasetNotFoundError lists the existing ones
    if not isinstance(query, (str, Mapping)):
        raise ViewError(f"query must be SQL text, or a dict of sub-query name -> SQL text; got {type(query).__name__}")
    texts = {DEFAULT_SUBQUERY: query} if isinstance(query, str) else dict(query)
    if not texts or any(not isinstance(k, str) or not k or not isinstance(v, str) for k, v in texts.items()):
        raise ViewError("query must be SQL text, or a non-empty dict of sub-query name -> SQL text")
    weights = dict(weights or {})
    unknown = sorted(set(weights) - set(texts))
    if unknown:
        raise ViewError(f"weights name unknown sub-queries {unknown}; sub-queries are {sorted(texts)}")
    bad = {k: w for k, w in weights.items()
           if not isinstance(w, (int, float)) or isinstance(w, bool) or not 0 < w < float("inf")}
    if bad:
        raise ViewError(f"weights must be positive finite numbers, got {bad}")
    subs = []
    for sub_name, text in texts.items():
        first = handles[0].query(text)  # QueryError, positioned, before anything is stored
        if len(handles) > 1 and first.statement.is_select:
            raise ViewError(
                f"sub-query {sub_name!r}: a view over several datasets takes a boolean expression, not SELECT … FROM"
            )
        for other in handles[1:]:
            other.query(text)
        subs.append(SubQuery(sub_name, first.sql, float(weights.get(sub_name, 1.0))))
    return ViewSpec(tuple(subs), tuple(names), LabelMap.parse(label_map, unknown_labels), SplitSpec.parse(split),
                    empty)


def _row(name: str, version: str, status: str, spec: ViewSpec, pins: dict[str, int], parent: str | None,
         message: str | None, author: str | None = None) -> dict[str, Any]:
    lm, sp = spec.label_map, spec.split
    return {
        "name": name,
        "version": version,
        "status": status,
        "queries": [{"name": q.name, "sql": q.sql, "weight": q.weight} for q in spec.queries],
        "datasets": [{"dataset": d, "version": pins.get(d)} for d in spec.datasets],
        "label_map": [{"source": s, "target": t} for s, t in lm.mapping] if lm else None,
        "unknown_labels": lm.unknown if lm else None,
        "split_by": sp.by if sp else None,
        "split_fractions": [{"name": n, "fraction": f} for n, f in sp.fractions] if sp else None,
        "split_seed": sp.seed if sp else None,
        "frame_count": None,
        "digest": None,
        "parts": None,
        "parent": parent,
        "created_by": author or cat.current_user(),
        "created_at": _now(),
        "message": message or "",
        "empty": spec.empty,
        "rule": spec.rule,
    }


def _spec_from_row(row: dict[str, Any]) -> ViewSpec:
    lm = None
    if row["label_map"]:
        lm = LabelMap(tuple((e["source"], e["target"]) for e in row["label_map"]), row["unknown_labels"] or "drop")
    sp = None
    if row["split_by"]:
        sp = SplitSpec(row["split_by"], tuple((e["name"], e["fraction"]) for e in row["split_fractions"]),
                       row["split_seed"] or 0)
    queries = tuple(SubQuery(q["name"], q["sql"], q["weight"]) for q in row["queries"])
    return ViewSpec(queries, tuple(d["dataset"] for d in row["datasets"]), lm, sp, row.get("empty") or "drop",
                    _rule_of(row))


def _rule_of(row: dict[str, Any]) -> int:
    """The rejected-annotations rule a row resolves under: a published row keeps the one it was published with
    (none recorded: rule 1, published before the rule existed); a draft follows the current rule."""
    if row["status"] != cat.PUBLISHED:
        return CURRENT_RULE
    rule = row.get("rule")
    if rule is None:
        return RULE_SEES_REJECTED
    if rule not in RULES:
        raise ViewError(f"view {row['name']!r} {row['version']} was published under rejected-annotations rule {rule}, "
                        f"which this hyperds does not know (it knows {', '.join(map(str, RULES))}); upgrade hyperds")
    return rule
