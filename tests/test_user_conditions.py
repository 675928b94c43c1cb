"""A user's condition (review_queue(where=...), select(where=...), the CLI's --where) is parsed on its
own and joined to hyperds' condition as a tree: text that closes a parenthesis cannot escape the
queue's condition."""

from __future__ import annotations

import pytest

from conftest import run_cli
from hyperds.errors import QueryError

ESCAPE = "site = 'S1') OR (site = 'S2'"


@pytest.fixture
def cams(store):
    ds = store.create_dataset("cams")
    rows = []
    for i in range(8):
        conf = 0.3 if i % 2 else 0.99  # odd frames are uncertain: they belong in the queue
        rows.append({"frame_id": f"f{i}", "uri": f"/x/{i}.jpg", "site": f"S{1 + i % 3}",
                     "annotations": [{"label": "deer", "source_kind": "model", "source": "md@5", "confidence": conf}]})
    ds.add_frames(rows)
    return ds


def _queue_ids(view):
    return sorted(view.to_arrow(["frame_id"]).column("frame_id").to_pylist())


def test_where_cannot_close_the_queue_condition(cams):
    with pytest.raises(QueryError) as err:
        cams.review_queue(threshold=0.9, where=ESCAPE)
    assert err.value.query == ESCAPE  # the error points into the user's own text
    assert cams.store.views().num_rows == 0


def test_where_with_or_stays_inside_the_queue(cams):
    got = _queue_ids(cams.review_queue(threshold=0.9, where="site = 'S1' OR site = 'S2'"))
    expected = [f"f{i}" for i in range(8) if i % 2 and f"S{1 + i % 3}" in ("S1", "S2")]
    assert got == expected


def test_select_where_cannot_escape(cams):
    with pytest.raises(QueryError):
        cams.select(k=5, strategy="random", where=ESCAPE)


@pytest.mark.parametrize("command", [["review", "queue", "cams", "--threshold", "0.9"],
                                     ["select", "cams", "-k", "3", "--strategy", "random"]])
def test_cli_where_cannot_escape(cams, capsys, command):
    code, out, err = run_cli(cams.store, capsys, *command, "--where", ESCAPE)
    assert code == 2 and err.startswith("hyperds: error: ") and "Traceback" not in err
    assert cams.store.views().num_rows == 0
