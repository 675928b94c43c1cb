"""Fetching image bytes by URI through fsspec, safe across fork and spawn, never pickling a secret.

File systems are created lazily in each process (s3fs is not fork-safe), one per protocol, and may
be wrapped in an on-disk cache for repeated epochs.
Internal to hyperds.loaders (the image pipeline's fetch step).
"""

from __future__ import annotations

import logging
import os
from typing import Any

import fsspec

from ..errors import LoaderError
from ..fsio import missing_credentials, open_filesystem, split_protocol, without_secrets

log = logging.getLogger(__name__)

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
        fs = open_filesystem(protocol, self.storage_options, self.threads, LoaderError)
        if self.cache_dir is None:
            return fs
        log.debug("caching %s objects under %s", protocol, self.cache_dir)
        return fsspec.filesystem("simplecache", fs=fs, cache_storage=self.cache_dir, skip_instance_cache=True)

    def read(self, uri: str) -> bytes:
        """The whole object at `uri` (OSError, e.g. FileNotFoundError, when it cannot be read).

        Missing credentials or an unusable URI scheme raise LoaderError: no image could be read.
        """
        protocol, path = split_protocol(uri)
        if protocol == "file":
            with open(path, "rb") as fh:
                return fh.read()
        try:
            return self.filesystem(protocol).cat_file(uri)  # the full URI: http(s) needs its scheme
        except missing_credentials() as exc:
            raise LoaderError(
                f"no credentials to read {uri} ({exc}): set them in the environment (e.g. AWS_ACCESS_KEY_ID and "
                "AWS_SECRET_ACCESS_KEY) or a profile (AWS_PROFILE, or storage_options={'profile': ...})"
            ) from exc
