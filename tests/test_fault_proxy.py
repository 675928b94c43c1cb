"""The fault proxy of the storage-fault tests does what each mode says, to a plain boto3 client (no retries)."""

from __future__ import annotations

import time
from urllib.parse import urlsplit

import boto3
import botocore.exceptions
import pytest
from botocore.config import Config
from fault_proxy import FaultProxy

BODY = bytes(range(256)) * 8


@pytest.fixture
def proxied(s3_server, s3_bucket):
    """(proxy, boto3 client through it that never retries and waits at most 1 s, bucket with object 'k')."""
    bucket, direct = s3_bucket
    direct.put_object(Bucket=bucket, Key="k", Body=BODY)
    with FaultProxy(urlsplit(s3_server).port) as proxy:
        config = Config(retries={"total_max_attempts": 1, "mode": "standard"}, connect_timeout=1, read_timeout=1)
        client = boto3.client("s3", endpoint_url=proxy.endpoint, region_name="us-east-1", config=config)
        yield proxy, client, bucket


def _get(client, bucket: str) -> bytes:
    return client.get_object(Bucket=bucket, Key="k")["Body"].read()


def test_pass_forwards_requests_unchanged_over_keep_alive(proxied):
    proxy, client, bucket = proxied
    for _ in range(5):
        assert _get(client, bucket) == BODY
    client.put_object(Bucket=bucket, Key="j", Body=b"x" * 100_000)
    assert client.head_object(Bucket=bucket, Key="j")["ContentLength"] == 100_000
    assert proxy.requests == 7 and proxy.faults == 0
    assert [what for _, _, what in proxy.log] == ["pass"] * 7


@pytest.mark.parametrize(
    "mode, error",
    [
        ("drop", botocore.exceptions.ConnectionClosedError),
        ("slowdown", botocore.exceptions.ClientError),
        ("cut", botocore.exceptions.ResponseStreamingError),
    ],
)
def test_a_fault_hits_only_the_requests_it_was_set_for(proxied, mode, error):
    proxy, client, bucket = proxied
    proxy.fault(mode, times=1)
    with pytest.raises(error) as info:
        _get(client, bucket)
    if mode == "slowdown":
        assert info.value.response["Error"]["Code"] == "SlowDown"
        assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 503
    assert _get(client, bucket) == BODY
    assert proxy.injected == {mode: 1} and [w for _, _, w in proxy.log] == [mode, "pass"]


def test_delay_and_dark_hold_requests_then_forward_them(proxied):
    proxy, client, bucket = proxied
    proxy.fault("delay", times=1, delay_s=0.4)
    start = time.monotonic()
    assert _get(client, bucket) == BODY
    assert 0.4 <= time.monotonic() - start < 1
    proxy.fault("dark", seconds=0.5)
    start = time.monotonic()
    assert _get(client, bucket) == BODY  # held for the rest of the 0.5 s window, inside the 1 s read timeout
    assert 0.3 <= time.monotonic() - start < 1
    proxy.fault("dark")  # permanently: the client gives up; the held request never reaches the server
    with pytest.raises(botocore.exceptions.ReadTimeoutError):
        client.put_object(Bucket=bucket, Key="never", Body=b"x")
    proxy.passthrough()
    with pytest.raises(botocore.exceptions.ClientError):
        client.head_object(Bucket=bucket, Key="never")
    assert proxy.injected == {"delay": 1, "dark": 2}


def test_a_fault_limited_to_writes_lets_reads_pass(proxied):
    proxy, client, bucket = proxied
    proxy.fault("drop", times=1, methods=("PUT",))
    assert _get(client, bucket) == BODY
    with pytest.raises(botocore.exceptions.ConnectionClosedError):
        client.put_object(Bucket=bucket, Key="w", Body=b"x")
    client.put_object(Bucket=bucket, Key="w", Body=b"y")
    assert _get(client, bucket) == BODY and proxy.injected == {"drop": 1}
    assert [(m, w) for m, _, w in proxy.log] == [("GET", "pass"), ("PUT", "drop"), ("PUT", "pass"), ("GET", "pass")]
