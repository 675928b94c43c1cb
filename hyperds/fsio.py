"""fsspec access shared by every layer: S3 option spellings, URI protocols, opening file systems, secrets.

Lance (object_store) and s3fs name the same S3 settings differently; one translation serves all.
"""

from __future__ import annotations

import functools
import re
from typing import TYPE_CHECKING, Any

from .errors import HyperdsError

if TYPE_CHECKING:
    import fsspec

__all__ = ["missing_credentials", "open_filesystem", "s3fs_options", "split_protocol", "without_secrets"]

# Option names that hold credentials: dropped whenever a Store, Fetcher or header reader is
# pickled (spawned workers, Ray tasks, saved datasets). The access key id goes too: without
# its secret it would only mismatch the secret found in the environment.
_SECRET = re.compile(r"secret|token|password|session|access_key|account_key|credentials|^key$", re.IGNORECASE)

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
# object_store / Lance client settings s3fs has no keyword for (s3fs would refuse them: a TypeError).
_S3_IGNORED = (
    "allow_http", "virtual_hosted_style_request", "aws_virtual_hosted_style_request", "client_retry_timeout",
    "download_retry_count", "allow_invalid_certificates", "default_content_type", "http1_only", "http2_only",
    "http2_keep_alive_interval", "http2_keep_alive_timeout", "http2_keep_alive_while_idle", "http2_max_frame_size",
    "pool_idle_timeout", "pool_max_idle_per_host", "proxy_url", "proxy_ca_certificate", "proxy_excludes",
    "randomize_addresses", "user_agent",
)
# object_store client timeouts -> botocore Config names (seconds)
_S3_TIMEOUTS = {"timeout": "read_timeout", "connect_timeout": "connect_timeout"}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d*)?)\s*(ms|s|m|h)?\s*$", re.IGNORECASE)
_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


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
    config = dict(options.get("config_kwargs") or {})
    for key, value in options.items():
        low = key.lower()
        if low in _S3_IGNORED or key in ("client_kwargs", "config_kwargs"):
            continue
        if low in _S3_REGION_NAMES:
            client.setdefault("region_name", value)
        elif low in _S3_TIMEOUTS:  # the Store's timeouts bound image and listing reads too
            config.setdefault(_S3_TIMEOUTS[low], duration_seconds(key, value))
        elif low == "client_max_retries":  # s3fs retries each transient failure itself ("retries": attempts)
            out.setdefault("retries", int(value) + 1)
            config.setdefault("retries", {"total_max_attempts": 1})
        else:
            out[_S3FS_NAMES.get(low, key)] = value
    if client:
        out["client_kwargs"] = client
    config.setdefault("max_pool_connections", max(10, threads * 2))
    out["config_kwargs"] = config
    return out


def duration_seconds(key: str, value: Any) -> float:
    """An object_store duration ("30s", "500ms", "2m", or a number of seconds) in seconds."""
    if isinstance(value, (int, float)):
        return float(value)
    match = _DURATION.match(str(value))
    if not match:
        raise HyperdsError(f"storage option {key}={value!r} is not a duration: write e.g. '30s', '500ms' or '2m'")
    return float(match.group(1)) * _SECONDS[(match.group(2) or "s").lower()]


def split_protocol(uri: str) -> tuple[str, str]:
    """('s3', 'bucket/key') for 's3://bucket/key'; ('file', '/x') for 'file:///x' or '/x'."""
    if "://" not in uri:
        return "file", uri
    protocol, path = uri.split("://", 1)
    return protocol.lower(), (path if protocol.lower() != "file" else path or "/")


def open_filesystem(
    protocol: str, options: dict[str, Any], threads: int = 8, error: type[HyperdsError] = HyperdsError
) -> fsspec.AbstractFileSystem:
    """A new (never shared) fsspec file system for `protocol`; a missing package or unknown scheme raises `error`.

    Shared instances would hand this process one built with other options, or a forked parent's event loop.
    """
    import fsspec  # here: `import hyperds` (the store) needs only the option rules above

    retries = None
    if protocol in ("s3", "s3a"):
        options = s3fs_options(options, threads)
        retries = options.pop("retries", None)  # an S3FileSystem attribute, not a keyword
    try:
        fs = fsspec.filesystem(protocol, skip_instance_cache=True, **options)
        if retries is not None:
            fs.retries = retries
        return fs
    except ImportError as exc:
        raise error(f"cannot read {protocol}:// URIs: {exc}") from exc
    except ValueError as exc:
        if protocol in fsspec.available_protocols():
            raise
        raise error(
            f"unknown URI scheme {protocol!r}: fix the URI (e.g. s3://bucket/key, https://host/path or a "
            "local path), or install the fsspec package that reads it"
        ) from exc


@functools.cache
def missing_credentials() -> tuple[type[BaseException], ...]:
    """Exception types that mean no usable cloud credentials were found (botocore's, when installed)."""
    try:
        from botocore.exceptions import NoCredentialsError, PartialCredentialsError
    except ImportError:
        return ()
    return (NoCredentialsError, PartialCredentialsError)
