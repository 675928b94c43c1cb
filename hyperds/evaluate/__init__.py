"""Evaluate a model against reviewed labels on pinned data: `hyperds.evaluate(view, "MDv5a@5.0")`.

One module per concept: `source` (the pinned rows, with the model's output restored where people took
it over), `select` (predictions, truth, judged frames), `matching` + `ap` (COCO matching and AP),
`detection`, `presence` (frames and sequences), `confusion`, `sweep`, `report` (tables + JSON) and
`plots` (matplotlib, extra `eval`). The package itself is callable, so `hyperds.evaluate(...)` works
while `hyperds.evaluate.matching` stays importable.
"""

from __future__ import annotations

import dataclasses
import logging
import sys
import types
import uuid
from typing import Any

import numpy as np
import polars as pl

from ..errors import EvaluationError
from .confusion import confusion
from .detection import detect
from .matching import RECALL_THRESHOLDS, Boxes
from .presence import presence, sequence_units, species_pairs
from .report import EvaluationReport
from .select import BLANK_LABELS, Sides, apply_label_maps, split_sides
from .source import Source, bbox_array, read_source
from .sweep import GRID, sweep

log = logging.getLogger(__name__)

__all__ = ["EvaluationReport", "evaluate"]
AGNOSTIC = "object"  # the one class of a class-agnostic evaluation


def evaluate(
    on: Any,
    predictions: str,
    truth: str | None = None,
    iou: float = 0.5,
    threshold: float = 0.5,
    target_precision: float = 0.98,
    frames: str = "reviewed",
    rule_reviews: bool = True,
    label_map: dict[str, str] | None = None,
    class_agnostic: bool = False,
    max_dets: int | None = 100,
    record: bool = True,
    run_id: str | None = None,
) -> EvaluationReport:
    """Score `predictions` against `truth` on `on` (a View, Dataset or Query), at the versions it pins.

    predictions: a model source (`"MDv5a@5.0"`, or an importer's detector name) or an annotation
      condition (`"source = 'MDv5a@5.0' AND confidence >= 0.1"`). truth: None = people's annotations and
      model annotations reviewed as accepted or corrected (rejected ones count as the model's false
      positives), else an annotation condition. iou: the IoU for precision/recall, the confusion matrix
      and the sweep (AP uses COCO's own thresholds). threshold: the confidence a prediction needs to
      count in precision/recall, presence and confusion. frames: "reviewed" judges only frames someone
      reviewed; "all" every frame. rule_reviews=False leaves acceptances by a rule (`auto:...`) out of
      the truth (they are the model's own confidence). label_map maps prediction labels to truth
      classes. class_agnostic=True scores every label as one class, "object" (a detector such as
      MegaDetector finds animals, while people label species). A published view's evaluation is
      recorded in the store's audit (`record=False`: not).

    A view made with the default `empty="drop"` leaves out frames whose every label was rejected, and with
    them those false positives: evaluate on a view created with `empty="keep"` (a warning says so).
    """
    for name, value in (("iou", iou), ("threshold", threshold), ("target_precision", target_precision)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
            raise EvaluationError(f"{name} must be a number in [0, 1], not {value!r}")
    if iou == 0:
        raise EvaluationError("iou must be above 0: boxes that do not overlap never match")
    src = read_source(on)
    if src.is_view and src.described.empty == "drop":
        log.warning("view %r %s drops frames whose labels were all rejected, and with them the model's false "
                    "positives there; create the view with empty='keep' to count them", src.name, src.version)
    where = src.where()
    sides = split_sides(src, predictions, truth, frames, rule_reviews)
    sides = apply_label_maps(sides, src.label_map, label_map, where)
    if class_agnostic:
        sides = dataclasses.replace(sides, predictions=_one_class(sides.predictions), truth=_one_class(sides.truth))
    report = _score(src, sides, iou, threshold, target_precision, max_dets, class_agnostic)
    if record and src.described.published:
        run_id = run_id or f"eval-{uuid.uuid4().hex[:12]}"
        src.source.record_run(run_id, info={"kind": "evaluation", "model": predictions, "truth": sides.truth_spec,
                                      "iou": iou, "threshold": threshold, "class_agnostic": class_agnostic,
                                      "metrics": report.metrics()})
        report.meta["run_id"] = run_id
    return report


def _score(src: Source, sides: Sides, iou: float, threshold: float, target: float,
           max_dets: int | None, class_agnostic: bool) -> EvaluationReport:
    n_frames = src.frames.height
    judged = sides.judged
    image_of = np.cumsum(judged) - 1  # source frame -> judged image index
    preds_j = sides.predictions.filter(pl.Series(judged[sides.predictions["_frame"].to_numpy()]))
    truth_j = sides.truth.filter(pl.Series(judged[sides.truth["_frame"].to_numpy()]))
    labels = pl.concat([preds_j["label"], truth_j["label"]]).drop_nulls().unique().sort().to_list()
    code = {c: i for i, c in enumerate(labels)}

    def boxes(df: pl.DataFrame, scored: bool) -> Boxes:
        df = df.filter(pl.col("bbox").is_not_null() & pl.col("label").is_not_null())
        score = df["confidence"].cast(pl.Float64).fill_null(1.0).to_numpy() if scored else None
        cls = df["label"].replace_strict(code, return_dtype=pl.Int64).to_numpy()
        return Boxes(image_of[df["_frame"].to_numpy()].astype(np.int64), cls, bbox_array(df["bbox"]), score)

    pb, tb = boxes(preds_j, True), boxes(truth_j, False)
    det = detect(pb, tb, labels, iou, threshold, max_dets)
    frame_units = np.where(judged, image_of, -1)
    pres = presence(species_pairs(preds_j, frame_units, threshold), species_pairs(truth_j, frame_units, None),
                    int(judged.sum()))
    seq_unit, n_seq = sequence_units(src.frames, judged)
    seqs = presence(species_pairs(preds_j, seq_unit, threshold), species_pairs(truth_j, seq_unit, None), n_seq)
    # Sweep over the boxes of the judged frames; review load over every frame of the source.
    hit = det.matches.truth[det.iou_index] >= 0
    kept_scores = pb.score[det.matches.kept]
    frame_min = (sides.predictions.group_by("_frame")
                 .agg(pl.col("confidence").cast(pl.Float64).fill_null(-1.0).min())["confidence"].to_numpy())
    exact = sweep(kept_scores, hit, len(tb), frame_min, n_frames, target)
    grid = sweep(kept_scores, hit, len(tb), frame_min, n_frames, target, GRID)
    pr = [
        pl.DataFrame({"class": [c] * len(RECALL_THRESHOLDS), "recall": RECALL_THRESHOLDS,
                      "precision": det.curves.precision[0, :, k]})
        for k, c in enumerate(labels) if det.curves.truth[k] > 0
    ]
    pr_curves = pl.concat(pr) if pr else pl.DataFrame(schema={"class": pl.String, "recall": pl.Float64,
                                                               "precision": pl.Float64})
    meta = {
        "source": src.name, "version": src.version, "pins": src.pins, "predictions": sides.prediction_spec,
        "truth": sides.truth_spec, "class_agnostic": class_agnostic, "iou": iou, "threshold": threshold,
        "max_dets": max_dets,
        "frames": n_frames, "frames_judged": int(judged.sum()), "sequences_judged": n_seq,
        "predictions_boxes": len(pb), "truth_boxes": len(tb),
        "predictions_total": preds_j.height, "truth_total": truth_j.height,
    }
    summary = {
        "map50": det.map50, "map": det.map, "blank_accuracy": pres.blank_accuracy,
        "sequence_blank_accuracy": seqs.blank_accuracy, "target_precision": target,
        "suggested_threshold": exact.threshold, "review_share": exact.review_share,
        "precision": _ratio(det.table["tp"].sum(), det.table["tp"].sum() + det.table["fp"].sum()),
        "recall": _ratio(det.table["tp"].sum(), len(tb)),
    }
    return EvaluationReport(meta, det.table, summary, pres.table, seqs.table,
                            confusion(pb, tb, labels, iou, threshold), exact.table, grid.table, pr_curves)


def _one_class(df: pl.DataFrame) -> pl.DataFrame:
    blank = pl.col("label").str.to_lowercase().is_in(list(BLANK_LABELS))
    return df.with_columns(label=pl.when(pl.col("label").is_null() | blank).then(pl.col("label"))
                           .otherwise(pl.lit(AGNOSTIC)))


def _ratio(a: int, b: int) -> float | None:
    return float(a) / float(b) if b else None


class _CallableModule(types.ModuleType):
    """Lets `hyperds.evaluate(...)` call the function although `hyperds.evaluate` is this package."""

    def __call__(self, *args: Any, **kwargs: Any) -> EvaluationReport:
        return evaluate(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
