"""hyperds: a queryable, versioned hyper-dataset store for computer-vision data.

The public API is what `__all__` lists: the store (Store, connect), its datasets, queries and views
(Dataset, Query, View, view), the FrameSource protocol they share, and every error. The training
loaders FrameDataset / IterableFrameDataset are the torch extra (`pip install 'hyperds[torch]'`),
imported on first use; without torch, reaching them raises MissingExtraError naming the extra.
Public subpackages: hyperds.frames.importers, hyperds.loaders (torch, transforms), hyperds.query,
hyperds.distributed (the ray extra). Other modules are internal.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from .dataset import Dataset
from .errors import (
    ConflictError,
    CorrectionError,
    DatasetExistsError,
    DatasetNotFoundError,
    DuplicateFrameError,
    EmbeddingError,
    EvaluationError,
    ExportError,
    FrameNotFoundError,
    HyperdsError,
    ImageLoadError,
    IngestError,
    IntegrityError,
    LoaderError,
    MissingExtraError,
    OutputError,
    PolicyError,
    PredictionError,
    QueryError,
    SchemaError,
    SelectionError,
    SourceFormatError,
    StoreError,
    VersionNotFoundError,
    ViewError,
    ViewExistsError,
    ViewImmutableError,
    ViewNotFoundError,
    WorkflowError,
)
from . import consumers
from ._version import __version__ as __version__
from .source import FrameSource
from .store import Store, connect

if TYPE_CHECKING:
    from .loaders.torch import FrameDataset, IterableFrameDataset
    from .query.query import Query
    from .views.handle import View



def _export() -> object:
    from .export import export

    return export


def _evaluate() -> object:
    from .evaluate import evaluate

    return evaluate


# view.export / query.export / view.evaluate: the consumer packages sit above views and queries, so this
# top layer wires them in (hyperds.consumers), imported on first use.
consumers.register("export", _export)
consumers.register("evaluate", _evaluate)


def __getattr__(name: str) -> object:
    # Imported on first use: View and Query pull in the query engine, which plain imports do not
    # need; the loaders need torch (an extra), so `import hyperds` works without it.
    if name == "View":
        from .views.handle import View

        return View
    if name == "evaluate":  # a callable package: hyperds.evaluate(view, "MDv5a@5.0")
        import importlib

        return importlib.import_module(f"{__name__}.evaluate")
    if name == "Query":
        from .query.query import Query

        return Query
    if name == "FrameDataset":
        from .loaders.torch import FrameDataset  # MissingExtraError names the extra when torch is absent

        return FrameDataset
    if name == "IterableFrameDataset":
        from .loaders.torch import IterableFrameDataset

        return IterableFrameDataset
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
    "DuplicateFrameError",
    "EmbeddingError",
    "EvaluationError",
    "ExportError",
    "FrameDataset",
    "FrameNotFoundError",
    "FrameSource",
    "HyperdsError",
    "ImageLoadError",
    "IngestError",
    "IntegrityError",
    "IterableFrameDataset",
    "LoaderError",
    "MissingExtraError",
    "OutputError",
    "PolicyError",
    "PredictionError",
    "Query",
    "QueryError",
    "SchemaError",
    "SelectionError",
    "SourceFormatError",
    "Store",
    "StoreError",
    "VersionNotFoundError",
    "View",
    "ViewError",
    "ViewExistsError",
    "ViewImmutableError",
    "ViewNotFoundError",
    "WorkflowError",
    "connect",
    "evaluate",
    "view",
]
