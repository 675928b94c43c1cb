"""fsspec access shared by every layer: S3 option spellings, URI protocols, secret stripping.

Lance (object_store) and s3fs name the same S3 settings differently; one translation serves all.
"""

from __future__ import annotations

import re
from typing import Any

__all__ = ["s3fs_options", "split_protocol", "without_secrets"]

# Option names that hold credentials: dropped whenever a Store, Fetcher or header reader is
# pickled (spawned workers, Ray tasks, saved datasets). The access key id goes too: without
# its secret it would only mismatch the secret found in the environment.
_SECRET = re.compile(r"secret|token|password|session|access_key|^key$", re.IGNORECASE)

# object_store / Lance style S3 option names (what a Store uses) -> their s3fs names.
_S3FS_NAMES = {
    "aws_endpoint": "endpoint_url",
    "aws_endpoint_url": "endpoint_url",
    "endpoint": "endpoint_url",
    "aws_access_key_id": "key",
    "access_key_id": "key",
    "aws_secret_access_key": "secret",
    "secret_access_key": "secret",
    "aws_session_token": "token",
    "session_token": "token",
    "aws_profile": "profile",
}
_S3_REGION_NAMES = ("region", "aws_region", "aws_default_region")
_S3_IGNORED = ("allow_http", "virtual_hosted_style_request", "aws_virtual_hosted_style_request")


def without_secrets(options: dict[str, Any]) -> dict[str, Any]:
    """A copy of `options` (nested dicts included) with every credential-looking entry removed."""
    out: dict[str, Any] = {}
    for key, value in options.items():
        if _SECRET.search(key):
            continue
        out[key] = without_secrets(value) if isinstance(value, dict) else value
    return out


def s3fs_options(options: dict[str, Any], threads: int) -> dict[str, Any]:
    """Storage options in Store (object_store) or s3fs spelling, as s3fs keyword arguments."""
    out: dict[str, Any] = {}
    client = dict(options.get("client_kwargs") or {})
    for key, value in options.items():
        low = key.lower()
        if low in _S3_IGNORED or key == "client_kwargs":
            continue
        if low in _S3_REGION_NAMES:
            client.setdefault("region_name", value)
        else:
            out[_S3FS_NAMES.get(low, key)] = value
    if client:
        out["client_kwargs"] = client
    config = dict(out.get("config_kwargs") or {})
    config.setdefault("max_pool_connections", max(10, threads * 2))
    out["config_kwargs"] = config
    return out


def split_protocol(uri: str) -> tuple[str, str]:
    """('s3', 'bucket/key') for 's3://bucket/key'; ('file', '/x') for 'file:///x' or '/x'."""
    if "://" not in uri:
        return "file", uri
    protocol, path = uri.split("://", 1)
    return protocol.lower(), (path if protocol.lower() != "file" else path or "/")
