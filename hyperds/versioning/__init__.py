"""Versioning: commits and history, views (catalog, manifest, label maps, splits), workflows (review,
select, predictions) and cleanup.

Internal: reach these through Store, Dataset and View (hyperds exports them); the modules here move
as the layout settles.
"""

__all__: list[str] = []
