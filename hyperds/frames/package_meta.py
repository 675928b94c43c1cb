"""Source-package metadata a dataset keeps in its Lance schema metadata (next to `hyperds.root`), so it is
versioned and pinned with the frames: the Camtrap DP deployments table and the package's descriptive
properties (project, contributors, taxonomic, licenses, ...). Exporters read them at a view's pinned version.

Deployments are kept as text exactly as the package wrote them (every column, its order included), so an
export gives them back unchanged; they are few (one per camera placement), so metadata holds them well.
"""

from __future__ import annotations

import json
from typing import Any

import polars as pl
import pyarrow as pa

DEPLOYMENTS_KEY = "hyperds.camtrap.deployments"
PACKAGE_KEY = "hyperds.camtrap.package"


def read_deployments(schema: pa.Schema) -> pa.Table | None:
    """The deployments table (all columns text) a Camtrap DP import stored, or None."""
    raw = (schema.metadata or {}).get(DEPLOYMENTS_KEY.encode())
    if not raw:
        return None
    doc = json.loads(raw)
    columns = list(zip(*doc["rows"], strict=True)) if doc["rows"] else [()] * len(doc["fields"])
    return pa.table({f: pa.array(list(c), pa.string()) for f, c in zip(doc["fields"], columns, strict=True)})


def read_package(schema: pa.Schema) -> dict[str, Any] | None:
    """The descriptive properties of the Camtrap DP package a dataset was imported from, or None."""
    raw = (schema.metadata or {}).get(PACKAGE_KEY.encode())
    return json.loads(raw) if raw else None


def merged_metadata(schema: pa.Schema, deployments: pa.Table, package: dict[str, Any]) -> dict[str, str]:
    """The metadata entries to write after importing `deployments` and `package` (empty: nothing changes).

    Deployments merge by deploymentID (known ones keep their stored row); the package is stored the first time."""
    out: dict[str, str] = {}
    old = read_deployments(schema)
    fields = list(deployments.column_names)
    rows = [list(r.values()) for r in deployments.to_pylist()]
    if old is not None:
        known = set(old.column("deploymentID").to_pylist())
        extra_fields = [f for f in fields if f not in old.column_names]
        merged_fields = old.column_names + extra_fields
        merged = [[r.get(f) for f in merged_fields] for r in old.to_pylist()]
        new = [r for r in deployments.to_pylist() if r["deploymentID"] not in known]
        if not new and not extra_fields:
            merged = None
        else:
            merged += [[r.get(f) for f in merged_fields] for r in new]
        fields, rows = merged_fields, merged
    if rows is not None:
        out[DEPLOYMENTS_KEY] = json.dumps({"fields": fields, "rows": rows}, ensure_ascii=False)
    if read_package(schema) is None:
        out[PACKAGE_KEY] = json.dumps(package, ensure_ascii=False, sort_keys=True)
    return out


def deployment_id(df: pl.DataFrame) -> pl.Expr:
    """A frame's Camtrap DP deploymentID: its deployment, else site/camera, else 'unknown'. Shared by the
    Camtrap DP export and the policy, which coarsens locations by the deployment an export would name."""
    def col(name: str) -> pl.Expr:
        return pl.col(name) if name in df.columns else pl.lit(None, pl.String)

    joined = pl.concat_str([col("site"), col("camera")], separator="/", ignore_nulls=True)
    return pl.coalesce(col("deployment"), pl.when(joined != "").then(joined), pl.lit("unknown")).alias("deploymentID")
