"""`hyperds query DATASET "SQL"`: print the frames a query selects, or its plan."""

from __future__ import annotations

import argparse

from ._common import add_output_args, open_store, positive_int, write_table


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "query",
        help="select frames of a dataset with SQL",
        description=(
            "Run SQL on DATASET: a boolean expression such as \"site = 'S07' AND any_annotation(label = 'lion')\" "
            "or SELECT cols FROM DATASET WHERE … [ORDER BY …] [LIMIT n]. Annotation functions skip rejected "
            "annotations (they are not labels) unless the condition names review_status, e.g. "
            "\"any_annotation(review_status = 'rejected' AND source = 'MDv5a')\" audits a detector's false positives."
        ),
    )
    p.add_argument("dataset")
    p.add_argument("sql", help="the query (quote it for the shell)")
    p.add_argument("--limit", type=positive_int, help="print at most N frames")
    add_output_args(p)
    p.add_argument("--columns", help="comma-separated columns to print (default: the SELECT list, "
                   "or every column except annotations)")
    p.add_argument("--explain", action="store_true", help="print the pushed filter, residual and Lance plan instead")
    p.set_defaults(func=_query)


def _query(args: argparse.Namespace) -> int:
    query = open_store(args).dataset(args.dataset).query(args.sql)
    if args.explain:
        print(query.explain())
        return 0
    if args.columns:
        columns = [c.strip() for c in args.columns.split(",") if c.strip()]
    elif query.statement.select:
        columns = None
    else:
        columns = [c for c in query.output_columns if c != "annotations"]
    table = query.to_arrow(columns)
    if args.limit is not None:
        table = table.slice(0, args.limit)
    write_table(table, args.format, args.output)
    return 0
