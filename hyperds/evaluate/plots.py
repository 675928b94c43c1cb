"""PNG plots of a report: precision-recall per class and the confusion matrix (matplotlib, extra `eval`).

matplotlib is imported only here and only when plotting, with the Agg backend (no display needed).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..errors import HyperdsError

if TYPE_CHECKING:
    from .report import EvaluationReport


def pyplot():
    """matplotlib.pyplot on the Agg backend, or a HyperdsError naming the extra to install."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise HyperdsError(
            "plots need matplotlib: pip install 'hyperds[eval]' (the report's tables and JSON do not)"
        ) from exc
    return plt


def save_plots(report: EvaluationReport, folder: Path) -> list[Path]:
    """pr_curves.png and confusion.png in `folder`."""
    plt = pyplot()
    paths = [folder / "pr_curves.png", folder / "confusion.png"]
    fig, ax = plt.subplots(figsize=(6, 5))
    for (cls,), part in report.pr_curves.group_by("class", maintain_order=True):
        ap = report.detection.filter(report.detection["class"] == cls)["ap50"].item()
        ax.plot(part["recall"], part["precision"], label=f"{cls} (AP@0.5 {ap:.3f})" if ap is not None else cls)
    ax.set(xlabel="recall", ylabel="precision", xlim=(0, 1), ylim=(0, 1.02))
    ax.set_title(f"{report.meta['predictions']}\nprecision-recall at IoU 0.5", fontsize="small")
    if len(report.pr_curves):
        ax.legend(loc="lower left", fontsize="small")
    fig.tight_layout()
    fig.savefig(paths[0], dpi=100)
    plt.close(fig)

    cm = report.confusion
    cells = cm.drop("truth").to_numpy()
    fig, ax = plt.subplots(figsize=(1.5 + 0.6 * cells.shape[1], 1.5 + 0.5 * cells.shape[0]))
    ax.imshow(np.log1p(cells), cmap="Blues")
    ax.set_xticks(range(cells.shape[1]), cm.columns[1:], rotation=45, ha="right")
    ax.set_yticks(range(cells.shape[0]), cm["truth"].to_list())
    for (i, j), v in np.ndenumerate(cells):
        ax.text(j, i, str(v), ha="center", va="center", fontsize="small")
    ax.set(xlabel="predicted", ylabel="truth", title="confusion (boxes)")
    fig.tight_layout()
    fig.savefig(paths[1], dpi=100)
    plt.close(fig)
    return paths
