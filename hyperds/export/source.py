"""What an exporter reads: a View, Dataset or Query, described once and streamed in batches.

`describe` and `iter_batches` are the only places that read the source, and they call only the
FrameSource protocol (`pins`, `roots()`, `splits`, `label_map`, `to_batches`).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from ..errors import ExportError
from ..frames.schema import ANNOTATION_TYPE
from ..source import FrameSource


@dataclass
class SourceInfo:
    """Who the rows come from: kind ('view' | 'dataset' | 'query'), names, pins and label mapping."""

    kind: str
    name: str
    store: Any
    pins: dict[str, int]
    version: str | None = None  # a view's version
    status: str | None = None  # a view's status (published | draft)
    digest: str | None = None
    query: str | None = None
    label_map: dict[str, str] | None = None
    splits: list[str] = field(default_factory=list)
    roots: dict[str, str | None] = field(default_factory=dict)
    view: Any = None  # the View, when the source is one (for record_run)

    @property
    def datasets(self) -> list[str]:
        return list(self.pins)

    def provenance(self) -> dict[str, Any]:
        """The source part of every file set's provenance block."""
        out: dict[str, Any] = {"kind": self.kind, "name": self.name}
        if self.kind == "view":
            out.update(view=self.name, version=self.version, status=self.status, digest=self.digest)
        if self.query is not None:
            out["query"] = self.query
        out["datasets"] = [{"name": d, "version": v} for d, v in self.pins.items()]
        return out


def describe(source: FrameSource) -> SourceInfo:
    """SourceInfo of a View, Dataset or Query, from the FrameSource protocol (anything else is an ExportError)."""
    from ..dataset import Dataset
    from ..query.query import Query
    from ..views.handle import View

    if not isinstance(source, (View, Dataset, Query)):
        raise ExportError(f"cannot export a {type(source).__name__}; export a View, Dataset or Query")
    pins, roots, splits = dict(source.pins), source.roots(), list(source.splits)
    label_map = None
    if source.label_map is not None:  # with unknown='keep' every label the source holds maps to itself
        seen = pc.list_flatten(source.to_arrow(columns=["labels"]).column("labels")).unique().to_pylist()
        label_map = source.label_map.as_dict(seen)
    if isinstance(source, View):
        return SourceInfo(
            kind="view", name=source.name, store=source.store, pins=pins, version=source.version,
            status=source.status, digest=source.digest, query=None if len(source.queries) > 1 else source.query,
            label_map=label_map, splits=splits, roots=roots, view=source,
        )
    (name,) = pins
    kind, query = ("query", source.sql) if isinstance(source, Query) else ("dataset", None)
    return SourceInfo(kind=kind, name=name, store=source.store, pins=pins, query=query, roots=roots)


def available_columns(source: FrameSource, info: SourceInfo) -> list[str]:
    """Column names the source's rows carry (frame columns at the pinned versions, a view's dataset/classes/split,
    a SELECT query's own columns)."""
    from ..query.query import Query
    from ..views.handle import View

    if isinstance(source, View):
        names: list[str] = []
        for d, pin in info.pins.items():
            names += [n for n in source.store.dataset(d).at(pin).schema.names if n not in names]
        return names + ["dataset", "classes", "split"]
    if isinstance(source, Query):
        return list(source.output_columns)
    return list(source.schema.names)


def iter_batches(source: FrameSource, info: SourceInfo, columns: Sequence[str], batch_size: int) -> Iterator[pa.Table]:
    """The source's rows in order, `batch_size` at a time, with only `columns` (those it has), plus
    `dataset` (and null `classes`/`split` for a Dataset or Query)."""
    have = set(available_columns(source, info))
    lacking = [c for c in ("frame_id", "uri") if c not in have]
    if lacking:
        raise ExportError(f"the {info.kind} {info.name!r} does not select {', '.join(lacking)}; an export needs "
                          "frame_id and uri (add them to the SELECT list)")
    cols = [c for c in dict.fromkeys(columns) if c in have and (info.kind == "view" or c not in ("dataset", "classes", "split"))]
    batches = source.to_batches(columns=cols, batch_size=batch_size)
    for batch in batches:
        table = pa.Table.from_batches([batch]) if isinstance(batch, pa.RecordBatch) else batch
        if "dataset" not in table.column_names:
            table = table.append_column("dataset", pa.repeat(pa.scalar(info.name), table.num_rows))
        for name in ("classes", "split", "annotations"):
            if name in columns and name not in table.column_names:
                typ = pa.string() if name == "split" else pa.list_(ANNOTATION_TYPE if name == "annotations" else pa.string())
                table = table.append_column(name, pa.nulls(table.num_rows, typ))
        yield table


def count_rows(source: FrameSource) -> int | None:
    """Rows to expect (for the progress bar)."""
    from ..query.query import Query

    return source.count() if isinstance(source, Query) else len(source)


def resolved_uris(table: pa.Table, roots: dict[str, str | None]) -> pa.Array:
    """Each row's uri made absolute against its dataset's root."""
    from ..frames.uris import resolve_uris

    uris = table.column("uri").combine_chunks()
    if not any(roots.values()):
        return resolve_uris(uris, None)
    ds = table.column("dataset").combine_chunks()
    out = resolve_uris(uris, None)
    for name, root in roots.items():
        if root:
            mask = pc.equal(ds, name)
            out = pc.if_else(mask, resolve_uris(uris, root), out)
    return out
