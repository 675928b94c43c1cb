"""Nothing hyperds hands out pickles a secret: every public object, after it has read from an S3
store (moto, 127.0.0.1), pickles without the access key or the secret key in it."""

from __future__ import annotations

import pickle
import uuid

import pytest

import hyperds
from hyperds.images.fetch import Fetcher
from hyperds.loaders.torch import FrameDataset, IterableFrameDataset


@pytest.fixture
def secret_store(s3_bucket, s3_storage_options):
    """An S3 store whose credentials are distinctive strings (moto accepts any)."""
    bucket, _ = s3_bucket
    key_id, secret = f"AKID{uuid.uuid4().hex[:16].upper()}", f"SeCrEt-{uuid.uuid4().hex}"
    options = {**s3_storage_options, "aws_access_key_id": key_id, "aws_secret_access_key": secret}
    st = hyperds.connect(f"s3://{bucket}/store", storage_options=options)
    ds = st.create_dataset("cams")
    ds.add_frames([
        {"frame_id": f"f{i}", "uri": f"s3://{bucket}/img/{i}.jpg", "site": "S1",
         "annotations": [{"label": "deer" if i % 2 else "fox", "source_kind": "model", "confidence": 0.5,
                          "source": "md@1"}]}
        for i in range(6)
    ])
    return st, (key_id.encode(), secret.encode())


def _objects(st):
    ds = st.dataset("cams")
    len(ds)
    ds.to_arrow()
    old = ds.at(ds.version)
    old.to_arrow()
    query = ds.query("site = 'S1'")
    query.to_arrow()
    draft = st.create_view("v", "site = 'S1'", datasets=["cams"])
    draft.to_arrow()
    published = st.view("v", "draft").publish()
    published.to_arrow()
    reopened = hyperds.view("v", store=st)
    reopened.to_arrow()
    queue = ds.review_queue(threshold=0.9)
    queue.to_arrow()
    yield from {
        "Store": st, "Dataset": ds, "Dataset.at": old, "Query": query, "draft View": draft,
        "published View": published, "hyperds.view": reopened, "review queue": queue,
        "FrameDataset": FrameDataset(published), "FrameDataset(query)": FrameDataset(query),
        "IterableFrameDataset": IterableFrameDataset(ds),
        "Fetcher": Fetcher(st.storage_options),
    }.items()


def test_no_public_object_pickles_a_secret(secret_store):
    st, secrets = secret_store
    checked = []
    for what, obj in _objects(st):
        data = pickle.dumps(obj)
        for s in secrets:
            assert s not in data, f"{what} pickles the credential {s[:6]!r}..."
        back = pickle.loads(data)
        assert type(back) is type(obj)
        checked.append(what)
    assert len(checked) == 12
