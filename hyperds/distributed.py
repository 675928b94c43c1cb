"""Scale-out on Ray Data: run a model over a view's frames on many workers, commit predictions once.

`to_ray` turns a FrameSource (View, Dataset, Query; see hyperds.source) into a Ray dataset of its rows;
`predict` maps a user model over it with `map_batches` and writes the predictions back as one commit;
`ray_header_reader` distributes ingest's image header reads the same way. Ray is the extra `hyperds[ray]`.
"""

from __future__ import annotations

import functools
import logging
import math
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import polars as pl
import pyarrow as pa
import pyarrow.compute as pc

from .errors import HyperdsError, IngestError, MissingExtraError, PredictionError
from .frames.headers import DEFAULT_BLOCK, read_headers
from .frames.uris import resolve_uris
from .fsio import open_filesystem, without_secrets
from .source import single_root
from .workflows.predictions import PredictionResult, check_model

if TYPE_CHECKING:
    import ray.data

    from .dataset import Dataset
    from .frames.ingest import HeaderReader
    from .source import FrameSource

__all__ = ["predict", "ray_header_reader", "to_ray"]

log = logging.getLogger(__name__)

ModelFn = Callable[[pa.Table], Any]


def _ray() -> Any:
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError as exc:
        raise MissingExtraError("the Ray adapter (hyperds.distributed)", "ray", "Ray") from exc
    return ray


def _blocks(table: pa.Table, batch_size: int) -> list[pa.Table]:
    """Row slices of `table`, so Ray schedules them on different workers (one block runs in one task)."""
    n = max(1, math.ceil(table.num_rows / batch_size))
    return [table.slice(i * batch_size, batch_size) for i in range(n)]


def _target(source: FrameSource | pa.Table, dataset: Dataset | None) -> Dataset:
    """The writable dataset predictions go to: `dataset`, else the one dataset `source` reads."""
    if dataset is not None:
        return dataset.store.dataset(dataset.name)
    names = [] if isinstance(source, pa.Table) else list(source.pins)
    if len(names) == 1:
        return source.store.dataset(names[0])
    raise PredictionError(
        f"cannot tell which dataset to write predictions to from {type(source).__name__}"
        + (f" (it reads {names})" if names else "")
        + "; pass dataset=store.dataset(NAME)"
    )


def to_ray(
    source: FrameSource | pa.Table, columns: Sequence[str] | None = None, batch_size: int = 64,
    dataset: Dataset | None = None,
) -> ray.data.Dataset:
    """A Ray dataset of `source`'s frames (a FrameSource, or a pyarrow Table of frames with absolute or
    rootless URIs): its rows with `uri`s made absolute, in blocks of `batch_size` rows.

    With `dataset`, only that dataset's frames of a multi-dataset view. Only `columns` are read.
    """
    ray = _ray()
    spans = [] if isinstance(source, pa.Table) else list(source.pins)
    keyed = len(spans) > 1  # rows name their dataset (a View's `dataset` column)
    if dataset is not None:
        roots = {dataset.name: dataset.root}
    else:
        roots = {"": None} if isinstance(source, pa.Table) else source.roots()
        keyed = keyed and not single_root(roots)[0]
    wanted = None if columns is None else list(dict.fromkeys([*columns, *(["dataset"] if keyed else [])]))
    if isinstance(source, pa.Table):
        table = source if wanted is None else source.select(wanted)
    else:
        table = source.to_arrow(wanted)
    if dataset is not None and keyed:
        table = table.filter(pc.equal(table.column("dataset"), dataset.name))
    if "uri" in table.column_names:
        table = table.set_column(table.schema.get_field_index("uri"), "uri", _absolute_uris(table, roots))
    if columns is not None:
        table = table.select(list(columns))
    return ray.data.from_arrow(_blocks(table, batch_size))


def _absolute_uris(table: pa.Table, roots: dict[str, str | None]) -> pa.Array:
    """The `uri` column resolved against each row's dataset root (`roots` as FrameSource.roots())."""
    one, root = single_root(roots)
    if one:
        return resolve_uris(table.column("uri"), root)
    which, uris = table.column("dataset").combine_chunks(), table.column("uri").combine_chunks()
    out = uris
    for name, root in roots.items():
        out = pc.if_else(pc.equal(which, name), resolve_uris(uris, root), out)
    return out


def _gather(ray: Any, out: ray.data.Dataset, job: str, error: type[HyperdsError]) -> list[pa.Table]:
    """Run the pipeline and fetch its blocks; a job Ray gives up on (a task's retries spent, e.g. its
    node lost once too often, or the model raising) is `error` naming the cause, before anything is written."""
    try:
        return ray.get(out.to_arrow_refs())
    except Exception as exc:  # Ray's and Ray Data's own errors, and the user's model's, arrive wrapped
        # Ray Data raises the failure itself `from` a bare marker (SystemException / UserCodeException);
        # a RayTaskError carries the task's own exception as `cause`
        root = getattr(exc, "cause", None) if isinstance(getattr(exc, "cause", None), BaseException) else exc
        lines = [line.strip() for line in str(root).splitlines() if line.strip()]
        why = f"{type(root).__name__}: {lines[0]}" if lines else type(root).__name__
        raise error(f"{job} failed on Ray, so nothing was written: {why}. A task is retried up to max_retries "
                    "times when its worker or node dies; rerun once the cluster is healthy") from exc


def _call(model_fn: ModelFn, batch: pa.Table) -> pa.Table:
    return _as_arrow(model_fn(batch))


def _as_arrow(out: Any) -> pa.Table:
    if isinstance(out, pl.DataFrame):
        return out.to_arrow()
    if isinstance(out, pa.Table):
        return out
    return pa.table(out)


class _Actor:
    """A user model class held by one Ray actor: built once, then called per batch."""

    def __init__(self, model_cls: type):
        self.model = model_cls()

    def __call__(self, batch: pa.Table) -> pa.Table:
        return _as_arrow(self.model(batch))


def predict(
    source: FrameSource | pa.Table,
    model_fn: ModelFn,
    model: str,
    run_id: str | None = None,
    dataset: Dataset | None = None,
    columns: Sequence[str] | None = ("frame_id", "uri"),
    batch_size: int = 64,
    concurrency: int | None = None,
    message: str = "",
    max_retries: int = 3,
) -> PredictionResult:
    """Run `model_fn` over `source`'s frames on Ray workers and add its predictions in one commit.

    `model_fn(batch: pa.Table) -> predictions` (pa.Table, polars or dict of columns: frame_id, label,
    bbox, confidence) gets `columns` of the manifest; a callable class runs as an actor pool of
    `concurrency` actors, loading its weights once. Same semantics as Dataset.add_predictions.
    A batch whose worker or node dies is rerun up to `max_retries` times (-1: forever, Ray Data's own
    default); the predictions are committed once, after every batch is in. If Ray gives up, nothing is
    committed and PredictionError says why.
    """
    check_model(model)
    target = _target(source, dataset)
    ray = _ray()
    frames = to_ray(source, columns, batch_size, dataset=target)
    if isinstance(model_fn, type):
        kwargs = {"fn_constructor_args": (model_fn,), "concurrency": concurrency or 1,
                  "max_restarts": max_retries, "max_task_retries": max_retries}
        out = frames.map_batches(_Actor, batch_format="pyarrow", batch_size=batch_size, **kwargs)
    else:
        kwargs = {"concurrency": concurrency} if concurrency else {}
        fn = functools.partial(_call, model_fn)
        out = frames.map_batches(fn, batch_format="pyarrow", batch_size=batch_size, max_retries=max_retries, **kwargs)
    parts = [t for t in _gather(ray, out, f"predicting with {model}", PredictionError) if t.num_rows]
    empty = pa.table({"frame_id": pa.array([], pa.string())})
    table = pa.concat_tables(parts, promote_options="permissive") if parts else empty
    log.info("%s: %d predictions from %s over %d batches", target.name, table.num_rows, model, len(parts))
    return target.add_predictions(table, model=model, run_id=run_id, message=message)


class _HeaderBatch:
    """Reads the headers of one batch of objects inside a Ray worker, keeping each row's position.

    It carries the file system's protocol and options without secrets, never the file system
    itself: each worker reopens it with credentials from its own environment.
    """

    def __init__(self, fs: Any, hash: bool, block_size: int, threads: int):
        protocol = fs.protocol if isinstance(fs.protocol, str) else fs.protocol[0]
        self.protocol, self.options = protocol, without_secrets(dict(fs.storage_options))
        self.hash, self.block_size, self.threads = hash, block_size, threads
        self._fs: Any = None

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_fs": None}

    def __call__(self, batch: pa.Table) -> pa.Table:
        if self._fs is None:
            self._fs = open_filesystem(self.protocol, self.options, self.threads)
        out = read_headers(
            self._fs, batch.column("path").to_pylist(), batch.column("size").to_pylist(),
            hash=self.hash, block_size=self.block_size, threads=self.threads,
        )
        return out.append_column("_i", batch.column("_i"))


def ray_header_reader(
    hash: bool = False, block_size: int | None = None, threads: int = 8, batch_size: int = 256, max_retries: int = 3
) -> HeaderReader:
    """A header reader for frames.ingest that spreads batches of objects over Ray workers.

    A batch whose worker or node dies is reread up to `max_retries` times (-1: forever); if Ray gives
    up, IngestError says why and the ingest writes nothing."""

    def read(fs: Any, paths: list[str], sizes: list[int]) -> pa.Table:
        ray = _ray()
        items = pa.table(
            {"_i": pa.array(range(len(paths)), pa.int64()), "path": paths, "size": pa.array(sizes, pa.int64())}
        )
        reader = _HeaderBatch(fs, hash, block_size or DEFAULT_BLOCK, threads)
        blocks = ray.data.from_arrow(_blocks(items, batch_size))
        out = blocks.map_batches(reader, batch_format="pyarrow", batch_size=batch_size, max_retries=max_retries)
        table = pa.concat_tables(_gather(ray, out, f"reading {len(paths)} image headers", IngestError)).sort_by("_i")
        return table.drop_columns(["_i"])

    return read
