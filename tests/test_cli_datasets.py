"""`hyperds datasets`, `show` and `optimize` on a real store."""

from __future__ import annotations

import json
import re

import pytest
from conftest import run_cli

from hyperds.cli.main import main


@pytest.fixture
def filled(store):
    ds = store.create_dataset("cams")
    ds.add_frames([
        {"frame_id": f"f{i}", "uri": f"f{i}.jpg", "site": "S1",
         "annotations": [{"label": "lion" if i % 3 else "zebra", "source_kind": "model", "confidence": 0.5}]}
        for i in range(6)
    ])
    return store


def test_datasets_and_show(filled, capsys):
    code, out, _ = run_cli(filled, capsys, "datasets")
    assert code == 0 and re.search(r"cams\s+┆ 6\s+┆", out)
    code, out, _ = run_cli(filled, capsys, "show", "cams")
    assert code == 0 and "annotations by label" in out
    assert re.search(r"lion\s+┆ 4\s", out) and re.search(r"zebra\s+┆ 2\s", out)
    code, out, _ = run_cli(filled, capsys, "show", "cams", "f3")
    assert code == 0 and json.loads(out)["labels"] == ["zebra"]


def test_show_unknown_frame_and_dataset(filled, capsys):
    code, _, err = run_cli(filled, capsys, "show", "cams", "nope")
    assert code == 2 and "frame 'nope' is not in dataset 'cams'" in err
    code, _, err = run_cli(filled, capsys, "show", "camz")
    assert code == 2 and "existing datasets: cams" in err


def test_optimize_builds_side_tables(filled, capsys):
    version = filled.dataset("cams").version
    code, out, _ = run_cli(filled, capsys, "optimize", "cams")
    assert code == 0 and f"version {version}" in out
    # (a label-only condition is a `labels` index test, no side table: ask about another field)
    assert "built from frames version" in filled.dataset("cams").query("any_annotation(level = 'media')").explain()


@pytest.mark.parametrize("command", [[], ["datasets"], ["show"], ["optimize"]])
def test_help(command, capsys):
    with pytest.raises(SystemExit) as exc:
        main([*command, "--help"])
    assert exc.value.code == 0 and "usage: hyperds" in capsys.readouterr().out
