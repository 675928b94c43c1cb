"""`hyperds eval VIEW --version V --predictions MODEL@VERSION`: score a model on a pinned view."""

from __future__ import annotations

import argparse

from ..errors import EvaluationError
from ._common import FORMATS, json_arg, open_store, write_table


def unit_float(text: str) -> float:
    """argparse type for IoU, thresholds and precisions: a number in [0, 1]."""
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"must be a number in [0, 1], not {text!r}")
    return value


def register(sub: argparse._SubParsersAction) -> None:
    e = sub.add_parser(
        "eval",
        help="score a model's predictions against reviewed labels on a view version",
        description="Detection (per-class precision, recall, AP@0.5, COCO mAP@[.5:.95]), species presence per "
        "frame and per sequence, a confusion matrix and a confidence sweep for MODEL's predictions on view VIEW "
        "at --version. Truth: people's annotations and model annotations reviewed as accepted or corrected "
        "(rejected ones are the model's false positives). An evaluation of a published version is recorded in "
        "the audit (`hyperds audit runs`).",
    )
    e.add_argument("view", metavar="VIEW")
    e.add_argument("--version", help="view version (default: the latest published; 'draft' for the draft)")
    e.add_argument("--predictions", "-p", required=True, metavar="MODEL",
                   help="model source (e.g. MDv5a@5.0) or an annotation condition, e.g. \"source = 'x' AND "
                   "confidence >= 0.1\"")
    e.add_argument("--truth", metavar="CONDITION", help="annotation condition for the truth (default: see above)")
    e.add_argument("--iou", type=unit_float, default=0.5, help="IoU for precision/recall and the sweep (default: 0.5)")
    e.add_argument("--threshold", type=unit_float, default=0.5,
                   help="confidence a prediction needs to count in precision/recall and presence (default: 0.5)")
    e.add_argument("--target-precision", type=unit_float, default=0.98,
                   help="precision the suggested auto-accept threshold must reach (default: 0.98)")
    e.add_argument("--frames", choices=("reviewed", "all"), default="reviewed",
                   help="judge only frames someone reviewed, or every frame (default: reviewed)")
    e.add_argument("--no-rule-reviews", action="store_true",
                   help="leave acceptances by a confidence rule (reviewed_by auto:...) out of the truth")
    e.add_argument("--class-agnostic", action="store_true",
                   help="score every label as one class (a detector that finds animals, not species)")
    e.add_argument("--label-map", help="JSON object prediction label -> truth class, or a path to a .json file")
    e.add_argument("--output", "-o", metavar="DIR", help="write report.json and CSV tables into DIR")
    e.add_argument("--plots", action="store_true", help="also write PNG plots into DIR (needs hyperds[eval])")
    e.add_argument("--no-record", action="store_true", help="do not record the evaluation in the audit")
    e.add_argument("--format", choices=[f for f in FORMATS if f != "parquet"], default="table",
                   help="format of the per-class table printed (default: table)")
    e.set_defaults(func=_eval)


def _eval(args: argparse.Namespace) -> int:
    if args.plots and not args.output:
        raise EvaluationError("--plots writes PNG files into --output DIR; give --output")
    if args.plots:
        from ..evaluate.plots import pyplot

        pyplot()  # a missing extra fails here, before any work
    label_map = _label_map(args.label_map)
    view = open_store(args).view(args.view, args.version)
    report = view.evaluate(args.predictions, truth=args.truth, iou=args.iou, threshold=args.threshold,
                           target_precision=args.target_precision, frames=args.frames,
                           rule_reviews=not args.no_rule_reviews, label_map=label_map,
                           class_agnostic=args.class_agnostic, record=not args.no_record)
    print(report)
    write_table(report.detection, args.format)
    if args.output:
        written = report.save(args.output, plots=args.plots)
        print(f"wrote {len(written)} files into {args.output}")
    if "run_id" in report.meta:
        print(f"recorded as run {report.meta['run_id']} of {view.name} {view.version}")
    return 0


def _label_map(arg: str | None) -> dict[str, str] | None:
    value = json_arg(arg, "--label-map", EvaluationError)
    if value is not None and (
        not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items())
    ):
        raise EvaluationError("--label-map must be a JSON object of prediction label -> truth class (strings)")
    return value
