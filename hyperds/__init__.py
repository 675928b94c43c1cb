"""hyperds: a queryable, versioned hyper-dataset store for computer-vision data."""

from .dataset import Dataset
from .errors import (
    ConflictError,
    CorrectionError,
    DatasetExistsError,
    DatasetNotFoundError,
    HyperdsError,
    ImageLoadError,
    QueryError,
    SchemaError,
    SourceFormatError,
    ViewError,
    ViewNotFoundError,
)
from .store import Store, connect

__version__ = "0.1.0"

__all__ = [
    "ConflictError",
    "CorrectionError",
    "Dataset",
    "DatasetExistsError",
    "DatasetNotFoundError",
    "HyperdsError",
    "ImageLoadError",
    "QueryError",
    "SchemaError",
    "SourceFormatError",
    "Store",
    "ViewError",
    "ViewNotFoundError",
    "connect",
]
