"""Differential test: the query engine against a tiny plain-Python evaluator over dict rows.

Random datasets (nulls, empty annotation lists, rejected annotations, unicode, boundary timestamps)
and random queries from a small grammar; the query tree is rendered to SQL for the engine and
evaluated directly by the reference below, which knows nothing of the engine. The reference follows
the documented rule: an annotation function sees only annotations that are not rejected, unless its
condition names review_status (then it sees all). Each query runs by the engine's plan (pushdown,
with or without the side table) and by the residual evaluator alone over every frame.
"""

from __future__ import annotations

import datetime as dt
import functools
import itertools
import math
import operator
import re
import shutil
from pathlib import Path

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import hyperds
from hyperds.query import Query
from hyperds.query.residual import mask
from hyperds.query.sidecar import build_annotation_table

UTC = dt.UTC
EXTRA = pa.schema([("score", pa.float64()), ("tag", pa.string()), ("flag", pa.bool_())])

SITES = ["S1", "S2", "Été", "s1", "", "a'b"]
LABELS = ["lion", "zebra", "gnu", "éland", "Lion", "o'x"]
SOURCES = ["md5", "alice", "bob"]
STATUSES = ["unreviewed", "accepted", "rejected", "corrected"]
# stored as float32; a literal meeting a float32 field is read at float32 precision, so values
# written as the same decimal compare equal (0.9 stored = 0.9 queried) and distinct ones stay distinct
CONFIDENCES = [0.0, 0.1, 0.25, 0.7, 0.875, 0.9, 1.0]
INSTANTS = [
    dt.datetime(1970, 1, 1, tzinfo=UTC),
    dt.datetime(2023, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
    dt.datetime(2024, 1, 1, tzinfo=UTC),
    dt.datetime(2024, 2, 29, 12, 0, tzinfo=UTC),
    dt.datetime(2024, 3, 1, tzinfo=UTC),
    dt.datetime(2024, 3, 1, 0, 0, 0, 1, tzinfo=UTC),
    dt.datetime(2038, 1, 19, 3, 14, 8, tzinfo=UTC),
]
ZONES = [UTC, dt.timezone(dt.timedelta(hours=2)), dt.timezone(dt.timedelta(hours=-5, minutes=-30))]

# -- random data -----------------------------------------------------------------------------
maybe = lambda s: st.none() | s  # noqa: E731
instant = st.sampled_from(INSTANTS)

annotation = st.fixed_dictionaries(
    {
        "label": st.sampled_from(LABELS),
        "confidence": maybe(st.sampled_from(CONFIDENCES)),
        "count": maybe(st.integers(0, 5)),
        "source_kind": st.sampled_from(["human", "model"]),
        "source": maybe(st.sampled_from(SOURCES)),
        "review_status": st.sampled_from(STATUSES),
        "reviewed_by": maybe(st.sampled_from(SOURCES)),
        "level": st.sampled_from(["media", "event"]),
        "created_at": instant,
    }
)
frame = st.fixed_dictionaries(
    {
        "width": maybe(st.sampled_from([0, 640, 1920, 4000, -1])),
        "height": maybe(st.sampled_from([480, 1080, 3000])),
        "captured_at": maybe(instant),
        "site": maybe(st.sampled_from(SITES)),
        "camera": maybe(st.sampled_from(["c1", "c2", "c3"])),
        "score": maybe(st.sampled_from([-1.5, 0.0, 0.5, 2.0, math.nan])),  # NaN compares false (IEEE), != true
        "tag": maybe(st.text(alphabet="ab%_é", max_size=3)),
        "flag": maybe(st.booleans()),
        "annotations": st.lists(annotation, max_size=3),
    }
)
FRAME_TYPES = {"width": "num", "height": "num", "captured_at": "ts", "site": "str", "camera": "str",
               "score": "num", "tag": "str", "flag": "bool", "frame_id": "str"}
ANN_TYPES = {"label": "str", "confidence": "num", "count": "num", "source_kind": "str", "source": "str",
             "review_status": "str", "reviewed_by": "str", "level": "str", "created_at": "ts"}
VALUES = {
    "width": [0, 640, 1920, 1919.5, 5000], "height": [480, 1080], "score": [-1.5, 0, 0.5, 3],
    "site": SITES + ["S3"], "camera": ["c1", "c2", "c9"], "tag": ["a", "é", "", "ab"], "frame_id": ["f0", "f1", "f3"],
    "flag": [True, False], "label": LABELS + ["hyena"], "confidence": CONFIDENCES + [0.3, 1],
    "count": [0, 1, 3], "source_kind": ["human", "model"], "source": SOURCES, "review_status": STATUSES,
    "reviewed_by": SOURCES, "level": ["media", "event"],
}
OPS = {"=": operator.eq, "!=": operator.ne, "<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}


def iso(draw) -> str:
    """A timestamp literal: one of the instants (or a day), written in some zone and format."""
    moment = draw(instant).astimezone(draw(st.sampled_from(ZONES)))
    style = draw(st.sampled_from(["offset", "naive_utc", "date", "z"]))
    if style == "date":
        return moment.astimezone(UTC).date().isoformat()
    if style == "naive_utc":
        return moment.astimezone(UTC).replace(tzinfo=None).isoformat(sep=" ")
    if style == "z":
        return moment.astimezone(UTC).replace(tzinfo=None).isoformat() + "Z"
    return moment.isoformat()


@st.composite
def value_for(draw, field: str, types: dict) -> object:
    if types[field] == "ts":
        return ("ts", iso(draw))
    return draw(st.sampled_from(VALUES[field]))


@st.composite
def leaf(draw, types: dict) -> tuple:
    field = draw(st.sampled_from(sorted(types)))
    kind = draw(st.sampled_from(["cmp", "cmp", "in", "between", "isnull", "like", "null"]))
    t = types[field]
    if kind == "like" and t == "str":
        return ("like", field, draw(st.text(alphabet="ab%_éSl1", max_size=4)), draw(st.booleans()))
    if kind == "isnull":
        return ("isnull", field, draw(st.booleans()))
    if kind == "null":
        return ("cmp", draw(st.sampled_from(sorted(OPS))), field, None)
    if t == "bool":
        return ("cmp", draw(st.sampled_from(["=", "!="])), field, draw(st.booleans()))
    if kind == "in":
        vals = draw(st.lists(value_for(field, types), min_size=1, max_size=3))
        return ("in", field, vals + ([None] if draw(st.booleans()) and len(vals) < 2 else []), draw(st.booleans()))
    if kind == "between":
        return ("between", field, draw(value_for(field, types)), draw(value_for(field, types)), draw(st.booleans()))
    return ("cmp", draw(st.sampled_from(sorted(OPS))), field, draw(value_for(field, types)))


def boolean_tree(leaves: st.SearchStrategy) -> st.SearchStrategy:
    return st.recursive(
        leaves,
        lambda sub: st.tuples(st.just("and"), sub, sub) | st.tuples(st.just("or"), sub, sub)
        | st.tuples(st.just("not"), sub),
        max_leaves=4,
    )


ann_cond = boolean_tree(leaf(ANN_TYPES))
frame_leaf = (
    leaf(FRAME_TYPES)
    | st.tuples(st.just("labels"), st.sampled_from(["any", "all", "eq_any", "has"]),
                st.lists(st.sampled_from(LABELS + ["hyena"]), min_size=1, max_size=2, unique=True))
    | st.tuples(st.just("ann"), st.sampled_from(["any", "all"]), ann_cond)
    # label-only conditions: exactly a `labels` test under the rule, pushed to the LABEL_LIST index
    | st.tuples(st.just("ann"), st.just("any"), st.tuples(
        st.just("in"), st.just("label"), st.lists(st.sampled_from(LABELS + ["hyena"]), min_size=1, max_size=2),
        st.just(False)))
    | st.tuples(st.just("ann"), st.just("any"), st.tuples(
        st.just("cmp"), st.just("="), st.just("label"), st.sampled_from(LABELS)))
    # the audit form: reaching rejected annotations on purpose
    | st.tuples(st.just("ann"), st.just("any"), st.tuples(
        st.just("and"), st.tuples(st.just("cmp"), st.just("="), st.just("review_status"), st.just("rejected")),
        leaf(ANN_TYPES)))
    | st.tuples(st.just("count"), st.none() | ann_cond, st.sampled_from(sorted(OPS)), st.integers(0, 3))
    | st.tuples(st.just("flag"))
)
# a few top-level AND terms, so annotation functions often stand alone (the side-table path)
query_tree = st.lists(frame_leaf | boolean_tree(frame_leaf), min_size=1, max_size=3).map(
    lambda terms: functools.reduce(lambda x, y: ("and", x, y), terms)
)


# -- rendering to SQL --------------------------------------------------------------------------
def lit(v: object) -> str:
    if v is None:
        return "NULL"
    if isinstance(v, tuple):
        return "'" + v[1] + "'"
    if isinstance(v, bool):
        return "TRUE" if v else "FALSE"
    if isinstance(v, str):
        return "'" + v.replace("'", "''") + "'"
    return repr(v)


def sql(t: tuple) -> str:
    match t:
        case ("and" | "or" as op, x, y):
            return f"({sql(x)}) {op.upper()} ({sql(y)})"
        case ("not", x):
            return f"NOT ({sql(x)})"
        case ("cmp", op, f, v):
            return f"{f} {op} {lit(v)}"
        case ("in", f, vs, neg):
            return f"{f} {'NOT ' if neg else ''}IN ({', '.join(lit(v) for v in vs)})"
        case ("between", f, lo, hi, neg):
            return f"{f} {'NOT ' if neg else ''}BETWEEN {lit(lo)} AND {lit(hi)}"
        case ("like", f, p, neg):
            return f"{f} {'NOT ' if neg else ''}LIKE {lit(p)}"
        case ("isnull", f, neg):
            return f"{f} IS {'NOT ' if neg else ''}NULL"
        case ("labels", "eq_any", vs):
            return " OR ".join(f"{lit(v)} = ANY(labels)" for v in vs)
        case ("labels", "has", vs):
            return " AND ".join(f"array_has(labels, {lit(v)})" for v in vs)
        case ("labels", mode, vs):
            return f"array_has_{mode}(labels, [{', '.join(lit(v) for v in vs)}])"
        case ("ann", kind, c):
            return f"{'any_annotation' if kind == 'any' else 'all_annotations'}({sql(c)})"
        case ("count", c, op, n):
            return f"count_annotations({sql(c) if c else ''}) {op} {n}"
        case ("flag",):
            return "flag"
    raise AssertionError(t)


# -- the reference: three-valued logic over plain dicts -----------------------------------------
def as_value(v: object) -> object:
    if isinstance(v, tuple):  # timestamp literal text → aware instant (no zone means UTC)
        moment = dt.datetime.fromisoformat(v[1])
        return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return v


def and3(x, y):
    return False if x is False or y is False else (None if x is None or y is None else True)


def or3(x, y):
    return True if x is True or y is True else (None if x is None or y is None else False)


def not3(x):
    return None if x is None else not x


def like(value: str, pattern: str) -> bool:
    regex = "".join(".*" if c == "%" else "." if c == "_" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, value, re.DOTALL) is not None


def names_status(t: tuple | None) -> bool:
    """Does a condition tree mention review_status (a leaf's field is its second or third item)?"""
    if t is None:
        return False
    if t[0] in ("and", "or", "not"):
        return any(names_status(x) for x in t[1:])
    return "review_status" in t[1:3]


RULE = {"rule": 2}  # the rejected-annotations rule the reference follows (1: views published before it)


def seen(c: tuple | None, row: dict) -> list[dict]:
    """The annotations a function with condition `c` ranges over: not rejected, unless c names review_status
    (under rule 1, every annotation)."""
    if names_status(c) or RULE["rule"] == 1:
        return row["annotations"]
    return [a for a in row["annotations"] if a["review_status"] != "rejected"]


def ref(t: tuple, row: dict) -> bool | None:
    match t:
        case ("and", x, y):
            return and3(ref(x, row), ref(y, row))
        case ("or", x, y):
            return or3(ref(x, row), ref(y, row))
        case ("not", x):
            return not3(ref(x, row))
        case ("cmp", op, f, v):
            a, b = row[f], as_value(v)
            return None if a is None or b is None else OPS[op](a, b)
        case ("in", f, vs, neg):
            a = row[f]
            hit = None if a is None else (True if a in [as_value(v) for v in vs if v is not None]
                                          else (None if None in vs else False))
            return not3(hit) if neg else hit
        case ("between", f, lo, hi, neg):
            a = row[f]
            hit = None if a is None else and3(a >= as_value(lo), a <= as_value(hi))
            return not3(hit) if neg else hit
        case ("like", f, p, neg):
            hit = None if row[f] is None else like(row[f], p)
            return not3(hit) if neg else hit
        case ("isnull", f, neg):
            return (row[f] is not None) if neg else (row[f] is None)
        case ("labels", mode, vs):
            labels = {a["label"] for a in row["annotations"] if a["review_status"] != "rejected"}
            return all(v in labels for v in vs) if mode in ("all", "has") else any(v in labels for v in vs)
        case ("ann", "any", c):
            return any(ref(c, a) is True for a in seen(c, row))
        case ("ann", "all", c):
            return all(ref(c, a) is True for a in seen(c, row))
        case ("count", c, op, n):
            return OPS[op](sum(1 for a in seen(c, row) if c is None or ref(c, a) is True), n)
        case ("flag",):
            return row["flag"]
    raise AssertionError(t)


# -- the test ---------------------------------------------------------------------------------
_names = itertools.count()


@pytest.fixture(scope="module")
def diff_root(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("differential")


def _write(store: hyperds.Store, rows: list[dict], zones: list) -> hyperds.Dataset:
    ds = store.create_dataset("d", schema=EXTRA)
    stored = []
    for r, zone in zip(rows, zones, strict=True):
        r = dict(r)  # the store gets timestamps written in assorted zones; it must keep the instant
        if r["captured_at"] is not None:
            r["captured_at"] = r["captured_at"].astimezone(zone).isoformat()
        stored.append(r)
    if stored:
        ds.add_frames(stored)
    return ds


@pytest.mark.slow  # the longest single test: first under -n 2 (tests/conftest.py)
@settings(max_examples=500, deadline=None)
@given(
    rows=st.lists(frame, max_size=8),
    zones=st.lists(st.sampled_from(ZONES), min_size=8, max_size=8),
    trees=st.lists(query_tree, min_size=1, max_size=3),
    order=st.none() | st.tuples(st.sampled_from(["width", "site", "captured_at", "score"]), st.booleans(),
                                st.integers(0, 5)),
    side_table=st.booleans(),
    rule=st.sampled_from([2, 2, 1]),
)
def test_engine_matches_reference(diff_root, rows, zones, trees, order, side_table, rule):
    for i, r in enumerate(rows):
        r["frame_id"], r["uri"] = f"f{i}", f"img/{i}.jpg"
    store = hyperds.connect(diff_root / f"s{next(_names)}")  # a fresh small store per example
    ds = _write(store, rows, zones[: len(rows)])
    if side_table:  # annotation terms then come from the flattened side table instead of the nested lists
        build_annotation_table(ds)
    default_limit = Query.nested_limit
    Query.nested_limit = 0 if side_table else default_limit  # use it even when the pushdown keeps few frames
    RULE["rule"] = rule
    try:
        for tree in trees:
            text = sql(tree)
            expected = sorted(r["frame_id"] for r in rows if ref(tree, r) is True)
            query = Query(ds, text, rule=rule)
            assert query.frame_ids().to_pylist() == expected, (text, query.explain())
            assert query.count() == len(expected), text
            if rows:  # the residual evaluator alone, over every frame (no pushdown, no side table)
                every = ds.to_arrow()
                alone = mask(query.statement.where, every).to_pylist()
                assert sorted(f for f, hit in zip(every["frame_id"].to_pylist(), alone, strict=True) if hit) == expected, text
        if order is not None:  # SELECT form: ORDER BY (NULLs smallest, frame_id breaks ties) and LIMIT
            col, desc, limit = order
            text = f"SELECT frame_id FROM {ds.name} WHERE {sql(trees[0])} ORDER BY {col}{' DESC' if desc else ''} LIMIT {limit}"
            hits = sorted((r for r in rows if ref(trees[0], r) is True), key=lambda r: r["frame_id"])
            # NaN (r[col] != r[col]) sorts above every number, as in the engine
            hits.sort(key=lambda r: (r[col] is not None, r[col] != r[col],
                                     r[col] if r[col] is not None and r[col] == r[col] else 0), reverse=desc)
            assert Query(ds, text, rule=rule).frame_ids().to_pylist() == [r["frame_id"] for r in hits[:limit]], text
            assert Query(ds, text, rule=rule).count() == len(hits[:limit]), text
            assert Query(ds, f"{text} OFFSET 2", rule=rule).count() == len(hits[2 : 2 + limit]), text
    finally:
        Query.nested_limit = default_limit
        RULE["rule"] = 2
        shutil.rmtree(store.uri)
