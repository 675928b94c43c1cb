"""`hyperds review queue|accept` and `hyperds select`: one annotation round from the command line."""

from __future__ import annotations

import argparse

import pyarrow as pa

from ..workflows.review import DEFAULT_THRESHOLD
from ..workflows.select import STRATEGIES, select_frames, selection_view
from ._common import add_output_args, open_store, write_table


def register(sub: argparse._SubParsersAction) -> None:
    review = sub.add_parser(
        "review",
        help="review queue of uncertain model detections; auto-accept confident ones",
        description="Human-in-the-loop review of model detections: `queue` lists what people should check, "
        "`accept` lets a confidence rule accept the rest (recorded as reviewed_by auto:threshold=T).",
    )
    actions = review.add_subparsers(dest="action", metavar="ACTION", required=True)
    q = actions.add_parser(
        "queue",
        help="save and print the review queue as a draft view",
        description="Frames of DATASET with an unreviewed model detection below --threshold, stored as the "
        "draft view --name (default DATASET-review-queue) and printed.",
    )
    _common_args(q)
    q.add_argument("--where", help="extra SQL condition on the frames, e.g. \"site = 'S07'\"")
    q.add_argument("--name", help="draft view name (default: DATASET-review-queue)")
    add_output_args(q)
    q.set_defaults(func=_queue)
    a = actions.add_parser(
        "accept",
        help="auto-accept frames whose model detections are all confident",
        description="Accept every unreviewed model detection of the frames of DATASET that have none below "
        "--threshold, as one commit by auto:threshold=T. A rerun with nothing left to accept writes nothing.",
    )
    _common_args(a)
    a.set_defaults(func=_accept)

    s = sub.add_parser(
        "select",
        help="choose the frames to label next (active learning)",
        description="Choose K frames of DATASET nobody has reviewed: by model uncertainty (confidence margin), "
        "at random, or diverse (k-center over the embedding column, else spread over sites, cameras, time). "
        "Stored as the draft view --name and printed in rank order.",
    )
    s.add_argument("dataset")
    s.add_argument("-k", type=int, default=100, help="number of frames (default: 100)")
    s.add_argument("--strategy", choices=STRATEGIES, default="uncertainty", help="default: uncertainty")
    s.add_argument("--where", help="SQL condition the frames must meet")
    s.add_argument("--seed", type=int, default=0, help="random seed; the same seed gives the same frames (default: 0)")
    s.add_argument("--column", default="embedding", help="embedding column for --strategy diverse")
    s.add_argument("--name", help="draft view name (default: DATASET-select-STRATEGY)")
    add_output_args(s)
    s.set_defaults(func=_select)


def _common_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("dataset")
    p.add_argument(
        "--threshold", type=float, default=DEFAULT_THRESHOLD, help=f"confidence threshold (default: {DEFAULT_THRESHOLD})"
    )
    p.add_argument("--model", help="only detections whose source is this model (default: every model)")


def _queue(args: argparse.Namespace) -> int:
    ds = open_store(args).dataset(args.dataset)
    view = ds.review_queue(threshold=args.threshold, model=args.model, where=args.where, name=args.name)
    frames = view.to_arrow(["frame_id", "uri"])
    print(f"draft view {view.name!r}: {frames.num_rows} frame(s) to review (threshold {args.threshold:g})")
    write_table(frames, args.format, args.output)
    return 0


def _accept(args: argparse.Namespace) -> int:
    ds = open_store(args).dataset(args.dataset)
    result = ds.auto_accept(threshold=args.threshold, model=args.model)
    if result.commit is None:
        print(f"nothing to accept at threshold {args.threshold:g}; {ds.name} stays at version {result.version}")
    else:
        print(
            f"accepted {result.annotations} detection(s) on {result.frames} frame(s) as {result.reviewer}; "
            f"{ds.name} is now at version {result.version}"
        )
    return 0


def _select(args: argparse.Namespace) -> int:
    ds = open_store(args).dataset(args.dataset)
    chosen: pa.Table = select_frames(ds, k=args.k, strategy=args.strategy, where=args.where, seed=args.seed,
                                     column=args.column)
    view = selection_view(ds, chosen, args.strategy, args.seed, args.where, args.name)
    print(f"draft view {view.name!r}: {chosen.num_rows} frame(s) by {args.strategy} (seed {args.seed})")
    write_table(chosen, args.format, args.output)
    return 0
