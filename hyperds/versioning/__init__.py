"""Versioning: corrections as commits (`changes`, `commits`) and their history (`history`).

Views (pinned, named selections over these versions) are the package above, hyperds.views; the
workflows that decide corrections (review, select, predictions, ...) are hyperds.workflows.
Internal: reach these through Dataset (hyperds exports it).
"""

__all__: list[str] = []
