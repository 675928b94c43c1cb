"""FrameDataset under DataLoader workers (fork/spawn), DDP-style sharding, shuffling, S3, caching and pickling.

The DataLoader matrix starts real worker processes: it is kept to the 24 serengeti thumbnails at 32x32.
"""

from __future__ import annotations

import operator
import os
import pickle
from collections import Counter

import pyarrow as pa
import pytest
from conftest import DATA
from torch.utils.data import DataLoader, get_worker_info

import hyperds
from hyperds.loaders import transforms as T
from hyperds.loaders.torch import FrameDataset, IterableFrameDataset

THUMBS = DATA / "serengeti-thumbs"
FILES = sorted(p.name for p in THUMBS.glob("*.JPG"))
SECRET = "SUPERSECRETabc123xyz"
SMALL = T.Compose([T.Resize((32, 32)), T.ToTensor()])
FRAME_ID = operator.itemgetter("frame_id")


def _worker_and_frame(row):
    """Target naming the DataLoader worker that produced the sample, and its frame."""
    return get_worker_info().id, row["frame_id"]


def _rows():
    return [{"frame_id": name.removesuffix(".JPG"), "uri": name, "annotations": [{"label": "animal"}]} for name in FILES]


@pytest.fixture
def local_ds(store):
    ds = store.create_dataset("thumbs", root=str(THUMBS))
    ds.add_frames(_rows())
    return ds


@pytest.fixture
def s3_ds(store, s3_bucket, s3_server):
    """The thumbnails uploaded to a moto bucket; frames point at s3://bucket/thumbs/<name>."""
    bucket, client = s3_bucket
    for name in FILES:
        client.put_object(Bucket=bucket, Key=f"thumbs/{name}", Body=(THUMBS / name).read_bytes())
    ds = store.create_dataset("thumbs_s3", root=f"s3://{bucket}/thumbs")
    ds.add_frames(_rows())
    return ds, {"endpoint_url": s3_server}, bucket, client


def _ids_seen(loader) -> Counter:
    seen: Counter = Counter()
    for images, ids in loader:
        assert images.shape[1:] == (3, 32, 32)
        seen.update(ids)
    return seen


ALL = Counter(name.removesuffix(".JPG") for name in FILES)


@pytest.mark.slow
@pytest.mark.parametrize(
    "where, workers, context",
    # One spawn case: each spawned worker spends ~3 s of CPU importing hyperds (lancedb) on a 2-core box.
    [("s3", 0, None), ("s3", 2, "fork"), ("s3", 4, "fork"), ("s3", 2, "spawn"), ("local", 2, "fork"), ("local", 4, "fork")],
)
def test_every_image_arrives_once_per_epoch(request, store, where, workers, context):
    """Two epochs over the thumbnails plus one frame whose image is missing (skipped, counted in every worker)."""
    if where == "s3":
        ds, options, _, _ = request.getfixturevalue("s3_ds")
    else:
        ds, options = request.getfixturevalue("local_ds"), None
    ds.add_frames([{"frame_id": "gone", "uri": "gone.JPG"}])
    frames = FrameDataset(ds, transform=SMALL, target=FRAME_ID, storage_options=options, fetch_threads=4, on_error="skip")
    frames[0]  # the parent opens its own file system first: forked workers must not reuse it
    loader = DataLoader(
        frames, batch_size=5, shuffle=True, num_workers=workers, multiprocessing_context=context, persistent_workers=workers > 0
    )
    for epoch in range(2):
        assert _ids_seen(loader) == ALL
        assert frames.skipped == epoch + 1


@pytest.mark.slow
def test_two_ranks_by_two_workers_read_disjoint_shards(local_ds):
    shards = {}
    for rank in range(2):
        stream = IterableFrameDataset(
            local_ds, seed=7, rank=rank, world_size=2, transform=SMALL, target=_worker_and_frame, chunk_size=4
        )
        stream.set_epoch(3)
        for worker in range(2):
            shards[rank, worker] = Counter()
        loader = DataLoader(stream, batch_size=3, num_workers=2, multiprocessing_context="fork")
        for _, (workers, ids) in loader:
            for worker, fid in zip(workers.tolist(), ids):
                shards[rank, worker][fid] += 1
        assert sum(shards[rank, w].total() for w in range(2)) == len(stream)
    union = Counter()
    for shard in shards.values():
        assert max(shard.values()) == 1
        union.update(shard)
    assert union == ALL  # disjoint (every count is 1) and complete
    sizes = sorted(s.total() for s in shards.values())
    assert sizes[-1] - sizes[0] <= 1


@pytest.mark.parametrize("n, world, workers", [(10, 2, 4), (10, 2, 3), (10, 4, 2), (7, 3, 2), (25, 2, 2)])
def test_every_rank_reads_its_length_over_all_its_workers(n, world, workers):
    """Ranks must take equal steps (DDP hangs otherwise) whatever the worker count; shards disjoint and complete."""
    table = pa.table({"frame_id": [f"f{i}" for i in range(n)], "uri": ["x.jpg"] * n, "labels": [["a"]] * n})
    union: Counter = Counter()
    per_rank = []
    for rank in range(world):
        stream = IterableFrameDataset(table, seed=3, rank=rank, world_size=world)
        shards = [stream.shard(w, workers).tolist() for w in range(workers)]
        per_rank.append(sum(len(s) for s in shards))
        assert per_rank[-1] == len(stream)
        for shard in shards:
            union.update(shard)
    assert max(per_rank) - min(per_rank) <= 1
    assert union == Counter(range(n))  # every sample exactly once


def test_same_seed_and_epoch_give_the_same_order(local_ds):
    def order(seed, epoch):
        stream = IterableFrameDataset(local_ds, seed=seed, transform=SMALL, target=FRAME_ID)
        stream.set_epoch(epoch)
        return [fid for _, fid in stream]

    first = order(1, 0)
    assert Counter(first) == ALL
    assert order(1, 0) == first
    assert order(1, 1) != first and Counter(order(1, 1)) == ALL
    assert order(2, 0) != first
    unshuffled = IterableFrameDataset(local_ds, shuffle=False, target=FRAME_ID, transform=SMALL)
    assert [fid for _, fid in unshuffled] == local_ds.to_arrow(columns=["frame_id"]).column("frame_id").to_pylist()


def test_pickled_dataset_holds_no_secret_and_reads_with_environment_credentials(s3_ds, s3_server, tmp_path):
    ds, _, bucket, _ = s3_ds
    options = {"endpoint_url": s3_server, "key": "testing", "aws_secret_access_key": SECRET, "client_kwargs": {"aws_session_token": SECRET}}
    frames = FrameDataset(ds, transform=SMALL, storage_options=options)
    stream = IterableFrameDataset(ds, transform=SMALL, storage_options={"secret": SECRET, "endpoint_url": s3_server})
    # The same key arriving through a Store's storage options (object_store spelling).
    secret_store = hyperds.connect(
        tmp_path / "secret-store",
        storage_options={"aws_endpoint": s3_server, "aws_secret_access_key": SECRET, "aws_access_key_id": "testing"},
    )
    shared = secret_store.create_dataset("thumbs", root=f"s3://{bucket}/thumbs")
    shared.add_frames(_rows())
    inherited = FrameDataset(shared, transform=SMALL)
    for obj in (frames, stream, inherited):
        blob = pickle.dumps(obj)
        assert SECRET.encode() not in blob
        clone = pickle.loads(blob)  # credentials now come from the environment (AWS_* set by conftest)
        got = clone.frames[0] if isinstance(clone, IterableFrameDataset) else clone[0]
        assert got[0].shape == (3, 32, 32)
    assert inherited[1][0].shape == (3, 32, 32)  # the unpickled copy aside, the original still works


def test_cache_serves_later_epochs(s3_ds, tmp_path):
    ds, options, bucket, client = s3_ds
    frames = FrameDataset(ds, transform=SMALL, target=FRAME_ID, storage_options=options, cache_dir=tmp_path / "cache")
    first = [fid for _, fid in frames.__getitems__(range(len(frames)))]
    for name in FILES:
        client.delete_object(Bucket=bucket, Key=f"thumbs/{name}")
    again = [fid for _, fid in frames.__getitems__(range(len(frames)))]
    assert again == first and Counter(first) == ALL
    uncached = FrameDataset(ds, transform=SMALL, storage_options=options, on_error="skip")
    assert uncached.__getitems__([0, 1]) == [] and uncached.skipped == 2


def _heap_tuned_here(row):
    from hyperds.loaders import worker_memory

    return worker_memory._tuned_pid == os.getpid()


def test_workers_raise_their_heap_thresholds_and_the_main_process_keeps_its_own(local_ds):
    from hyperds.loaders import worker_memory

    frames = FrameDataset(local_ds, transform=SMALL, target=_heap_tuned_here)
    in_workers = [bool(t) for _, targets in DataLoader(frames, batch_size=4, num_workers=2) for t in targets]
    assert in_workers and all(in_workers)
    assert worker_memory._tuned_pid != os.getpid()  # a plain loop in the main process leaves malloc alone
    assert not frames[0][1]
