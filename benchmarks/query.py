"""Q1-Q5 through hyperds vs the hand-written best Lance call, DuckDB and polars over a Parquet copy.

Median of 5 warm runs per engine; every engine's answer is checked against hyperds'. Ratio is
engine time / hyperds time (so > 1 means hyperds is faster). Every engine follows the rejected-annotations
rule (a rejected annotation is not a label): annotation tests skip rejected annotations.

    python benchmarks/query.py --n 1000000 [--store benchmarks/.data/store] [--repeat 5]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

import hyperds
from hyperds.query import query as query_mod
from hyperds.query.sidecar import build_annotation_table, open_annotation_table

sys.path.insert(0, str(Path(__file__).resolve().parent))
from synth import DATA, make_dataset  # noqa: E402

MONTH = ("2024-03-01T00:00:00Z", "2024-04-01T00:00:00Z")
CAMERAS = [f"S{s:02d}-C{c}" for s, c in [(1, 1), (2, 2), (3, 3), (5, 1), (7, 4), (9, 2), (11, 3), (13, 1), (17, 2), (19, 4)]]


def queries(name: str, point_id: str) -> dict[str, dict[str, object]]:
    """hyperds text plus the DuckDB SQL and polars / Lance callables of each query."""
    lo, hi = MONTH
    cams = ", ".join(f"'{c}'" for c in CAMERAS)
    return {
        "Q1 point lookup": {"hyperds": f"frame_id = '{point_id}'",
                            "lance": f"frame_id = '{point_id}'",
                            "duckdb": f"SELECT frame_id FROM t WHERE frame_id = '{point_id}'",
                            "polars": lambda lf: lf.filter(pl.col("frame_id") == point_id).select("frame_id")},
        "Q2 site+month+lion": {
            "hyperds": f"site = 'S07' AND captured_at >= '{lo}' AND captured_at < '{hi}' "
                       "AND any_annotation(label = 'lion')",
            # `labels` lists the annotations not rejected: the best Lance call is one filter over three indices
            "lance": (f"site = 'S07' AND captured_at >= TIMESTAMP '{lo[:19].replace('T', ' ')}' "
                      f"AND captured_at < TIMESTAMP '{hi[:19].replace('T', ' ')}' AND array_has_any(labels, ['lion'])"),
            "duckdb": f"SELECT frame_id FROM t WHERE site = 'S07' AND captured_at >= TIMESTAMPTZ '{lo}' "
                      f"AND captured_at < TIMESTAMPTZ '{hi}' AND len(list_filter(annotations, lambda a: a.label = 'lion' "
                      "AND a.review_status != 'rejected')) > 0",
            "polars": lambda lf: lf.filter((pl.col("site") == "S07")
                                           & pl.col("captured_at").is_between(_ts(lo), _ts(hi), closed="left")
                                           & _pl_any((pl.element().struct.field("label") == "lion") & _live()))
            .select("frame_id"),
        },
        "Q3 confident model lion": {
            "hyperds": "any_annotation(label = 'lion' AND confidence >= 0.9 AND source_kind = 'model')",
            "lance": ("array_has_any(labels, ['lion'])", lambda a: _any(a, label="lion", conf=0.9, kind="model")),
            "duckdb": "SELECT frame_id FROM t WHERE len(list_filter(annotations, lambda a: a.label = 'lion' "
                      "AND a.confidence >= 0.9 AND a.source_kind = 'model' AND a.review_status != 'rejected')) > 0",
            "polars": lambda lf: lf.filter(_pl_any((pl.element().struct.field("label") == "lion")
                                                   & (pl.element().struct.field("confidence") >= 0.9)
                                                   & (pl.element().struct.field("source_kind") == "model") & _live()))
            .select("frame_id"),
        },
        "Q4 frames per label": {
            # per-label statistics kept with the side table (computed from `labels` when stale)
            "hyperds": f"SELECT label, frames FROM {name}__label_counts",
            "lance": "labels",
            "duckdb": "SELECT label, COUNT(*) AS frames FROM (SELECT unnest(labels) AS label FROM t) GROUP BY label",
            "polars": lambda lf: lf.select(pl.col("labels").alias("label")).explode("label").drop_nulls()
            .group_by("label").agg(pl.len().alias("frames")),
        },
        "Q5 width+10 cameras": {
            "hyperds": f"width >= 1920 AND camera IN ({cams})",
            "lance": f"width >= 1920 AND camera IN ({cams})",
            "duckdb": f"SELECT frame_id FROM t WHERE width >= 1920 AND camera IN ({cams})",
            "polars": lambda lf: lf.filter((pl.col("width") >= 1920) & pl.col("camera").is_in(CAMERAS)).select("frame_id"),
        },
    }


def _ts(text: str):
    import datetime as dt

    return dt.datetime.fromisoformat(text)


def _live() -> pl.Expr:
    """The annotation is not rejected (the rule: a rejected annotation is not a label)."""
    return pl.element().struct.field("review_status") != "rejected"


def _pl_any(cond: pl.Expr) -> pl.Expr:
    return pl.col("annotations").list.eval(cond).list.any()


def _any(table: pa.Table, label: str, conf: float | None = None, kind: str | None = None) -> pa.Array:
    """frame_ids of rows with an annotation meeting all conditions (flatten + parent indices)."""
    ann = table.column("annotations").combine_chunks()
    flat = pc.list_flatten(ann)
    ok = pc.and_(pc.equal(pc.struct_field(flat, "label"), label),
                pc.not_equal(pc.struct_field(flat, "review_status"), "rejected"))
    if conf is not None:
        # confidence is float32: compare at stored precision, as hyperds, DuckDB and polars do
        ok = pc.and_(ok, pc.greater_equal(pc.struct_field(flat, "confidence"), pa.scalar(conf, pa.float32())))
    if kind is not None:
        ok = pc.and_(ok, pc.equal(pc.struct_field(flat, "source_kind"), kind))
    parents = np.asarray(pc.list_parent_indices(ann))[np.asarray(pc.fill_null(ok, False), dtype=bool)]
    return table.column("frame_id").take(pa.array(np.unique(parents)))


def run_hyperds(store: hyperds.Store, ds, text: str):
    if text.startswith("SELECT"):
        return store.sql(text)
    return ds.query(text).frame_ids()


def run_lance(ds, spec):
    lds = ds.lance()
    if spec == "labels":
        flat = pc.list_flatten(lds.to_table(columns=["labels"]).column("labels"))
        return pc.value_counts(flat)
    if isinstance(spec, tuple):
        flt, check = spec  # streamed batch by batch: no copy of the whole nested column
        batches = lds.scanner(columns=["frame_id", "annotations"], filter=flt).to_batches()
        return pa.chunked_array([check(pa.Table.from_batches([b])) for b in batches], pa.string())
    return lds.to_table(columns=["frame_id"], filter=spec).column("frame_id")


def canonical(result) -> object:
    """Comparable form: sorted frame ids, or {label: frames}."""
    if isinstance(result, pl.DataFrame):
        cols = result.columns
        if cols == ["frame_id"]:
            return sorted(result["frame_id"].to_list())
        return dict(zip(result[cols[0]].to_list(), result[cols[1]].to_list(), strict=True))
    if isinstance(result, pa.StructArray):  # value_counts
        return dict(zip(result.field("values").to_pylist(), result.field("counts").to_pylist(), strict=True))
    if isinstance(result, pa.ChunkedArray | pa.Array):
        return sorted(result.to_pylist())
    if isinstance(result, pa.Table):
        return canonical(pl.from_arrow(result))
    raise TypeError(type(result))


def timed(fn: Callable[[], object], repeat: int) -> tuple[float, object]:
    out = fn()  # warm-up
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def parquet_copy(ds, path: Path) -> Path:
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        with pq.ParquetWriter(path, ds.lance().schema.remove_metadata(), compression="zstd") as writer:
            for batch in ds.lance().to_batches(batch_size=200_000):
                writer.write_batch(batch)
    return path


def _no_side() -> None:
    query_mod.open_annotation_table = lambda table, version: None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--store", default=str(DATA / "store"))
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--only", nargs="*", help="run only queries whose name starts with these (e.g. Q3)")
    parser.add_argument("--no-side", action="store_true", help="do not build/use the annotation side table")
    args = parser.parse_args()
    store = hyperds.connect(args.store)
    name = f"frames_{args.n}"
    ds = make_dataset(store, name, args.n)
    fresh = all(open_annotation_table(ds, ds.version, t) is not None for t in ("annotations", "label_counts"))
    if not args.no_side and not fresh:
        t0 = time.perf_counter()
        build_annotation_table(ds)
        print(f"annotation side table built in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    if args.no_side:  # hide it: reads fall back to scanning the nested lists
        _no_side()
    parquet = parquet_copy(ds, DATA / f"{name}.parquet")
    try:
        import duckdb

        con = duckdb.connect()
        con.execute(f"CREATE VIEW t AS SELECT * FROM read_parquet('{parquet}')")
    except ImportError:
        con = None
    point = f"{args.n // 2:010d}"
    rows = []
    for qname, spec in queries(name, point).items():
        if args.only and not any(qname.startswith(o) for o in args.only):
            continue
        t_h, ref = timed(lambda s=spec: run_hyperds(store, ds, s["hyperds"]), args.repeat)
        want = canonical(ref)
        engines = {"lance": lambda s=spec: run_lance(ds, s["lance"]),
                   "polars/parquet": lambda s=spec: s["polars"](pl.scan_parquet(parquet)).collect()}
        if con is not None:
            engines["duckdb/parquet"] = lambda s=spec: con.sql(s["duckdb"]).to_arrow_table()
        row = {"query": qname, "N": args.n, "hits": len(want), "hyperds ms": round(t_h * 1e3, 1)}
        for engine, fn in engines.items():
            t, got = timed(fn, args.repeat)
            if canonical(got) != want:
                raise SystemExit(f"{qname}: {engine} disagrees with hyperds")
            row[f"{engine} ms"] = round(t * 1e3, 1)
            row[f"{engine}/hyperds"] = round(t / t_h, 2)
        rows.append(row)
        print(" | ".join(f"{k}={v}" for k, v in row.items()), file=sys.stderr, flush=True)
    with pl.Config(tbl_rows=20, tbl_cols=20, tbl_width_chars=250, fmt_str_lengths=40):
        print(pl.DataFrame(rows))


if __name__ == "__main__":
    main()
