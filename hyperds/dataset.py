"""Dataset: the user-facing handle on one frames table.

It joins the layers: it holds the frames table (FrameTable, `ds.table`) and reaches the query, versioning
and workflow operations, each implemented in its own package, through a method here.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from .errors import StoreError
from .frames.table import FrameTable
from .source import DEFAULT_BATCH_SIZE, SourceBase, SourceDescription, check_no_split, no_runs

__all__ = ["Dataset"]

log = logging.getLogger(__name__)

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping, Sequence

    import polars as pl
    import pyarrow as pa

    from .export import ExportResult
    from .frames.normalize import FrameInput
    from .frames.table import AddResult
    from .storage import Connection, Handle

    from .frames.embeddings import EmbeddingResult
    from .workflows.review import AcceptResult
    from .views.handle import View
    from .frames.ingest import IngestReport
    from .query.query import Query
    from .versioning.changes import ChangeInput
    from .versioning.commits import CommitResult
    from .workflows.predictions import PredictionResult
    from .workflows.repeats import RepeatGroups, RepeatRejection
    from .workflows.sequences import SmoothingProposals


class Dataset(SourceBase):
    """A dataset of frames: add, read, query, correct and audit (composed over its FrameTable, `table`).

    A FrameSource (hyperds.source) over one dataset.
    """

    def __init__(self, store: Connection, name: str, version: int | None = None):
        self.table = FrameTable(store, name, version=version)

    def __repr__(self) -> str:
        pinned = self.table.pinned_version
        at = f" @v{pinned}" if pinned is not None else ""
        return f"Dataset({self.name!r}{at}, store={self.store.uri!r})"

    # -- the frames table (FrameTable) -------------------------------------------------------
    @property
    def store(self) -> Any:
        return self.table.store

    @property
    def name(self) -> str:
        return self.table.name

    @property
    def uri(self) -> str:
        return self.table.uri

    @property
    def pinned_version(self) -> int | None:
        """The version this dataset is pinned to (read-only), or None for the latest (no I/O)."""
        return self.table.pinned_version

    @property
    def version(self) -> int:
        """The Lance version read (latest: re-read on each access)."""
        return self.table.version

    @property
    def schema(self) -> pa.Schema:
        """The schema of the version read (latest: re-read on each access)."""
        return self.table.schema

    @property
    def extra_schema(self) -> pa.Schema:
        return self.table.extra_schema

    @property
    def root(self) -> str | None:
        """Base URI that relative frame `uri`s are resolved against (None: none set); reads the schema."""
        return self.table.root

    def handle(self, version: int | None = None) -> Handle:
        return self.table.handle(version)

    def lance(self, version: int | None = None) -> Handle:
        """The underlying pylance dataset: an escape hatch for users and tests (see FrameTable.lance)."""
        return self.table.lance(version)

    def invalidate(self) -> None:
        self.table.invalidate()

    def require_writable(self) -> None:
        self.table.require_writable()

    def at(self, version: int) -> Dataset:
        """A read-only view of this dataset as it was at Lance `version`."""
        self.table.at(version)  # HyperdsError naming the versions there are
        return Dataset(self.store, self.name, version=version)

    def __len__(self) -> int:
        return len(self.table)

    def count(self, filter: str | None = None) -> int:
        return self.table.count(filter)


    def to_polars(self, columns: list[str] | None = None, filter: str | None = None) -> pl.DataFrame:
        return self.table.to_polars(columns=columns, filter=filter)

    def get(self, frame_id: str, columns: list[str] | None = None) -> dict[str, Any]:
        """One frame as a dict (annotations as a list of dicts); only `columns` when given (a lookup of its
        uri need not read its annotations)."""
        return self.table.get(frame_id, columns)

    def existing_ids(self, frame_ids: pa.Array) -> pa.Array:
        return self.table.existing_ids(frame_ids)

    def add_frames(self, data: FrameInput, assume_tz: str = "UTC") -> AddResult:
        """Insert frames whose frame_id is new; existing frame_ids are skipped (idempotent), in one commit."""
        before = self.table.version
        return self._carried(before, self.table.add_frames(data, assume_tz=assume_tz))

    def insert_normalized(self, table: pa.Table) -> AddResult:
        before = self.table.version
        return self._carried(before, self.table.insert_normalized(table))

    def _carried(self, before: int, result: AddResult) -> AddResult:
        """The side tables follow an insert (see query.sidecar.carry_inserts), so queries keep their fast path."""
        if result.inserted:
            from .query.sidecar import carry_inserts

            try:
                carry_inserts(self.table, before)
            except StoreError as exc:  # queries on the new version scan instead, still exactly
                log.info("%s: side tables not carried past version %d: %s", self.name, before, exc)
        return result

    def refresh_indices(self, merge: bool = True) -> None:
        self.table.refresh_indices(merge)

    def refresh_indices_after_write(self) -> None:
        self.table.refresh_indices_after_write()

    # -- FrameSource (hyperds.source): one dataset, no label map, no splits ----------------------
    @property
    def pins(self) -> dict[str, int]:
        return {self.name: self.version}

    def to_arrow(
        self, columns: Sequence[str] | None = None, filter: str | None = None, *, split: str | None = None
    ) -> pa.Table:
        """Frames (only `columns`, those passing the Lance `filter` when given); a dataset has no `split`."""
        check_no_split(f"dataset {self.name!r}", split)
        return self.table.to_arrow(columns=None if columns is None else list(columns), filter=filter)

    def to_batches(
        self, columns: Sequence[str] | None = None, *, batch_size: int = DEFAULT_BATCH_SIZE, split: str | None = None
    ) -> Iterator[pa.RecordBatch]:
        """Frames in record batches of at most `batch_size` rows, streamed from one snapshot."""
        check_no_split(f"dataset {self.name!r}", split)
        yield from self.table.to_batches(None if columns is None else list(columns), batch_size=batch_size)

    def roots(self) -> dict[str, str | None]:
        return {self.name: self.root}

    label_map: None = None
    classes: None = None

    @property
    def splits(self) -> list[str]:
        return []

    @property
    def column_names(self) -> list[str]:
        return list(self.schema.names)

    def describe(self) -> SourceDescription:
        return SourceDescription("dataset", self.name)

    def pinned(self) -> Dataset:
        """This dataset fixed at the version it reads now (itself when already pinned)."""
        return self if self.pinned_version is not None else self.at(self.version)

    def record_run(self, run_id: str, info: Mapping[str, Any] | None = None, user: str | None = None) -> None:
        raise no_runs(f"dataset {self.name!r}")

    # -- queries ---------------------------------------------------------------------------
    def query(self, sql: str) -> Query:
        """Frames selected by `sql` (boolean expression or SELECT … FROM <this dataset>); see hyperds.query.

        Parsed and validated now (QueryError before any data is read); run lazily by its methods.
        """
        from .query.query import Query

        return Query(self, sql)

    def export(self, format: str, dest: str, **options: Any) -> ExportResult:
        """Write every frame to `dest` (folder or s3:// prefix) as `format` (camtrap-dp, coco-ct, megadetector,
        yolo, csv), with provenance; see hyperds.export.export for the options."""
        from .export import export

        return export(self, format, dest, **options)

    def deployments(self) -> pa.Table | None:
        """The Camtrap DP deployments table (text columns, as the package had it) joined to frames on
        `deployment`; None unless a Camtrap DP package was imported. Pinned with the version read."""
        from .frames.package_meta import read_deployments

        return read_deployments(self.schema)

    def optimize(self) -> int:
        """Refresh the scalar indices and rebuild the annotation side tables for the latest version.

        Queries on annotation fields then read the flattened, label-indexed side table instead of
        scanning the nested lists; without it (any write makes it stale) they scan, still exactly.
        """
        from .query.sidecar import build_annotation_table

        self.require_writable()
        self.refresh_indices()
        return build_annotation_table(self)

    # -- corrections and history (versioning.commits / versioning.history) -------------------
    def commit(
        self, changes: ChangeInput, author: str, message: str = "", based_on: int | None = None
    ) -> CommitResult:
        """Apply annotation changes (add, relabel, move, delete, review) as one new version, or write nothing.

        Each change may carry the frame `revision` it saw (or pass `based_on=version`); ConflictError if stale.
        """
        from .versioning.commits import commit

        return commit(self, changes, author=author, message=message, based_on=based_on)

    def commits(self) -> pl.DataFrame:
        """Every commit of this dataset, oldest first (id, versions, author, message, time, counts)."""
        from .versioning.history import commits

        return commits(self)

    def history(self, frame_id: str) -> pl.DataFrame:
        """Every annotation event of one frame, oldest first, with before/after values and the commit message."""
        from .versioning.history import history

        return history(self, frame_id)

    def blame(self, frame_id: str) -> pl.DataFrame:
        """Who set each current label of a frame, when, and why."""
        from .versioning.history import blame

        return blame(self, frame_id)

    def evaluate(self, predictions: str, truth: str | None = None, iou: float = 0.5, **options: Any) -> Any:
        """Score a model on this dataset's current version (hyperds.evaluate): detection, presence, sweep."""
        from .evaluate import evaluate

        return evaluate(self, predictions, truth=truth, iou=iou, **options)

    def add_predictions(
        self, table: Any, model: str, run_id: str | None = None, message: str = ""
    ) -> PredictionResult:
        """Add a model run's predictions (frame_id, label, bbox, confidence) as model annotations, one commit.

        `model` is name@version; its earlier unreviewed predictions on the covered frames are replaced.
        """
        from .workflows.predictions import add_predictions

        return add_predictions(self, table, model=model, run_id=run_id, message=message)

    @property
    def taxonomy(self) -> list[str] | None:
        """Labels that changes may use (None: any label)."""
        from .versioning.commits import taxonomy

        return taxonomy(self)

    def set_taxonomy(self, labels: Sequence[str] | None) -> None:
        """Restrict the labels of future changes to `labels` (None lifts it); stored in the schema metadata."""
        from .versioning.commits import set_taxonomy

        set_taxonomy(self, labels)

    # -- embeddings and active learning (annotation rounds) --------------------------------
    def add_embeddings(
        self,
        frame_ids: Sequence[str] | pa.Array,
        vectors: Any,
        model: str,
        column: str = "embedding",
        index: bool = True,
    ) -> EmbeddingResult:
        """Store one embedding vector per frame (fixed-size float32 column), in one commit; see frames.embeddings."""
        from .frames.embeddings import add_embeddings

        return add_embeddings(self, frame_ids, vectors, model=model, column=column, index=index)

    def similar(self, frame_id: str, k: int = 10, column: str = "embedding") -> pa.Table:
        """The k frames nearest to `frame_id` by embedding (L2): frame_id, distance."""
        from .frames.embeddings import similar

        return similar(self, frame_id, k=k, column=column)

    def review_queue(
        self, threshold: float = 0.98, model: str | None = None, where: str | None = None, name: str | None = None
    ) -> View:
        """Draft view of frames with an unreviewed model detection below `threshold` (people review these)."""
        from .workflows.review import review_queue

        return review_queue(self, threshold=threshold, model=model, where=where, name=name)

    def auto_accept(self, threshold: float = 0.98, model: str | None = None) -> AcceptResult:
        """Accept, as one commit by `auto:threshold=<t>`, the detections of frames with none below `threshold`."""
        from .workflows.review import auto_accept

        return auto_accept(self, threshold=threshold, model=model)

    def select(
        self,
        k: int = 100,
        strategy: str = "uncertainty",
        where: str | None = None,
        seed: int = 0,
        name: str | None = None,
        column: str = "embedding",
    ) -> View:
        """Draft view of the `k` frames to label next (uncertainty | random | diverse), never person-reviewed ones."""
        from .workflows.select import select

        return select(self, k=k, strategy=strategy, where=where, seed=seed, name=name, column=column)

    # -- field workflows (hyperds.workflows) ---------------------------------------------------
    def find_repeats(
        self, per: str = "camera", iou: float = 0.85, min_frames: int = 10, where: str | None = None, **options: Any
    ) -> RepeatGroups:
        """Model detections whose boxes repeat (IoU >= iou) in >= min_frames frames of one camera: a table of
        groups and a draft view of the affected frames (options: view, name, examples); writes nothing else."""
        from .workflows.repeats import find_repeats

        return find_repeats(self, per=per, iou=iou, min_frames=min_frames, where=where, **options)

    def reject_repeats(
        self, groups: RepeatGroups, author: str, ids: Sequence[str] | None = None, message: str = ""
    ) -> RepeatRejection:
        """Reject the detections of `groups` (or of groups `ids`) as one commit reviewed by the rule."""
        from .workflows.repeats import reject_repeats

        return reject_repeats(self, groups, author=author, ids=ids, message=message)

    def check_repeats(self, frames: Any = None, iou: float | None = None) -> RepeatGroups:
        """Open model detections of `frames` (ids, Query, View; None: all) on stored rejected repeat groups."""
        from .workflows.repeats import check_repeats

        return check_repeats(self, frames, iou=iou)

    def sequence_labels(self, where: str | None = None, **options: Any) -> pl.DataFrame:
        """Frame labels rolled up to the burst (seq_id): per label its frames, count, confidence (see workflows.sequences)."""
        from .workflows.sequences import sequence_labels

        return sequence_labels(self.query(where) if where else self, **options)

    def smooth_sequences(self, min_confidence: float = 0.8, min_share: float = 0.5, **options: Any) -> SmoothingProposals:
        """Proposed suggestions for frames that disagree with a confident burst majority; nothing is written
        until `proposals.commit(author)` (options: where, empty_labels, view, name)."""
        from .workflows.sequences import smooth_sequences

        return smooth_sequences(self, min_confidence=min_confidence, min_share=min_share, **options)

    # -- raw image ingest ------------------------------------------------------------------
    def ingest(
        self,
        uri: str,
        layout: str | None = None,
        hash: bool = False,
        storage_options: dict[str, Any] | None = None,
        engine: str = "local",
        **options: Any,
    ) -> IngestReport:
        """Add the images under a folder or s3:// prefix not yet ingested, reading only their headers.

        `layout` ("{site}/{camera}/{name}") names path parts; `engine="ray"` reads headers on Ray
        workers (retrying a batch whose worker or node dies up to `max_retries`, default 3, times; then
        IngestError and nothing written). Options: tz, threads, burst_gap_s, block_size, progress (see frames.ingest).
        """
        from .errors import IngestError
        from .frames.ingest import ingest

        if engine not in ("local", "ray"):
            raise IngestError(f"engine must be 'local' or 'ray', not {engine!r}")
        if engine == "ray":
            from .distributed import ray_header_reader

            retries = options.pop("max_retries", 3)
            options["reader"] = ray_header_reader(hash, options.get("block_size"), options.get("threads", 8),
                                                  max_retries=retries)
        return ingest(self, uri, layout=layout, hash=hash, storage_options=storage_options, **options)
