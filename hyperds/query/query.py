"""Query: a parsed, validated, planned selection of a dataset's frames, run lazily.

Construction reads only the schema (so errors come before any data is read); every result method
runs the Lance scan with the pushed filter, then the exact residual (annotation terms answered by
the side table when one matches the version and pays), then order and limit. With no residual and
the default (or frame_id) order, LIMIT/OFFSET go to Lance as a top-k on frame_id, and only the rows
kept are read whole. `to_batches` streams.
"""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import polars as pl
import pyarrow as pa
import pyarrow.compute as pc

from .. import consumers, storage
from ..errors import QueryError
from ..source import DEFAULT_BATCH_SIZE, SourceBase, SourceDescription, check_no_split, no_runs
from . import ast as a
from .lance_sql import all_of, isin
from .parse import Statement, parse
from .normalize import bounded, normalize
from .plan import Plan, SideTerm, plan
from .residual import CMP, mask
from .rules import CURRENT_RULE, apply_rule, check_rule
from .sidecar import open_annotation_table
from .validate import validate

if TYPE_CHECKING:
    from ..export import ExportResult
    from ..frames.table import FrameTable
    from ..storage import Handle
    from ..store import Store

# Up to this many frame ids from the side table are pushed to Lance as `frame_id IN (…)` (BTREE).
_IN_LIST_LIMIT = 500


class Query(SourceBase):
    """Frames of `table` selected by `text` (a boolean expression or SELECT … FROM <dataset> …).

    A FrameSource (hyperds.source) over its one dataset."""

    # When the pushdown alone keeps at most this many frames, scanning their nested annotation
    # lists is cheaper than asking the side table (tunable; 0 = always use a side table built).
    nested_limit: int = 5_000

    def __init__(self, table: FrameTable, text: str, rule: int = CURRENT_RULE):
        self.table = table
        self.text = text
        self.rule = check_rule(rule)  # the rejected-annotations rule (rules.py); views pin theirs
        with bounded(text):  # too deep a nesting is a positioned QueryError, not a RecursionError
            statement = validate(parse(text), table.schema, table.name, text)
            where = apply_rule(normalize(statement.where), rule)
            self.statement: Statement = dataclasses.replace(statement, where=where)
            self.plan: Plan = plan(self.statement.where)

    def __repr__(self) -> str:
        return f"Query({self.table.name!r}, {self.sql!r})"

    # -- text --------------------------------------------------------------------------------
    @property
    def sql(self) -> str:
        """Canonical text of the query: the same for the same query whatever its spacing or case."""
        st = self.statement
        where = a.to_sql(st.where) if st.where is not None else ""
        if not st.is_select:
            return where or "TRUE"
        cols = ", ".join(a.to_sql(c) for c in st.select) if st.select else "*"
        text = f"SELECT {cols} FROM {a.to_sql(a.Column(self.table.name))}"
        text += f" WHERE {where}" if where else ""
        if st.order:
            text += " ORDER BY " + ", ".join(a.to_sql(k.column) + (" DESC" if k.descending else "") for k in st.order)
        text += f" LIMIT {st.limit}" if st.limit is not None else ""
        text += f" OFFSET {st.offset}" if st.offset else ""
        return text

    @property
    def output_columns(self) -> list[str]:
        """Columns to_arrow() returns by default: the SELECT list, or every column."""
        if self.statement.select:
            return [c.name for c in self.statement.select]
        return list(self.table.schema.names)

    # -- running -------------------------------------------------------------------------------
    def to_arrow(self, columns: Sequence[str] | str | None = None, *, split: str | None = None) -> pa.Table:
        """Matching frames, ordered by ORDER BY (then frame_id), or by frame_id; LIMIT/OFFSET applied.

        `columns` (a list, or one name) overrides output_columns; a query has no `split`."""
        check_no_split(f"query {self.sql!r}", split)
        lds = self._lance()  # one snapshot for the whole read
        out = [columns] if isinstance(columns, str) else list(columns) if columns is not None else self.output_columns
        self._check_columns(out, storage.schema(lds).names)
        st = self.statement
        if self._limit_pushes_down():
            return self._top(lds, out)
        order = [k.column.name for k in st.order]
        table = self._scan(lds, _unique(["frame_id"] + out + order))
        table = table.take(_order(table, st)) if table.num_rows else table
        if st.offset or st.limit is not None:
            table = table.slice(st.offset, st.limit)
        return table.select(out)

    def to_polars(self, columns: list[str] | str | None = None) -> pl.DataFrame:
        return pl.from_arrow(self.to_arrow(columns))

    def to_batches(
        self, columns: Sequence[str] | str | None = None, batch_size: int = DEFAULT_BATCH_SIZE, *, split: str | None = None
    ) -> Iterator[pa.RecordBatch]:
        """Matching frames as a stream of record batches (at most `batch_size` rows each), read from one snapshot.

        Without ORDER BY / LIMIT / OFFSET the batches come in storage order as Lance scans them (the
        residual is applied per batch; nothing is held beyond one batch); their union is to_arrow()'s rows.
        With them, the ordered (LIMIT: pushed-down) result is cut into batches.
        """
        check_no_split(f"query {self.sql!r}", split)
        if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
            raise QueryError(f"batch_size must be a positive integer, not {batch_size!r}")
        st = self.statement
        if st.order or st.limit is not None or st.offset:
            yield from self.to_arrow(columns).to_batches(max_chunksize=batch_size)
            return
        lds = self._lance()
        out = [columns] if isinstance(columns, str) else list(columns) if columns is not None else self.output_columns
        self._check_columns(out, storage.schema(lds).names)
        pushdown, residual, ids, _ = self._prepare(lds)
        read = _unique(["frame_id"] + out + (sorted(a.frame_columns(residual)) if residual is not None else []))
        _, batches = storage.scan.batches(lds, read, pushdown, batch_size)
        for batch in batches:
            if residual is not None:
                batch = batch.filter(mask(residual, batch))
            if ids is not None:
                batch = batch.filter(_member(pa.chunked_array([batch.column("frame_id")]), ids))
            for start in range(0, batch.num_rows, batch_size):  # Lance may hand out larger batches
                yield batch.slice(start, batch_size).select(out)

    def frame_ids(self) -> pa.Array:
        """frame_id of every matching frame, in result order."""
        return self.to_arrow(["frame_id"]).column("frame_id").combine_chunks()

    def count(self) -> int:
        """Number of matching frames (after LIMIT/OFFSET)."""
        st, lds = self.statement, self._lance()
        if self.plan.residual is None:
            n = storage.scan.count(lds, self.plan.pushdown)
        else:  # no sort needed to count: OFFSET/LIMIT only cut the number
            n = self._scan(lds, ["frame_id"]).num_rows
        n = max(n - st.offset, 0)
        return n if st.limit is None else min(n, st.limit)

    def export(self, format: str, dest: str, **options: Any) -> ExportResult:
        """Write the matching frames to `dest` (folder or s3:// prefix) as `format` (camtrap-dp, coco-ct,
        megadetector, yolo, csv), with provenance; see hyperds.export.export for the options (the export
        package sits above the query engine: its entry point is registered in hyperds.consumers)."""
        return consumers.call("export", self, format, dest, **options)

    def explain(self) -> str:
        """The pushed Lance filter, the residual, the side-table use and Lance's physical plans."""
        p = self.plan
        lds = self._lance()
        residual = a.to_sql(p.residual) if p.residual is not None else "(none)"
        needed = _unique(["frame_id"] + self._residual_columns())
        lines = [
            f"query:     {self.sql}",
            f"pushdown:  {p.pushdown or '(none: full scan)'}",
            f"prefilter: {p.prefilter or '(none)'}",
            f"residual:  {residual}",
            f"rejected:  {_rule_line(self.statement.where, self.rule)}",
        ]
        lines += [f"  {a.to_sql(term)} is exactly {text} (labels lists annotations not rejected)"
                  for term, text in p.via_labels]
        side = self._side_table(lds)
        version = storage.version(lds)
        if self._limit_pushes_down():
            st = self.statement
            lines.append(f"limit:     pushed to Lance: top {st.offset + st.limit} by frame_id, then whole rows by id")
        if p.side and side is None:
            lines.append(f"side table: not used for frames version {version} (none built for it, or the "
                         f"pushdown keeps at most {self.nested_limit} frames); annotation terms scan nested lists")
        elif side is not None:
            left = p.without_side()
            lines.append(f"side table: annotations side table (built from frames version {version}) answers:")
            lines += [f"  {a.to_sql(t.term)}  via filter {t.filter or '(all annotations)'}" for t in p.side]
            lines.append(f"residual after side table: {a.to_sql(left) if left is not None else '(none)'}")
            for t in p.side:
                plan = storage.scan.explain(side, ["frame_id"], t.filter)
                lines += ["side table plan:", *("  " + line for line in plan.strip().splitlines())]
            needed = _unique(["frame_id"] + (sorted(a.frame_columns(left)) if left is not None else []))
            if p.prefilter:
                lines.append(f"lance filter with the side table: {p.exact or '(none)'} (its frame ids replace the prefilter)")
        pushdown = p.exact if side is not None else p.pushdown
        lance_plan = storage.scan.explain(lds, needed, pushdown)
        lines += ["lance plan:", *("  " + line for line in lance_plan.strip().splitlines())]
        return "\n".join(lines)

    # -- FrameSource (hyperds.source): one dataset, no label map, no splits ---------------------
    @property
    def store(self) -> Store:
        return self.table.store

    @property
    def pins(self) -> dict[str, int]:
        return {self.table.name: self.table.version}

    def roots(self) -> dict[str, str | None]:
        return {self.table.name: self.table.root}

    label_map: None = None
    classes: None = None

    @property
    def splits(self) -> list[str]:
        return []

    @property
    def column_names(self) -> list[str]:
        return list(self.output_columns)

    def describe(self) -> SourceDescription:
        return SourceDescription("query", self.table.name, query=self.sql)

    def pinned(self) -> Query:
        """This query over its dataset fixed at the version it reads now."""
        table = self.table if self.table.pinned_version is not None else self.table.at(self.table.version)
        return self if table is self.table else Query(table, self.text, self.rule)

    def record_run(self, run_id: str, info: Mapping[str, Any] | None = None, user: str | None = None) -> None:
        raise no_runs(f"query {self.sql!r} on dataset {self.table.name!r}")

    # -- internals -----------------------------------------------------------------------------
    def _check_columns(self, names: list[str], have: list[str]) -> None:
        unknown = [n for n in names if n not in have]
        if unknown:
            close = difflib.get_close_matches(unknown[0], have, n=3, cutoff=0.6)
            raise QueryError(f"unknown column {unknown[0]!r} asked for; columns are {', '.join(have)}",
                             suggestions=close)

    def _residual_columns(self) -> list[str]:
        return sorted(a.frame_columns(self.plan.residual)) if self.plan.residual is not None else []

    def _side_table(self, lds: Handle) -> Handle | None:
        """The side table for this version, when it pays: not when the pushdown alone keeps few frames."""
        if not self.plan.side:
            return None
        side = open_annotation_table(self.table, storage.version(lds))
        if side is not None and self.plan.pushdown and storage.scan.count(lds, self.plan.pushdown) <= self.nested_limit:
            return None
        return side

    def _lance(self) -> Handle:
        return self.table.handle()

    def _limit_pushes_down(self) -> bool:
        """LIMIT goes to Lance when nothing is checked after the scan and the order is frame_id's."""
        st = self.statement
        by_frame_id = not st.order or st.order[0].column.name == "frame_id"
        return st.limit is not None and self.plan.residual is None and by_frame_id

    def _top(self, lds: Handle, columns: list[str]) -> pa.Table:
        """The LIMIT/OFFSET rows in frame_id order: a Lance top-k over frame_id alone, then those rows taken whole."""
        st = self.statement
        descending = bool(st.order) and st.order[0].descending
        n = st.offset + st.limit
        ids = storage.scan.top_row_ids(lds, "frame_id", n, self.plan.pushdown, descending) if n else pa.array([], pa.uint64())
        return storage.scan.take_row_ids(lds, ids[st.offset:], columns=_unique(columns)).select(columns)

    def _prepare(self, lds: Handle) -> tuple[str | None, a.Node | None, pa.Array | None, pa.Array | None]:
        """(Lance filter, residual, frame ids rows must be among, frame ids that alone answer the query).

        When the annotation side table matches the version read, it answers the annotation terms
        it can (a set of frame ids) and only the rest of the residual is evaluated after the scan.
        """
        pushdown, residual = self.plan.pushdown, self.plan.residual
        side = self._side_table(lds)
        if side is None:
            return pushdown, residual, None, None
        ids = _side_frames(side, self.plan.side)
        residual = self.plan.without_side()
        pushdown = self.plan.exact  # the side table's frame ids are exact: the label prefilters would only cost
        answer = ids if residual is None and pushdown is None else None
        if len(ids) <= _IN_LIST_LIMIT:
            return all_of(pushdown, isin("frame_id", ids.to_pylist())), residual, None, answer
        return pushdown, residual, ids, answer

    def _scan(self, lds: Handle, columns: list[str]) -> pa.Table:
        """`columns` (frame_id first, plus what the residual reads) of the rows passing the pushed
        filter and the residual, filtered batch by batch as they stream."""
        pushdown, residual, ids, answer = self._prepare(lds)
        if answer is not None and columns == ["frame_id"]:
            return pa.table({"frame_id": answer})
        if residual is None:
            table = storage.scan.read(lds, columns=columns, filter=pushdown)
        else:
            schema, batches = storage.scan.batches(lds, _unique(columns + sorted(a.frame_columns(residual))), pushdown)
            table = pa.Table.from_batches([b.filter(mask(residual, b)) for b in batches], schema=schema)
        return table if ids is None else table.filter(_member(table.column("frame_id"), ids))


def _member(values: pa.ChunkedArray, ids: pa.Array) -> pa.Array:
    """values ∈ ids, hashing the smaller side (a few scanned frames against many side-table ids)."""
    values = values.combine_chunks()
    if len(values) < len(ids):
        ids = pc.filter(ids, pc.is_in(ids, value_set=pc.unique(values)))
    return pc.is_in(values, value_set=ids)


def _side_frames(side: Handle, terms: tuple[SideTerm, ...]) -> pa.Array:
    """Frame ids meeting every side term (count of matching annotations `op` n), each once."""
    ids = None
    for term in terms:
        hits = storage.scan.read(side, columns=["frame_id"], filter=term.filter).column("frame_id")
        if (term.op, term.n) == (">=", 1):
            found = pc.unique(hits)
        else:
            counts = pc.value_counts(hits)
            ok = CMP[term.op](counts.field("counts"), term.n)
            found = pc.filter(counts.field("values"), ok)
        found = found.combine_chunks() if isinstance(found, pa.ChunkedArray) else found
        ids = found if ids is None else pc.filter(ids, pc.is_in(ids, value_set=found))
    return ids


def _rule_line(where: a.Node | None, rule: int) -> str:
    """What explain() says about rejected annotations: which annotation functions skip them."""
    funcs = [n for n in a.walk(where) if isinstance(n, (a.AnnotationPredicate, a.AnnotationCount))] if where else []
    if rule < CURRENT_RULE:
        return f"rule {rule}: annotation functions see rejected annotations (a view published before the rule)"
    if not funcs:
        return f"rule {rule}: no annotation function"
    seeing = sum(not f.skip_rejected for f in funcs)
    text = f"rule {rule}: annotation functions skip rejected annotations"
    return text + (f"; {seeing} of {len(funcs)} name review_status and see them all" if seeing else "")


def _unique(names: list[str]) -> list[str]:
    return list(dict.fromkeys(names))


def _order(table: pa.Table, st: Statement) -> pa.Array:
    """Row order: ORDER BY keys (NULLs sort as the smallest value), then frame_id."""
    if not st.order:  # frame_id is unique: any sort gives one order; polars' is ~1.5x pyarrow's here
        return pl.Series(table.column("frame_id")).arg_sort().to_arrow()
    keys = dict.fromkeys(k.column.name for k in st.order)
    desc = {}
    for k in st.order:
        desc.setdefault(k.column.name, k.descending)
    keys.setdefault("frame_id")
    names = list(keys)
    flags = [desc.get(n, False) for n in names]
    df = pl.from_arrow(table.select(names)).with_row_index("__row")
    return df.sort(names, descending=flags, nulls_last=flags)["__row"].to_arrow()
