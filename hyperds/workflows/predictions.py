"""Model predictions as annotations: each run is one commit that replaces its model version's earlier output.

A prediction row is (frame_id, label, bbox, confidence[, count]); a row with a null label marks a frame
the model saw and found nothing on. Human annotations, and model ones a human reviewed, are never touched.
"""

from __future__ import annotations

import dataclasses
import re
import uuid
from typing import TYPE_CHECKING

import numpy as np
import polars as pl
import pyarrow as pa

from ..errors import PredictionError, SchemaError
from ..frames.normalize import FrameInput, bbox_out_of_range, to_arrow_table
from ..frames.rows import Snapshot
from ..frames.schema import BBOX_TYPE
from ..versioning.changes import cast_to, flatten_annotations
from ..versioning.commits import CommitResult, commit

if TYPE_CHECKING:
    from ..frames.table import FrameTable

PREDICTION_SCHEMA = pa.schema(
    [
        ("frame_id", pa.string()),
        ("label", pa.string()),
        ("bbox", BBOX_TYPE),
        ("confidence", pa.float32()),
        ("count", pa.int32()),
    ]
)
_MODEL = re.compile(r"^[^@\s]+@[^@\s]+$")


@dataclasses.dataclass(frozen=True)
class PredictionResult:
    """One prediction run: frames it covered, predictions added, earlier ones of the same model version replaced."""

    model: str
    run_id: str
    frames: int
    added: int
    replaced: int
    commit: CommitResult | None  # None when the run changed nothing


def check_model(model: str) -> str:
    """`model` if it reads name@version, else PredictionError."""
    if not isinstance(model, str) or not _MODEL.match(model):
        raise PredictionError(
            f"model {model!r} has no version; name it 'name@version' (e.g. 'megadetector@v5a') so its "
            "predictions can be told apart from, and replaced by, the same version's later runs"
        )
    return model


def normalize_predictions(predictions: FrameInput) -> pl.DataFrame:
    """Predictions in PREDICTION_SCHEMA plus `_row` (input position); malformed rows raise PredictionError."""
    try:
        table = to_arrow_table(predictions)
    except SchemaError as exc:
        raise PredictionError(f"predictions: {exc}; nothing was written") from exc
    if table.num_rows == 0:
        return pl.from_arrow(PREDICTION_SCHEMA.empty_table()).with_row_index("_row")
    unknown = sorted(set(table.column_names) - set(PREDICTION_SCHEMA.names))
    if unknown or "frame_id" not in table.column_names:
        raise PredictionError(
            f"prediction columns are {PREDICTION_SCHEMA.names} (frame_id required); got {table.column_names}"
        )
    cast, wrong = cast_to(table, PREDICTION_SCHEMA)
    if wrong:
        rows = [f"prediction row {i}: {problem}" for i, problem in wrong]
        raise PredictionError("predictions hold values of the wrong type; nothing was written", rows)
    df = pl.from_arrow(cast).with_row_index("_row")
    bbox = df["bbox"].to_arrow().cast(BBOX_TYPE)
    unlabeled = df["label"].is_null() & (df["bbox"].is_not_null() | df["confidence"].is_not_null())
    checks = [
        (df["frame_id"].is_null(), "frame_id is missing"),
        (unlabeled, "a box or confidence needs a label"),
        (((df["confidence"] < 0) | (df["confidence"] > 1)).fill_null(False), "confidence must lie in [0, 1]"),
        (
            pl.Series(np.asarray(bbox_out_of_range(bbox), dtype=bool)),
            "bbox lies outside [0, 1]: it must be normalised [x, y, w, h] with x + w <= 1 and y + h <= 1",
        ),
    ]
    for mask, problem in checks:
        _fail(mask.to_numpy(), problem)
    return df


def _fail(mask: np.ndarray, problem: str) -> None:
    rows = np.flatnonzero(mask)
    if len(rows):
        raise PredictionError(f"{problem}; nothing was written", [f"prediction row {i}" for i in rows.tolist()])


def add_predictions(
    table: FrameTable, predictions: FrameInput, model: str, run_id: str | None = None, message: str = ""
) -> PredictionResult:
    """Add `model`'s predictions as model annotations in one commit (see the module docstring).

    On every frame the run covers, the same model version's earlier unreviewed predictions are replaced.
    ann_ids are `<frame_id>:<model>:<run_id>:<n>`, so each annotation names the run that made it.
    """
    check_model(model)
    run_id = run_id or uuid.uuid4().hex[:12]
    preds = normalize_predictions(predictions)
    if preds.height == 0:
        return PredictionResult(model, run_id, 0, 0, 0, None)
    frame_ids = preds["frame_id"].unique().to_list()
    # A handle of its own: table.handle() moves to the latest version when reopened, the snapshot must not.
    snap = Snapshot.read(table.store.open_lance(table.name), frame_ids)
    rows = snap.rows
    found = pl.from_arrow(rows.select(["frame_id", "revision"]))
    unknown = preds.join(found, on="frame_id", how="anti")
    if unknown.height:
        raise PredictionError(
            f"predictions for frame(s) not in dataset {table.name!r}; nothing was written",
            [f"prediction row {r}: frame {f!r}" for r, f in unknown.select("_row", "frame_id").iter_rows()],
        )
    index = pl.from_arrow(rows.select(["frame_id"])).with_row_index("_f").with_columns(pl.col("_f").cast(pl.Int64))
    flat = flatten_annotations(rows).join(index, on="_f")
    old = flat.filter(
        (pl.col("source_kind") == "model") & (pl.col("source") == model) & (pl.col("review_status") == "unreviewed")
    )
    deletes = old.select("frame_id", "ann_id", op=pl.lit("delete"))
    new = preds.filter(pl.col("label").is_not_null())
    adds = new.with_columns(
        op=pl.lit("add"),
        ann_id=pl.concat_str(
            [pl.col("frame_id"), pl.lit(f":{model}:{run_id}:"), pl.int_range(pl.len()).over("frame_id").cast(pl.String)]
        ),
    ).drop("_row")
    changes = pl.concat([deletes, adds], how="diagonal_relaxed").join(found, on="frame_id", how="left")
    if changes.height == 0:
        return PredictionResult(model, run_id, len(frame_ids), 0, 0, None)
    result = commit(
        table,
        changes.to_arrow(),
        author=model,
        message=message or f"predictions of {model}, run {run_id}",
        source_kind="model",
        read=snap,
    )
    return PredictionResult(model, run_id, len(frame_ids), new.height, deletes.height, result)
