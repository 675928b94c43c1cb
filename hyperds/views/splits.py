"""Deterministic train/val/test splits, grouped by a frame column so no site or burst leaks across splits.

A group's split depends only on (seed, group key): u = BLAKE2b-64("<seed>\\x1f<key>") / 2**64 falls in
the cumulative fraction interval of one split. So a site keeps its split across view versions.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..errors import ViewError

GROUP_COLUMNS = ("site", "seq_id", "camera", "deployment")


@dataclass(frozen=True)
class SplitSpec:
    """Split frames by `by` (a frame column) into named `fractions` (in order, summing to 1), with `seed`."""

    by: str
    fractions: tuple[tuple[str, float], ...]
    seed: int = 0

    @classmethod
    def parse(cls, spec: SplitSpec | Mapping[str, object] | None) -> SplitSpec | None:
        """Accept a SplitSpec or {"by": "site", "fractions": {"train": .8, ...}, "seed": 0}."""
        if spec is None or isinstance(spec, SplitSpec):
            if spec is not None:
                spec._check()
            return spec
        if not isinstance(spec, Mapping) or set(spec) - {"by", "fractions", "seed"}:
            raise ViewError(
                f"split must be a dict with keys 'by', 'fractions', 'seed', e.g. "
                f"{{'by': 'site', 'fractions': {{'train': 0.8, 'val': 0.1, 'test': 0.1}}, 'seed': 0}}; got {spec!r}"
            )
        fractions = spec.get("fractions") or {"train": 0.8, "val": 0.1, "test": 0.1}
        if not isinstance(fractions, Mapping):
            raise ViewError(f"split fractions must map split name -> fraction, got {fractions!r}")
        try:
            pairs = tuple((str(k), float(v)) for k, v in fractions.items())
        except (TypeError, ValueError) as exc:
            raise ViewError(f"split fractions must be numbers, got {dict(fractions)!r}") from exc
        out = cls(str(spec.get("by", "")), pairs, spec.get("seed", 0))
        out._check()
        return out

    def _check(self) -> None:
        if self.by not in GROUP_COLUMNS:
            raise ViewError(f"split 'by' must be one of {', '.join(GROUP_COLUMNS)}, not {self.by!r}")
        names = [n for n, _ in self.fractions]
        if not names or len(set(names)) != len(names) or any(not n for n in names):
            raise ViewError(f"split names must be distinct and non-empty, got {names}")
        values = [f for _, f in self.fractions]
        if any(not (f > 0) for f in values) or not math.isclose(sum(values), 1.0, abs_tol=1e-9):
            raise ViewError(f"split fractions must be positive and sum to 1, got {dict(self.fractions)}")
        seed = self.seed
        if not isinstance(seed, int) or isinstance(seed, bool) or not -(2**63) <= seed < 2**63:
            raise ViewError(f"split seed must be an integer from -2**63 to 2**63-1 (stored as int64), got {seed!r}")

    def to_dict(self) -> dict[str, object]:
        return {"by": self.by, "fractions": dict(self.fractions), "seed": self.seed}

    def assign(self, keys: pa.Array, fallback: pa.Array) -> pa.Array:
        """Split name per row. A null group key makes the row its own group (keyed by `fallback`)."""
        keys = keys.combine_chunks() if isinstance(keys, pa.ChunkedArray) else keys
        fallback = fallback.combine_chunks() if isinstance(fallback, pa.ChunkedArray) else fallback
        own = pc.binary_join_element_wise(pa.scalar("\x00frame"), fallback.cast(pa.string()), "\x1f")
        keyed = pc.coalesce(keys.cast(pa.string()), own)
        encoded = pc.dictionary_encode(keyed)
        prefix = f"{self.seed}\x1f".encode()
        u = np.array(
            [
                int.from_bytes(hashlib.blake2b(prefix + k.encode(), digest_size=8).digest(), "big") / 2.0**64
                for k in encoded.dictionary.to_pylist()
            ],
            dtype=np.float64,
        )
        bounds = np.cumsum([f for _, f in self.fractions])
        bounds[-1] = np.inf  # rounding never leaves a group without a split
        group_split = np.searchsorted(bounds, u, side="right")
        names = pa.array([n for n, _ in self.fractions], pa.string())
        per_row = pc.take(pa.array(group_split, pa.int32()), encoded.indices)
        return pc.take(names, per_row)
