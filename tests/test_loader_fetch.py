"""Reading images by URI: http(s) servers, missing packages, unknown schemes and missing credentials."""

from __future__ import annotations

import functools
import http.server
import importlib.util
import threading

import numpy as np
import pyarrow as pa
import pytest
from conftest import DATA

from hyperds.errors import LoaderError
from hyperds.images.decode import decode_rgb
from hyperds.loaders.torch import FrameDataset

THUMBS = DATA / "serengeti-thumbs"
NAMES = sorted(p.name for p in THUMBS.glob("*.JPG"))[:3]
GCSFS = importlib.util.find_spec("gcsfs") is not None


@pytest.fixture
def http_root():
    """A plain HTTP server on 127.0.0.1 (free port) serving the thumbnails; yields its base URL."""

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(THUMBS)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def _frames(uris: list[str]) -> pa.Table:
    return pa.table({"frame_id": [f"f{i}" for i in range(len(uris))], "uri": uris, "labels": [["animal"]] * len(uris)})


@pytest.mark.parametrize("cached", [False, True])
def test_http_images_load(http_root, tmp_path, cached):
    frames = FrameDataset(_frames([f"{http_root}/{n}" for n in NAMES]), cache_dir=tmp_path / "cache" if cached else None)
    for (image, _), name in zip(frames.__getitems__(range(len(NAMES))), NAMES):
        expected = decode_rgb((THUMBS / name).read_bytes())
        assert np.array_equal(np.asarray(image), np.asarray(expected))


@pytest.mark.parametrize(
    "uri, says",
    [
        ("foo://bucket/x.jpg", "unknown URI scheme 'foo'"),
        pytest.param("gs://bucket/x.jpg", "install gcsfs", marks=pytest.mark.skipif(GCSFS, reason="gcsfs is installed")),
    ],
)
@pytest.mark.parametrize("on_error", ["raise", "skip"])
def test_unusable_scheme_fails_the_loader_not_one_image(uri, says, on_error):
    frames = FrameDataset(_frames([uri]), on_error=on_error)
    with pytest.raises(LoaderError, match=says):
        frames[0]
    assert frames.skipped == 0


@pytest.mark.parametrize("on_error", ["raise", "skip"])
def test_missing_s3_credentials_say_where_to_set_them(s3_bucket, s3_server, monkeypatch, tmp_path, on_error):
    bucket, client = s3_bucket
    client.put_object(Bucket=bucket, Key="x.jpg", Body=(THUMBS / NAMES[0]).read_bytes())
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")  # never ask a cloud metadata service
    frames = FrameDataset(_frames([f"s3://{bucket}/x.jpg"]), storage_options={"endpoint_url": s3_server}, on_error=on_error)
    with pytest.raises(LoaderError, match="credentials.*environment.*profile"):
        frames[0]
    assert frames.skipped == 0
