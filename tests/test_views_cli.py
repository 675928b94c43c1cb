"""`hyperds view create|publish|list|show|diff|verify` and `hyperds audit runs` on the real MegaDetector sample."""

from __future__ import annotations

import json

import lance
import pytest
from conftest import MD_JSON, run_cli

from hyperds.cli.main import main


def _confident_frames(threshold: float) -> int:
    """Images of the MegaDetector file with an 'animal' (category 1) detection at >= threshold."""
    doc = json.loads(MD_JSON.read_text())
    return sum(any(d["category"] == "1" and d["conf"] >= threshold for d in im.get("detections") or [])
               for im in doc["images"])


def test_view_lifecycle_from_the_command_line(store, md, capsys, tmp_path):
    expected = _confident_frames(0.8)
    mapping = tmp_path / "map.json"
    mapping.write_text(json.dumps({"animal": "wildlife"}))
    code, out, err = run_cli(store, capsys, "view", "create", "animals", "-d", "md",
                          "-q", "any_annotation(label = 'animal' AND confidence >= 0.8)",
                          "--label-map", str(mapping), "-m", "confident animals")
    assert code == 0, err
    assert f"{expected} frames now" in out
    code, out, _ = run_cli(store, capsys, "view", "publish", "animals")
    assert code == 0 and f"published view 'animals' 1.0: {expected} frames" in out
    digest = store.view("animals", "1.0").digest
    assert digest in out

    md.commit([{"op": "add", "frame_id": md.to_arrow(["frame_id"]).column("frame_id")[0].as_py(), "label": "animal",
                "confidence": 0.99, "bbox": [0.1, 0.1, 0.2, 0.2]}], author="cli-test", message="one more")
    assert run_cli(store, capsys, "view", "publish", "animals", "--version", "1.5", "-m", "more")[0] == 0
    code, out, _ = run_cli(store, capsys, "view", "list", "--format", "csv")
    assert code == 0 and out.count("animals,") == 3 and "1.5,published" in out

    code, out, _ = run_cli(store, capsys, "view", "show", "animals", "--version", "1.0")
    assert code == 0 and digest in out and '"animal": "wildlife"' in out and "md@" in out

    code, out, _ = run_cli(store, capsys, "view", "diff", "animals", "1.0", "1.5")
    n_added = store.view("animals", "1.5").frame_count - expected
    assert code == 0 and out.startswith(f"animals 1.0 -> animals 1.5: {n_added} added, 0 removed")

    code, out, _ = run_cli(store, capsys, "view", "verify", "animals", "--version", "1.0")
    assert code == 0 and "OK" in out
    lance.dataset(store.table_uri("_views")).update({"frame_count": "1"}, where="version = '1.0'")
    code, out, _ = run_cli(store, capsys, "view", "verify", "animals", "--version", "1.0")
    assert code == 1 and "FAILED" in out and "1 were recorded" in out

    store.view("animals", "1.5").record_run("run-7", {"epochs": 3})
    code, out, _ = run_cli(store, capsys, "audit", "runs", "--view", "animals", "--format", "json")
    assert code == 0 and json.loads(out.strip())["run_id"] == "run-7"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["view", "show", "nope"], "existing views: known"),
        (["view", "show", "known", "--version", "3.0"], "existing versions: 1.0, draft"),
        (["view", "publish", "known", "--version", "1.0"], "already published"),
        (["view", "create", "x", "-d", "md", "-q", "labls = 1"], "did you mean 'labels'"),
        (["view", "create", "x", "-d", "md"], "either --query or"),
        (["view", "create", "x", "-d", "md", "-q", "TRUE", "--label-map", "{bad"], "not valid JSON"),
        (["view", "create", "x", "-d", "md", "-q", "TRUE", "--label-map", "no/such/map.json"], "cannot read --label-map"),
        (["view", "create", "x", "-d", "md", "-q", "TRUE", "--split-by", "site", "--split", "a=x"], "numbers"),
    ],
)
def test_cli_errors_are_one_line_messages_and_write_nothing(store, md, capsys, argv, message):
    store.create_view("known", "TRUE", datasets=["md"]).publish()
    before = store.views().to_pylist()
    code, _, err = run_cli(store, capsys, *argv)
    assert code == 2 and message in err
    assert store.views().to_pylist() == before


def test_every_view_command_has_help(capsys):
    for argv in (["view", "--help"], ["view", "create", "--help"], ["view", "diff", "--help"], ["audit", "runs", "--help"]):
        with pytest.raises(SystemExit) as exc:
            main(argv)
        assert exc.value.code == 0
    assert "usage" in capsys.readouterr().out
