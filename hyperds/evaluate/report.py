"""The evaluation report: polars tables for people and code, one JSON document for the record.

`EvaluationReport.save(folder)` writes report.json and one CSV per table (and, with plots=True, the PNGs
of `plots.py`). The JSON holds everything but the exact sweep (one row per distinct score), which it
samples on a 0.01 grid; so reports of the same pinned data compare equal as text, apart from
`meta.run_id` (the audit record's id).
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from typing import Any

import polars as pl

from ..errors import HyperdsError

SCHEMA = "hyperds-evaluation/1"


@dataclasses.dataclass
class EvaluationReport:
    """Scores of one model on one pinned source (see hyperds.evaluate)."""

    meta: dict[str, Any]  # source, version, pins, predictions, truth, iou, threshold, counts
    detection: pl.DataFrame  # per class: truth, predicted, tp, fp, fn, precision, recall, ap50, ap
    summary: dict[str, Any]  # map50, map, blank accuracy, suggested threshold, ...
    presence: pl.DataFrame  # per species, per frame
    sequences: pl.DataFrame  # per species, per sequence
    confusion: pl.DataFrame
    sweep: pl.DataFrame  # exact: one row per distinct confidence
    sweep_grid: pl.DataFrame  # the same at 0.00, 0.01, ..., 1.00
    pr_curves: pl.DataFrame  # class, recall, precision at IoU 0.5 (COCO's 101 recall points)

    @property
    def table(self) -> pl.DataFrame:
        """The per-class detection table (what `hyperds eval` prints)."""
        return self.detection

    def metrics(self) -> dict[str, Any]:
        """The headline numbers (what the audit records)."""
        return {k: _clean(v) for k, v in self.summary.items()}

    def to_dict(self) -> dict[str, Any]:
        tables = {name: _rows(getattr(self, name)) for name in
                  ("detection", "presence", "sequences", "confusion", "sweep_grid", "pr_curves")}
        return {"schema": SCHEMA, "meta": _clean(self.meta), "summary": self.metrics(), **tables}

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, sort_keys=True)

    def save(self, folder: str | Path, plots: bool = False) -> list[Path]:
        """Write report.json, <table>.csv (and the PNG plots) into `folder`; returns the paths written."""
        out = Path(folder)
        try:
            out.mkdir(parents=True, exist_ok=True)
            written = [out / "report.json"]
            written[0].write_text(self.to_json() + "\n", encoding="utf-8")
            for name in ("detection", "presence", "sequences", "confusion", "sweep"):
                path = out / f"{name}.csv"
                getattr(self, name).write_csv(path)
                written.append(path)
        except OSError as exc:
            raise HyperdsError(f"cannot write the report into {out}: {exc.strerror or exc}") from exc
        if plots:
            from .plots import save_plots

            written += save_plots(self, out)
        return written

    def __str__(self) -> str:
        s = self.summary
        m = self.meta

        def f(v: Any) -> str:
            return "n/a" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.3f}"

        where = f"{m['source']} {m['version']}" if m.get("version") else m["source"]
        lines = [
            f"{m['predictions']} on {where}: {m['frames_judged']} of {m['frames']} frames judged, "
            f"{m['predictions_boxes']} predicted boxes, {m['truth_boxes']} truth boxes",
            f"mAP@0.5 {f(s['map50'])}  mAP@[.5:.95] {f(s['map'])}  "
            f"blank/non-blank accuracy {f(s['blank_accuracy'])} (frames), "
            f"{f(s['sequence_blank_accuracy'])} (sequences)",
            f"lowest confidence reaching precision {s['target_precision']}: {f(s['suggested_threshold'])}"
            f" (review share {f(s['review_share'])})",
        ]
        return "\n".join(lines)


def _rows(df: pl.DataFrame) -> list[dict[str, Any]]:
    return [_clean(r) for r in df.to_dicts()]


def _clean(value: Any) -> Any:
    """JSON-safe: NaN/inf become null, numpy scalars plain numbers, floats rounded to 12 digits."""
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()
    if isinstance(value, float):
        return None if not math.isfinite(value) else round(value, 12)
    return value
