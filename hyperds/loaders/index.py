"""The loader's index arrays: a source's Arrow frames turned into flat numpy indices, with no per-row objects.

Built once per loader with vectorised Arrow compute: class ids per frame (a CSR list), annotation
boxes per frame, and sequence (burst) membership. Forked workers share these pages unchanged.
(Not the view manifest: that is views.manifest.) Internal to hyperds.loaders.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc

from ..errors import LoaderError

if TYPE_CHECKING:
    from ..source import FrameSource


def read_rows(source: FrameSource | pa.Table, columns: Sequence[str] | None, split: str | None = None) -> pa.Table:
    """The rows a loader indexes: `source.to_arrow(columns, split=split)` (or a plain Arrow table of frames,
    taken as it is), projected to `columns`, one chunk per column (see column())."""
    if isinstance(source, pa.Table):
        if split is not None:
            raise LoaderError("split= needs a view with splits; a plain Arrow table has none")
        table = source
    else:
        try:
            read = source.to_arrow
        except AttributeError:
            raise LoaderError(
                f"cannot load frames from {type(source).__name__}: pass a FrameSource (a Dataset, Query or View) "
                "or a pyarrow Table of frames"
            ) from None
        table = read(None if columns is None else list(columns), split=split)
    if columns is None:
        return table.combine_chunks()  # one chunk per column: see column()
    missing = [c for c in columns if c not in table.column_names]
    if missing:
        raise LoaderError(
            f"the frames manifest lacks column(s) {missing} (it has {table.column_names}); "
            "select them in the view or query, or choose another target/unit"
        )
    return table.select(list(columns)).combine_chunks()


def column(table: pa.Table, name: str) -> pa.Array:
    """A column of a combined table as one Array, without copying it again."""
    chunked = table.column(name)
    return chunked.chunk(0) if chunked.num_chunks == 1 else chunked.combine_chunks()


def _csr_offsets(parents: np.ndarray, n: int) -> np.ndarray:
    """Offsets [n + 1] of a list whose items (sorted by parent) belong to rows `parents`."""
    offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.bincount(parents, minlength=n), out=offsets[1:])
    return offsets


@dataclass
class Classes:
    """How raw labels become class indices: a label map and/or class list, else every label seen."""

    names: list[str] | None  # index -> class name (None: a label map straight to indices)
    _keys: pa.Array  # raw labels that map to a class
    _key_class: np.ndarray  # class index of each key, then -1 for "not mapped"

    @classmethod
    def build(
        cls,
        label_map: Mapping[str, str | int] | None,
        classes: Sequence[str] | None,
        observed: pa.Array,
    ) -> Classes:
        if label_map:
            values = list(label_map.values())
            if all(isinstance(v, (int, np.integer)) for v in values):
                names = list(classes) if classes is not None else None
                key_class = [int(v) for v in values]
                cls._check_indices(label_map, names)
            else:
                names = list(classes) if classes is not None else sorted({str(v) for v in values})
                index = {n: i for i, n in enumerate(names)}
                key_class = [index.get(str(v), -1) for v in values]
            keys = pa.array([str(k) for k in label_map], pa.string())
        else:
            if classes is not None:
                names = list(classes)
            else:
                names = sorted(v for v in pc.unique(observed.cast(pa.string())).to_pylist() if v is not None)
            keys = pa.array(names, pa.string())
            key_class = list(range(len(names)))
        return cls(names, keys, np.asarray(key_class + [-1], dtype=np.int64))

    @staticmethod
    def _check_indices(label_map: Mapping[str, int], names: list[str] | None) -> None:
        bad = [k for k, v in label_map.items() if v < 0 or (names is not None and v >= len(names))]
        if bad:
            allowed = f"0..{len(names) - 1} (the positions in classes)" if names is not None else ">= 0"
            raise LoaderError(
                f"label_map maps {', '.join(f'{k!r} to {label_map[k]}' for k in bad[:5])}; class indices must be "
                f"{allowed}: fix the label_map or pass classes= listing every class"
            )

    @property
    def count(self) -> int:
        if self.names is not None:
            return len(self.names)
        return int(self._key_class.max()) + 1 if len(self._key_class) > 1 else 0

    @property
    def merges(self) -> bool:
        """True when two raw labels map to one class (so a frame's classes may repeat)."""
        mapped = self._key_class[self._key_class >= 0]
        return len(np.unique(mapped)) < len(mapped)

    def ids(self, labels: pa.Array) -> np.ndarray:
        """Class index of each label; -1 where the label maps to no class."""
        position = pc.fill_null(pc.index_in(labels.cast(pa.string()), value_set=self._keys), -1)
        return self._key_class[position.to_numpy(zero_copy_only=False)]


def frame_classes(labels: pa.Array, classes: Classes) -> tuple[np.ndarray, np.ndarray]:
    """(offsets [n+1], class ids): the distinct classes of each frame's labels, as a CSR list."""
    n = len(labels)
    labels = pc.fill_null(labels, pa.scalar([], labels.type)) if labels.null_count else labels
    offsets = labels.offsets.to_numpy().astype(np.int64)
    ids = classes.ids(labels.values.slice(offsets[0], offsets[-1] - offsets[0]))
    offsets -= offsets[0]
    keep = ids >= 0
    if not keep.all():  # labels outside the label map / class list: drop them, shift the offsets
        kept_before = np.zeros(len(ids) + 1, np.int64)
        np.cumsum(keep, out=kept_before[1:])
        ids, offsets = ids[keep], kept_before[offsets]
    if classes.merges:  # two labels of one frame may now be the same class
        width = classes.count + 1
        parents = np.repeat(np.arange(n, dtype=np.int64), np.diff(offsets))
        pairs = np.unique(parents * width + ids)
        ids = pairs % width
        offsets = _csr_offsets(pairs // width, n)
    return offsets, ids


@dataclass
class Boxes:
    """Annotation boxes kept for training, ordered by frame: frame row, normalised xywh, class id."""

    frame: np.ndarray  # int64 [m]
    xywh: np.ndarray  # float32 [m, 4]
    cls: np.ndarray  # int64 [m]
    offsets: np.ndarray  # int64 [n + 1]: boxes of frame r are offsets[r]:offsets[r + 1]


def boxes(annotations: pa.Array, classes: Classes, keep: pc.Expression | None) -> Boxes:
    """The boxes of not-rejected annotations with a bbox, a mapped label and `keep` true (e.g. confidence)."""
    n = len(annotations)
    flat = pc.list_flatten(annotations)
    table = pa.Table.from_batches([pa.RecordBatch.from_struct_array(flat)])
    table = table.append_column("_frame", pc.list_parent_indices(annotations))
    wanted = pc.field("bbox").is_valid() & (
        pc.field("review_status").is_null() | (pc.field("review_status") != "rejected")
    )
    if keep is not None:
        wanted = wanted & keep
    try:
        table = table.filter(wanted)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, TypeError) as exc:
        raise LoaderError(
            f"box filter {keep} cannot be evaluated on annotations ({exc}); use pyarrow.compute "
            "expressions over annotation fields, e.g. pc.field('confidence') >= 0.9"
        ) from exc
    cls = classes.ids(table.column("label").combine_chunks())
    mapped = cls >= 0
    frame = table.column("_frame").to_numpy()[mapped].astype(np.int64)
    xywh = pc.list_flatten(table.column("bbox").combine_chunks()).to_numpy(zero_copy_only=False)
    xywh = xywh.reshape(-1, 4)[mapped].astype(np.float32)
    return Boxes(frame, xywh, cls[mapped], _csr_offsets(frame, n))


def sequences(seq_id: pa.Array, frame_num: pa.Array | None) -> tuple[np.ndarray, np.ndarray]:
    """(offsets [s+1], frame rows): bursts in seq_id order, frames by frame_num; a frame without seq_id is alone."""
    n = len(seq_id)
    num = pl.Series(frame_num).fill_null(0) if frame_num is not None else pl.zeros(n, eager=True)
    frames = pl.DataFrame({"seq": pl.Series(seq_id.cast(pa.string())), "num": num}).with_row_index("row")
    frames = frames.sort(["seq", "num", "row"], nulls_last=True)
    seq = frames["seq"]
    starts = (seq != seq.shift(1)).fill_null(True) | seq.is_null()
    return np.r_[np.flatnonzero(starts.to_numpy()), n].astype(np.int64), frames["row"].to_numpy().astype(np.int64)
