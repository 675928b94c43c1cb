"""FrameSource: the one interface every consumer of frames reads through.

A training loader, the Ray adapter, an export, an evaluation or a web page all need the same few
things from "some frames": the rows, where relative URIs point, which Lance versions were read, the
label map and classes, the splits, and the store to write back to. `Dataset`, `Query` and `View`
implement this protocol; consumers take a `FrameSource` (or, explicitly, a plain `pyarrow.Table` of
frames) and call only the members below, so a new kind of source (say, a remote view) plugs in by
implementing them, and no consumer probes its input with `getattr`/`hasattr`.

Besides the rows, a source says what it is (`describe()`: kind, name, version, digest, query; what
provenance records), which columns its rows carry (`column_names`), how many rows it has (`count()`),
gives itself fixed at the versions it reads (`pinned()`: an evaluation reads rows and history at the
same versions), and records a run that used it (`record_run`: only a published view can).

Rows carry at least `frame_id`, `uri`, `labels`, `annotations` and the frame fields; a View's rows
also carry `dataset` (which of its datasets a row came from), `classes` (labels after the label map)
and `split`. A Dataset or Query reads one dataset: its `roots()` and `pins` have one entry, its
`label_map` and `classes` are None and its `splits` are empty.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import pyarrow as pa

from .errors import ViewError

if TYPE_CHECKING:
    from .store import Store
    from .views.labelmap import LabelMap

__all__ = [
    "DEFAULT_BATCH_SIZE", "FrameSource", "SourceBase", "SourceDescription", "check_no_split", "no_runs",
    "read_present", "single_root",
]

DEFAULT_BATCH_SIZE = 65_536


@dataclass(frozen=True)
class SourceDescription:
    """What a source is, as provenance and the audit name it."""

    kind: str  # "view" | "dataset" | "query"
    name: str  # the view's name, else the one dataset's
    version: str | None = None  # a view's version ("draft" for a draft); None for a dataset or query
    status: str | None = None  # a view's status: "published" | "draft"
    digest: str | None = None  # a view's manifest digest (recorded when published)
    query: str | None = None  # the SQL selecting the rows (a query's; a view's when it has one sub-query)
    empty: str | None = None  # a view's rule for frames left without a class: "drop" | "keep"

    @property
    def published(self) -> bool:
        return self.status == "published"


class SourceBase:
    """The base class of every FrameSource implementation (Dataset, Query, View).

    It adds nothing; it lets a consumer refuse anything that is not a source by type
    (`isinstance(x, SourceBase)`): a runtime Protocol check would evaluate every property, and a view's
    `classes` resolves the whole view.
    """

    __slots__ = ()


class FrameSource(Protocol):
    """Frames that can be read, with what is needed to load and write back to them (see the module doc)."""

    @property
    def store(self) -> Store:
        """The Store the frames belong to: consumers inherit its storage options (credentials, endpoint)
        to fetch images, and write results (predictions, runs) back through it."""
        ...

    @property
    def pins(self) -> dict[str, int]:
        """Dataset name -> the Lance version read. Its keys are the datasets the source spans (so a
        consumer knows where to write back), its values what to record for reproducibility."""
        ...

    def to_arrow(self, columns: Sequence[str] | None = None, *, split: str | None = None) -> pa.Table:
        """The rows, projected to `columns` (None: all), only split `split` when given. Reading only
        the columns a consumer needs is what keeps a 10M-frame loader cheap to build."""
        ...

    def to_batches(
        self, columns: Sequence[str] | None = None, *, batch_size: int = DEFAULT_BATCH_SIZE, split: str | None = None
    ) -> Iterator[pa.RecordBatch]:
        """The same rows as to_arrow(), as record batches of at most `batch_size` rows, for consumers
        (exports, evaluation) that should not hold every row at once."""
        ...

    def roots(self) -> dict[str, str | None]:
        """Dataset name -> root that its relative `uri`s resolve against (None: URIs are absolute).
        One per dataset: a view over datasets stored in different places resolves each row by its
        `dataset` column (see single_root)."""
        ...

    @property
    def label_map(self) -> LabelMap | None:
        """How raw labels become classes (a Mapping, raw label -> class; None: no map). Box targets map
        each annotation's raw label through it; with unknown='keep' an unmapped label maps to itself."""
        ...

    @property
    def classes(self) -> list[str] | None:
        """Sorted class names (None: no label map; a consumer then takes every label seen). With a label
        map these are its targets, plus, with unknown='keep', every class the source holds in all its
        splits, so each split's loader numbers classes alike."""
        ...

    @property
    def splits(self) -> list[str]:
        """Split names to_arrow(split=...) accepts ([] when the source has no splits)."""
        ...

    @property
    def column_names(self) -> list[str]:
        """The columns its rows carry: the frame columns at the versions read (every dataset's, for a view),
        plus a view's `dataset`, `classes` and `split`; a SELECT query's own columns. Consumers project to
        what it has instead of asking for a column and catching the error."""
        ...

    def describe(self) -> SourceDescription:
        """What the source is (kind, name, version, status, digest, query): the provenance of what it gives."""
        ...

    def count(self) -> int:
        """How many rows it holds (a progress bar's total)."""
        ...

    def pinned(self) -> FrameSource:
        """The same rows fixed at the versions `pins` names, so reading rows, then history up to those
        versions, sees one state even while others write (a published view already is)."""
        ...

    def record_run(self, run_id: str, info: Mapping[str, Any] | None = None, user: str | None = None) -> None:
        """Record in the store's audit (`_runs`) that run `run_id` used these rows. Only a published view can
        (`describe().published`); any other source raises ViewError saying so."""
        ...


def read_present(source: FrameSource | pa.Table, columns: Sequence[str]) -> pa.Table:
    """The rows of `source` (or of a plain Arrow table) with those of `columns` it has; the others are left
    out, not errors (for consumers whose columns are optional, such as the field workflows and the policy)."""
    have = set(source.column_names)  # a pyarrow Table has column_names too
    wanted = [c for c in dict.fromkeys(columns) if c in have]
    if isinstance(source, pa.Table):
        return source.select(wanted)
    return source.to_arrow(columns=wanted)


def single_root(roots: Mapping[str, str | None]) -> tuple[bool, str | None]:
    """(True, root) when every dataset of `roots` resolves against one root, so rows need no `dataset`
    column to be resolved; else (False, None)."""
    distinct = set(roots.values())
    if len(distinct) <= 1:
        return True, next(iter(distinct), None)
    return False, None


def no_runs(what: str) -> ViewError:
    """The error record_run raises for a source that is not a published view."""
    return ViewError(f"{what}: runs are recorded against a published view version; publish a view and use it")


def check_no_split(what: str, split: str | None) -> None:
    """For a source without splits (a Dataset or Query): refuse any `split` with a ViewError saying how to get one."""
    if split is not None:
        raise ViewError(
            f"{what} has no split {split!r}: only a view has splits; create one with "
            "store.create_view(..., split={'by': ..., 'fractions': {...}}) and read it"
        )
