"""What an exporter reads: a View, Dataset or Query, described once and streamed in batches.

`describe` and `iter_batches` are the only places that touch the source's methods, so switching to
the FrameSource protocol (`to_batches`, `roots()`, `pins`) is a change here alone.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from ..errors import ExportError


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


def describe(source: Any) -> SourceInfo:
    """SourceInfo of a View, Dataset or Query (anything else is an ExportError)."""
    from ..dataset import Dataset
    from ..query.query import Query
    from ..versioning.views import View

    if isinstance(source, View):
        pins = dict(source.pins) if source.published else {d: source.store.dataset(d).version for d in source.datasets}
        split = source.split_spec
        return SourceInfo(
            kind="view", name=source.name, store=source.store, pins=pins, version=source.version,
            status=source.status, digest=source.digest, query=None if len(source.queries) > 1 else source.query,
            label_map=source.label_map, splits=[n for n, _ in split.fractions] if split else [],
            roots={d: source.store.dataset(d).root for d in pins}, view=source,
        )
    if isinstance(source, Query):
        table = source.table
        return SourceInfo(kind="query", name=table.name, store=table.store, pins={table.name: table.version},
                          query=source.sql, roots={table.name: table.root})
    if isinstance(source, Dataset):
        return SourceInfo(kind="dataset", name=source.name, store=source.store, pins={source.name: source.version},
                          roots={source.name: source.root})
    raise ExportError(f"cannot export a {type(source).__name__}; export a View, Dataset or Query")


def available_columns(source: Any) -> list[str]:
    """Column names the source's rows carry (frame columns, and a view's dataset/classes/split)."""
    from ..versioning.views import View

    if isinstance(source, View):
        names: list[str] = []
        for d in source.datasets:
            names += [n for n in source.store.dataset(d).schema.names if n not in names]
        return names + ["dataset", "classes", "split"]
    table = getattr(source, "table", source)
    return list(table.schema.names)


def iter_batches(source: Any, info: SourceInfo, columns: Sequence[str], batch_size: int) -> Iterator[pa.Table]:
    """The source's rows in order, `batch_size` at a time, with only `columns` (those it has), plus
    `dataset` (and null `classes`/`split` for a Dataset or Query)."""
    have = set(available_columns(source))
    cols = [c for c in dict.fromkeys(columns) if c in have and (info.kind == "view" or c not in ("dataset", "classes", "split"))]
    if hasattr(source, "to_batches"):
        batches: Iterator[Any] = source.to_batches(columns=cols, batch_size=batch_size)
    else:
        table = source.to_arrow(cols)
        batches = iter(table.to_batches(max_chunksize=batch_size)) if table.num_rows else iter(())
    for batch in batches:
        table = pa.Table.from_batches([batch]) if isinstance(batch, pa.RecordBatch) else batch
        if "dataset" not in table.column_names:
            table = table.append_column("dataset", pa.repeat(pa.scalar(info.name), table.num_rows))
        for name in ("classes", "split"):
            if name in columns and name not in table.column_names:
                typ = pa.list_(pa.string()) if name == "classes" else pa.string()
                table = table.append_column(name, pa.nulls(table.num_rows, typ))
        yield table


def count_rows(source: Any) -> int | None:
    """Rows to expect (for the progress bar), when the source knows without a scan."""
    try:
        return len(source) if not hasattr(source, "count") else int(source.count())
    except Exception:  # noqa: BLE001 - only a progress-bar total
        return None


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
