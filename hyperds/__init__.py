"""hyperds: a queryable, versioned hyper-dataset store for computer-vision data."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from .dataset import Dataset
from .errors import (
    ConflictError,
    CorrectionError,
    DatasetExistsError,
    DatasetNotFoundError,
    EmbeddingError,
    HyperdsError,
    ImageLoadError,
    IngestError,
    IntegrityError,
    PredictionError,
    QueryError,
    SchemaError,
    SelectionError,
    SourceFormatError,
    ViewError,
    ViewExistsError,
    ViewImmutableError,
    ViewNotFoundError,
)
from .store import Store, connect

if TYPE_CHECKING:
    from .versioning.views import View

__version__ = "0.1.0"


def __getattr__(name: str) -> object:
    # View is imported on first use: it pulls in the query engine, which plain imports do not need.
    if name == "View":
        from .versioning.views import View

        return View
    if name == "evaluate":  # a callable package: hyperds.evaluate(view, "MDv5a@5.0")
        import importlib

        return importlib.import_module(f"{__name__}.evaluate")
    raise AttributeError(f"module 'hyperds' has no attribute {name!r}")


def view(name: str, version: str | None = None, store: Store | str | os.PathLike[str] | None = None) -> View:
    """Open view `name` at `version` (None: the latest published) in `store` (default: $HYPERDS_STORE)."""
    handle = store if isinstance(store, Store) else connect(store)
    return handle.view(name, version)

__all__ = [
    "ConflictError",
    "CorrectionError",
    "Dataset",
    "DatasetExistsError",
    "DatasetNotFoundError",
    "EmbeddingError",
    "HyperdsError",
    "ImageLoadError",
    "IngestError",
    "IntegrityError",
    "PredictionError",
    "QueryError",
    "SchemaError",
    "SelectionError",
    "SourceFormatError",
    "Store",
    "View",
    "ViewError",
    "ViewExistsError",
    "ViewImmutableError",
    "ViewNotFoundError",
    "connect",
    "evaluate",
    "view",
]
