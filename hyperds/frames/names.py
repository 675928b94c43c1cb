"""Which user column names a dataset accepts, checked before anything is written.

Lance reserves names starting with `_` (`_rowid`, `_rowaddr`, `_distance`, ...), treats `.` as a
path into a struct, and some of its readers cannot project an empty name or one with a backtick;
a column like that, once in the schema, breaks later reads and commits. hyperds also keeps names
starting with `_` for its own catalog tables and side columns. So new user columns are checked
here, by every path that can add one (add_frames, importers, ingest, create_dataset).
"""

from __future__ import annotations

from collections.abc import Iterable

from ..errors import SchemaError

MAX_NAME = 128
_FORBIDDEN = {"`": "a backtick", '"': "a double quote", ".": "a '.' (Lance reads it as a struct path)"}


def column_name_problem(name: object) -> str | None:
    """Why `name` cannot be a user column, or None when it can."""
    if not isinstance(name, str):
        return f"is a {type(name).__name__}, not a string"
    if not name:
        return "is empty"
    if len(name) > MAX_NAME:
        return f"is longer than {MAX_NAME} characters"
    if name.startswith("_"):
        return "starts with '_' (reserved by Lance and hyperds, e.g. _rowid, _rowaddr)"
    if name != name.strip():
        return "starts or ends with whitespace"
    for ch, what in _FORBIDDEN.items():
        if ch in name:
            return f"contains {what}"
    if any(ord(c) < 32 or ord(c) == 127 for c in name):
        return "contains a control character (NUL, newline, tab, ...)"
    return None


def check_column_names(names: Iterable[object], existing: Iterable[str] = ()) -> None:
    """Raise SchemaError naming every new user column name that a dataset cannot hold.

    `existing` are the dataset's columns: a new name that differs from one of them only in case
    is refused too, since SQL identifiers are matched without case.
    """
    existing = list(existing)
    lower = {e.lower(): e for e in existing}
    bad = []
    for name in names:
        if name in existing:
            continue
        problem = column_name_problem(name)
        if problem is None and isinstance(name, str) and name.lower() in lower:
            problem = f"differs only in case from the existing column {lower[name.lower()]!r}"
        if problem:
            bad.append(f"{name!r} {problem}")
    if bad:
        raise SchemaError(
            "invalid user column name(s): " + "; ".join(bad)
            + ". Rename them: a name is 1-128 characters, not starting with '_', without '.', '`', '\"' "
            "or control characters"
        )
