"""Shared fixtures: temp stores on disk, a real S3 API (moto server on 127.0.0.1), real JPEGs."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import boto3
import pytest
from hypothesis import HealthCheck, settings

import hyperds

DATA = Path(__file__).resolve().parents[1] / "examples" / "data"
MD_JSON = DATA / "megadetector" / "expected_output_DRAFT.json"


def run_cli(store: hyperds.Store, capsys: pytest.CaptureFixture, *argv: str) -> tuple[int, str, str]:
    """Run the `hyperds` console script on `store`; returns (exit status, stdout, stderr)."""
    from hyperds.cli.main import main

    code = main(["--store", store.uri, *argv])
    out = capsys.readouterr()
    return code, out.out, out.err

settings.register_profile(
    "ci", max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def s3_server():
    """A moto S3 server in its own process on 127.0.0.1 at a free port; yields its endpoint URL."""
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    endpoint = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                break
        except OSError:
            time.sleep(0.1)
    else:
        proc.kill()
        raise RuntimeError("moto server did not start")
    yield endpoint
    proc.terminate()
    proc.wait(timeout=10)


@pytest.fixture(scope="session", autouse=True)
def _aws_env():
    """Dummy credentials so nothing ever reaches a real AWS account."""
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    os.environ.pop("AWS_PROFILE", None)


@pytest.fixture
def s3_bucket(s3_server):
    """A fresh bucket on the moto server; yields (bucket name, boto3 client)."""
    client = boto3.client("s3", endpoint_url=s3_server, region_name="us-east-1")
    name = f"hyperds-{uuid.uuid4().hex[:12]}"
    client.create_bucket(Bucket=name)
    return name, client


@pytest.fixture
def s3_storage_options(s3_server) -> dict[str, str]:
    return {
        "aws_endpoint": s3_server,
        "allow_http": "true",
        "aws_access_key_id": "testing",
        "aws_secret_access_key": "testing",
        "region": "us-east-1",
    }


@pytest.fixture
def store(tmp_path) -> hyperds.Store:
    return hyperds.connect(tmp_path / "store")


@pytest.fixture
def sample_data(tmp_path) -> Path:
    """A writable copy of the repo's real sample data (examples/data)."""
    dst = tmp_path / "data"
    shutil.copytree(DATA, dst)
    return dst


@pytest.fixture
def md(store) -> hyperds.Dataset:
    """Dataset "md": the real MegaDetector sample output imported into a temp store."""
    from hyperds.frames.importers import import_megadetector

    ds = store.create_dataset("md")
    import_megadetector(ds, MD_JSON)
    return ds


def pytest_collection_modifyitems(config, items):
    """Long tests first: with `-n 2` the two workers then share them instead of one worker finishing
    them alone at the end (the order of everything else is kept)."""
    items.sort(key=lambda item: 0 if item.get_closest_marker("slow") else 1)
