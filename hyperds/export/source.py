"""What an exporter reads: a FrameSource (View, Dataset or Query), described once and streamed in batches.

`describe` and `iter_batches` are the only places that read the source, and they call only the
FrameSource protocol (`describe()`, `pins`, `roots()`, `splits`, `label_map`, `column_names`, `to_batches`).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from ..errors import ExportError
from ..frames.schema import ANNOTATION_TYPE
from ..source import FrameSource, SourceBase, SourceDescription


@dataclass
class SourceInfo:
    """Who the rows come from (the source's own description), its pins, label mapping, splits and roots."""

    source: FrameSource
    described: SourceDescription
    pins: dict[str, int]
    label_map: dict[str, str] | None = None
    splits: list[str] = field(default_factory=list)
    roots: dict[str, str | None] = field(default_factory=dict)

    @property
    def kind(self) -> str:
        return self.described.kind

    @property
    def name(self) -> str:
        return self.described.name

    @property
    def store(self) -> Any:
        return self.source.store

    @property
    def datasets(self) -> list[str]:
        return list(self.pins)

    def provenance(self) -> dict[str, Any]:
        """The source part of every file set's provenance block."""
        d = self.described
        out: dict[str, Any] = {"kind": d.kind, "name": d.name}
        if d.kind == "view":
            out.update(view=d.name, version=d.version, status=d.status, digest=d.digest)
        if d.query is not None:
            out["query"] = d.query
        out["datasets"] = [{"name": n, "version": v} for n, v in self.pins.items()]
        return out


def describe(source: FrameSource) -> SourceInfo:
    """SourceInfo of a FrameSource (a View, Dataset or Query); anything else is an ExportError."""
    if isinstance(source, pa.Table) or not isinstance(source, SourceBase):
        raise ExportError(f"cannot export a {type(source).__name__}; export a View, Dataset or Query")
    pins, roots, splits = dict(source.pins), source.roots(), list(source.splits)
    label_map = None
    if source.label_map is not None:  # with unknown='keep' every label the source holds maps to itself
        seen = pc.list_flatten(source.to_arrow(columns=["labels"]).column("labels")).unique().to_pylist()
        label_map = source.label_map.as_dict(seen)
    return SourceInfo(source, source.describe(), pins, label_map, splits, roots)


def iter_batches(source: FrameSource, info: SourceInfo, columns: Sequence[str], batch_size: int) -> Iterator[pa.Table]:
    """The source's rows in order, `batch_size` at a time, with only `columns` (those it has), plus
    `dataset` (and null `classes`/`split` for a Dataset or Query)."""
    have = set(source.column_names)
    lacking = [c for c in ("frame_id", "uri") if c not in have]
    if lacking:
        raise ExportError(f"the {info.kind} {info.name!r} does not select {', '.join(lacking)}; an export needs "
                          "frame_id and uri (add them to the SELECT list)")
    cols = [c for c in dict.fromkeys(columns) if c in have]
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
