"""The one map from Lance / lancedb / OS failures to hyperds' error family (modelled on httpx's map_exceptions).

pylance raises ValueError or OSError for nearly everything, so the kind of failure is read from the message
here and nowhere else: a missing table, version or tag is `Missing`; a table or tag that already exists is
`Exists`; a commit Lance refused because a concurrent one touched the same fragments is `CommitConflict`;
every other failure (an unreachable S3 endpoint, a permission error, a corrupt file) is a plain StoreError
that names the store, what was being done and what to retry. Callers catch only these.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator

from ..errors import HyperdsError, StoreError

# Lance's messages for things that do not exist (dataset / manifest files, refs, versions, lancedb tables).
_NOT_FOUND = re.compile(
    r"was not found|Not found:|Ref not found|Version not found|does not exist|NotFound|No such file", re.IGNORECASE
)
_EXISTS = re.compile(r"already exists|Ref conflict", re.IGNORECASE)
_CONFLICT = re.compile(r"commit conflict|Retryable commit|conflicts with concurrent", re.IGNORECASE)
# A not-found inside an I/O failure report (e.g. a listing that failed) is not a real not-found.
_IO_FAILURE = re.compile(
    r"error sending request|connection|timed out|timeout|HTTP error|dns|Generic S3 error|RetryError|SlowDown|"
    r"Service Unavailable|Access Denied|Forbidden|InvalidAccessKeyId|SignatureDoesNotMatch|credential",
    re.IGNORECASE,
)


class Missing(StoreError):
    """A table, version or tag that does not exist (a real not-found, not an I/O failure)."""


class Exists(StoreError):
    """A table or tag that already exists."""


class CommitConflict(StoreError):
    """Lance refused a commit: a concurrent commit changed a fragment this one touches (redo it from a fresh read)."""


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message, without Lance's Rust source locations."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return re.sub(r",\s*/[^,]*\.rs:\d+:\d+", "", text)[:400]


def classify(exc: BaseException, store: str, doing: str) -> StoreError:
    """The hyperds error for a failure of a Lance / lancedb / OS call made while `doing` in `store`."""
    from lance.commit import CommitConflictError

    if isinstance(exc, CommitConflictError):
        return CommitConflict(f"{doing} in store {store}: a concurrent commit won ({first_line(exc)})")
    text = str(exc)
    if isinstance(exc, FileNotFoundError) or (_NOT_FOUND.search(text) and not _IO_FAILURE.search(text)):
        return Missing(f"{doing} in store {store}: not found ({first_line(exc)})")
    if _EXISTS.search(text) and not _IO_FAILURE.search(text):
        return Exists(f"{doing} in store {store}: already exists ({first_line(exc)})")
    if _CONFLICT.search(text):
        return CommitConflict(f"{doing} in store {store}: a concurrent commit won ({first_line(exc)})")
    return StoreError(unreachable_message(store, doing, exc))


def unreachable_message(store: str, doing: str, exc: BaseException) -> str:
    """'<doing> failed: <why>; the store … is unreachable …; what to check and retry'."""
    if "://" in store and not store.startswith("file://"):
        hint = (f"the store {store} is unreachable or refused the request; check the endpoint, region and "
                "credentials (storage_options, or the environment / a profile), then retry")
    else:
        hint = f"check that {store} exists and is readable and writable, then retry"
    return f"{doing} failed: {first_line(exc)}; {hint}"


@contextlib.contextmanager
def lance_errors(store: str, doing: str) -> Iterator[None]:
    """Run Lance calls, turning their failures into Missing / Exists / CommitConflict / StoreError.

    hyperds' own errors pass through untouched. Usable as a decorator too (fixed arguments).
    """
    try:
        yield
    except HyperdsError:
        raise
    except (ValueError, OSError, RuntimeError) as exc:  # lance.commit.CommitConflictError is an OSError
        raise classify(exc, store, doing) from exc
