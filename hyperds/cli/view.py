"""`hyperds view create|publish|list|show|diff|verify` and `hyperds audit runs`."""

from __future__ import annotations

import argparse
import json

import polars as pl
import pyarrow as pa

from ..errors import ViewError
from ._common import add_output_args, int_between, json_arg, open_store, write_table


def register(sub: argparse._SubParsersAction) -> None:
    view = sub.add_parser(
        "view",
        help="create, publish and inspect views (named, versioned queries)",
        description="A view is a named query over datasets; publishing pins the dataset versions and digests the "
        "frames, so a version gives the same frames and labels forever.",
    )
    actions = view.add_subparsers(dest="action", metavar="ACTION", required=True)

    c = actions.add_parser("create", help="create or redefine the draft of a view",
                           description="Save the draft of view NAME: a query (or named sub-queries) over datasets.")
    c.add_argument("name")
    c.add_argument("--dataset", "-d", action="append", required=True, help="dataset the view reads (repeatable)")
    c.add_argument("--query", "-q", help="SQL boolean expression (or SELECT … FROM DATASET WHERE …)")
    c.add_argument("--subquery", action="append", default=[], metavar="NAME=SQL",
                   help="a named sub-query (repeatable; instead of --query)")
    c.add_argument("--weight", action="append", default=[], metavar="NAME=W", help="sampling weight of a sub-query")
    c.add_argument("--label-map", help="JSON object source label -> class, or a path to a .json file")
    c.add_argument("--unknown-labels", choices=("drop", "keep", "error"), default="drop",
                   help="labels not in the label map: drop them, keep them as classes, or refuse (default: drop)")
    c.add_argument("--empty", choices=("drop", "keep"), default="drop",
                   help="frames the query selects whose classes end up empty (all labels rejected or unmapped): "
                        "drop them, or keep them (default: drop)")
    c.add_argument("--split-by", choices=("site", "seq_id", "camera", "deployment"), help="group column of splits")
    c.add_argument("--split", default="train=0.8,val=0.1,test=0.1", help="split fractions (default: %(default)s)")
    c.add_argument("--seed", type=int_between(0, 2**32 - 1), default=0, help="split seed (default: 0)")
    c.add_argument("--message", "-m", default="", help="what the view is for")
    c.set_defaults(func=_create)

    p = actions.add_parser("publish", help="publish the draft as an immutable version",
                           description="Pin the datasets at their current versions, digest the frames, store VERSION.")
    p.add_argument("name")
    p.add_argument("--version", help="MAJOR.MINOR (default: the next minor)")
    p.add_argument("--message", "-m", help="release note (default: the draft's message)")
    p.add_argument("--author", help="who publishes (default: the OS user)")
    p.set_defaults(func=_publish)

    ls = actions.add_parser("list", help="list views and their versions", description="Every view version and draft.")
    add_output_args(ls)
    ls.set_defaults(func=_list)

    s = actions.add_parser("show", help="describe a view version and print its first frames",
                           description="Definition, pins, count and digest of a view version, then its frames.")
    s.add_argument("name")
    s.add_argument("--version", help="version (default: latest published; 'draft' for the draft)")
    s.add_argument("--frames", type=int_between(0, 2**31 - 1), default=10, help="frames to print (default: 10)")
    s.set_defaults(func=_show)

    d = actions.add_parser("diff", help="frames added, removed and relabelled between two versions",
                           description="Compare NEW (default: latest published) with OLD. Removed frames that "
                           "left because their labels were rejected are listed as 'removed (rejected)'.")
    d.add_argument("name")
    d.add_argument("old")
    d.add_argument("new", nargs="?")
    d.add_argument("--rows", type=int_between(0, 2**31 - 1), default=20, help="rows of each kind to print (default: 20)")
    d.set_defaults(func=_diff)

    v = actions.add_parser("verify", help="re-resolve a version and check its digest",
                           description="Exit status 1 when the version no longer resolves to its recorded digest.")
    v.add_argument("name")
    v.add_argument("--version", help="version (default: latest published)")
    v.set_defaults(func=_verify)

    audit = sub.add_parser("audit", help="audit which runs used which view versions",
                           description="Audit trails of the store.")
    audit_actions = audit.add_subparsers(dest="action", metavar="ACTION", required=True)
    r = audit_actions.add_parser("runs", help="list recorded runs", description="Runs recorded against view versions.")
    r.add_argument("--view")
    r.add_argument("--version")
    add_output_args(r)
    r.set_defaults(func=_runs)


def _pairs(items: list[str], what: str) -> dict[str, str]:
    out = {}
    for item in items:
        if not isinstance(item, str):  # argparse turns a bare '--' value into an empty list
            raise ViewError(f"{what} must look like NAME=VALUE, got {item!r}")
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ViewError(f"{what} must look like NAME=VALUE, got {item!r}")
        out[key.strip()] = value.strip()
    return out


def _create(args: argparse.Namespace) -> int:
    if bool(args.query) == bool(args.subquery):
        raise ViewError("give either --query or one or more --subquery NAME=SQL")
    query = args.query or _pairs(args.subquery, "--subquery")
    try:
        weights = {k: float(w) for k, w in _pairs(args.weight, "--weight").items()}
        split = None
        if args.split_by:
            fractions = {k: float(f) for k, f in _pairs(args.split.split(","), "--split").items()}
            split = {"by": args.split_by, "fractions": fractions, "seed": args.seed}
    except ValueError as exc:
        raise ViewError(f"weights and split fractions must be numbers: {exc}") from exc
    label_map = json_arg(args.label_map, "--label-map", ViewError)
    view = open_store(args).create_view(args.name, query, datasets=args.dataset, label_map=label_map,
                                        weights=weights or None, split=split, message=args.message,
                                        unknown_labels=args.unknown_labels, empty=args.empty)
    print(f"draft view {view.name!r} saved over {', '.join(view.datasets)}: {len(view)} frames now")
    return 0


def _publish(args: argparse.Namespace) -> int:
    draft = open_store(args).view(args.name, "draft")
    view = draft.publish(version=args.version, message=args.message, author=args.author)
    pins = ", ".join(f"{d}@{v}" for d, v in view.pins.items())
    print(f"published view {view.name!r} {view.version}: {view.frame_count} frames, pinned {pins}, digest {view.digest}")
    return 0


def _list(args: argparse.Namespace) -> int:
    write_table(open_store(args).views(), args.format, args.output)
    return 0


def _show(args: argparse.Namespace) -> int:
    view = open_store(args).view(args.name, args.version)
    print(f"view {view.name} {view.version} ({view.status})")
    for name, sql in view.queries.items():
        print(f"  query {name} (weight {view.weights[name]:g}): {sql}")
    pins = view.pins if view.published else {}  # a draft reads each dataset's latest version
    print(f"  datasets: {', '.join(f'{d}@{pins[d]}' if d in pins else d for d in view.datasets)}")
    if view.label_map is not None:
        print(f"  label map ({view.unknown_labels} unknown labels): {json.dumps(view.label_map.as_dict(), sort_keys=True)}")
    if view.split_spec is not None:
        print(f"  split: {json.dumps(view.split_spec.to_dict())}")
    print(f"  frames without a class: {view.empty}; rejected-annotations rule {view.rule}")
    if view.published:
        print(f"  frames: {view.frame_count}  digest: {view.digest}  parent: {view.parent_version or '-'}")
        print(f"  by {view.created_by} at {view.created_at:%Y-%m-%d %H:%M:%S}Z: {view.message}")
    frames = view.to_polars(["dataset", "frame_id", "uri", "classes", "split", "subquery"])
    write_table(frames.head(args.frames))
    return 0


def _diff(args: argparse.Namespace) -> int:
    store = open_store(args)
    new = store.view(args.name, args.new)
    result = new.diff(args.old)
    print(result)
    rejected = result.removed_rejected
    for kind in ("added", "removed (rejected)", "removed", "relabeled", "revised"):
        if kind == "removed (rejected)":
            rows: pl.DataFrame = rejected
        elif kind == "removed" and rejected.height:  # the others, each frame listed once
            rows = result.removed.join(rejected.select("dataset", "frame_id"), on=["dataset", "frame_id"], how="anti")
        else:
            rows = getattr(result, kind)
        if rows.height:
            print(f"{kind}:")
            write_table(rows.head(args.rows))
    return 0


def _verify(args: argparse.Namespace) -> int:
    report = open_store(args).view(args.name, args.version).verify()
    print(report)
    return 0 if report.ok else 1


def _runs(args: argparse.Namespace) -> int:
    write_table(runs_with_kind(open_store(args).runs(view=args.view, version=args.version)), args.format, args.output)
    return 0


def runs_with_kind(runs: pa.Table) -> pl.DataFrame:
    """Recorded runs with `kind` (export, evaluation, training, ...) and `dest` read out of their JSON info,
    after run_id, so the audit shows what was exported from which version and where."""
    df = pl.from_arrow(runs)
    info = df["info"].str.json_decode(pl.Struct({"kind": pl.String, "dest": pl.String}), infer_schema_length=None)
    front = ["run_id", "kind", "dest"]
    return df.with_columns(info.struct.field("kind"), info.struct.field("dest")).select(
        front + [c for c in df.columns if c not in front])
