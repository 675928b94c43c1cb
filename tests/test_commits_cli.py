"""`hyperds commit|history|blame|log` on the real MegaDetector sample, in process."""

from __future__ import annotations

import csv
import json

import pytest
from conftest import MD_JSON, run_cli

from hyperds.cli.main import main


def _busiest_frame() -> tuple[str, int]:
    """The sample image with most detections, and how many (read from the MegaDetector file itself)."""
    doc = json.loads(MD_JSON.read_text())
    im = max(doc["images"], key=lambda i: len(i.get("detections") or []))
    return im["file"], len(im["detections"])


def test_commit_csv_then_history_blame_log(md, tmp_path, capsys):
    frame = next(f for f in md.to_arrow(columns=["frame_id"]).column("frame_id").to_pylist()
                 if f.endswith(_busiest_frame()[0].replace("/", "_")))
    path = tmp_path / "fix.csv"
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["op", "frame_id", "ann_id", "label", "bbox", "status", "note", "revision"])
        w.writerow(["relabel", frame, f"{frame}:0", "kudu", "", "", "", "0"])
        w.writerow(["move", frame, f"{frame}:1", "", "[0.1, 0.2, 0.3, 0.4]", "", "", "0"])
        w.writerow(["review", frame, f"{frame}:2", "", "", "reject", "shadow", "0"])
    before = md.version
    code, out, err = run_cli(md.store, capsys, "commit", "md", str(path), "--author", "ann", "-m", "first look")
    assert code == 0, err
    assert f"md version {before} -> {before + 1}, 1 frame(s): 0 added, 2 updated, 0 deleted, 1 reviewed" in out
    row = md.get(frame)
    assert row["annotations"][0]["label"] == "kudu" and row["annotations"][2]["review_status"] == "rejected"
    assert row["annotations"][1]["bbox"] == pytest.approx([0.1, 0.2, 0.3, 0.4])
    code, out, _ = run_cli(md.store, capsys, "history", "md", frame, "--format", "json")
    events = [json.loads(line) for line in out.splitlines()]
    assert [(e["ann_id"].split(":")[-1], e["op"], e["author"]) for e in events] == [
        ("0", "update", "ann"), ("1", "update", "ann"), ("2", "review", "ann")]
    assert events[0]["label_before"] == "animal" and events[0]["label_after"] == "kudu"
    assert events[2]["note"] == "shadow" and events[2]["message"] == "first look"
    code, out, _ = run_cli(md.store, capsys, "blame", "md", frame, "--format", "json")
    blame = [json.loads(line) for line in out.splitlines()]
    assert blame[0]["set_by"] == "ann" and blame[0]["why"] == "first look"
    assert blame[3]["source_kind"] == "model" and blame[3]["set_by"] == blame[3]["source"]
    code, out, _ = run_cli(md.store, capsys, "log", "md", "--format", "csv")
    log = list(csv.DictReader(out.splitlines()))
    assert [(r["author"], r["message"], r["version_after"]) for r in log] == [("ann", "first look", str(before + 1))]


def test_commit_json_conflict_and_bad_file(md, tmp_path, capsys):
    frame = md.to_arrow(columns=["frame_id"]).column("frame_id")[0].as_py()
    good = tmp_path / "add.json"
    good.write_text(json.dumps([{"op": "add", "frame_id": frame, "label": "aardvark", "bbox": [0, 0, 0.5, 0.5]}]))
    assert run_cli(md.store, capsys, "commit", "md", str(good), "--author", "bo")[0] == 0
    assert "aardvark" in md.get(frame)["labels"]
    version = md.version
    stale = tmp_path / "stale.jsonl"
    stale.write_text(json.dumps({"op": "add", "frame_id": frame, "label": "x", "revision": 0}) + "\n")
    code, _, err = run_cli(md.store, capsys, "commit", "md", str(stale), "--author", "bo")
    assert code == 2 and "changed since they were read" in err and frame in err
    bad = tmp_path / "bad.txt"
    bad.write_text("op,frame_id\n")
    code, _, err = run_cli(md.store, capsys, "commit", "md", str(bad), "--author", "bo")
    assert code == 2 and ".csv, .json or .jsonl" in err
    code, _, err = run_cli(md.store, capsys, "commit", "md", str(good), "--author", " ")
    assert code == 2 and "author is empty" in err
    assert md.version == version


def test_help_for_every_command(capsys):
    for cmd in ("commit", "history", "blame", "log"):
        with pytest.raises(SystemExit) as exc:
            main([cmd, "--help"])
        assert exc.value.code == 0
        assert "usage: hyperds " + cmd in capsys.readouterr().out



_ROW = "relabel,{f},{f}:0,kudu"


@pytest.mark.parametrize(
    ("name", "content", "encoding", "message"),
    [
        ("u16.csv", "op,frame_id,ann_id,label\n" + _ROW + "\n", "utf-16", "is not UTF-8 text; save it as CSV UTF-8"),
        ("u16.json", '[{{"op": "relabel", "frame_id": "{f}"}}]', "utf-16", "is not UTF-8 text; save it as UTF-8"),
        ("ragged.csv", "op,frame_id,ann_id,label\n" + _ROW + ",extra\n", "utf-8", "a row has more fields than the header"),
        ("bbox.csv", "op,frame_id,ann_id,bbox\nmove,{f},{f}:0,0.1 0.2 0.3 0.4\n", "utf-8",
         "bbox must be a JSON list '[x, y, w, h]'"),
        ("two.jsonl", '{{"op": "relabel", "frame_id": "{f}"}}\nnot json\n', "utf-8", "two.jsonl: line 2: not valid JSON"),
        ("folder.csv", None, None, "folder.csv is a folder; give the corrections file inside it"),
    ],
)
def test_unreadable_corrections_are_one_line_and_change_nothing(md, tmp_path, capsys, name, content, encoding, message):
    frame = md.to_arrow(columns=["frame_id"]).column("frame_id")[0].as_py()
    path = tmp_path / name
    if content is None:
        path.mkdir()
    else:
        path.write_text(content.format(f=frame), encoding=encoding)
    version = md.version
    code, _, err = run_cli(md.store, capsys, "commit", "md", str(path), "--author", "bo")
    assert code == 2 and message in err, err
    assert len(err.strip().splitlines()) == 1
    assert md.store.dataset("md").version == version
