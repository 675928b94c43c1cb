"""Walks every `hyperds` subcommand (found from the argparse tree, so new commands are walked too)
with generated bad arguments: out-of-range and non-numeric integers, NaN and infinite floats,
unknown datasets, views and versions, malformed SQL, missing and unreadable files. Any exception
escaping main() fails the test; every refusal is exit status 2 with a `hyperds: error:` line
(argparse's own usage errors included) and no traceback."""

from __future__ import annotations

import argparse
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import MD_JSON
from hyperds.cli.main import build_parser, main
from hyperds.frames.importers import import_megadetector

SKIP = {("serve",)}  # long-running servers are not walked
BAD_INTS = ["-1", "0", "9" * 20, "-" + "9" * 20, "abc", "1.5", "", "2147483648", "-2147483649"]
BAD_FLOATS = ["nan", "inf", "-inf", "1e400", "-1", "abc", "", "2"]
WEIRD = ["", "'", "((((", "-1", "x" * 300, "a b", "ü\u200b", "--", "NULL"]


def leaf_commands() -> list[tuple[tuple[str, ...], argparse.ArgumentParser]]:
    out = []

    def walk(parser, path):
        subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        if not subs:
            if path not in SKIP:
                out.append((path, parser))
            return
        for name, sub in subs[0].choices.items():
            walk(sub, (*path, name))

    walk(build_parser(), ())
    return out


COMMANDS = leaf_commands()


@pytest.fixture(scope="module")
def walk_env(tmp_path_factory):
    import hyperds

    root = tmp_path_factory.mktemp("walker")
    store = hyperds.connect(root / "store")
    ds = store.create_dataset("md")
    import_megadetector(ds, MD_JSON)
    store.create_view("v", "TRUE", datasets=["md"]).publish()
    (root / "empty.json").write_text("")
    frame = ds.to_arrow(columns=["frame_id"]).column("frame_id")[0].as_py()
    (root / "changes.csv").write_text(f"op,frame_id,label\nadd,{frame},deer\n")
    pools = {
        "dataset": ["md", "nope", "", "-1", "_views"],
        "model": ["md@1", "", "no-version"],
        "frame_id": [frame, "nope", ""],
        "path": [str(MD_JSON), str(root / "missing.json"), str(root / "empty.json"), str(root), str(root / "store")],
        "file": [str(root / "changes.csv"), str(root / "missing.csv"), str(root / "empty.json"), str(root)],
        "uri": [str(root / "missing"), str(root / "empty.json"), str(MD_JSON.parent)],
        "sql": ["site = 'S1'", "(((", "NOT", "'", "width = 'a'", "SELECT * FROM read_csv('/etc/passwd')"],
        "where": ["site = 'S1') OR (site = 'S2'", "(((", "width > 'a'"],
        "query": ["TRUE", "(((", "nope = 1"],
        "name": ["v", "nope", "bad name!", "", "a..b"],
        "view": ["v", "nope", ""],
        "version": ["1.0", "9.9", "x", "-1", "draft", "99999999999.1"],
        "old": ["1.0", "9.9", "x", "draft"],
        "new": ["1.0", "draft", "x"],
        "author": ["me", ""],
        "output": [str(root / "out.txt"), str(root / "no" / "such" / "dir" / "out.txt"), str(root)],
        "layout": ["{site}/{name}", "{", "{_rowid}/{name}", "{name}{name}"],
        "tz": ["UTC", "Mars/Olympus", "+99:00", ""],
        "label_map": ["{'a': 1}", "lion=cat", "not json"],
        "weight": ["nan", "inf", "-1", "x"],
        "split": ["train=0.8,val=0.2", "train=nan", "x"],
        "root": ["/tmp", "", "s3://"],
        "columns": ["frame_id", "nope", ",,,"],
        "endpoint_url": [""],
    }
    return store, pools


def _values(action: argparse.Action, pools: dict) -> list[str]:
    if action.choices:
        return [*map(str, action.choices), "nope"]
    kind = getattr(action.type, "__name__", None)
    if kind in ("int", "positive_int") or action.type is int or "int" in str(kind):
        return BAD_INTS
    if action.type is float or "float" in str(kind):
        return BAD_FLOATS
    return pools.get(action.dest, WEIRD)


VALID = {"sql": "TRUE", "where": "TRUE", "query": "TRUE", "name": "v", "view": "v", "version": "1.0", "old": "1.0",
         "new": "1.0", "author": "me", "model": "md@1"}


def _valid(action: argparse.Action, pools: dict) -> str | None:
    """A value that works (the first of its pool), or None to leave an optional flag out."""
    if action.option_strings and not action.required:
        return None
    return VALID.get(action.dest) or pools.get(action.dest, ["x"])[0]


@st.composite
def invocation(draw, pools) -> list[str]:
    """A command with working arguments except one, which is bad (or left out)."""
    path, parser = draw(st.sampled_from(COMMANDS))
    actions = [a for a in parser._actions if not isinstance(a, argparse._HelpAction)]
    bad = draw(st.sampled_from(actions)) if actions else None
    argv = list(path)
    for action in actions:
        if action is bad:
            if action.nargs == 0:
                value = action.option_strings[0]
            elif not action.option_strings and draw(st.integers(0, 5)) == 0:
                continue  # a missing positional
            else:
                value = draw(st.sampled_from(_values(action, pools)))
        else:
            value = None if action.nargs == 0 else _valid(action, pools)
        if value is None:
            continue
        if action.nargs == 0:
            argv.append(value)
        elif action.option_strings:
            argv.append(f"{action.option_strings[0]}={value}")  # '=' so values like -1 stay values
        else:
            argv.append(value)
    return argv


WALKED = {"calls": 0, "exit 0": 0, "exit 2": 0}


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_every_subcommand_refuses_bad_arguments_without_a_traceback(walk_env, capsys, data):
    store, pools = walk_env
    argv = ["--store", store.uri, *data.draw(invocation(pools))]
    start = time.monotonic()
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse: usage errors exit 2, --help 0
        code = exc.code
    except BaseException as exc:  # noqa: BLE001 - any escape is the failure being looked for
        pytest.fail(f"{argv!r} raised {type(exc).__name__}: {exc}")
    err = capsys.readouterr().err
    WALKED["calls"] += 1
    WALKED[f"exit {code}"] = WALKED.get(f"exit {code}", 0) + 1
    assert code in (0, 2), (argv, code, err)
    assert "Traceback" not in err, (argv, err)
    if code == 2:
        first = err.strip().splitlines()[-1] if err.startswith("usage:") else err.strip().splitlines()[0]
        assert first.startswith("hyperds: error:") or "error:" in first, (argv, err)
    assert time.monotonic() - start < 60, argv


def test_walker_reaches_every_subcommand():
    names = {" ".join(p) for p, _ in COMMANDS}
    assert {"query", "ingest", "commit", "select", "review queue", "view create", "view show"} <= names
