"""Joining a user's condition to a condition hyperds wrote, as trees, never as text.

Pasting text ("(" + ours + ") AND (" + theirs + ")") lets a condition like
`site = 'S1') OR (site = 'S2'` close our parenthesis and escape it. Each side is parsed on its
own (a syntax error points into the user's own text) and the AND is built on the parsed trees;
the canonical SQL of that tree is what gets stored and run.
"""

from __future__ import annotations

from ..errors import QueryError
from . import ast as a
from .parse import parse


def parse_condition(where: str, what: str = "where") -> a.Node:
    """`where` parsed as one boolean expression (not a SELECT); QueryError points into `where`."""
    statement = parse(where)
    if statement.is_select:
        raise QueryError(f"{what} must be a condition on the frames, e.g. site = 'S07', not a SELECT", where, 0)
    if statement.where is None:
        raise QueryError(f"{what} is empty; give a condition such as site = 'S07', or leave it out", where, 0)
    return statement.where


def and_where(sql: str, where: str | None, what: str = "where") -> str:
    """Canonical SQL of `sql AND where`, both parsed first; `sql` alone when `where` is None or ''."""
    if not where:
        return sql
    ours = parse(sql).where
    theirs = parse_condition(where, what)
    return a.to_sql(a.And((ours, theirs)) if ours is not None else theirs)
