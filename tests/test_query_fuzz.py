"""Grammar-based fuzzer over the query language: deep nesting, wide AND/OR chains, long NOT runs,
literal extremes (int64 bounds and beyond, huge and tiny floats, years 1 to 9999), NULL literals
on both sides and NaN in the data. Every query must either answer exactly what the plain-Python
reference of test_query_differential answers, or raise a QueryError that points at a position,
within a generous time bound (a planning hang of tens of seconds fails it)."""

from __future__ import annotations

import datetime as dt
import math
import time

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hyperds.errors import QueryError
from test_query_differential import ANN_TYPES, OPS, boolean_tree, leaf, lit, ref, sql

UTC = dt.UTC
TIME_BOUND_S = 20.0
INT_EXTREMES = [-(2**63), 2**63 - 1, 2**63, -(2**63) - 1, 2**31, -(2**31) - 1, 0, -1]
FLOAT_EXTREMES = [1e308, -1e308, 5e-324, -0.0, 0.5, 1e999, -1e999]
YEARS = ["0001-01-01T00:00:00Z", "0999-12-31T23:59:59Z", "1000-01-01T00:00:00Z", "9999-12-31T23:59:59Z",
         "1969-12-31T23:59:59.999999Z"]
TYPES = {"width": "int", "big": "int", "score": "float", "captured_at": "ts", "site": "str"}

ROWS = [
    {"width": 0, "big": -(2**63), "score": math.nan, "captured_at": dt.datetime(1, 1, 1, tzinfo=UTC), "site": "S1"},
    {"width": 2**31 - 1, "big": 2**63 - 1, "score": 1e308, "captured_at": dt.datetime(999, 6, 1, tzinfo=UTC),
     "site": "S2"},
    {"width": -(2**31), "big": 0, "score": -0.0, "captured_at": dt.datetime(9999, 12, 31, tzinfo=UTC), "site": ""},
    {"width": None, "big": None, "score": None, "captured_at": None, "site": None},
    {"width": 640, "big": -1, "score": 5e-324, "captured_at": dt.datetime(1970, 1, 1, tzinfo=UTC), "site": "a'b"},
    {"width": 1920, "big": 2**31, "score": -math.inf, "captured_at": dt.datetime(2024, 2, 29, tzinfo=UTC),
     "site": "S1"},
    {"width": 5, "big": 7, "score": math.inf, "captured_at": dt.datetime(1000, 1, 1, tzinfo=UTC), "site": "S3"},
]
ANNOTATIONS = [[{"label": "lion", "confidence": 0.5, "source_kind": "model", "review_status": "unreviewed"}], [],
               [{"label": "zebra", "confidence": None, "source_kind": "human", "review_status": "rejected"}]]


@pytest.fixture(scope="module")
def fuzz_ds(tmp_path_factory):
    import hyperds

    store = hyperds.connect(tmp_path_factory.mktemp("fuzz") / "store")
    ds = store.create_dataset("z", schema=pa.schema([("big", pa.int64()), ("score", pa.float64())]))
    rows = []
    for i, r in enumerate(ROWS):
        anns = ANNOTATIONS[i % len(ANNOTATIONS)]
        rows.append({**r, "frame_id": f"f{i}", "uri": f"/{i}.jpg",
                     "annotations": [{**a, "created_at": "2024-01-01T00:00:00Z"} for a in anns]})
    ds.add_frames(rows)
    for r, full in zip(ROWS, rows, strict=True):
        r["frame_id"], r["annotations"] = full["frame_id"], [
            {**a, "count": None, "source": None, "reviewed_by": None, "level": "media",
             "created_at": dt.datetime(2024, 1, 1, tzinfo=UTC)} for a in full["annotations"]]
    return ds


def _extreme(field: str) -> st.SearchStrategy:
    kind = TYPES[field]
    if kind == "int":
        return st.sampled_from(INT_EXTREMES)
    if kind == "float":
        return st.sampled_from(FLOAT_EXTREMES)
    if kind == "ts":
        return st.sampled_from(YEARS).map(lambda t: ("ts", t))
    return st.sampled_from(["S1", "", "a'b", "\u00e9\U0001f600", "x" * 300])


@st.composite
def extreme_cmp(draw) -> tuple:
    field = draw(st.sampled_from(sorted(TYPES)))
    return ("xcmp", draw(st.sampled_from(sorted(OPS))), field, draw(_extreme(field)))


literal = st.sampled_from([None, 0, 1, -(2**63), 2.5, "a", ""])
literal_cmp = st.tuples(st.just("lcmp"), st.sampled_from(sorted(OPS)), literal, literal).filter(
    lambda t: t[2] is None or t[3] is None or type(t[2]) is type(t[3]))
atom = extreme_cmp() | literal_cmp | st.tuples(st.just("ann"), st.just("any"), boolean_tree(leaf(ANN_TYPES)))


def shaped(sub: st.SearchStrategy) -> st.SearchStrategy:
    return (
        st.tuples(st.just("paren"), st.integers(1, 80), sub)
        | st.tuples(st.just("nots"), st.integers(1, 45), sub)
        | st.tuples(st.just("chain"), st.sampled_from(["AND", "OR"]), st.lists(sub, min_size=2, max_size=50))
    )


query = st.recursive(atom, shaped, max_leaves=60)


def render(t: tuple) -> str:
    match t:
        case ("paren", n, x):
            return "(" * n + render(x) + ")" * n
        case ("nots", k, x):
            return "NOT (" * k + render(x) + ")" * k
        case ("chain", op, xs):
            return f" {op} ".join(f"({render(x)})" for x in xs)
        case ("xcmp", op, f, v):
            text = "1e999" if v == math.inf else "-1e999" if v == -math.inf else lit(v)
            return f"{f} {op} {text}"
        case ("lcmp", op, x, y):
            return f"{lit(x)} {op} {lit(y)}"
    return sql(t)


def oracle(t: tuple, row: dict) -> bool | None:
    match t:
        case ("paren", _, x):
            return oracle(x, row)
        case ("nots", k, x):
            v = oracle(x, row)
            return v if v is None or k % 2 == 0 else not v
        case ("chain", "AND", xs):
            vals = [oracle(x, row) for x in xs]
            return False if False in vals else (None if None in vals else True)
        case ("chain", "OR", xs):
            vals = [oracle(x, row) for x in xs]
            return True if True in vals else (None if None in vals else False)
        case ("xcmp", op, f, v):
            a = row[f]
            b = dt.datetime.fromisoformat(v[1]) if isinstance(v, tuple) else v
            return None if a is None else OPS[op](a, b)
        case ("lcmp", op, x, y):
            return None if x is None or y is None else OPS[op](x, y)
    return ref(t, row)


CASES = {"queries": 0, "answered": 0, "refused": 0}


@settings(max_examples=120, deadline=None)
@given(tree=query)
def test_fuzzed_query_answers_exactly_or_refuses_with_a_position(fuzz_ds, tree):
    text = render(tree)
    CASES["queries"] += 1
    start = time.monotonic()
    try:
        got = fuzz_ds.query(text).frame_ids().to_pylist()
    except QueryError as exc:
        assert exc.position is not None, (text[:300], str(exc))
        CASES["refused"] += 1
    else:
        expected = sorted(r["frame_id"] for r in ROWS if oracle(tree, r) is True)
        assert sorted(got) == expected, text[:500]
        CASES["answered"] += 1
    assert time.monotonic() - start < TIME_BOUND_S, ("too slow", text[:300])


ISSUE_EXAMPLES = [
    " OR ".join(f"(site = 'S{i}' AND width > {i})" for i in range(47)),
    "captured_at < '0999-12-31T23:59:59Z'",
    "NULL = NULL",
    "site = 'S1' OR NULL = NULL",
    "big = -9223372036854775808",
    "(" * 50 + "site = 'S1'" + ")" * 50,
    "NOT " * 40 + "site = 'S1'",
    "NOT (" * 40 + "site = 'S1'" + ")" * 40,
]


@pytest.mark.parametrize("text", ISSUE_EXAMPLES, ids=range(len(ISSUE_EXAMPLES)))
def test_issue_examples_answer_exactly(fuzz_ds, text):
    got = sorted(fuzz_ds.query(text).frame_ids().to_pylist())
    ok = {
        0: lambda r: any(r["site"] == f"S{i}" and r["width"] is not None and r["width"] > i for i in range(47)),
        1: lambda r: r["captured_at"] is not None and r["captured_at"] < dt.datetime(999, 12, 31, 23, 59, 59,
                                                                                      tzinfo=UTC),
        2: lambda r: False, 3: lambda r: r["site"] == "S1", 4: lambda r: r["big"] == -(2**63),
        5: lambda r: r["site"] == "S1", 6: lambda r: r["site"] == "S1", 7: lambda r: r["site"] == "S1",
    }[ISSUE_EXAMPLES.index(text)]
    assert got == sorted(r["frame_id"] for r in ROWS if ok(r))
