"""Per-frame embedding vectors: a fixed-size-list float32 column plus the model that made it.

Vectors are written in one Lance commit and searched by L2 distance, through an IVF_PQ index
(with exact re-ranking) once enough frames have one, and by an exact flat scan below that.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .. import storage
from ..errors import EmbeddingError, FrameNotFoundError, StoreError
from ..query.lance_sql import eq, not_null
from .schema import CORE_NAMES

if TYPE_CHECKING:
    from .table import FrameTable

log = logging.getLogger(__name__)

EMBEDDING_COLUMN = "embedding"
# IVF_PQ trains 256 centroids per sub-vector; below this many vectors a flat scan is exact and fast.
INDEX_MIN_ROWS = 256
# Approximate candidates re-ranked by exact distance, per result asked for.
_REFINE_FACTOR = 10


@dataclasses.dataclass(frozen=True)
class EmbeddingResult:
    """What add_embeddings() did: frames written, vector size, the data version, whether a vector index exists."""

    frames: int
    dim: int
    version: int
    indexed: bool


def model_column(column: str) -> str:
    """Name of the column that records which model produced `column`'s vectors."""
    return f"{column}_model"


def embedding_columns(schema: pa.Schema) -> list[str]:
    """Columns of `schema` that hold embedding vectors (fixed-size lists of floats)."""
    return [
        f.name
        for f in schema
        if pa.types.is_fixed_size_list(f.type) and pa.types.is_floating(f.type.value_type) and f.name not in CORE_NAMES
    ]


def add_embeddings(
    table: FrameTable,
    frame_ids: Sequence[str] | pa.Array | pa.ChunkedArray,
    vectors: Any,
    model: str,
    column: str = EMBEDDING_COLUMN,
    index: bool = True,
) -> EmbeddingResult:
    """Store one vector per frame in `column` (and `model` in `<column>_model`), as one commit.

    Frames not listed keep their vector (or none). With `index`, an IVF_PQ index is built once at
    least INDEX_MIN_ROWS frames have vectors (and refreshed after later writes).
    """
    table.require_writable()
    if not isinstance(model, str) or not model.strip():
        raise EmbeddingError("model must name the embedding model and version, e.g. model='clip-vit-b32@openai'")
    ids = _ids(frame_ids)
    matrix = _matrix(vectors, len(ids))
    ds = table.handle()
    _check_column(storage.schema(ds), column, matrix.shape[1])
    _check_frames(table, ids)
    dim = matrix.shape[1]
    data = pa.table(
        {
            "frame_id": ids,
            column: pa.FixedSizeListArray.from_arrays(pa.array(matrix.ravel(), pa.float32()), dim),
            model_column(column): pa.array(np.full(len(ids), model, dtype=object), pa.string()),
        }
    )
    if column in storage.schema(ds).names:
        # Partial-schema upsert: only these columns of the matched rows change; one commit.
        storage.writes.update_matched(ds, data, "frame_id")
    else:
        # New columns joined on frame_id; unlisted frames get nulls; one commit.
        storage.writes.merge_columns(ds, data, "frame_id")
    table.invalidate()
    version = table.version
    indexed = _maybe_index(table, column, dim, index)
    log.info("%s: wrote %d %s vectors (dim %d) at version %d", table.name, len(ids), column, dim, version)
    return EmbeddingResult(len(ids), dim, version, indexed)


def similar(table: FrameTable, frame_id: str, k: int = 10, column: str = EMBEDDING_COLUMN) -> pa.Table:
    """The `k` frames nearest to `frame_id` by L2 distance of `column`: frame_id, distance (ascending)."""
    if not isinstance(k, int) or k < 1:
        raise EmbeddingError(f"k must be a positive integer, not {k!r}")
    ds = table.handle()
    _require_column(table, column)
    rows = storage.scan.read(ds, columns=[column], filter=eq("frame_id", frame_id))
    if rows.num_rows == 0:
        raise FrameNotFoundError(f"frame {frame_id!r} is not in dataset {table.name!r}")
    vec = rows.column(column)[0]
    if not vec.is_valid:
        raise EmbeddingError(
            f"frame {frame_id!r} has no {column!r} vector; add one with ds.add_embeddings([{frame_id!r}], vectors, model=...)"
        )
    query = np.asarray(vec.values.to_numpy(zero_copy_only=False), dtype=np.float32)
    # k + 1 and drop the frame itself afterwards: a prefilter would scan every frame_id (100x slower).
    found = storage.scan.nearest(ds, column, query, k + 1, _REFINE_FACTOR, columns=["frame_id", "_distance"])
    found = found.filter(pc.and_(pc.not_equal(found.column("frame_id"), frame_id), pc.is_valid(found.column("_distance"))))
    found = found.sort_by([("_distance", "ascending"), ("frame_id", "ascending")]).slice(0, k)
    # Lance reports squared L2; report the distance itself.
    dist = pc.sqrt(pc.max_element_wise(found.column("_distance"), 0.0))
    return pa.table({"frame_id": found.column("frame_id"), "distance": dist.cast(pa.float32())})


def _require_column(table: FrameTable, column: str) -> None:
    if column not in embedding_columns(table.schema):
        have = embedding_columns(table.schema)
        raise EmbeddingError(
            f"dataset {table.name!r} has no embedding column {column!r} (embedding columns: {have or 'none'}); "
            "add vectors with ds.add_embeddings(frame_ids, vectors, model=...)"
        )


def _ids(frame_ids: Sequence[str] | pa.Array | pa.ChunkedArray) -> pa.Array:
    if isinstance(frame_ids, pa.ChunkedArray):
        frame_ids = frame_ids.combine_chunks()
    try:
        ids = frame_ids.cast(pa.string()) if isinstance(frame_ids, pa.Array) else pa.array(list(frame_ids), pa.string())
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise EmbeddingError(f"frame_ids must be strings: {exc}") from exc
    if len(ids) == 0:
        raise EmbeddingError("no frame_ids given; pass one frame_id per vector")
    if ids.null_count:
        raise EmbeddingError(f"frame_ids[{pc.index(pc.is_null(ids), True).as_py()}] is null; every vector needs a frame_id")
    counts = pc.value_counts(ids)
    dups = counts.filter(pc.greater(counts.field("counts"), 1)).field("values").to_pylist()
    if dups:
        raise EmbeddingError(f"{len(dups)} frame_id(s) given more than once, e.g. {dups[:5]}; give one vector per frame")
    return ids


def _matrix(vectors: Any, n: int) -> np.ndarray:
    if isinstance(vectors, pa.ChunkedArray):
        vectors = vectors.combine_chunks()
    if isinstance(vectors, pa.FixedSizeListArray):
        flat = vectors.flatten().to_numpy(zero_copy_only=False)
        matrix = flat.reshape(len(vectors), vectors.type.list_size) if len(vectors) else flat.reshape(0, 0)
    else:
        try:
            matrix = np.asarray(vectors, dtype=np.float32)
        except (TypeError, ValueError) as exc:
            raise EmbeddingError(f"vectors must be a 2-D array of numbers (frames x dims): {exc}") from exc
    if matrix.ndim != 2 or matrix.shape[1] < 1:
        raise EmbeddingError(f"vectors must be 2-D (frames x dims) with at least one dimension; got shape {matrix.shape}")
    if matrix.shape[0] != n:
        raise EmbeddingError(f"{matrix.shape[0]} vectors for {n} frame_ids; give exactly one vector per frame_id")
    matrix = matrix.astype(np.float32, copy=False)
    bad = ~np.isfinite(matrix).all(axis=1)
    if bad.any():
        raise EmbeddingError(f"vector {int(np.argmax(bad))} holds NaN or infinity; every value must be finite")
    return matrix


def _check_column(schema: pa.Schema, column: str, dim: int) -> None:
    if column in CORE_NAMES or model_column(column) in CORE_NAMES:
        raise EmbeddingError(f"{column!r} is a core frames column; choose another embedding column name")
    if column not in schema.names:
        if model_column(column) in schema.names:
            raise EmbeddingError(f"column {model_column(column)!r} already exists; choose another embedding column name")
        return
    field = schema.field(column)
    if column not in embedding_columns(schema):
        raise EmbeddingError(f"column {column!r} exists and holds {field.type}, not vectors; choose another name")
    if field.type.list_size != dim:
        raise EmbeddingError(
            f"column {column!r} holds {field.type.list_size}-d vectors; got {dim}-d. "
            f"Store vectors of another model under another name, e.g. column={column + '_' + str(dim)!r}"
        )


def _check_frames(table: FrameTable, ids: pa.Array) -> None:
    have = table.existing_ids(ids)
    if len(have) != len(ids):
        missing = pc.filter(ids, pc.invert(pc.is_in(ids, have))).to_pylist()
        raise FrameNotFoundError(
            f"{len(missing)} frame_id(s) are not in dataset {table.name!r}, e.g. {missing[:5]}; "
            "add the frames first (ds.add_frames) or drop their vectors. Nothing was written."
        )


def _maybe_index(table: FrameTable, column: str, dim: int, index: bool) -> bool:
    ds = table.handle()
    has_index = any(i.column == column for i in storage.indices.describe(ds))
    if not index:
        return has_index
    rows = storage.scan.count(ds, not_null(column))
    if has_index:
        table.refresh_indices_after_write()  # index the new vectors without rewriting any index whole
    elif rows >= INDEX_MIN_ROWS:
        sub_vectors = _sub_vectors(dim)
        # Lance trains a partition only from ~256 vectors, so fewer partitions than sqrt(rows) on small sets.
        partitions = max(1, min(int(math.sqrt(rows)), rows // INDEX_MIN_ROWS))
        try:
            storage.indices.create_vector_index(ds, column, partitions, sub_vectors)
        except StoreError as exc:  # the vectors are written; the next add_embeddings builds the index
            log.warning("%s: vector index on %s deferred: %s", table.name, column, exc)
            table.invalidate()
            return False
        log.info("%s: built IVF_PQ index on %s (%d vectors)", table.name, column, rows)
    table.invalidate()
    return has_index or rows >= INDEX_MIN_ROWS


def _sub_vectors(dim: int) -> int:
    """PQ sub-vectors: about 8 dimensions each, and a divisor of `dim` as Lance requires."""
    sub = max(1, dim // 8)
    while dim % sub:
        sub -= 1
    return sub
