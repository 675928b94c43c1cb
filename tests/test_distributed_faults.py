"""hyperds.distributed on a real two-node Ray cluster on 127.0.0.1, whose worker node is killed mid-job.

A head (`ray start --head`, no CPUs, so every task lands on a worker node) and a worker node run as
separate `ray start --block` process groups in a short temp dir; the test process is the driver.
While `predict` or `ingest(engine="ray")` runs, the node executing a batch is SIGKILLed and a
replacement node joins: Ray reruns the lost batches and the job commits exactly once. With no retries
left the job fails: nothing is committed and the hyperds error names the cause. Slow (~1 min).
"""

from __future__ import annotations

import functools
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pyarrow as pa
import pytest

from conftest import DATA
from hyperds.errors import IngestError, PredictionError

ray = pytest.importorskip("ray", reason="Ray is not installed (optional extra hyperds[ray]); distributed tests skipped")

from hyperds import distributed  # noqa: E402

pytestmark = pytest.mark.slow
RAY = str(Path(sys.executable).with_name("ray"))
MODEL = "parity@1"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _processes() -> list[tuple[int, int, int, str]]:
    """(pid, ppid, pgid, command line) of every process."""
    out = subprocess.run(["ps", "-ww", "-eo", "pid=,ppid=,pgid=,args="], capture_output=True, text=True, check=True).stdout
    return [(int(p), int(pp), int(g), args) for p, pp, g, args in (line.split(None, 3) for line in out.splitlines()
                                                                   if len(line.split(None, 3)) == 4)]


class Cluster:
    """The head and worker nodes, each a `ray start --block` in its own process group."""

    def __init__(self, root: Path):
        self.root, self.port = root, _free_port()
        self.address = f"127.0.0.1:{self.port}"
        # token authentication stays on (Ray's default for `ray start`); every process gets the token
        self.env = {**os.environ, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32),
                    "RAY_USAGE_STATS_ENABLED": "0"}
        self.nodes: list[subprocess.Popen] = []

    def _start(self, name: str, *args: str) -> subprocess.Popen:
        log = open(self.root / f"{name}.log", "w")  # noqa: SIM115 - closed with the process
        proc = subprocess.Popen([RAY, "start", "--block", "--disable-usage-stats", "--node-ip-address=127.0.0.1", *args],
                                start_new_session=True, env=self.env, stdout=log, stderr=subprocess.STDOUT)
        proc.log = log
        self.nodes.append(proc)
        return proc

    def start_head(self) -> None:
        head = self._start("head", "--head", f"--port={self.port}", "--num-cpus=0", "--include-dashboard=false",
                           f"--temp-dir={self.root / 'ray'}")
        self._wait(lambda: "Ray runtime started" in (self.root / "head.log").read_text(), head, "the head")

    def add_worker(self) -> subprocess.Popen:
        known = {n["NodeID"] for n in ray.nodes()}  # a killed node may still count as alive for a while
        node = self._start(f"worker{len(self.nodes)}", f"--address={self.address}", "--num-cpus=1",
                           '--resources={"worker": 1}')
        self._wait(lambda: any(n["NodeID"] not in known and n["Alive"] for n in ray.nodes()), node, "a worker node")
        return node

    def _wait(self, ready, proc: subprocess.Popen, what: str, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while not ready():
            if proc.poll() is not None or time.monotonic() > deadline:
                log = Path(proc.log.name).read_text()[-2000:]
                raise RuntimeError(f"{what} did not start (exit {proc.poll()}):\n{log}")
            time.sleep(0.2)

    def _raylet_children(self, node: subprocess.Popen) -> tuple[list[str], list[int]]:
        procs = _processes()
        raylets = [p for p, _, g, args in procs if g == node.pid and "raylet" in args.split()[0]]
        kids = [(p, args) for p, pp, _, args in procs if pp in raylets]
        return [args for _, args in kids], [p for p, _ in kids]

    def wait_for_a_running_batch(self, node: subprocess.Popen, timeout: float = 120) -> str:
        """Block until a worker of `node` runs a map batch (Ray names a worker's process by its task); that title."""
        deadline, titles = time.monotonic() + timeout, []
        while time.monotonic() < deadline:
            titles, _ = self._raylet_children(node)
            busy = [t for t in titles if t.startswith("ray::MapBatches")]  # the model's or header reader's map
            if busy:
                return busy[0]
            time.sleep(0.05)
        raise AssertionError(f"no batch started on the worker node: {titles}")

    def kill(self, node: subprocess.Popen) -> None:
        """SIGKILL the node's processes (raylet, object store, agents) and its task workers: a lost machine."""
        _, workers = self._raylet_children(node)
        for pid in workers:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        try:
            os.killpg(node.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        node.wait(timeout=30)
        node.log.close()

    def close(self) -> None:
        for node in reversed(self.nodes):
            if node.poll() is None:
                self.kill(node)


def _reload_ray_auth() -> None:
    """Make this (already importing) process read RAY_AUTH_MODE / RAY_AUTH_TOKEN again, as Ray's own
    token setup does (its config and token are cached when first read)."""
    from ray._raylet import AuthenticationTokenLoader, Config

    Config.initialize("")
    AuthenticationTokenLoader.instance().reset_cache()


@pytest.fixture(scope="module")
def cluster():
    root = Path(tempfile.mkdtemp(prefix="rayf", dir="/tmp"))  # Ray's socket paths must stay short
    c = Cluster(root)
    saved = {k: os.environ.get(k) for k in ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN")}
    try:
        c.start_head()
        os.environ.update(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=c.env["RAY_AUTH_TOKEN"])
        _reload_ray_auth()
        ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # workers cannot import this module
        ray.init(address=c.address, log_to_driver=False, configure_logging=False)
        ray.data.DataContext.get_current().enable_progress_bars = False
        c.add_worker()
        yield c
    finally:
        if ray.is_initialized():
            ray.shutdown()
        c.close()
        for k, v in saved.items():
            os.environ.pop(k, None) if v is None else os.environ.__setitem__(k, v)
        _reload_ray_auth()
        shutil.rmtree(root, ignore_errors=True)


def parity_model(marks: str, batch: pa.Table) -> pa.Table:
    """A slow, deterministic model: 'even' or 'odd' by the frame number; leaves a mark per batch run."""
    ids = batch.column("frame_id").to_pylist()
    node = ray.get_runtime_context().get_node_id()
    Path(marks, f"{ids[0]}.{node}.{os.getpid()}").touch()
    time.sleep(0.5)
    return pa.table({"frame_id": ids, "label": ["odd" if int(f[1:]) % 2 else "even" for f in ids],
                     "bbox": [[0.1, 0.1, 0.5, 0.5]] * len(ids), "confidence": [0.75] * len(ids)})


def _in_thread(fn):
    out: dict = {}

    def run():
        try:
            out["result"] = fn()
        except BaseException as exc:  # noqa: BLE001 - handed to the test thread
            out["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, out


def _frames(store, n: int = 24):
    ds = store.create_dataset("cams")
    ds.add_frames([{"frame_id": f"f{i:02d}", "uri": f"img/{i}.jpg"} for i in range(n)])
    return ds


def test_predict_survives_losing_its_worker_node(cluster, store, tmp_path):
    ds = _frames(store)
    commits, marks = ds.commits().height, tmp_path / "marks"
    marks.mkdir()
    thread, out = _in_thread(lambda: distributed.predict(ds, functools.partial(parity_model, str(marks)), model=MODEL,
                                                         batch_size=4, max_retries=3))
    lost, lost_ids = cluster.nodes[-1], {n["NodeID"] for n in ray.nodes()}  # the head and the node to lose
    cluster.wait_for_a_running_batch(lost)
    cluster.kill(lost)  # mid-job: a batch is running there, finished ones lived in its object store
    cluster.add_worker()
    thread.join(timeout=180)
    assert not thread.is_alive() and "error" not in out, out.get("error")
    assert out["result"].added == 24 and out["result"].replaced == 0
    assert ds.commits().height == commits + 1  # exactly one commit, holding every frame's prediction
    rows = ds.to_arrow(columns=["frame_id", "annotations"]).to_pylist()
    assert sorted(r["frame_id"] for r in rows) == [f"f{i:02d}" for i in range(24)]  # no frame twice
    for r in rows:
        assert [(a["label"], a["source"]) for a in r["annotations"]] == [("odd" if int(r["frame_id"][1:]) % 2 else "even", MODEL)]
    # the lost node's batches (the one it was running, any whose output it held) ran again on the new node
    now = {n["NodeID"] for n in ray.nodes() if n["Alive"] and n["NodeID"] not in lost_ids}
    rerun = {m.name.split(".")[0] for m in marks.iterdir() if m.name.split(".")[1] in now}
    assert rerun == {f"f{i:02d}" for i in range(0, 24, 4)}


def _photos(tmp_path) -> Path:
    """480 distinct real JPEGs (the sample's, each with its own bytes after the end-of-image marker):
    two batches of header reads with whole-file hashes."""
    folder = tmp_path / "photos"
    folder.mkdir()
    for k in range(20):
        for p in sorted((DATA / "serengeti-thumbs").glob("*.JPG")):
            (folder / f"{k:02d}_{p.name}").write_bytes(p.read_bytes() + bytes([k]) * (k + 1))
    return folder


def test_ray_ingest_survives_losing_its_worker_node(cluster, store, tmp_path):
    folder = _photos(tmp_path)
    local = store.create_dataset("local")
    expected = local.ingest(str(folder), hash=True, progress=False)
    ds = store.create_dataset("cams")
    thread, out = _in_thread(lambda: ds.ingest(str(folder), hash=True, engine="ray", progress=False))
    lost = cluster.nodes[-1]
    cluster.wait_for_a_running_batch(lost)
    cluster.kill(lost)
    cluster.add_worker()
    thread.join(timeout=180)
    assert not thread.is_alive() and "error" not in out, out.get("error")
    assert out["result"].ingested == expected.ingested == 480
    ids = ds.to_arrow(columns=["frame_id"])["frame_id"].to_pylist()
    assert len(ids) == len(set(ids)) == expected.ingested  # every image once
    assert ds.version == local.version  # the same writes as the single-process ingest: one insert
    cols = ["frame_id", "width", "height", "sha256"]
    assert ds.to_arrow(columns=cols).sort_by("frame_id").equals(local.to_arrow(columns=cols).sort_by("frame_id"))


@pytest.mark.parametrize("job", ["predict", "ingest"])
def test_a_job_out_of_retries_commits_nothing_and_says_why(cluster, store, tmp_path, job):
    ds = _frames(store)
    version, commits = ds.version, ds.commits().height
    if job == "predict":
        marks = tmp_path / "marks"
        marks.mkdir()
        run = lambda: distributed.predict(ds, functools.partial(parity_model, str(marks)), model=MODEL,  # noqa: E731
                                          batch_size=4, max_retries=0)
        error = PredictionError
    else:
        folder = _photos(tmp_path)
        run = lambda: ds.ingest(str(folder), hash=True, engine="ray", progress=False, max_retries=0)  # noqa: E731
        error = IngestError
    thread, out = _in_thread(run)
    lost = cluster.nodes[-1]
    cluster.wait_for_a_running_batch(lost)
    cluster.kill(lost)
    cluster.add_worker()  # the cluster is whole again, but the lost batch had no retry left
    thread.join(timeout=180)
    assert not thread.is_alive()
    assert isinstance(out.get("error"), error), out
    message = str(out["error"])
    assert "failed on Ray, so nothing was written" in message and "max_retries" in message, message
    assert ("died" in message.lower() or "crash" in message.lower() or "lost" in message.lower()), message
    assert (ds.version, ds.commits().height) == (version, commits)
