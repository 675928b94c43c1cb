"""Active-learning selection: which frames people should label next.

`uncertainty` ranks by the model's confidence margin, `random` is a seeded sample, `diverse` is
greedy k-center over an embedding column (or, without one, a spread over sites, cameras and time).
Frames a person already reviewed or labelled are never selected; results are deterministic for a seed.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl
import pyarrow as pa

from ..errors import SelectionError
from ..frames.embeddings import EMBEDDING_COLUMN, embedding_columns
from ..query import ast as a
from ..versioning.changes import flatten_annotations
from .review import AUTO_REVIEWER_PREFIX, draft_view, view_name

if TYPE_CHECKING:
    from ..dataset import Dataset
    from ..frames.table import FrameTable

log = logging.getLogger(__name__)

STRATEGIES = ("uncertainty", "random", "diverse")

_RESULT_SCHEMA = pa.schema([("frame_id", pa.string()), ("rank", pa.int64()), ("score", pa.float64())])


def select(
    ds: Dataset,
    k: int = 100,
    strategy: str = "uncertainty",
    where: str | None = None,
    seed: int = 0,
    name: str | None = None,
    column: str = EMBEDDING_COLUMN,
) -> Any:
    """A draft view of the frames chosen by select_frames(), stored as `frame_id IN (...)`.

    A view stores a query, so the chosen set is pinned by id: it stays exactly these frames,
    whatever is reviewed or added later (rank order is in select_frames' result, not the view).
    """
    name = view_name(ds, name, f"select-{strategy}")
    chosen = select_frames(ds, k=k, strategy=strategy, where=where, seed=seed, column=column)
    return selection_view(ds, chosen, strategy, seed, where, name)


def selection_view(
    ds: Dataset, chosen: pa.Table, strategy: str, seed: int, where: str | None = None, name: str | None = None
) -> Any:
    """The draft view `name` (default `<dataset>-select-<strategy>`) holding exactly the `chosen` frames."""
    name = view_name(ds, name, f"select-{strategy}")
    if chosen.num_rows == 0:
        raise SelectionError(
            f"no frame of dataset {ds.name!r} is open for labelling"
            + (f" among those matching {where!r}" if where else "")
            + ": every frame is already reviewed or labelled by a person (or none match)"
        )
    ids = a.In(a.Column("frame_id"), tuple(a.Literal(f, a.STRING) for f in chosen.column("frame_id").to_pylist()))
    message = f"select {chosen.num_rows} frame(s) by {strategy} (seed {seed})" + (f" where {where}" if where else "")
    return draft_view(ds, name, a.to_sql(ids), message)


def select_frames(
    table: FrameTable,
    k: int = 100,
    strategy: str = "uncertainty",
    where: str | None = None,
    seed: int = 0,
    column: str = EMBEDDING_COLUMN,
) -> pa.Table:
    """The `k` frames to label next, best first: frame_id, rank (0 = first), score.

    score: the confidence margin (uncertainty), the distance to the frames already chosen
    (diverse over embeddings), or null (random, and diverse over metadata).
    """
    _check_args(table, k, strategy, seed, column)
    vectors = strategy == "diverse" and column in embedding_columns(table.schema)
    frames = candidates(table, where, [column] if vectors else [])
    if frames.height == 0:
        return _RESULT_SCHEMA.empty_table()
    if strategy == "uncertainty":
        order = frames.with_columns(_tiebreak(frames.height, seed)).sort(["margin", "_tie"])
        picked = order.head(k).select("frame_id", score=pl.col("margin"))
    elif strategy == "random":
        picked = frames.with_columns(_tiebreak(frames.height, seed)).sort("_tie").head(k).select(
            "frame_id", score=pl.lit(None, pl.Float64)
        )
    elif vectors:
        picked = _k_center(frames, k, seed, column)
    else:
        picked = _spread(frames, k, seed)
    picked = picked.with_columns(rank=pl.int_range(pl.len(), dtype=pl.Int64), score=pl.col("score").cast(pl.Float64))
    return picked.select("frame_id", "rank", "score").to_arrow().cast(_RESULT_SCHEMA)


def candidates(table: FrameTable, where: str | None = None, columns: list[str] | None = None) -> pl.DataFrame:
    """Frames open for labelling (matching `where`, none reviewed or labelled by a person), sorted by frame_id.

    Columns: frame_id, site, camera, captured_at, `columns`, margin (the smallest |2·confidence − 1| of
    the frame's live model annotations; 0 for a model annotation without confidence; 1 without any).
    """
    wanted = ["frame_id", "site", "camera", "captured_at", *(columns or []), "annotations"]
    # One read: Dataset.query (query layer) when there is a `where`.
    data = (table.query(where) if where else table).to_arrow(wanted)  # type: ignore[attr-defined]
    per_ann = flatten_annotations(data).select(
        pl.col("_f").cast(pl.Int64).alias("i"),
        "source_kind",
        "review_status",
        "reviewed_by",
        pl.col("confidence").cast(pl.Float64),
    )
    by_person = (pl.col("source_kind") == "human") | (
        (pl.col("review_status") != "unreviewed")
        & ~pl.col("reviewed_by").fill_null("").str.starts_with(AUTO_REVIEWER_PREFIX)
    )
    model_live = (pl.col("source_kind") == "model") & (pl.col("review_status") != "rejected")
    margin = (2 * pl.col("confidence") - 1).abs().fill_null(0.0)
    per_frame = per_ann.group_by("i").agg(
        person=by_person.any(), margin=margin.filter(model_live).min()
    )
    frames = (
        pl.from_arrow(data.drop_columns(["annotations"]))
        .with_row_index("i")
        .with_columns(pl.col("i").cast(pl.Int64))
        .join(per_frame, on="i", how="left")
        .filter(~pl.col("person").fill_null(False))
        .with_columns(pl.col("margin").fill_null(1.0))
        .drop("i", "person")
        .sort("frame_id")
    )
    return frames


def _check_args(table: FrameTable, k: int, strategy: str, seed: int, column: str) -> None:
    if strategy not in STRATEGIES:
        raise SelectionError(f"unknown selection strategy {strategy!r}; choose one of {', '.join(STRATEGIES)}")
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k < 2**31:
        raise SelectionError(f"k must be a positive integer (frames to select), not {k!r}")
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**32:
        raise SelectionError(f"seed must be an integer from 0 to 2**32 - 1, not {seed!r}")
    have = embedding_columns(table.schema)
    if strategy == "diverse" and column != EMBEDDING_COLUMN and column not in have:
        raise SelectionError(
            f"dataset {table.name!r} has no embedding column {column!r} (embedding columns: {have or 'none'}); "
            "pass one of those as column=, or add vectors with ds.add_embeddings(frame_ids, vectors, model=...)"
        )


def _tiebreak(n: int, seed: int) -> pl.Series:
    """A seeded random key per candidate (candidates are sorted by frame_id, so this is reproducible)."""
    return pl.Series("_tie", np.random.default_rng(seed).permutation(n))


def _k_center(frames: pl.DataFrame, k: int, seed: int, column: str) -> pl.DataFrame:
    """Greedy k-center (Gonzalez) over the `column` vectors of `frames` (sorted by frame_id): a seeded
    first pick, then always the frame farthest from all picks."""
    with_vector = frames.filter(pl.col(column).is_not_null())
    skipped = frames.height - with_vector.height
    if skipped:
        log.warning("diverse selection: %d candidate frame(s) have no %r vector and were skipped", skipped, column)
    if with_vector.height == 0:
        log.warning("diverse selection: no candidate has a %r vector; spreading over sites, cameras and time", column)
        return _spread(frames, k, seed)
    ids = with_vector["frame_id"].to_arrow()
    vectors = with_vector[column].to_numpy().astype(np.float64)
    n = len(ids)
    first = int(np.random.default_rng(seed).integers(n))
    picks, scores = [first], [np.inf]
    nearest = ((vectors - vectors[first]) ** 2).sum(axis=1)
    for _ in range(min(k, n) - 1):
        nxt = int(np.argmax(nearest))  # ties: the first in frame_id order
        picks.append(nxt)
        scores.append(float(np.sqrt(nearest[nxt])))
        nearest = np.minimum(nearest, ((vectors - vectors[nxt]) ** 2).sum(axis=1))
    return pl.DataFrame(
        {"frame_id": pl.from_arrow(ids.take(pa.array(picks))), "score": pl.Series(scores, dtype=pl.Float64)}
    ).with_columns(pl.when(pl.col("score").is_infinite()).then(None).otherwise(pl.col("score")).alias("score"))


def _spread(frames: pl.DataFrame, k: int, seed: int) -> pl.DataFrame:
    """Round-robin over sites, then over each site's cameras, then over each camera's time span.

    Within a camera, frames sorted by time are taken in bit-reversed order (first, middle,
    quarters, ...) from a seeded starting point, so the first picks spread across the whole span.
    """
    rng = np.random.default_rng(seed)
    df = frames.select("frame_id", "site", "camera", "captured_at").sort(
        ["site", "camera", "captured_at", "frame_id"], nulls_last=True
    )
    cams = df.select("site", "camera").unique(maintain_order=True)
    cams = cams.with_columns(
        offset=pl.Series(rng.integers(0, 2**31, cams.height)),
        cam_order=pl.Series(rng.permutation(cams.height)),
    )
    sites = df.select("site").unique(maintain_order=True)
    sites = sites.with_columns(site_order=pl.Series(rng.permutation(sites.height)))
    df = df.join(cams, on=["site", "camera"], how="left", nulls_equal=True).join(
        sites, on="site", how="left", nulls_equal=True
    )
    df = df.with_columns(
        j=pl.int_range(pl.len()).over(["site", "camera"]), n=pl.len().over(["site", "camera"])
    ).with_columns(pos=((pl.col("j") + pl.col("offset")) % pl.col("n")))
    bits = np.ceil(np.log2(np.maximum(df["n"].to_numpy(), 1))).astype(np.int64)
    time_key = _bit_reverse(df["pos"].to_numpy().astype(np.int64), bits)
    df = df.with_columns(time_key=pl.Series(time_key))
    df = df.with_columns(time_rank=pl.col("time_key").rank("ordinal").over(["site", "camera"]).cast(pl.Int64))
    df = df.with_columns(cam_rank=pl.col("cam_order").rank("dense").over("site").cast(pl.Int64))
    df = df.with_columns(in_site=pl.col("time_rank") * (cams.height + 1) + pl.col("cam_rank"))
    df = df.with_columns(site_round=pl.col("in_site").rank("ordinal").over("site").cast(pl.Int64))
    return df.sort(["site_round", "site_order"]).head(k).select("frame_id", score=pl.lit(None, pl.Float64))


def _bit_reverse(values: np.ndarray, bits: np.ndarray) -> np.ndarray:
    """Reverse the lowest `bits` bits of each value (vectorised)."""
    out = np.zeros_like(values)
    v = values.copy()
    for b in range(int(bits.max(initial=0))):
        active = b < bits
        out = np.where(active, (out << 1) | (v & 1), out)
        v = np.where(active, v >> 1, v)
    return out
