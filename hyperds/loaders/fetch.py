"""Fetching image bytes by URI through fsspec, safe across fork and spawn, never pickling a secret.

File systems are created lazily in each process (s3fs is not fork-safe), one per protocol, and may
be wrapped in an on-disk cache for repeated epochs.
"""

from __future__ import annotations

import logging
import os
import re
from typing import Any

import fsspec

log = logging.getLogger(__name__)

# Option names that hold credentials: dropped whenever a Fetcher is pickled (spawned workers,
# saved datasets). The access key id goes too: without its secret it would only mismatch the
# secret found in the environment.
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


class Fetcher:
    """Reads whole objects by URI; holds options, not connections, so it pickles cheaply and safely.

    `storage_options` apply to every remote protocol (S3 names in Store or s3fs spelling);
    `cache_dir` keeps a local copy of each remote object for later epochs (fsspec `simplecache`).
    """

    def __init__(self, storage_options: dict[str, Any] | None = None, cache_dir: str | None = None, threads: int = 8):
        self.storage_options = dict(storage_options or {})
        self.cache_dir = str(cache_dir) if cache_dir is not None else None
        self.threads = threads
        self._pid = -1
        self._filesystems: dict[str, fsspec.AbstractFileSystem] = {}

    def __getstate__(self) -> dict[str, Any]:
        return {
            "storage_options": without_secrets(self.storage_options),
            "cache_dir": self.cache_dir,
            "threads": self.threads,
        }

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(**state)

    def __repr__(self) -> str:
        return f"Fetcher(options={sorted(without_secrets(self.storage_options))}, cache_dir={self.cache_dir!r})"

    def filesystem(self, protocol: str) -> fsspec.AbstractFileSystem:
        """This process's file system for `protocol`, created on first use (again after a fork)."""
        if self._pid != os.getpid():
            self._filesystems = {}
            self._pid = os.getpid()
        fs = self._filesystems.get(protocol)
        if fs is None:
            fs = self._filesystems[protocol] = self._open(protocol)
        return fs

    def _open(self, protocol: str) -> fsspec.AbstractFileSystem:
        options = s3fs_options(self.storage_options, self.threads) if protocol in ("s3", "s3a") else self.storage_options
        # skip_instance_cache: fsspec's shared instances would hand this process a file system
        # built with other options (or, in a forked child, the parent's event loop).
        if self.cache_dir is None:
            return fsspec.filesystem(protocol, skip_instance_cache=True, **options)
        log.debug("caching %s objects under %s", protocol, self.cache_dir)
        return fsspec.filesystem(
            "simplecache",
            target_protocol=protocol,
            target_options={**options, "skip_instance_cache": True},
            cache_storage=self.cache_dir,
            skip_instance_cache=True,
        )

    def read(self, uri: str) -> bytes:
        """The whole object at `uri` (OSError, e.g. FileNotFoundError, when it cannot be read)."""
        protocol, path = split_protocol(uri)
        if protocol == "file":
            with open(path, "rb") as fh:
                return fh.read()
        return self.filesystem(protocol).cat_file(path)
