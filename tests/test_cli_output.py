"""`--format`/`--output` of every table-printing command, and the global `--store`, on a real store."""

from __future__ import annotations

import csv
import json

import polars as pl
import pytest
from conftest import MD_JSON, run_cli

import hyperds
from hyperds.cli.main import main


def _frame_ids() -> list[str]:
    """frame_ids the importer gives the sample's images (their paths with '/' as '_')."""
    return sorted(im["file"].replace("/", "_") for im in json.loads(MD_JSON.read_text())["images"])


@pytest.mark.parametrize("fmt", ["csv", "json", "table", "parquet"])
def test_output_writes_every_format_to_the_file_not_stdout(md, tmp_path, capsys, fmt):
    out = tmp_path / f"frames.{fmt}"
    code, stdout, err = run_cli(md.store, capsys, "query", "md", "frame_id != ''", "--columns", "frame_id",
                                "--format", fmt, "--output", str(out))
    assert code == 0, err
    assert stdout == ""
    if fmt == "csv":
        got = [r["frame_id"] for r in csv.DictReader(out.open(newline=""))]
    elif fmt == "json":
        got = [json.loads(line)["frame_id"] for line in out.read_text().splitlines()]
    elif fmt == "parquet":
        got = pl.read_parquet(out)["frame_id"].to_list()
    else:
        text = out.read_text()
        got = [f for f in _frame_ids() if f[:40] in text]
    assert sorted(got) == _frame_ids()


def test_log_csv_to_output_file(md, tmp_path, capsys):
    frame = _frame_ids()[0]
    res = md.commit([{"op": "add", "frame_id": frame, "label": "kudu"}], author="ann", message="why not")
    out = tmp_path / "log.csv"
    code, stdout, err = run_cli(md.store, capsys, "log", "md", "--format", "csv", "--output", str(out))
    assert code == 0, err
    assert stdout == ""
    rows = list(csv.DictReader(out.open(newline="")))
    assert [(r["author"], r["message"], r["version_after"]) for r in rows] == [("ann", "why not", str(res.version))]


def test_unwritable_output_is_one_line(md, tmp_path, capsys):
    out = tmp_path / "no" / "such" / "folder" / "log.csv"
    for fmt in ("csv", "parquet"):
        code, _, err = run_cli(md.store, capsys, "log", "md", "--format", fmt, "--output", str(out))
        assert code == 2
        assert err.startswith(f"hyperds: error: cannot write {out}:") and "check the folder exists" in err
        assert len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("argv", [["review", "queue", "md"], ["select", "md", "-k", "3"], ["query", "md", "site = 'x'"],
                                  ["log", "md"], ["view", "list"]])
def test_parquet_without_output_is_refused_before_any_work(md, capsys, argv):
    version = md.version
    with pytest.raises(SystemExit) as exc:
        main(["--store", md.store.uri, *argv, "--format", "parquet"])
    assert exc.value.code == 2
    assert "--format parquet needs --output FILE" in capsys.readouterr().err
    assert md.store.views().num_rows == 0  # no draft view was saved
    assert md.store.dataset("md").version == version


@pytest.mark.parametrize("limit", ["0", "-1", "two"])
def test_limit_must_be_positive(md, capsys, limit):
    with pytest.raises(SystemExit) as exc:
        main(["--store", md.store.uri, "query", "md", "site = 'x'", "--limit", limit])
    assert exc.value.code == 2
    assert "--limit: must be a whole number of at least 1" in capsys.readouterr().err


def test_empty_store_flag_means_the_default_store_not_the_current_folder(tmp_path, monkeypatch, capsys):
    cwd, default = tmp_path / "cwd", tmp_path / "default"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    monkeypatch.setenv("HYPERDS_STORE", str(default))
    assert main(["--store", "", "import", "megadetector", str(MD_JSON), "--dataset", "md"]) == 0
    assert list(cwd.iterdir()) == []
    assert hyperds.connect(default).datasets() == ["md"]
