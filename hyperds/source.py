"""FrameSource: the one interface every consumer of frames reads through.

A training loader, the Ray adapter, an export, an evaluation or a web page all need the same few
things from "some frames": the rows, where relative URIs point, which Lance versions were read, the
label map and classes, the splits, and the store to write back to. `Dataset`, `Query` and `View`
implement this protocol; consumers take a `FrameSource` (or, explicitly, a plain `pyarrow.Table` of
frames) and call only the members below, so a new kind of source (say, a remote view) plugs in by
implementing them, and no consumer probes its input with `getattr`/`hasattr`.

Rows carry at least `frame_id`, `uri`, `labels`, `annotations` and the frame fields; a View's rows
also carry `dataset` (which of its datasets a row came from), `classes` (labels after the label map)
and `split`. A Dataset or Query reads one dataset: its `roots()` and `pins` have one entry, its
`label_map` and `classes` are None and its `splits` are empty.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Protocol

import pyarrow as pa

from .errors import ViewError

if TYPE_CHECKING:
    from .store import Store
    from .views.labelmap import LabelMap

__all__ = ["FrameSource", "DEFAULT_BATCH_SIZE", "check_no_split", "single_root"]

DEFAULT_BATCH_SIZE = 65_536


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


def single_root(roots: Mapping[str, str | None]) -> tuple[bool, str | None]:
    """(True, root) when every dataset of `roots` resolves against one root, so rows need no `dataset`
    column to be resolved; else (False, None)."""
    distinct = set(roots.values())
    if len(distinct) <= 1:
        return True, next(iter(distinct), None)
    return False, None


def check_no_split(what: str, split: str | None) -> None:
    """For a source without splits (a Dataset or Query): refuse any `split` with a ViewError saying how to get one."""
    if split is not None:
        raise ViewError(
            f"{what} has no split {split!r}: only a view has splits; create one with "
            "store.create_view(..., split={'by': ..., 'fractions': {...}}) and read it"
        )
