"""`hyperds review queue|accept` and `hyperds select` on the real MegaDetector sample, in process."""

from __future__ import annotations

import json

import pytest
from conftest import MD_JSON, run_cli

from hyperds.cli.main import main


@pytest.fixture
def md_store(store, md):
    return store


def _confs() -> dict[str, list[float]]:
    doc = json.loads(MD_JSON.read_text())
    return {im["file"]: [d["conf"] for d in im["detections"]] for im in doc["images"]}


def test_review_accept_then_rerun(md_store, capsys):
    accepted = [f for f, c in _confs().items() if c and min(c) >= 0.9]
    n_dets = sum(len(_confs()[f]) for f in accepted)
    code, out, _ = run_cli(md_store, capsys, "review", "accept", "md", "--threshold", "0.9")
    assert code == 0
    assert f"accepted {n_dets} detection(s) on {len(accepted)} frame(s) as auto:threshold=0.9" in out
    version = md_store.dataset("md").version
    code, out, _ = run_cli(md_store, capsys, "review", "accept", "md", "--threshold", "0.9")
    assert code == 0 and "nothing to accept" in out
    assert md_store.dataset("md").version == version


def test_review_queue_prints_and_stores_the_queue(md_store, capsys):
    queue = sorted(f for f, c in _confs().items() if c and min(c) < 0.9)
    code, out, _ = run_cli(md_store, capsys, "review", "queue", "md", "--threshold", "0.9", "--format", "csv")
    assert code == 0
    assert f"draft view 'md-review-queue': {len(queue)} frame(s) to review" in out
    printed = [line.split(",")[0] for line in out.splitlines()[2:]]
    assert printed == queue


def test_select_is_deterministic(md_store, capsys):
    runs = [run_cli(md_store, capsys, "select", "md", "-k", "5", "--strategy", "random", "--seed", "4", "--format", "csv")
            for _ in range(2)]
    assert runs[0] == runs[1]
    code, out, _ = runs[0]
    assert code == 0 and "5 frame(s) by random (seed 4)" in out
    ids = [line.split(",")[0] for line in out.splitlines()[2:]]
    assert len(set(ids)) == 5 and set(ids) <= set(_confs())


@pytest.mark.parametrize(
    "argv",
    [["review", "accept", "md", "--threshold", "2"], ["select", "md", "-k", "0"], ["review", "queue", "md", "--where", "nope = 1"]],
)
def test_bad_input_is_one_line_and_changes_nothing(md_store, capsys, argv):
    version = md_store.dataset("md").version
    code, _, err = run_cli(md_store, capsys, *argv)
    assert code == 2 and err.startswith("hyperds: error:")
    assert md_store.dataset("md").version == version


@pytest.mark.parametrize("argv", [["review", "--help"], ["review", "queue", "--help"], ["review", "accept", "--help"], ["select", "--help"]])
def test_help(capsys, argv):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 0
    assert "usage: hyperds" in capsys.readouterr().out
