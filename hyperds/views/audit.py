"""Audit of published views: `verify` re-resolves a version at its pins and says what differs from the
recorded count and digest (and which dataset and sub-query); `record_run` / `runs` keep the `_runs`
catalog of who used which version (training runs, exports, evaluations).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from .. import storage
from ..errors import IntegrityError, ViewError
from ..query.lance_sql import all_of, eq
from . import catalog as cat
from .codec import now
from .manifest import DIGEST_COLUMNS, digest, resolve

if TYPE_CHECKING:
    from ..store import Store
    from .spec import ViewSpec


@dataclass(frozen=True)
class VerifyReport:
    """What verify() found: ok, the problems (each a sentence), and the recorded vs re-resolved values."""

    view: str
    version: str
    recorded_digest: str
    actual_digest: str | None
    recorded_count: int
    actual_count: int | None
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def __str__(self) -> str:
        head = f"view {self.view} {self.version}: " + ("OK" if self.ok else "FAILED")
        head += f" ({self.recorded_count} frames, digest {self.recorded_digest[:16]}…)"
        return "\n".join([head, *(f"  problem: {p}" for p in self.problems), *(f"  warning: {w}" for w in self.warnings)])

    def raise_for_problems(self) -> None:
        if self.problems:
            raise IntegrityError(str(self))


def verify(store: Store, row: dict[str, Any], spec: ViewSpec, confirm_pins: Callable[[], object]) -> VerifyReport:
    """Re-resolve published `row` at its pins and compare with its recorded count and digest. `confirm_pins`
    raises IntegrityError when a pinned dataset is no longer the one recorded (views.identity)."""
    name, version, pins = row["name"], row["version"], {d["dataset"]: d["version"] for d in row["datasets"]}
    problems: list[str] = []
    warnings = _check_tags(store, name, version, pins)
    actual_digest = actual_count = None
    try:
        confirm_pins()
        manifest = resolve(store, spec, pins, DIGEST_COLUMNS)
    except IntegrityError as exc:
        problems.append(str(exc))
    else:
        actual_digest, parts = digest(manifest)
        actual_count = manifest.num_rows
        if actual_count != row["frame_count"]:
            problems.append(f"resolves to {actual_count} frames; {row['frame_count']} were recorded")
        if actual_digest != row["digest"]:
            problems.append(f"digest is {actual_digest}; {row['digest']} was recorded")
            problems += _part_differences(row["parts"] or [], parts)
    return VerifyReport(name, version, row["digest"], actual_digest, row["frame_count"] or 0, actual_count,
                        problems, warnings)


def _check_tags(store: Store, name: str, version: str, pins: dict[str, int]) -> list[str]:
    tag = cat.tag_name(name, version)
    out = []
    have = set(store.datasets())
    for ds_name, pin in pins.items():
        if ds_name not in have:
            continue  # resolution reports it
        tags = storage.tags.list_tags(store.open_lance(ds_name))
        if tag not in tags:
            out.append(f"dataset {ds_name!r} has no tag {tag!r}: cleanup could remove version {pin}; "
                       "store.cleanup() re-creates it")
        elif tags[tag].version != pin:
            out.append(f"tag {tag!r} of dataset {ds_name!r} points at version {tags[tag].version}, not {pin}")
    return out


def _part_differences(recorded: list[dict[str, Any]], actual: list[dict[str, Any]]) -> list[str]:
    before = {(p["dataset"], p["subquery"]): p for p in recorded}
    after = {(p["dataset"], p["subquery"]): p for p in actual}
    out = []
    for key in sorted(set(before) | set(after)):
        b, a = before.get(key), after.get(key)
        where = f"dataset {key[0]!r} sub-query {key[1]!r}"
        if b is None or a is None or b["digest"] != a["digest"]:
            nb = b["frame_count"] if b else 0
            na = a["frame_count"] if a else 0
            out.append(f"{where}: {na} frames now, {nb} recorded; its frames or labels differ")
    return out


def record_run(store: Store, row: dict[str, Any], run_id: str, info: Mapping[str, Any] | None = None,
               user: str | None = None) -> None:
    """Record that run `run_id` used published version `row` (with free-form JSON `info`)."""
    if not isinstance(run_id, str) or not run_id:
        raise ViewError(f"run_id must be a non-empty string, got {run_id!r}")
    try:
        info_text = json.dumps(dict(info or {}), sort_keys=True, default=str)
    except (TypeError, ValueError) as exc:
        raise ViewError(f"run info must be JSON-serialisable: {exc}") from exc
    run = {
        "run_id": run_id, "view": row["name"], "version": row["version"], "digest": row["digest"],
        "frame_count": row["frame_count"], "recorded_at": now(), "user": user or cat.current_user(),
        "host": cat.current_host(), "info": info_text,
    }
    storage.writes.append(cat.runs_table(store), pa.Table.from_pylist([run], schema=cat.RUNS_SCHEMA))


def runs(store: Store, view: str | None = None, version: str | None = None) -> pa.Table:
    """Recorded runs, oldest first, optionally of one view (and version)."""
    clauses = [eq(col, val) for col, val in (("view", view), ("version", version)) if val is not None]
    handle = store.existing(cat.RUNS)
    if handle is None:
        return cat.RUNS_SCHEMA.empty_table()
    table = storage.scan.read(handle, filter=all_of(*clauses))
    return table.sort_by([("recorded_at", "ascending"), ("run_id", "ascending")])
