"""Views: named, versioned selections of frames, pinned when published. One concept per module:

- `handle`: the View (a FrameSource) and create / open / list.
- `spec`: what a view selects (sub-queries, datasets, label map, split, empty policy), validated.
- `codec`: a spec and its pins to and from a `_views` row.
- `catalog`: the `_views` and `_runs` tables, names and version numbers.
- `publish`: pin, digest and record a version (the tag lock).
- `manifest`: resolve a spec to its rows at pinned versions, and the digest.
- `audit`: verify a published version, record and list the runs that used one.
- `identity`: each pinned dataset's id, so a re-created dataset is never read as the pinned one.
- `checks`: column types must agree across a view's datasets.
- `labelmap`, `splits`, `diff`: label maps, deterministic splits, differences between versions.
- `cleanup`: remove old Lance versions, never one a published view pins.

Internal: reach views through Store and View (hyperds exports them).
"""

__all__: list[str] = []
