"""`hyperds repeats find|reject`, `hyperds sequences labels|smooth`, `hyperds policy show|set`: the field workflows."""

from __future__ import annotations

import argparse

from ..workflows.repeats import PER
from ._common import add_output_args, open_store, positive_int, write_table
from .evaluate import unit_float as _unit


def _rule_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("dataset")
    p.add_argument("--per", choices=PER, default="camera", help="frame column naming one camera (default: camera)")
    p.add_argument("--iou", type=_unit, default=0.85, help="box overlap that counts as the same box (default: 0.85)")
    p.add_argument("--min-frames", type=positive_int, default=10, help="frames a box must repeat in (default: 10)")
    p.add_argument("--where", help="SQL condition on the frames, e.g. \"site = 'S07'\"")


def register(sub: argparse._SubParsersAction) -> None:
    rep = sub.add_parser(
        "repeats", help="find and reject repeat detections (a rock detected in hundreds of frames)",
        description="Model detections whose boxes repeat on one camera: `find` lists the groups (and stores the "
        "affected frames as a draft view), `reject` rejects chosen groups as one commit reviewed by the rule.",
    )
    actions = rep.add_subparsers(dest="action", metavar="ACTION", required=True)
    f = actions.add_parser("find", help="list repeat-detection groups, ranked by frames",
                           description="Groups of open model detections of DATASET overlapping at --iou in at least "
                           "--min-frames frames of one --per value; the affected frames become the draft view --name.")
    _rule_args(f)
    f.add_argument("--name", help="draft view name (default: DATASET-repeats)")
    add_output_args(f)
    f.set_defaults(func=_find)
    r = actions.add_parser("reject", help="reject the detections of chosen groups as one commit",
                           description="Find the groups again with the same parameters and reject the detections of "
                           "--groups (or --all) as one commit whose reviewer is rule:repeat-detection iou=... "
                           "min_frames=...; each detection's note names its group. Undo is a later commit.")
    _rule_args(r)
    which = r.add_mutually_exclusive_group(required=True)
    which.add_argument("--groups", help="comma-separated group names from `repeats find`, e.g. cam07#1,cam07#2")
    which.add_argument("--all", action="store_true", help="every group found")
    r.add_argument("--author", required=True, help="who chose the groups (named in the commit message)")
    r.add_argument("--message", default="", help="commit message")
    r.set_defaults(func=_reject)

    seq = sub.add_parser("sequences", help="burst (seq_id) labels and smoothing proposals",
                         description="Frame labels rolled up to bursts, and proposals for frames that disagree with "
                         "a confident burst majority (model-kind suggestions from rule:sequence-smoothing).")
    sa = seq.add_subparsers(dest="action", metavar="ACTION", required=True)
    lab = sa.add_parser("labels", help="species per burst with frames, counts and confidence",
                        description="One row per (seq_id, label) of DATASET: frames, most individuals in one frame, "
                        "best model confidence, whether a person gave or confirmed it.")
    lab.add_argument("dataset")
    lab.add_argument("--where", help="SQL condition on the frames")
    add_output_args(lab)
    lab.set_defaults(func=_labels)
    sm = sa.add_parser("smooth", help="propose labels from a confident burst majority (a draft for review)",
                       description="Print the proposals; nothing is written unless --commit, which writes them as "
                       "unreviewed model suggestions from rule:sequence-smoothing for people to accept or reject. "
                       "Frames a person labelled or reviewed are never proposed.")
    sm.add_argument("dataset")
    sm.add_argument("--min-confidence", type=_unit, default=0.8, help="majority's best confidence (default: 0.8)")
    sm.add_argument("--min-share", type=_unit, default=0.5, help="majority must hold more than this share of "
                    "labelled frames (default: 0.5)")
    sm.add_argument("--where", help="SQL condition on the frames")
    sm.add_argument("--commit", action="store_true", help="write the proposals as suggestions for review")
    sm.add_argument("--author", help="who commits the proposals (required with --commit)")
    add_output_args(sm)
    sm.set_defaults(func=_smooth)
    _register_policy(sub)


def _register_policy(sub: argparse._SubParsersAction) -> None:
    pol = sub.add_parser("policy", help="the store's sensitive-species and people policy",
                         description="Which labels are sensitive (their locations are coarsened or dropped) and what "
                         "happens to frames with people or vehicles (left out, or blurred) when exports and loaders "
                         "are asked for policy=public. Every set is a new version.")
    pa_ = pol.add_subparsers(dest="action", metavar="ACTION", required=True)
    show = pa_.add_parser("show", help="print the current policy (or a version, or every version)",
                          description="Print the store's policy: the latest version, --version N, or --history.")
    show.add_argument("--version", type=int, help="policy version (0: the default)")
    show.add_argument("--history", action="store_true", help="every version, oldest first")
    add_output_args(show)
    show.set_defaults(func=_policy_show)
    st = pa_.add_parser("set", help="set a new policy version",
                        description="A new policy version: the current one with the given settings changed.")
    st.add_argument("--sensitive", help="comma-separated sensitive labels (replaces the list; '' clears it)")
    st.add_argument("--coordinates", choices=("round", "drop"), help="what happens to sensitive locations")
    st.add_argument("--km", type=float, help="grid size in km that sensitive coordinates are rounded to")
    st.add_argument("--people", choices=("omit", "blur"), help="frames with people/vehicles: leave out or blur")
    st.add_argument("--people-labels", help="comma-separated labels that mean people or vehicles")
    st.add_argument("--people-min-confidence", type=_unit, help="model detections of people below this are ignored")
    st.add_argument("--author", required=True, help="who sets the policy")
    st.add_argument("--message", default="", help="why")
    st.set_defaults(func=_policy_set)


def _split(text: str | None) -> list[str] | None:
    return None if text is None else [t.strip() for t in text.split(",") if t.strip()]


def _policy_show(args: argparse.Namespace) -> int:
    import polars as pl

    store = open_store(args)
    if args.history:
        write_table(store.policy_history(), args.format, args.output)
        return 0
    policy = store.policy(args.version)
    row = {"version": policy.version, **policy.settings(), "author": policy.author, "message": policy.message}
    write_table(pl.DataFrame([row]), args.format, args.output)
    return 0


def _policy_set(args: argparse.Namespace) -> int:
    store = open_store(args)
    policy = store.set_policy(
        args.author, args.message, sensitive_labels=_split(args.sensitive), coordinates=args.coordinates,
        round_km=args.km, people=args.people, people_labels=_split(args.people_labels),
        people_min_confidence=args.people_min_confidence,
    )
    print(f"policy version {policy.version}: {len(policy.sensitive_labels)} sensitive label(s), coordinates "
          f"{policy.coordinates}{f' to {policy.round_km:g} km' if policy.coordinates == 'round' else ''}, "
          f"people {policy.people}")
    return 0


def _find(args: argparse.Namespace) -> int:
    ds = open_store(args).dataset(args.dataset)
    found = ds.find_repeats(per=args.per, iou=args.iou, min_frames=args.min_frames, where=args.where, name=args.name)
    view = f"; affected frames in draft view {found.view.name!r}" if found.view is not None else ""
    print(f"{len(found)} repeat group(s), {found.detections.height} detection(s){view}")
    write_table(found.groups, args.format, args.output)
    return 0


def _reject(args: argparse.Namespace) -> int:
    ds = open_store(args).dataset(args.dataset)
    found = ds.find_repeats(per=args.per, iou=args.iou, min_frames=args.min_frames, where=args.where, view=False)
    ids = None if args.all else [g.strip() for g in args.groups.split(",") if g.strip()]
    done = ds.reject_repeats(found, author=args.author, ids=ids, message=args.message)
    print(f"rejected {done.detections} detection(s) in {len(done.groups)} group(s) as commit "
          f"{done.commit.commit_id[:12]} (version {done.commit.version}) by {done.reviewer}")
    return 0


def _labels(args: argparse.Namespace) -> int:
    ds = open_store(args).dataset(args.dataset)
    write_table(ds.sequence_labels(where=args.where), args.format, args.output)
    return 0


def _smooth(args: argparse.Namespace) -> int:
    from ..errors import WorkflowError

    if args.commit and not args.author:
        raise WorkflowError("--commit needs --author (who commits the proposals)")
    ds = open_store(args).dataset(args.dataset)
    proposals = ds.smooth_sequences(min_confidence=args.min_confidence, min_share=args.min_share, where=args.where)
    print(f"{len(proposals)} proposal(s)")
    write_table(proposals.table, args.format, args.output)
    if args.commit:
        done = proposals.commit(args.author)
        if done is not None:
            print(f"wrote {done.added} suggestion(s) as commit {done.commit_id[:12]} (version {done.version})")
    return 0
