"""Multi-process: processes publishing the same view version at the same moment; exactly one wins.

Slow-ish (spawned interpreters): 4 processes x 4 rounds, released together by a barrier each round.
"""

from __future__ import annotations

import multiprocessing as mp

import pytest

import hyperds
from hyperds.errors import ViewExistsError

PROCESSES = 4
ROUNDS = 4


def _publisher(uri: str, options: dict | None, rounds: int, barrier, results, worker: int) -> None:
    store = hyperds.connect(uri, options)
    for round_ in range(rounds):
        draft = store.view("race", "draft")
        if worker == round_ % PROCESSES:  # one racer per round also writes, so racers may pin different versions
            store.dataset("cams").add_frames([{"frame_id": f"w{round_}", "uri": f"s3://b/w{round_}.jpg"}])
        barrier.wait(timeout=60)
        try:
            view = draft.publish(f"1.{round_}", message=f"worker {worker}")
            results.put((round_, worker, "ok", view.digest, view.pins["cams"]))
        except ViewExistsError as exc:
            results.put((round_, worker, "exists", str(exc), None))
        except Exception as exc:  # anything else is a failure of the test
            results.put((round_, worker, "error", repr(exc), None))


def race_publishes(store: hyperds.Store, rounds: int) -> None:
    """PROCESSES processes publish versions 1.0 ... 1.<rounds-1> of one view together; one wins each."""
    ds = store.create_dataset("cams")
    ds.add_frames([{"frame_id": f"f{i}", "uri": f"s3://b/{i}.jpg", "site": "S1"} for i in range(20)])
    store.create_view("race", "TRUE", datasets=["cams"])
    ctx = mp.get_context("spawn")  # Lance's runtime does not survive fork
    barrier, results = ctx.Barrier(PROCESSES), ctx.Queue()
    args = (store.uri, store.storage_options, rounds, barrier, results)
    procs = [ctx.Process(target=_publisher, args=(*args, w)) for w in range(PROCESSES)]
    for p in procs:
        p.start()
    outcomes = [results.get(timeout=240) for _ in range(PROCESSES * rounds)]
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    assert [o for o in outcomes if o[2] == "error"] == []
    rows = store.views().to_pylist()
    published = {r["version"]: r for r in rows if r["status"] == "published"}
    assert sorted(published) == [f"1.{r}" for r in range(rounds)]  # one catalog row per version
    tags = ds.lance().tags.list()
    for round_ in range(rounds):
        mine = [o for o in outcomes if o[0] == round_]
        winners = [o for o in mine if o[2] == "ok"]
        assert len(winners) == 1, mine
        assert all("by another process" in o[3] or "already published" in o[3] for o in mine if o[2] == "exists")
        _, worker, _, digest, pin = winners[0]
        view = store.view("race", f"1.{round_}")
        assert (view.digest, view.pins["cams"], view.message) == (digest, pin, f"worker {worker}")
        assert tags[f"view.race.1.{round_}"]["version"] == pin
        assert view.verify().ok


@pytest.mark.slow
def test_concurrent_publish_of_one_version_has_exactly_one_winner(store):
    race_publishes(store, ROUNDS)
