"""Label maps: many source labels -> one training class, with an explicit rule for labels not in the map.

unknown="drop" removes unmapped labels, "keep" passes them through as their own class, "error" refuses
to resolve while any frame carries one. With a map, a frame left without any class is not in the view.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from functools import cached_property

import polars as pl
import pyarrow as pa

from ..errors import ViewError

UNKNOWN_POLICIES = ("drop", "keep", "error")


@dataclass(frozen=True)
class LabelMap(Mapping[str, str]):
    """Source label -> class name, and what to do with labels the map does not name.

    Read as a Mapping it answers the rule itself: with unknown='keep' any label not in the map maps
    to itself (`len` and iteration cover only the map's own entries).
    """

    mapping: tuple[tuple[str, str], ...]
    unknown: str = "drop"

    @classmethod
    def parse(cls, label_map: Mapping[str, str] | LabelMap | None, unknown: str = "drop") -> LabelMap | None:
        if unknown not in UNKNOWN_POLICIES:
            raise ViewError(f"unknown_labels must be one of {', '.join(UNKNOWN_POLICIES)}, not {unknown!r}")
        if label_map is None or isinstance(label_map, LabelMap):
            return label_map
        if not isinstance(label_map, Mapping) or not label_map:
            raise ViewError(f"label_map must be a non-empty dict of source label -> class, got {label_map!r}")
        bad = [(k, v) for k, v in label_map.items() if not isinstance(k, str) or not isinstance(v, str) or not v]
        if bad:
            raise ViewError(f"label_map keys and values must be non-empty strings; bad entries: {bad[:5]}")
        return cls(tuple(sorted(label_map.items())), unknown)

    def as_dict(self, seen: Iterable[str | None] = ()) -> dict[str, str]:
        """The map as a dict; with unknown='keep', plus every label of `seen` not in it, mapped to itself
        (the one place the keep rule is spelled out: View.classes and the loaders use it)."""
        out = dict(self.mapping)
        if self.unknown == "keep":
            out.update({s: s for s in seen if s is not None and s not in out})
        return out

    @cached_property
    def _dict(self) -> dict[str, str]:
        return dict(self.mapping)

    def __getitem__(self, label: str) -> str:
        if label in self._dict:
            return self._dict[label]
        if self.unknown == "keep" and isinstance(label, str):
            return label
        raise KeyError(label)

    def __contains__(self, label: object) -> bool:
        return label in self._dict or (self.unknown == "keep" and isinstance(label, str))

    def __iter__(self) -> Iterator[str]:
        return iter(self._dict)

    def __len__(self) -> int:
        return len(self._dict)

    @property
    def targets(self) -> list[str]:
        """The sorted distinct classes the map names."""
        return sorted(set(self._dict.values()))

    def apply(self, labels: pa.ChunkedArray | pa.Array) -> pa.Array:
        """Map a list<string> column of source labels to sorted, distinct class lists (vectorised)."""
        old = [s for s, _ in self.mapping]
        new = [t for _, t in self.mapping]
        series = pl.Series("labels", labels).cast(pl.List(pl.String))
        if self.unknown == "error":
            self._check_known(series, set(old))
        if self.unknown == "keep":
            mapped = pl.element().replace(old, new)
        else:
            mapped = pl.element().replace_strict(old, new, default=None, return_dtype=pl.String)
        out = series.list.eval(mapped.drop_nulls().unique().sort())
        return out.to_arrow().cast(pa.list_(pa.string()))

    @staticmethod
    def _check_known(series: pl.Series, known: set[str]) -> None:
        flat = series.explode().drop_nulls()
        unknown = flat.filter(~flat.is_in(list(known))).value_counts(sort=True)
        if unknown.height:
            listed = ", ".join(f"{r[0]!r} ({r[1]} frames)" for r in unknown.head(20).iter_rows())
            raise ViewError(
                f"labels not in the label map: {listed}. Map them, or pass unknown_labels='drop' or 'keep'"
            )
