"""Where an export goes: a local folder or an `s3://` prefix, written all or nothing.

Writers always write into a local staging folder. A local destination's staging folder is a hidden
sibling, renamed into place at the end (one rename); an S3 destination is uploaded from a temporary
folder at the end and removed again if the upload fails, since S3 has no rename. Either way a failed
export leaves no half-written file set, and an existing destination is only replaced with `overwrite`.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import uuid
from pathlib import Path
from typing import Any

from ..errors import ExportError
from ..fsio import open_filesystem, split_protocol

log = logging.getLogger(__name__)


class Destination:
    """One export target; `check()` before any work, `stage()` to get the folder, then `commit()` or `abort()`."""

    def __init__(self, dest: str | os.PathLike[str], overwrite: bool = False, storage_options: dict[str, Any] | None = None):
        self.dest = str(dest).rstrip("/") or "/"
        self.overwrite = overwrite
        self.protocol, self.path = split_protocol(self.dest)
        self.local = self.protocol == "file"
        if self.local:
            self.path = str(Path(self.path).expanduser().resolve())
        self.fs = open_filesystem(self.protocol, dict(storage_options or {}) if not self.local else {}, error=ExportError)
        self.staging: Path | None = None

    def __str__(self) -> str:
        return self.dest if not self.local else self.path

    def check(self) -> None:
        """ExportError if the destination holds anything and `overwrite` is off (or is a file)."""
        try:
            exists = self.fs.exists(self.path)
            is_dir = exists and self.fs.isdir(self.path)
            entries = self.fs.ls(self.path, detail=False) if is_dir else []
        except OSError as exc:
            raise ExportError(f"cannot reach export destination {self}: {exc}") from exc
        if exists and not is_dir:
            raise ExportError(f"export destination {self} is a file; give a folder (it is created if missing)")
        if entries and not self.overwrite:
            raise ExportError(
                f"export destination {self} exists and is not empty ({len(entries)} entries); "
                "choose another folder or pass overwrite=True (--overwrite) to replace it"
            )
        if self.local:
            parent = Path(self.path).parent
            if not parent.is_dir():
                raise ExportError(f"cannot export to {self}: folder {parent} does not exist")

    def stage(self) -> Path:
        """A fresh, empty local folder the writers fill."""
        if self.local:
            target = Path(self.path)
            self.staging = target.parent / f".{target.name}.hyperds-export-{uuid.uuid4().hex[:12]}"
            self.staging.mkdir()
        else:
            self.staging = Path(tempfile.mkdtemp(prefix="hyperds-export-"))
        return self.staging

    def commit(self) -> None:
        """Move the staged file set into place (replacing the old one only now, with `overwrite`)."""
        assert self.staging is not None
        if self.local:
            target = Path(self.path)
            old = None
            if target.exists():
                old = target.parent / f".{target.name}.hyperds-old-{uuid.uuid4().hex[:12]}"
                os.replace(target, old)
            try:
                os.replace(self.staging, target)
            except OSError:
                if old is not None:
                    os.replace(old, target)
                raise
            if old is not None:
                shutil.rmtree(old, ignore_errors=True)
            self.staging = None
            return
        if self.fs.exists(self.path):
            self.fs.rm(self.path, recursive=True)
        try:
            self.fs.put(str(self.staging) + "/", self.path + "/", recursive=True)
        except BaseException:
            try:
                self.fs.rm(self.path, recursive=True)
            except OSError:
                log.warning("could not remove the partial upload at %s", self)
            raise
        finally:
            shutil.rmtree(self.staging, ignore_errors=True)
            self.staging = None

    def abort(self) -> None:
        """Remove the staging folder (the destination is untouched)."""
        if self.staging is not None:
            shutil.rmtree(self.staging, ignore_errors=True)
            self.staging = None
