"""Validate a Camtrap DP 1.0.2 package against the official schemas kept in tests/data/camtrap-dp-1.0.2.

No machine here reaches the internet, so the remote references are handled as that folder's README says:
the package's `profile` and each resource's `schema` URL are replaced by the local copies; in the profile,
the two remote `$ref`s (the Frictionless data-package schema, checked by frictionless itself instead, and
the GeoJSON schema for `spatial`, checked here only as an object with `type` and `coordinates`) are skipped.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import frictionless
import jsonschema

SCHEMAS = Path(__file__).resolve().parent / "data" / "camtrap-dp-1.0.2"


def _drop_remote_refs(node: Any) -> Any:
    if isinstance(node, dict):
        out = {k: _drop_remote_refs(v) for k, v in node.items() if not (k == "$ref" and str(v).startswith("http"))}
        if "allOf" in out:
            out["allOf"] = [s for s in out["allOf"] if s]
        return out
    if isinstance(node, list):
        return [_drop_remote_refs(v) for v in node]
    return node


def profile_errors(descriptor: dict) -> list[str]:
    """Errors of datapackage.json against the Camtrap DP profile (remote refs skipped, see module docstring)."""
    profile = _drop_remote_refs(json.loads((SCHEMAS / "camtrap-dp-profile.json").read_text()))
    errors = [f"{'/'.join(map(str, e.path)) or '(root)'}: {e.message}"
              for e in jsonschema.Draft4Validator(profile).iter_errors(descriptor)]
    spatial = descriptor.get("spatial")
    if not (isinstance(spatial, dict) and "type" in spatial and "coordinates" in spatial):
        errors.append("spatial: not a GeoJSON geometry")
    return errors


def validate_package(folder: Path) -> list[str]:
    """Every problem frictionless and the profile find in the package at `folder` (empty: valid)."""
    descriptor = json.loads((folder / "datapackage.json").read_text())
    errors = profile_errors(descriptor)
    local = copy.deepcopy(descriptor)
    local["profile"] = "tabular-data-package"
    local["resources"] = [r for r in local["resources"] if r.get("name") in ("deployments", "media", "observations")]
    for res in local["resources"]:
        res["schema"] = json.loads((SCHEMAS / f"{res['name']}-table-schema.json").read_text())
    local = {k: v for k, v in local.items() if k in ("resources", "profile", "name", "title", "licenses")}
    package = frictionless.Package(local, basepath=str(folder))
    report = package.validate()
    for task in report.tasks:
        errors += [f"{task.name}: {e.message}" for e in task.errors]
    errors += [e.message for e in report.errors]
    return errors
