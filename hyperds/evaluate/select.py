"""Which annotations are the model's predictions, which are the truth, and which frames are judged.

Predictions: a model source (`"MDv5a@5.0"`: model annotations whose `source` is that, the restored ones
included) or an annotation condition in the query language (`"source = 'x' AND confidence >= 0.1"`, what
`any_annotation(...)` takes). Truth by default: people's annotations, and model annotations reviewed as
accepted or corrected; rejected ones are never truth, so the model's rejected boxes count as its false
positives. Judged frames: those someone reviewed (a truth annotation, or any reviewed, taken-over or
deleted annotation), since a frame nobody looked at says nothing about the model; `frames="all"`
judges every frame of the source (no truth = an empty image).
"""

from __future__ import annotations

import dataclasses
import re

import numpy as np
import polars as pl

from ..errors import EvaluationError, QueryError
from .source import Source

BLANK_LABELS = frozenset({"blank", "empty"})  # labels that say "no species" (Camtrap DP's observationType)
_CONDITION = re.compile(r"[\s=<>()!]")


@dataclasses.dataclass
class Sides:
    """Predictions and truth, each a flat frame of (_frame, label, bbox, confidence, ann_id)."""

    predictions: pl.DataFrame
    truth: pl.DataFrame
    judged: np.ndarray  # bool per source frame
    prediction_spec: str
    truth_spec: str


def condition_mask(annotations: pl.DataFrame, condition: str, what: str) -> pl.Series:
    """Rows of `annotations` where the annotation condition `condition` is TRUE (query-language text)."""
    from ..frames.schema import FRAMES_SCHEMA
    from ..query.ast import AnnotationPredicate
    from ..query.parse import parse
    from ..query.residual import mask
    from ..query.validate import validate

    text = f"any_annotation({condition})"
    try:
        where = validate(parse(text), FRAMES_SCHEMA, "annotations", text).where
    except QueryError as exc:
        raise EvaluationError(f"{what} condition {condition!r} is not an annotation condition: {exc}") from exc
    if not isinstance(where, AnnotationPredicate):
        raise EvaluationError(f"{what} condition {condition!r} must be one condition on annotation fields")
    data = annotations.drop("_frame", "_restored").to_arrow()
    return pl.Series(mask(where.cond, data).to_numpy(zero_copy_only=False))


def is_condition(spec: str) -> bool:
    """A condition always has a space, comparison or bracket; model sources rarely do (an exact one wins)."""
    return bool(_CONDITION.search(spec))


def split_sides(src: Source, predictions: str, truth: str | None, frames: str = "reviewed",
                rule_reviews: bool = True) -> Sides:
    """The predictions and truth of `src` (see the module docstring); EvaluationError when either is empty."""
    if not isinstance(predictions, str) or not predictions.strip():
        raise EvaluationError(f"predictions must name a model source such as 'MDv5a@5.0' or a condition, "
                              f"not {predictions!r}")
    if frames not in ("reviewed", "all"):
        raise EvaluationError(f"frames must be 'reviewed' or 'all', not {frames!r}")
    ann = src.annotations
    col = pl.col
    by_model = ann.select((col("source_kind") == "model") & (col("source") == predictions)).to_series()
    if is_condition(predictions) and not by_model.any():  # a source with spaces is still a source
        pmask = condition_mask(ann, predictions, "predictions")
    else:
        pmask = by_model
    rule = col("reviewed_by").str.starts_with("auto:").fill_null(False)
    counted_review = (col("review_status") != "unreviewed") & (pl.lit(rule_reviews) | ~rule)
    if truth is None:
        default = (col("review_status") != "rejected") & (
            (col("source_kind") == "human")
            | ((col("source_kind") == "model") & col("review_status").is_in(["accepted", "corrected"]) & counted_review)
        )
        tmask = ann.select(default & ~col("_restored")).to_series()
        truth_spec = "human annotations and model annotations reviewed as accepted or corrected" + (
            "" if rule_reviews else " by a person")
    else:
        tmask = condition_mask(ann, truth, "truth") & ~ann["_restored"]
        truth_spec = truth
    pmask, tmask = pmask.fill_null(False), tmask.fill_null(False)
    preds, gts = ann.filter(pmask), ann.filter(tmask)
    if preds.height == 0:
        raise EvaluationError(_no_predictions(src, predictions))
    if gts.height == 0:
        raise EvaluationError(
            f"{_where(src)} has no truth ({truth_spec}); review some of the model's annotations "
            "(ds.commit with op 'review', or `hyperds commit`) or pass truth=<annotation condition>"
        )
    n = src.frames.height
    if frames == "all":
        judged = np.ones(n, bool)
    else:
        reviewed = ann.filter(col("_restored") | counted_review.fill_null(False))["_frame"].to_numpy()
        judged = np.zeros(n, bool)
        judged[gts["_frame"].to_numpy()] = True
        judged[reviewed] = True
    keep = ["_frame", "ann_id", "label", "bbox", "confidence"]
    return Sides(preds.select(keep), gts.select(keep), judged, predictions, truth_spec)


def apply_label_maps(sides: Sides, view_map: dict[str, str] | None, label_map: dict[str, str] | None,
                     where: str) -> Sides:
    """The view's label map on both sides (unmapped labels dropped), then `label_map` on the predictions.

    `label_map` translates the model's vocabulary into the truth's (e.g. {"animal": "deer"}); a key the
    predictions never use or a target no truth annotation has is an error, not a silent no-op.
    """
    preds, gts = sides.predictions, sides.truth
    if view_map is not None:
        preds, gts = (_map(df, view_map, drop=True) for df in (preds, gts))
    if label_map:
        pred_labels = set(preds["label"].drop_nulls().unique().to_list())
        truth_labels = set(gts["label"].drop_nulls().unique().to_list())
        unknown_keys = sorted(k for k in label_map if k not in pred_labels)
        if unknown_keys:
            raise EvaluationError(f"label map names prediction label(s) {unknown_keys} that no prediction in {where} "
                                  f"has; the predictions' labels are {sorted(pred_labels)}")
        unknown = sorted({v for v in label_map.values() if v not in truth_labels})
        if unknown:
            raise EvaluationError(f"label map maps to class(es) {unknown} that no truth annotation in {where} has; "
                                  f"the truth's classes are {sorted(truth_labels)}")
        preds = _map(preds, label_map, drop=False)
    return dataclasses.replace(sides, predictions=preds, truth=gts)


def _map(df: pl.DataFrame, mapping: dict[str, str], drop: bool) -> pl.DataFrame:
    default = None if drop else pl.col("label")
    out = df.with_columns(label=pl.col("label").replace_strict(mapping, default=default, return_dtype=pl.String))
    return out.filter(pl.col("label").is_not_null()) if drop else out


def _where(src: Source) -> str:
    return src.where()


def _no_predictions(src: Source, predictions: str) -> str:
    models = (src.annotations.filter(pl.col("source_kind") == "model").group_by("source").len()
              .sort("len", descending=True))
    listed = ", ".join(f"{s} ({n})" for s, n in models.iter_rows()) or "none"
    return (f"no predictions match {predictions!r} in {_where(src)}; model sources there (annotations): {listed}. "
            "Add the model's output with ds.add_predictions(..., model='name@version') or pick one of those")
