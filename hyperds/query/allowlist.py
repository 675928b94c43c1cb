"""What an analytic query (store.sql) may reach: the store's relations and a known set of functions.

polars' SQL engine also has table functions (read_csv, read_parquet, read_json, read_ipc, ...)
that read any file the process can read; store.sql sits behind the web app, so a query may name
only plain relations (datasets, their __annotations/__labels/__label_counts, its own CTEs and
subqueries) and call only the pure functions listed here.
"""

from __future__ import annotations

from sqlglot import exp

from ..errors import QueryError
from .parse import _pos

# lower-case names: sqlglot's sql_name() of a known function, or the name of one it does not know
ALLOWED_FUNCTIONS = frozenset(
    """
    count sum avg min max median mode stddev stddev_samp stddev_pop variance variance_pop var_samp var_pop
    first last array_agg string_agg group_concat quantile_cont quantile_disc percentile_cont approx_count_distinct
    count_if corr covar_pop covar_samp
    abs ceil floor round sqrt cbrt exp ln log log2 log10 pow power sign mod div greatest least pi degrees radians
    sin cos tan asin acos atan atan2
    coalesce nullif if case cast try_cast ifnull nvl
    lower upper length char_length octet_length bit_length substring substr trim ltrim rtrim btrim concat concat_ws
    replace starts_with ends_with strpos str_position left right reverse initcap lpad rpad regexp_like
    regexp_replace regexp_extract split_part normalize
    extract date_part date_trunc strftime strptime date time timestamp to_date to_timestamp timestamp_trunc
    array_size array_length array_contains array_get array_unique array_sort array_min array_max array_sum
    array_mean array_to_string unnest explode
    """.split()
)


# sqlglot models some operators (AND, OR, NOT, IN, ...) as functions too; they read no data
_OPERATORS = (exp.Binary, exp.Unary, exp.Predicate, exp.Paren)


def _function_name(node: exp.Func) -> str:
    if isinstance(node, exp.Anonymous):
        return str(node.name).lower()
    return node.sql_name().lower()


def check_relations_and_functions(tree: exp.Expression, sql: str) -> None:
    """Raise a positioned QueryError for a table function or a function outside ALLOWED_FUNCTIONS."""
    for node in tree.walk():
        if isinstance(node, exp.Table) and not isinstance(node.this, exp.Identifier):
            if isinstance(node.this, exp.Func):
                name = _function_name(node.this)
                raise QueryError(
                    f"table function {name}() is not allowed: store.sql reads only the store's datasets and their "
                    "__annotations, __labels and __label_counts relations",
                    sql, _pos(node.this),
                )
            raise QueryError("FROM must name a dataset or one of its relations", sql, _pos(node))
        if not isinstance(node, exp.Func) or isinstance(node, _OPERATORS):
            continue
        name = _function_name(node)
        if name not in ALLOWED_FUNCTIONS:
            raise QueryError(
                f"function {name}() is not allowed in store.sql; it allows aggregates, arithmetic, string, date "
                "and list functions (e.g. count, sum, avg, lower, date_trunc, array_length)",
                sql, _pos(node),
            )
