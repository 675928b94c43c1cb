"""Every exception a hyperds user can see, in one hierarchy rooted at HyperdsError.

Each message names what was wrong and what to do; a raising operation leaves the store as it was.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = [
    "ConflictError",
    "CorrectionError",
    "DatasetExistsError",
    "DatasetNotFoundError",
    "DuplicateFrameError",
    "EmbeddingError",
    "FrameNotFoundError",
    "HyperdsError",
    "ImageLoadError",
    "IngestError",
    "IntegrityError",
    "LoaderError",
    "MissingExtraError",
    "OutputError",
    "PredictionError",
    "QueryError",
    "SchemaError",
    "SelectionError",
    "SourceFormatError",
    "StoreError",
    "VersionNotFoundError",
    "ViewError",
    "ViewExistsError",
    "ViewImmutableError",
    "ViewNotFoundError",
]


class HyperdsError(Exception):
    """Root of every error hyperds raises on purpose."""


class StoreError(HyperdsError):
    """The store cannot be opened or written (bad URI, missing credentials, I/O failure)."""


class DatasetNotFoundError(HyperdsError, KeyError):
    """A dataset name that the store does not hold."""

    def __init__(self, name: str, existing: Sequence[str], store: str = ""):
        self.name = name
        self.existing = list(existing)
        listed = ", ".join(sorted(existing)) or "none yet"
        where = f" in store {store}" if store else ""  # so a mistyped store path shows
        super().__init__(
            f"dataset {name!r} does not exist{where}; existing datasets: {listed}. "
            f"Create it with store.create_dataset({name!r}) or `hyperds import ... --dataset {name}`."
        )

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


class VersionNotFoundError(HyperdsError):
    """A dataset version that does not exist (never written, or removed by cleanup); lists those available."""


class DatasetExistsError(HyperdsError):
    """create_dataset() with a name already taken."""


class SchemaError(HyperdsError):
    """Frames that do not fit the frames schema (missing column, wrong type, bad value)."""


class DuplicateFrameError(SchemaError):
    """The same frame_id appears more than once in one batch of input."""


class FrameNotFoundError(HyperdsError, KeyError):
    """A frame_id the dataset does not hold."""

    def __str__(self) -> str:
        return str(self.args[0])


class SourceFormatError(HyperdsError):
    """An import file that is malformed or breaks its format; names the file and the element."""

    def __init__(self, path: str, element: str | None, problem: str, hint: str = ""):
        self.path = str(path)
        self.element = element
        self.problem = problem
        where = f"{self.path}: {element}" if element else self.path
        text = f"{where}: {problem}"
        if hint:
            text += f" ({hint})"
        super().__init__(text)


class QueryError(HyperdsError):
    """A query that cannot be parsed, validated or run; points at the offending position."""

    def __init__(
        self,
        message: str,
        query: str = "",
        position: int | None = None,
        suggestions: Sequence[str] = (),
    ):
        self.message = message
        self.query = query
        self.position = position
        self.suggestions = list(suggestions)
        self.line, self.column = _line_col(query, position)
        super().__init__(self._render())

    def _render(self) -> str:
        text = self.message
        if self.suggestions:
            text += "; did you mean " + ", ".join(repr(s) for s in self.suggestions) + "?"
        if self.position is None or not self.query:
            return text
        lines = self.query.splitlines() or [""]
        src = lines[self.line - 1] if self.line - 1 < len(lines) else ""
        caret = " " * (self.column - 1) + "^"
        return f"{text} (line {self.line}, column {self.column})\n  {src}\n  {caret}"


def _line_col(query: str, position: int | None) -> tuple[int, int]:
    if position is None:
        return 0, 0
    before = query[:position]
    line = before.count("\n") + 1
    column = position - (before.rfind("\n") + 1) + 1
    return line, column


class ViewError(HyperdsError):
    """Base for view problems."""


class ViewNotFoundError(ViewError, KeyError):
    """An unknown view name or version; the message lists what exists."""

    def __str__(self) -> str:
        return str(self.args[0])


class ViewExistsError(ViewError):
    """Publishing a view version that already exists (or lost a concurrent publish race)."""


class ViewImmutableError(ViewError):
    """An edit to a published view version; publish a new version instead."""


class IntegrityError(HyperdsError):
    """Stored data no longer matches what was recorded (a digest mismatch, a missing version)."""


class CorrectionError(HyperdsError):
    """Annotation changes that cannot be applied; lists the offending rows."""

    def __init__(self, message: str, rows: Sequence[str] = ()):
        self.rows = list(rows)
        if self.rows:
            shown = "; ".join(self.rows[:20])
            more = f" (and {len(self.rows) - 20} more)" if len(self.rows) > 20 else ""
            message = f"{message}: {shown}{more}"
        super().__init__(message)


class ConflictError(HyperdsError):
    """A commit based on rows that changed since they were read; nothing was written."""

    def __init__(self, message: str, frame_ids: Sequence[str] = ()):
        self.frame_ids = list(frame_ids)
        super().__init__(message)


class OutputError(HyperdsError):
    """A result (CLI output file) that cannot be written where asked."""


class ImageLoadError(HyperdsError):
    """An image that cannot be fetched or decoded; names the frame and its URI."""

    def __init__(self, frame_id: str, uri: str, reason: str):
        self.frame_id = frame_id
        self.uri = uri
        self.reason = reason
        super().__init__(
            f"frame {frame_id!r} ({uri}): {reason}. "
            "Fix or remove the image, or pass on_error='skip' to skip and count such frames."
        )


class IngestError(HyperdsError):
    """Raw images that cannot be ingested (bad layout, unreadable listing)."""


class EmbeddingError(HyperdsError):
    """Embedding vectors that cannot be stored or searched (wrong shape, no embedding column, no vector)."""


class SelectionError(HyperdsError):
    """A review-queue or active-learning selection request that cannot be met (bad strategy, k, threshold)."""


class MissingExtraError(HyperdsError, ImportError):
    """A feature whose optional dependencies are not installed; names the extra to install (hyperds[torch], ...)."""

    def __init__(self, feature: str, extra: str, missing: str):
        self.extra = extra
        super().__init__(f"{feature} needs {missing}, which is not installed; install the extra: pip install 'hyperds[{extra}]'")


class LoaderError(HyperdsError):
    """A training loader that cannot be built as asked (unknown target or unit, a column it needs, labels)."""


class PredictionError(CorrectionError):
    """Model predictions that cannot be added (no model version, unknown frames, boxes outside the image)."""


class EvaluationError(HyperdsError):
    """A model evaluation that cannot run as asked (no predictions or truth in the view, an unknown class)."""
class ExportError(HyperdsError):
    """An export that cannot be written (unknown format, destination not empty, frames the format cannot hold)."""


class WorkflowError(HyperdsError):
    """A field workflow (repeat detections, sequence smoothing) asked with bad arguments or on data it cannot use."""


class PolicyError(HyperdsError):
    """A sensitive-data policy that is malformed, or cannot be applied as asked (unknown policy name)."""
