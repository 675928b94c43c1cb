"""Embedding vectors on frames: one-commit writes, exact or indexed similarity search, bad input."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

import hyperds
from hyperds.errors import EmbeddingError, FrameNotFoundError, SchemaError
from hyperds.frames.normalize import normalize_frames


def _frames(ds, n: int) -> list[str]:
    ids = [f"frame-{i:04d}" for i in range(n)]
    ds.add_frames([{"frame_id": f, "uri": f"img/{f}.jpg", "site": f"S{i % 3}"} for i, f in enumerate(ids)])
    return ids


def _nearest(ids: list[str], vectors: np.ndarray, i: int, k: int) -> list[str]:
    """Brute-force L2 neighbours of row i, itself excluded, ties by frame_id."""
    d = ((vectors.astype(np.float64) - vectors[i].astype(np.float64)) ** 2).sum(axis=1)
    order = sorted((dist, fid) for j, (dist, fid) in enumerate(zip(d, ids, strict=True)) if j != i)
    return [fid for _, fid in order[:k]]


def test_add_embeddings_writes_one_commit_and_keeps_other_columns(store):
    ds = store.create_dataset("emb")
    ids = _frames(ds, 100)
    before = ds.to_arrow().sort_by("frame_id")
    v0 = ds.version
    vecs = np.random.default_rng(0).standard_normal((40, 12)).astype(np.float32)

    res = ds.add_embeddings(ids[:40], vecs, model="toy-encoder@1")

    assert ds.version == v0 + 1 == res.version  # below the index threshold: data commit only
    assert (res.frames, res.dim, res.indexed) == (40, 12, False)
    field = ds.schema.field("embedding")
    assert field.type == pa.list_(pa.float32(), 12)
    after = ds.to_arrow().sort_by("frame_id")
    for name in before.column_names:  # nothing else changed, revisions included
        assert after.column(name).equals(before.column(name)), name
    got = np.stack([np.asarray(v, np.float32) for v in after.column("embedding").to_pylist()[:40]])
    np.testing.assert_array_equal(got, vecs)
    assert after.column("embedding").null_count == 60
    assert set(after.column("embedding_model").to_pylist()[:40]) == {"toy-encoder@1"}
    # New frames after the column exists simply have no vector.
    ds.add_frames([{"frame_id": "late", "uri": "late.jpg"}])
    assert ds.get("late")["embedding"] is None


def test_second_write_replaces_only_listed_vectors(store):
    ds = store.create_dataset("emb2")
    ids = _frames(ds, 20)
    rng = np.random.default_rng(1)
    first = rng.standard_normal((20, 4)).astype(np.float32)
    ds.add_embeddings(ids, first, model="a")
    second = rng.standard_normal((5, 4)).astype(np.float32)
    v = ds.version
    ds.add_embeddings(pa.array(ids[:5]), second, model="b")
    assert ds.version == v + 1
    rows = ds.to_arrow(columns=["frame_id", "embedding", "embedding_model"]).sort_by("frame_id").to_pylist()
    np.testing.assert_array_equal(np.array([r["embedding"] for r in rows], np.float32), np.vstack([second, first[5:]]))
    assert [r["embedding_model"] for r in rows] == ["b"] * 5 + ["a"] * 15


def test_similar_flat_search_is_exact(store):
    ds = store.create_dataset("flat")
    ids = _frames(ds, 60)
    vecs = np.random.default_rng(2).standard_normal((60, 6)).astype(np.float32)
    ds.add_embeddings(ids, vecs, model="m")
    for i in (0, 17, 59):
        got = ds.similar(ids[i], k=7)
        assert got.column_names == ["frame_id", "distance"]
        assert got.column("frame_id").to_pylist() == _nearest(ids, vecs, i, 7)
        expected = np.sqrt(((vecs - vecs[i]) ** 2).sum(axis=1))
        dist = dict(zip(ids, expected, strict=True))
        np.testing.assert_allclose(got.column("distance").to_numpy(), [dist[f] for f in got["frame_id"].to_pylist()], rtol=1e-5)


def test_vector_index_built_with_enough_rows_and_search_stays_exact(store):
    ds = store.create_dataset("indexed")
    ids = _frames(ds, 320)
    rng = np.random.default_rng(3)
    centers = rng.standard_normal((8, 16)) * 10
    vecs = (centers[np.arange(320) % 8] + rng.standard_normal((320, 16))).astype(np.float32)
    res = ds.add_embeddings(ids, vecs, model="m")
    assert res.indexed
    kinds = {d.field_names[0]: d.type_url for d in ds.lance().describe_indices()}
    assert "Vector" in kinds["embedding"]
    for i in (5, 100, 301):  # approximate candidates re-ranked exactly
        assert ds.similar(ids[i], k=5)["frame_id"].to_pylist() == _nearest(ids, vecs, i, 5)


@pytest.mark.parametrize(
    ("frame_ids", "vectors", "model", "error", "text"),
    [
        (["frame-0000", "nope"], np.zeros((2, 4)), "m", FrameNotFoundError, "nope"),
        (["frame-0000", "frame-0001"], np.zeros((3, 4)), "m", EmbeddingError, "3 vectors for 2"),
        (["frame-0000", "frame-0000"], np.zeros((2, 4)), "m", EmbeddingError, "more than once"),
        (["frame-0000"], np.array([[np.nan, 0, 0, 0]]), "m", EmbeddingError, "NaN"),
        (["frame-0000"], np.zeros(4), "m", EmbeddingError, "2-D"),
        (["frame-0000"], np.zeros((1, 4)), "", EmbeddingError, "model"),
        (["frame-0000"], np.zeros((1, 5)), "m", EmbeddingError, "4-d vectors; got 5-d"),
    ],
)
def test_bad_embeddings_leave_dataset_unchanged(store, frame_ids, vectors, model, error, text):
    ds = store.create_dataset("bad")
    _frames(ds, 5)
    ds.add_embeddings(["frame-0004"], np.ones((1, 4)), model="m")
    version, table = ds.version, ds.to_arrow()
    with pytest.raises(error, match=text):
        ds.add_embeddings(frame_ids, vectors, model=model)
    assert ds.version == version
    assert ds.to_arrow().equals(table)


def test_similar_errors(store):
    ds = store.create_dataset("sim")
    ids = _frames(ds, 4)
    with pytest.raises(EmbeddingError, match="no embedding column"):
        ds.similar(ids[0])
    ds.add_embeddings(ids[:2], np.eye(2, 3), model="m")
    with pytest.raises(EmbeddingError, match="has no 'embedding' vector"):
        ds.similar(ids[3])
    with pytest.raises(FrameNotFoundError):
        ds.similar("missing")
    with pytest.raises(SchemaError, match="read-only"):
        ds.at(ds.version).add_embeddings(ids[:1], np.ones((1, 3)), model="m")
    assert ds.similar(ids[0], k=10)["frame_id"].to_pylist() == [ids[1]]  # only frames with a vector


def test_embeddings_on_an_s3_store(s3_bucket, s3_storage_options):
    bucket, _ = s3_bucket
    store = hyperds.connect(f"s3://{bucket}/stores/emb", storage_options=s3_storage_options)
    ds = store.create_dataset("remote")
    ids = _frames(ds, 30)
    vecs = np.random.default_rng(4).standard_normal((30, 5)).astype(np.float32)
    ds.add_embeddings(ids, vecs, model="m")
    again = hyperds.connect(f"s3://{bucket}/stores/emb", storage_options=s3_storage_options).dataset("remote")
    assert again.similar(ids[3], k=4)["frame_id"].to_pylist() == _nearest(ids, vecs, 3, 4)


def test_later_vectors_add_index_deltas_instead_of_rewriting_indices(store):
    """Refreshing after add_embeddings must not rewrite a whole single-segment scalar index (cost follows the table)."""
    ds = store.create_dataset("deltas")
    ids = _frames(ds, 300)
    rng = np.random.default_rng(5)
    vecs = rng.standard_normal((305, 8)).astype(np.float32)
    ds.add_embeddings(ids, vecs[:300], model="m@1")
    # rows written without an index refresh, as a commit leaves them when a concurrent refresh wins
    late = [{"frame_id": f"late-{i}", "uri": f"img/late-{i}.jpg"} for i in range(5)]
    table = normalize_frames(late)
    ds.lance().insert(ds.table._align(table, ds.lance().schema))
    first = {i.name: {s.uuid for s in i.segments} for i in ds.lance().describe_indices()}
    assert all(len(s) == 1 for s in first.values())

    ds.add_embeddings([r["frame_id"] for r in late], vecs[300:], model="m@1")

    after = {i.name: {s.uuid for s in i.segments} for i in ds.lance().describe_indices()}
    assert all(first[name] < after[name] for name in first)  # first segment kept, a delta added
    assert {i.num_rows_indexed for i in ds.lance().describe_indices()} == {305}
    all_ids = [*ids, *(r["frame_id"] for r in late)]
    assert ds.similar("late-0", k=3)["frame_id"].to_pylist() == _nearest(all_ids, vecs, 300, 3)
