"""Active-learning selection on synthetic frames: cluster coverage, spread, margins, exclusions, determinism."""

from __future__ import annotations

import datetime as dt
import uuid

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from hyperds.errors import SelectionError
from hyperds.workflows.select import select_frames

CLUSTER_SIZES = (3, 40, 7, 25, 1, 12, 9)


def _clustered(store, seed: int = 0):
    """Frames in well-separated Gaussian clusters of very different sizes; returns (ds, cluster of each frame)."""
    rng = np.random.default_rng(seed)
    centers = rng.standard_normal((len(CLUSTER_SIZES), 24)) * 50
    cluster = np.repeat(np.arange(len(CLUSTER_SIZES)), CLUSTER_SIZES)
    rng.shuffle(cluster)
    vecs = centers[cluster] + rng.standard_normal((len(cluster), 24))
    ids = [f"img{i:03d}" for i in range(len(cluster))]
    ds = store.create_dataset("clusters")
    ds.add_frames([{"frame_id": f, "uri": f"{f}.jpg"} for f in ids])
    ds.add_embeddings(ids, vecs, model="synthetic")
    return ds, dict(zip(ids, cluster.tolist(), strict=True))


@pytest.mark.parametrize("seed", range(6))
def test_diverse_covers_every_cluster_before_repeating_one(store, seed):
    ds, cluster_of = _clustered(store)
    n_clusters = len(CLUSTER_SIZES)
    picked = select_frames(ds, k=2 * n_clusters, strategy="diverse", seed=seed)["frame_id"].to_pylist()
    clusters = [cluster_of[f] for f in picked]
    assert sorted(clusters[:n_clusters]) == list(range(n_clusters))  # one from each, none twice
    assert len(set(picked)) == len(picked) == 2 * n_clusters


def test_diverse_scores_never_increase(store):
    ds, _ = _clustered(store)
    scores = select_frames(ds, k=20, strategy="diverse", seed=1)["score"].to_pylist()
    assert scores[0] is None  # the seeded first pick has no distance yet
    assert all(a >= b for a, b in zip(scores[1:], scores[2:], strict=False))


def _field(store, n_sites=4, n_cams=2, per_cam=16):
    ds = store.create_dataset("field")
    t0 = dt.datetime(2024, 3, 1, tzinfo=dt.UTC)
    rows = [
        {
            "frame_id": f"{s}-{c}-{j:02d}",
            "uri": "x.jpg",
            "site": f"S{s}",
            "camera": f"S{s}-C{c}",
            "captured_at": t0 + dt.timedelta(hours=j),
        }
        for s in range(n_sites)
        for c in range(n_cams)
        for j in range(per_cam)
    ]
    ds.add_frames(rows)
    return ds


@pytest.mark.parametrize("seed", [0, 7, 123])
def test_diverse_without_embeddings_spreads_over_sites_cameras_and_time(store, seed):
    ds = _field(store)
    picked = select_frames(ds, k=16, strategy="diverse", seed=seed)["frame_id"].to_pylist()
    sites = [p.split("-")[0] for p in picked]
    cams = ["-".join(p.split("-")[:2]) for p in picked]
    assert sorted(sites[:4]) == ["0", "1", "2", "3"]  # every site before any site twice
    assert len(set(cams[:8])) == 8  # every camera before any camera twice
    for cam in set(cams):  # a camera's two picks lie half its 16-hour span apart
        hours = [int(p.split("-")[2]) for p in picked if p.startswith(cam + "-")]
        assert len(hours) == 2
        gap = abs(hours[0] - hours[1])
        assert min(gap, 16 - gap) == 8


def _scored(store):
    """Frames with model detections of known confidences, plus frames a person labelled or reviewed."""
    ds = store.create_dataset("scored")
    rng = np.random.default_rng(5)
    rows, margins = [], {}
    for i in range(50):
        confs = rng.uniform(0, 1, size=rng.integers(1, 4)).round(3)
        anns = [{"label": "animal", "confidence": float(c), "source_kind": "model", "source": "md"} for c in confs]
        fid = f"m{i:02d}"
        if i % 7 == 0:  # a person rejected one detection: the frame was reviewed
            anns[0].update(review_status="rejected", reviewed_by="alice")
        elif i % 13 == 0:  # a rule rejected one detection: the frame stays open, the box no longer counts
            anns[0].update(review_status="rejected", reviewed_by="auto:dedupe")
        elif i % 11 == 0:  # auto-accepted by a rule: still open for people
            for a in anns:
                a.update(review_status="accepted", reviewed_by="auto:threshold=0.98")
        rows.append({"frame_id": fid, "uri": "x.jpg", "annotations": anns})
        if i % 7 == 0:
            continue
        live = [float(np.float32(c)) for c, a in zip(confs, anns, strict=True) if a.get("review_status") != "rejected"]
        margins[fid] = min((abs(2 * c - 1) for c in live), default=1.0)
    human = {f"h{i}": [{"label": "lion", "source_kind": "human", "source": "bob"}] for i in range(5)}
    reviewed = {
        f"r{i}": [{"label": "animal", "confidence": 0.5, "source_kind": "model", "review_status": "corrected", "reviewed_by": "carol"}]
        for i in range(5)
    }
    rows += [{"frame_id": f, "uri": "x.jpg", "annotations": a} for f, a in {**human, **reviewed}.items()]
    rows += [{"frame_id": f"e{i}", "uri": "x.jpg", "annotations": []} for i in range(3)]
    margins.update({f"e{i}": 1.0 for i in range(3)})
    ds.add_frames(rows)
    by_person = {f"m{i:02d}" for i in range(0, 50, 7)}
    return ds, margins, set(human) | set(reviewed) | by_person


def test_uncertainty_takes_the_smallest_margins(store):
    ds, margins, _ = _scored(store)
    got = select_frames(ds, k=10, strategy="uncertainty", seed=0)
    ids, scores = got["frame_id"].to_pylist(), got["score"].to_pylist()
    np.testing.assert_allclose(scores, [margins[f] for f in ids], atol=1e-6)
    assert scores == sorted(scores)
    rest = [m for f, m in margins.items() if f not in ids]
    assert max(scores) <= min(rest) + 1e-9
    assert got["rank"].to_pylist() == list(range(10))


@pytest.mark.parametrize("strategy", ["uncertainty", "random", "diverse"])
def test_selection_is_deterministic_and_never_returns_person_reviewed_frames(store, strategy):
    ds, margins, excluded = _scored(store)
    a = select_frames(ds, k=1000, strategy=strategy, seed=42)
    b = select_frames(ds, k=1000, strategy=strategy, seed=42)
    assert a.equals(b)
    ids = a["frame_id"].to_pylist()
    assert set(ids) == set(margins)  # every open frame, none a person touched
    assert not set(ids) & excluded
    assert select_frames(ds, k=5, strategy=strategy, seed=42)["frame_id"].to_pylist() == ids[:5]


def test_random_depends_on_seed(store):
    ds, _, _ = _scored(store)
    draws = {tuple(select_frames(ds, k=10, strategy="random", seed=s)["frame_id"].to_pylist()) for s in range(5)}
    assert len(draws) == 5


@pytest.mark.parametrize(
    ("kwargs", "text"),
    [({"strategy": "smart"}, "unknown selection strategy"), ({"k": 0}, "positive integer"), ({"seed": "x"}, "seed")],
)
def test_bad_selection_arguments(store, kwargs, text):
    ds, _, _ = _scored(store)
    with pytest.raises(SelectionError, match=text):
        select_frames(ds, **kwargs)


@pytest.mark.parametrize("strategy", ["uncertainty", "random", "diverse"])
def test_where_restricts_the_candidates(store, strategy):
    ds = _field(store)
    got = select_frames(ds, k=100, strategy=strategy, where="site = 'S1' AND captured_at < '2024-03-01T05:00:00Z'")
    expected = {f"1-{c}-{j:02d}" for c in range(2) for j in range(5)}
    assert set(got["frame_id"].to_pylist()) == expected


def test_diverse_with_an_unknown_embedding_column(store):
    ds, _ = _clustered(store)
    with pytest.raises(SelectionError, match="no embedding column 'clip'.*embedding"):
        select_frames(ds, strategy="diverse", column="clip")
    # checked before any read: also when no frame matches, and before a bad `where` is run
    with pytest.raises(SelectionError, match="no embedding column 'clip'.*column="):
        select_frames(ds, strategy="diverse", column="clip", where="site = 'nowhere'")


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    sizes=st.lists(st.integers(1, 12), min_size=2, max_size=8),
    dim=st.integers(2, 16),
    data_seed=st.integers(0, 2**16),
    seed=st.integers(0, 2**16),
)
def test_k_center_covers_separated_clusters_first_property(store, sizes, dim, data_seed, seed):
    """Whenever every cluster is narrower than the gap between any two, the first picks hit each cluster once."""
    rng = np.random.default_rng(data_seed)
    centers = rng.uniform(-100, 100, (len(sizes), dim))
    cluster = np.repeat(np.arange(len(sizes)), sizes)
    vecs = centers[cluster] + rng.uniform(-1, 1, (len(cluster), dim))
    d = np.sqrt(((vecs[:, None, :] - vecs[None, :, :]) ** 2).sum(-1))
    same = cluster[:, None] == cluster[None, :]
    assume(d[same].max() < d[~same].min())
    ds = store.create_dataset(f"prop-{uuid.uuid4().hex[:8]}")
    ids = [f"v{i:03d}" for i in range(len(cluster))]
    ds.add_frames([{"frame_id": f, "uri": "x.jpg"} for f in ids])
    ds.add_embeddings(ids, vecs, model="synthetic")
    picked = select_frames(ds, k=len(sizes), strategy="diverse", seed=seed)["frame_id"].to_pylist()
    assert sorted(cluster[ids.index(f)] for f in picked) == list(range(len(sizes)))
