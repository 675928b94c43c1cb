"""Storage faults (issue 20): every store operation through a fault-injecting proxy in front of moto.

For each operation (commit, view publish, import, ingest from the bucket, query, view open, the loader) and
each fault (dropped connections, delays, 503 SlowDown, bodies cut short, a dark window, a permanent outage),
the operation either succeeds after bounded retries or raises StoreError naming the store and saying what
to retry; afterwards, with the proxy passing again, the store is consistent: the commit log, the history
and the frames agree (each commit applied exactly once or not at all), the catalog lists every published
view and each one verifies, and a retry of what failed succeeds.
"""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import boto3
import pytest
from conftest import DATA, MD_JSON
from fault_proxy import FaultProxy

import hyperds
from hyperds.errors import HyperdsError, StoreError
from hyperds.frames.importers import import_megadetector

pytestmark = pytest.mark.slow  # run first under -n 2 (tests/conftest.py)

log = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parents[1]
LAYOUT = "{site}/{camera}/{name}"
IMAGES = sorted((DATA / "serengeti-thumbs").glob("*.JPG"))[:4]
# Short client timeouts and few retries (Lance / object_store names; hyperds maps them for s3fs too), so a
# held request gives up within a second and a permanent outage fails within seconds, not minutes.
FAST = {"timeout": "1s", "connect_timeout": "1s", "client_max_retries": "2", "client_retry_timeout": "10"}

# fault name -> FaultProxy.fault arguments. Transient faults hit fewer requests in a row than the retries.
FAULTS: dict[str, dict[str, Any]] = {
    "drop": {"mode": "drop", "times": 2},
    "delay": {"mode": "delay", "times": 2, "delay_s": 0.4},
    "slowdown": {"mode": "slowdown", "times": 2},
    "cut": {"mode": "cut", "times": 2},
    "dark": {"mode": "dark", "seconds": 1.2},  # longer than the 1 s timeout: a held request times out
    "outage": {"mode": "drop"},  # every connection dropped until the proxy is switched back
}
WRITES = ("PUT", "POST", "DELETE")
# faults on writes only (reads pass): a write lost before the server saw it, a write applied whose answer was
# lost (the client cannot tell it happened), writes refused with 503, and every write failing for good
WRITE_FAULTS: dict[str, dict[str, Any]] = {
    "drop_writes": {"mode": "drop", "times": 2, "methods": WRITES},
    "cut_writes": {"mode": "cut", "times": 4, "methods": WRITES},
    "slowdown_writes": {"mode": "slowdown", "times": 3, "methods": WRITES},
    "write_outage": {"mode": "cut", "methods": WRITES},
}
WRITING = ("commit", "publish", "import", "ingest")


@dataclass
class World:
    """A store on s3://<bucket>/store reached through `proxy`, with datasets and a view made before any fault."""

    proxy: FaultProxy
    bucket: str
    options: dict[str, str]
    uri: str
    baseline: dict[str, Any] = field(default_factory=dict)

    def store(self) -> hyperds.Store:
        """A fresh Store object (no caches of an earlier one), through the proxy."""
        return hyperds.connect(self.uri, storage_options=self.options)


@pytest.fixture(scope="module")
def world(s3_server, _aws_env) -> World:
    bucket = f"faults-{uuid.uuid4().hex[:12]}"
    client = boto3.client("s3", endpoint_url=s3_server, region_name="us-east-1")
    client.create_bucket(Bucket=bucket)
    for path in IMAGES:
        client.put_object(Bucket=bucket, Key=f"imgs/site1/cam1/{path.name}", Body=path.read_bytes())
    with FaultProxy(urlsplit(s3_server).port) as proxy:
        options = {
            "aws_endpoint": proxy.endpoint,
            "allow_http": "true",
            "aws_access_key_id": "testing",
            "aws_secret_access_key": "testing",
            "region": "us-east-1",
            **FAST,
        }
        w = World(proxy, bucket, options, f"s3://{bucket}/store")
        st = w.store()
        import_megadetector(st.create_dataset("md"), MD_JSON)
        st.create_dataset("cams").ingest(f"s3://{bucket}/imgs", layout=LAYOUT, storage_options=options, progress=False)
        st.create_view("base", "array_has(labels, 'animal')", datasets=["md"]).publish("1.0")
        w.baseline["animals"] = _ids(st.dataset("md").query("array_has(labels, 'animal')").to_arrow(["frame_id"]))
        w.baseline["base"] = _ids(st.view("base", "1.0").to_arrow(["frame_id"]))
        assert w.baseline["animals"] and w.baseline["animals"] == w.baseline["base"]
        assert len(st.dataset("cams")) == len(IMAGES)
        w.baseline["md_frames"] = len(st.dataset("md"))
        w.baseline["cams"] = _ids(st.dataset("cams").to_arrow(["frame_id"]))
        yield w


@pytest.fixture
def proxy(world) -> FaultProxy:
    world.proxy.passthrough()
    world.proxy.reset_counts()
    yield world.proxy
    world.proxy.passthrough()


def _ids(table) -> set[str]:
    return set(table.column("frame_id").to_pylist())


# -- operations: each returns what it made; `case` names this run's own dataset, view or label ------------
def op_commit(w: World, case: str) -> Any:
    ds = w.store().dataset("md")
    frame_id = sorted(w.baseline["animals"])[0]
    return ds.commit([{"op": "add", "frame_id": frame_id, "label": case}], author="faults", message=case)


def op_publish(w: World, case: str) -> Any:
    return w.store().create_view(case, "array_has(labels, 'animal')", datasets=["md"]).publish("1.0")


def op_import(w: World, case: str) -> Any:
    st = w.store()
    return import_megadetector(st.create_dataset(case), MD_JSON)


def op_ingest(w: World, case: str) -> Any:
    ds = w.store().create_dataset(case)
    return ds.ingest(f"s3://{w.bucket}/imgs", layout=LAYOUT, storage_options=w.options, progress=False)


def op_query(w: World, case: str) -> Any:
    got = _ids(w.store().dataset("md").query("array_has(labels, 'animal')").to_arrow(["frame_id"]))
    assert got == w.baseline["animals"]
    return got


def op_view_open(w: World, case: str) -> Any:
    view = w.store().view("base", "1.0")
    assert _ids(view.to_arrow(["frame_id"])) == w.baseline["base"]
    return view


def op_loader(w: World, case: str) -> Any:
    from hyperds.loaders.torch import FrameDataset

    frames = FrameDataset(w.store().dataset("cams"), target=lambda row: row["frame_id"], on_error="raise")
    items = [frames[i] for i in range(len(frames))]
    assert sorted(target for _, target in items) == sorted(w.baseline["cams"])
    assert all(image.mode == "RGB" and min(image.size) > 0 for image, _ in items)
    return items


OPERATIONS: dict[str, Callable[[World, str], Any]] = {
    "commit": op_commit,
    "publish": op_publish,
    "import": op_import,
    "ingest": op_ingest,
    "query": op_query,
    "view_open": op_view_open,
    "loader": op_loader,
}


# -- consistency afterwards ----------------------------------------------------------------------------
def check_commit(w: World, case: str, result: Any) -> None:
    ds = w.store().dataset("md")
    commits = ds.commits()
    mine = commits.filter(commits["message"] == case)
    assert mine.height <= 1, f"commit {case} recorded {mine.height} times"
    assert commits["commit_id"].n_unique() == commits.height
    assert commits["version_after"].max() <= ds.version
    frame_id = sorted(w.baseline["animals"])[0]
    labelled = case in ds.get(frame_id)["labels"]
    assert labelled == (mine.height == 1), "the frames and the commit log disagree"
    history = ds.history(frame_id)
    assert (history.filter(history["message"] == case).height > 0) == labelled, "history and frames disagree"
    if result is not None:
        assert mine.height == 1 and mine["version_after"][0] == result.version
    elif not labelled:  # failed and not applied: retrying it works
        op_commit(w, case)
        check_commit(w, case, None)


def check_publish(w: World, case: str, result: Any) -> None:
    st = w.store()
    published = [r for r in st.views().to_pylist() if r["name"] == case and r["status"] == "published"]
    assert len(published) <= 1
    if result is not None:
        assert [r["version"] for r in published] == ["1.0"] and result.frame_count == len(w.baseline["animals"])
    if not published:  # failed before the version was recorded: publishing again works
        op_publish(w, case)
        published = [r for r in st.views().to_pylist() if r["name"] == case and r["status"] == "published"]
    assert len(published) == 1
    report = st.view(case, "1.0").verify()
    assert report.ok, report.problems
    assert _ids(st.view(case, "1.0").to_arrow(["frame_id"])) == w.baseline["animals"]


def check_import(w: World, case: str, result: Any) -> None:
    st = w.store()
    expected = w.baseline["md_frames"]
    ds = st.create_dataset(case, exist_ok=True)  # what a retry does first (also over a create that failed)
    count = len(ds)
    assert count in (0, expected), f"a failed import left {count} of {expected} frames"
    if result is not None:
        assert count == expected
    elif count == 0:  # retrying the import works
        import_megadetector(ds, MD_JSON)
        assert len(st.dataset(case)) == expected


def check_ingest(w: World, case: str, result: Any) -> None:
    st = w.store()
    ds = st.create_dataset(case, exist_ok=True)  # what a retry does first (also over a create that failed)
    before = len(ds)
    if result is not None:
        assert before == result.ingested
    again = ds.ingest(f"s3://{w.bucket}/imgs", layout=LAYOUT, storage_options=w.options, progress=False)
    assert again.already_ingested == before and again.ingested == len(IMAGES) - before
    rows = st.dataset(case).to_arrow(["frame_id"])
    assert rows.num_rows == len(IMAGES) == len(set(rows.column("frame_id").to_pylist()))


def check_reads(w: World, case: str, result: Any) -> None:
    st = w.store()  # a read changes nothing: the datasets and views are all still listed
    assert {"md", "cams"} <= set(st.datasets())
    assert ("base", "1.0") in {(r["name"], r["version"]) for r in st.views().select(["name", "version"]).to_pylist()}


CHECKS = {"commit": check_commit, "publish": check_publish, "import": check_import, "ingest": check_ingest,
          "query": check_reads, "view_open": check_reads, "loader": check_reads}


def assert_store_error(w: World, exc: BaseException) -> None:
    """A StoreError (never a raw OSError / ValueError / panic) that names the store and says to retry."""
    message = str(exc)
    assert isinstance(exc, StoreError), f"{type(exc).__module__}.{type(exc).__name__}: {message}"
    assert w.uri in message, f"the error does not name the store {w.uri}: {message}"
    assert "retry" in message.lower(), f"the error does not say what to retry: {message}"


CASES = [(op, fault) for op in OPERATIONS for fault in FAULTS] + [(op, f) for op in WRITING for f in WRITE_FAULTS]


@pytest.mark.parametrize(("operation", "fault"), CASES)
def test_operation_under_fault_succeeds_or_raises_store_error_and_leaves_the_store_consistent(
    world, proxy, operation, fault
):
    case = f"{operation}-{fault}-{uuid.uuid4().hex[:6]}".replace("_", "-")
    settings = dict({**FAULTS, **WRITE_FAULTS}[fault])
    mode = settings.pop("mode")
    started = time.monotonic()
    proxy.fault(mode, **settings)
    result, error = None, None
    try:
        result = OPERATIONS[operation](world, case)
    except HyperdsError as exc:  # anything else (OSError, ValueError, a panic) fails the test as it is
        error = exc
    finally:
        proxy.passthrough()
    elapsed = time.monotonic() - started
    log.info("%s under %s: %s in %.1f s, %s", operation, fault, "raised" if error else "ok", elapsed,
             dict(proxy.injected))
    assert proxy.injected[mode] > 0, f"the {fault} fault was never hit"
    assert elapsed < 30, f"{operation} under {fault} took {elapsed:.0f} s"
    if fault in ("outage", "write_outage"):
        assert error is not None, f"{operation} succeeded through a permanent outage"
    if error is not None:
        assert_store_error(world, error)
    CHECKS[operation](world, case, result)


# -- catalog reads during an outage: only a real not-found is "none yet" ---------------------------------
def _catalog_reads(st: hyperds.Store) -> dict[str, Callable[[], Any]]:
    return {"views": st.views, "datasets": st.datasets, "dataset": lambda: st.dataset("md"),
            "view": lambda: st.view("base")}


def _no_retries(w: World, **more: str) -> dict[str, str]:
    """The world's options without client retries (in a permanent outage each one is only more waiting)."""
    return {**w.options, "client_max_retries": "0", **more}


@pytest.mark.parametrize("fresh", [False, True], ids=["filled-store", "empty-store"])
def test_catalog_reads_during_an_outage_raise_store_error_never_read_as_empty(world, proxy, fresh):
    """store.views() / datasets() / dataset() / view() in an outage: StoreError, not [] or 'does not exist'."""
    uri = f"{world.uri}-empty" if fresh else world.uri
    if fresh:  # a real not-found reads as empty
        st = hyperds.connect(uri, storage_options=world.options)
        assert st.views().num_rows == 0 and st.datasets() == [] and st.runs().num_rows == 0
    st = hyperds.connect(uri, storage_options=_no_retries(world))
    proxy.fault("drop")
    reads = _catalog_reads(st)
    for name, read in (reads if not fresh else {k: reads[k] for k in ("views", "datasets")}).items():
        with pytest.raises(StoreError) as info:
            read()
        assert type(info.value) is StoreError, f"{name}: {type(info.value).__name__}: {info.value}"
        assert st.uri in str(info.value) and "unreachable" in str(info.value), f"{name}: {info.value}"
        assert_store_error(world, info.value)
    assert proxy.injected["drop"] > 0
    proxy.passthrough()
    if not fresh:
        check_reads(world, "", None)


def test_an_endpoint_gone_dark_for_good_fails_within_the_timeouts(world, proxy):
    """No hang: a store whose endpoint accepts connections and never answers raises StoreError in bounded time."""
    st = hyperds.connect(world.uri, storage_options=_no_retries(world, timeout="300ms", connect_timeout="300ms"))
    proxy.fault("dark")
    for name in ("views", "dataset"):
        started = time.monotonic()
        with pytest.raises(StoreError) as info:
            _catalog_reads(st)[name]()
        assert time.monotonic() - started < 20, name
        assert_store_error(world, info.value)
    assert proxy.injected["dark"] > 0


# -- the CLI: every HyperdsError is one line on stderr and exit status 2 --------------------------------
def _cli(store_uri: str, endpoint: str, *argv: str) -> subprocess.Popen:
    """`hyperds --store URI ARGV` in a subprocess whose S3 endpoint (from the environment) is `endpoint`."""
    env = {**os.environ, "AWS_ENDPOINT": endpoint, "AWS_ALLOW_HTTP": "true", "AWS_ACCESS_KEY_ID": "testing",
           "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1", "AWS_REGION": "us-east-1",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    return subprocess.Popen([sys.executable, "-m", "hyperds.cli.main", "--store", store_uri, *argv], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_cli_against_an_unreachable_store_prints_one_line_and_exits_2(world, proxy, s3_server):
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))  # bound, never listening: connections are refused
    refused = f"http://127.0.0.1:{closed.getsockname()[1]}"
    commands = {"view list": ("view", "list"), "query": ("query", "md", "array_has(labels, 'animal')")}
    with closed, FaultProxy(urlsplit(s3_server).port) as outage:
        outage.fault("drop")
        runs = {("reachable", "view list"): _cli(world.uri, proxy.endpoint, "view", "list")}
        for endpoint_name, endpoint in (("outage", outage.endpoint), ("refused", refused)):
            for command, argv in commands.items():
                runs[(endpoint_name, command)] = _cli(world.uri, endpoint, *argv)
        results = {key: (p.wait(timeout=120), *p.communicate()) for key, p in runs.items()}
    code, out, err = results.pop(("reachable", "view list"))
    assert code == 0 and "base" in out, err  # the environment does reach the store when it is up
    assert outage.injected["drop"] > 0
    for (endpoint_name, command), (code, out, err) in results.items():
        lines = err.strip().splitlines()
        assert code == 2, (endpoint_name, command, code, err)
        assert len(lines) == 1 and lines[0].startswith("hyperds: error: "), (endpoint_name, command, err)
        assert "Traceback" not in err and out == "", (endpoint_name, command, out)
        assert world.uri in lines[0] and "unreachable" in lines[0] and "retry" in lines[0], lines[0]


def test_a_read_only_store_refuses_writes_in_one_line_and_keeps_its_state(world, proxy, tmp_path):
    """Credentials that may read but not write (every write answered 403 AccessDenied): reads work, a
    commit raises StoreError (the CLI: one line, exit 2) and the store is exactly as it was."""
    st = world.store()
    md = st.dataset("md")
    version, commits = md.version, md.commits().height
    frame = next(f for f in md.to_arrow(["frame_id", "annotations"]).to_pylist() if f["annotations"])
    change = [{"op": "relabel", "frame_id": frame["frame_id"], "ann_id": frame["annotations"][0]["ann_id"],
               "label": "read-only-case"}]
    (tmp_path / "changes.json").write_text(__import__("json").dumps(change))
    proxy.fault("denied", methods=("PUT", "POST", "DELETE"))
    assert len(st.dataset("md").query("array_has(labels, 'animal')").to_arrow(["frame_id"])) > 0  # reads still work
    with pytest.raises(StoreError) as exc:
        st.dataset("md").commit(change, author="ana")
    assert "retry" in str(exc.value)
    run = _cli(world.uri, proxy.endpoint, "commit", "md", str(tmp_path / "changes.json"), "--author", "ana")
    code, out, err = run.wait(timeout=120), *run.communicate()
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith("hyperds: error: ") and "Traceback" not in err, err
    assert proxy.injected["denied"] > 0
    proxy.passthrough()
    md = world.store().dataset("md")
    assert (md.version, md.commits().height) == (version, commits)
    assert "read-only-case" not in md.get(frame["frame_id"])["labels"]


def test_a_dropped_dataset_read_through_an_old_handle_is_a_clear_error(tmp_path, capsys):
    store = hyperds.connect(tmp_path / "store")
    ds = store.create_dataset("gone")
    ds.add_frames([{"frame_id": "a", "uri": "a.jpg", "annotations": [{"label": "fox"}]}])
    old = store.dataset("gone")
    old.to_arrow(["frame_id"])  # the handle has read the table
    store.drop_dataset("gone")
    for read in (lambda: old.to_arrow(["frame_id"]), lambda: old.query("any_annotation(label = 'fox')").frame_ids(),
                 lambda: old.commit([{"op": "relabel", "frame_id": "a", "ann_id": "a:0", "label": "x"}], author="a")):
        with pytest.raises(HyperdsError) as exc:
            read()
        assert "gone" in str(exc.value), exc.value
    from hyperds.cli.main import main
    assert main(["--store", str(tmp_path / "store"), "show", "gone"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("hyperds: error: ") and "gone" in err[0], err
