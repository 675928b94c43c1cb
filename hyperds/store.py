"""Store: a LanceDB database at a URI (local folder or s3://bucket/prefix) holding datasets and catalogs.

Datasets are frames tables; catalog tables (views, commits, events, runs) have names starting with `_`.
"""

from __future__ import annotations

import datetime
import logging
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from .errors import DatasetExistsError, DatasetNotFoundError, SchemaError, StoreError
from .frames.schema import CORE_NAMES, FRAMES_SCHEMA, frames_schema
from .storage import Connection, Exists

__all__ = ["Store", "connect", "default_store_uri"]

if TYPE_CHECKING:
    import polars as pl

    from .dataset import Dataset
    from .views.cleanup import CleanupResult
    from .views.handle import View
    from .workflows.policy import Policy

log = logging.getLogger(__name__)

DEFAULT_STORE = Path.home() / ".hyperds" / "store"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")


def default_store_uri() -> str:
    """HYPERDS_STORE if set, else ~/.hyperds/store."""
    return os.environ.get("HYPERDS_STORE") or str(DEFAULT_STORE)


def connect(uri: str | os.PathLike[str] | None = None, storage_options: dict[str, str] | None = None) -> Store:
    """Open (creating on first use) the store at `uri`; default HYPERDS_STORE or ~/.hyperds/store.

    For S3-compatible endpoints pass e.g. {"aws_endpoint": ..., "allow_http": "true", "region": ...}.
    """
    return Store(str(uri) if uri is not None else default_store_uri(), storage_options)


class Store(Connection):
    """A set of datasets and catalog tables under one URI: the user facade over the storage kernel's Connection.

    The facade's verbs (datasets, views, sql, cleanup) import the layers below on first use, which keeps
    `import hyperds` light for loader workers; every import here points down.
    """

    def __repr__(self) -> str:
        return f"Store({self.uri!r})"

    # -- datasets --------------------------------------------------------------------------
    def datasets(self) -> list[str]:
        """Names of the datasets in the store (catalog tables excluded)."""
        return [n for n in self.table_names() if not n.startswith("_")]

    def create_dataset(
        self, name: str, root: str | None = None, schema: pa.Schema | None = None, exist_ok: bool = False
    ) -> Dataset:
        """Create an empty dataset; `root` rebases relative frame URIs, `schema` adds user columns."""
        from .dataset import Dataset

        if not _NAME.match(name):
            raise StoreError(
                f"invalid dataset name {name!r}: use letters, digits, '_', '-', '.', starting with a letter or digit"
            )
        if name in self.datasets():
            # Listed is not created: a create that failed half-way (an outage, a crash) leaves the table's
            # folder without any version, which Lance creates again over; only a real table exists.
            if self.existing(name) is not None:
                if exist_ok:
                    return Dataset(self, name)
                raise DatasetExistsError(
                    f"dataset {name!r} already exists; open it with store.dataset({name!r}) or drop it first"
                )
            log.warning("dataset %s in %s: no version (a create that failed half-way); creating it", name, self.uri)
        from .frames.names import check_column_names

        check_column_names([f.name for f in (schema or []) if f.name not in CORE_NAMES], CORE_NAMES)
        clash = [f.name for f in (schema or []) if f.name in CORE_NAMES and f.type != FRAMES_SCHEMA.field(f.name).type]
        if clash:
            raise SchemaError(
                f"user column(s) {clash} redefine core frame columns with another type; "
                "rename them (core columns: " + ", ".join(CORE_NAMES) + ")"
            )
        from .views.identity import ID_KEY, new_id

        meta = {"hyperds.kind": "frames", ID_KEY: new_id()}
        if root:
            meta["hyperds.root"] = root
        full = frames_schema(schema).with_metadata(meta)
        try:
            self.create_table(name, full)
        except Exists as exc:  # created by another writer since the check above
            if exist_ok:
                return Dataset(self, name)
            raise DatasetExistsError(f"dataset {name!r} already exists; open it with store.dataset({name!r})") from exc
        log.info("created dataset %s in %s", name, self.uri)
        return Dataset(self, name)

    def dataset(self, name: str) -> Dataset:
        """Open a dataset by name."""
        from .dataset import Dataset

        existing = self.datasets()
        if name not in existing:
            raise DatasetNotFoundError(name, existing, self.uri)
        return Dataset(self, name)

    def drop_dataset(self, name: str, force: bool = False) -> None:
        """Delete a dataset and all its versions.

        A dataset that published views pin is dropped only with force=True; those views then say,
        when read, that their dataset was dropped (see views.identity).
        """
        existing = self.datasets()
        if name not in existing:
            raise DatasetNotFoundError(name, existing, self.uri)
        if not force:
            from .views.identity import views_pinning

            pinned = views_pinning(self, name)
            if pinned:
                raise SchemaError(
                    f"dataset {name!r} is pinned by published view(s) {', '.join(pinned)}; dropping it makes them "
                    "unreadable. Pass force=True to drop it anyway"
                )
        self.drop_table(name)

    # -- analytic queries ------------------------------------------------------------------
    def sql(self, sql: str) -> pl.DataFrame:
        """Run an analytic SELECT (GROUP BY, joins, aggregates) over datasets through polars.

        Relations: `<ds>` (frames), `<ds>__annotations` (frame_id + annotation fields, one row per
        annotation), `<ds>__labels` (frame_id, label; one row per derived label). See hyperds.query.analytic.
        """
        from .query.analytic import run_sql

        return run_sql(self, sql)

    # -- views (hyperds.versioning) ----------------------------------------------------------
    def create_view(
        self,
        name: str,
        query: str | Mapping[str, str],
        datasets: Sequence[str],
        label_map: Mapping[str, str] | None = None,
        weights: Mapping[str, float] | None = None,
        split: Mapping[str, Any] | None = None,
        message: str = "",
        unknown_labels: str = "drop",
        empty: str = "drop",
    ) -> View:
        """Create (or redefine) the draft of view `name`: SQL (or {sub-query: SQL}) over `datasets`.

        `label_map` maps source labels to classes (`unknown_labels`: drop | keep | error), `weights` gives
        each sub-query's sampling share, `split` = {"by": "site"|"seq_id", "fractions": {...}, "seed": 0};
        `empty` = "keep" keeps frames left without a class (default "drop": rejected labels are no class).
        """
        from .views.handle import create_view

        return create_view(self, name, query, datasets, label_map, weights, split, message, unknown_labels, empty)

    def view(self, name: str, version: str | None = None) -> View:
        """A view version (None: the latest published; "draft": the editable draft)."""
        from .views.handle import open_view

        return open_view(self, name, version)

    def views(self) -> pa.Table:
        """Every view version and draft (name, version, status, frame_count, digest, parent, who, when, message)."""
        from .views.handle import list_views

        return list_views(self)

    def runs(self, view: str | None = None, version: str | None = None) -> pa.Table:
        """Recorded runs (which run used which view version, its digest, when, who, info), oldest first."""
        from .views.audit import runs

        return runs(self, view, version)

    # -- sensitive-species and people policy (hyperds.workflows.policy) ---------------------
    def policy(self, version: int | None = None) -> Policy:
        """The store's sensitive-species and people policy (latest, or `version`; 0 is the default)."""
        from .workflows.policy import get_policy

        return get_policy(self, version)

    def set_policy(self, author: str, message: str = "", **settings: Any) -> Policy:
        """A new policy version with `settings` changed (sensitive_labels, coordinates, round_km, people_labels,
        people, people_min_confidence); exports and loaders apply it with policy="public"."""
        from .workflows.policy import set_policy

        return set_policy(self, author, message, **settings)

    def policy_history(self) -> pl.DataFrame:
        """Every version of the policy, oldest first, with who set it and why."""
        from .workflows.policy import policy_history

        return policy_history(self)

    def cleanup(self, older_than: datetime.timedelta = datetime.timedelta(days=7)) -> CleanupResult:
        """Remove table versions older than `older_than` except those pinned by published views."""
        from .views.cleanup import cleanup

        return cleanup(self, older_than)
