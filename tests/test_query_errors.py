"""Bad queries: each raises a QueryError before any data is read, pointing at the problem."""

from __future__ import annotations

import pyarrow as pa
import pytest

import hyperds
from hyperds.errors import QueryError


@pytest.fixture
def ds(store):
    ds = store.create_dataset("cams", schema=pa.schema([("temperature", pa.float64())]))
    ds.add_frames([{"frame_id": "a", "uri": "a.jpg", "site": "S1", "temperature": 20.5,
                    "annotations": [{"label": "lion"}]}])
    return ds


# (query, text the message must contain, the fragment the caret must point at, suggestions expected)
BAD = [
    ("sitte = 'S1'", "unknown column 'sitte'", "sitte", ["site"]),
    ("site = 'S1' AND\n  temprature > 3", "unknown column 'temprature'", "temprature", ["temperature"]),
    ("label = 'lion'", "annotation field 'label' used outside an annotation function", "label", []),
    ("any_annotation(site = 'S1')", "frame column 'site' used inside an annotation function", "site", []),
    ("any_annotation(lable = 'lion')", "unknown annotation field 'lable'", "lable", ["label"]),
    ("width = 'wide'", "type mismatch: cannot compare 'width' (int) with 'wide' (string)", "'wide'", []),
    ("captured_at > 'yesterday'", "cannot read 'yesterday' as a timestamp", "'yesterday'", []),
    ("any_annotation(confidence > 'high')", "type mismatch: cannot compare 'confidence' (float)", "'high'", []),
    ("site LIKE 3", "LIKE pattern must be a string literal, got int", "3", []),
    ("width > 3 AND AND site = 'x'", "syntax error", "AND site", []),
    ("site = 'S1", "syntax error: a quoted string or name is not closed", "'S1", []),
    ("width * 2 > 3", "unsupported construct", "width * 2", []),
    ("lower(site) = 's1'", "unknown function lower()", "lower", []),
    ("site IN (SELECT site FROM cams)", "IN takes a list of literal values, not a subquery", "site IN", []),
    ("site NOT IN ()", "IN () is empty", "site", []),
    ("SELECT frame_id FROM other WHERE width > 3", "FROM names 'other' but this query runs on dataset 'cams'",
     "other", []),
    ("SELECT site, count(*) FROM cams GROUP BY site", "unsupported in dataset queries: GROUP", "site<", []),
    ("site", "expected a condition (true/false), got 'site' of type string", "site", []),
    ("annotations = 3", "column 'annotations' is list", "annotations", []),
    ("any_annotation(any_annotation(label = 'x'))", "annotation functions cannot be nested", "any_annotation(label",
     []),
    ("array_has(site, 'x')", "list tests apply to the labels column only", "site", []),
    ("count_annotations(label = 'x') > width", "count_annotations(...) compares with a number", "width", []),
    ("SELECT labels FROM cams ORDER BY labels", "ORDER BY needs a scalar column", "labels<", []),
    ("width > 99999999999999999999", "number too large", "999", []),
    ("width IN (1, 99999999999999999999)", "number too large", "999", []),
    ("count_annotations(label = 'x') > 9223372036854775808", "number too large", "922", []),
    ("width > -9223372036854775809", "number too large", "922", []),
    ("SELECT * FROM cams LIMIT 99999999999999999999", "number too large", "999", []),
    ('site = "S1"', "unknown column 'S1'; write strings in single quotes: 'S1'", '"S1"', []),
    ("width > 3 AND", "syntax error: incomplete expression at 'AND'", "AND", []),
    ("site = 'S1' OR\n  width =", "syntax error: incomplete expression at '='", "=<", []),
    ("SELECT * FROM my-cams WHERE width > 3", "double-quote dataset names containing - or .", "-", []),
    ("SELECT * FROM my.cams", "'my.cams' reads as a qualified name; double-quote dataset names", "my.cams", []),
]


def _line_col(text: str, fragment: str) -> tuple[int, int]:
    """1-based line and column of `fragment` in `text` (its last occurrence when it ends with '<')."""
    where = text.rindex(fragment[:-1]) if fragment.endswith("<") else text.index(fragment)
    line = text.count("\n", 0, where) + 1
    return line, where - (text.rfind("\n", 0, where) + 1) + 1


@pytest.mark.parametrize(("query", "message", "at", "suggest"), BAD, ids=[b[0][:30] for b in BAD])
def test_bad_query_is_positioned(ds, query, message, at, suggest):
    version = ds.version
    with pytest.raises(QueryError) as info:
        ds.query(query)
    err = info.value
    assert message in str(err)
    line, column = _line_col(query, at)
    assert (err.line, err.column) == (line, column), str(err)
    # the caret excerpt: the offending line, then a caret under the reported column
    rendered = str(err).splitlines()
    assert rendered[-2].strip() == query.splitlines()[line - 1].strip()
    assert rendered[-1].index("^") - 2 == column - 1
    for name in suggest:
        assert name in err.suggestions and repr(name) in str(err)
    assert ds.version == version and len(ds) == 1


def test_int64_bounds_are_accepted(ds):
    """The extreme int64 values still run (only values beyond them are refused)."""
    assert ds.query("width > -9223372036854775808 OR width IS NULL").count() == 1
    assert ds.query("width < 9223372036854775807 OR width IS NULL").count() == 1


@pytest.mark.parametrize("query", [None, b"site = 'S1'", 3])
def test_query_must_be_text(ds, query):
    with pytest.raises(QueryError, match="a query string is needed"):
        ds.query(query)
    with pytest.raises(QueryError, match="a query string is needed"):
        ds.store.sql(query)


@pytest.mark.parametrize("query", ["", "  \n", ";", "-- nothing here"])
def test_empty_analytic_query(ds, query):
    with pytest.raises(QueryError, match="the query is empty; write e.g. SELECT"):
        ds.store.sql(query)


def test_errors_come_before_any_read(store):
    """Validation needs only the schema: an empty dataset rejects a bad query all the same."""
    ds = store.create_dataset("empty")
    with pytest.raises(QueryError, match="unknown column 'nope'"):
        ds.query("nope = 1")


def test_unknown_output_column(ds):
    with pytest.raises(QueryError, match="unknown column 'sit' asked for") as info:
        ds.query("TRUE").to_arrow(["frame_id", "sit"])
    assert "site" in info.value.suggestions


def test_cli_reports_query_error(ds, capsys):
    from hyperds.cli.main import main

    assert main(["--store", ds.store.uri, "query", "cams", "sitte = 1"]) == 2
    assert "unknown column 'sitte'" in capsys.readouterr().err
    assert isinstance(ds, hyperds.Dataset)
