"""Review: one frame at a time through a review queue, a selection, a view or a query.

Each decision is one `ds.commit` by the signed-in person, carrying the frame revision the page
showed; if someone changed the frame since, the commit is refused (ConflictError) and the page
says who changed it and when, showing the current state. Undo is a new commit that restores what
the undone commit changed (from the frame's history), itself checked against later changes.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from ...errors import ConflictError
from .. import params
from ..auth import check_csrf, require_user
from ..errors import BadRequest, wants_json
from ..source import read_rows
from ._shared import dataset, plain, render, store_of

ACTIONS = ("accept", "reject", "relabel", "box", "move", "note")
ADVANCES = ("accept", "reject")  # decisions that finish a frame and move to the next
PREFETCH = 3
UNDO_DEPTH = 5
STATUS_BACK = {"unreviewed": "reopen", "accepted": "accept", "rejected": "reject", "corrected": "correct"}


# -- what a review works through ---------------------------------------------------------------
def context(fields: Any) -> dict[str, str]:
    """The review's source fields (view [+version] or q), carried through every link and form."""
    out = {"dataset": params.required(fields, "dataset", max_len=200)}
    view = params.text(fields, "view", max_len=200)
    q = params.text(fields, "q", max_len=4000)
    if view and q:
        raise BadRequest("give either view or q, not both")
    if view:
        out["view"] = view
        version = params.text(fields, "version", max_len=50)
        if version:
            out["version"] = version
    elif q:
        out["q"] = q
    else:
        raise BadRequest("a review needs a view (e.g. the review queue) or a query q; start one from the dataset page")
    return out


def _key(ctx: dict[str, str]) -> tuple:
    return (ctx["dataset"], ctx.get("view"), ctx.get("version"), ctx.get("q"))


def review_list(request: Request, ds, ctx: dict[str, str], fresh: bool = False):
    lists = request.app.state.lists
    found = None if fresh else lists.get(_key(ctx))
    if found is not None:
        return found
    if "view" in ctx:
        view = store_of(request).view(ctx["view"], ctx.get("version"))
        table = read_rows(view, ["dataset", "frame_id"])
        ids = [r["frame_id"] for r in table.to_pylist() if r["dataset"] == ds.name]
    else:
        ids = ds.query(ctx["q"]).frame_ids().to_pylist()
    made = lists.put(_key(ctx), ids)
    made.labels = ds.taxonomy or _labels_in_use(request, ds.name)
    return made


def _labels_in_use(request: Request, name: str) -> list[str]:
    labels = store_of(request).sql(f'SELECT DISTINCT label FROM "{name}__labels"')
    return sorted(v for v in labels["label"].to_list() if v)


def review_url(ctx: dict[str, str], at: str | None = None) -> str:
    query = dict(ctx)
    if at is not None:
        query["at"] = at
    return "/review?" + urlencode(query)


# -- pages ---------------------------------------------------------------------------------------
async def start(request: Request) -> Response:
    """Make the review's draft (queue or selection) or take a view/query, then open its first frame."""
    form = await request.form()
    check_csrf(request, form)
    require_user(request)
    ds = dataset(request, form)
    kind = params.choice(form, "kind", ("queue", "select", "view", "query"), default="queue")

    def make() -> dict[str, str]:
        if kind == "queue":
            threshold = params.number(form, "threshold", default=0.98)
            view = ds.review_queue(threshold, model=params.text(form, "model", max_len=200),
                                   where=params.text(form, "where", max_len=4000))
            return {"dataset": ds.name, "view": view.name, "version": "draft"}
        if kind == "select":
            k = params.integer(form, "k", default=100, low=1, high=100_000)
            strategy = params.choice(form, "strategy", ("uncertainty", "random", "diverse"), default="uncertainty")
            view = ds.select(k=k, strategy=strategy, where=params.text(form, "where", max_len=4000))
            return {"dataset": ds.name, "view": view.name, "version": "draft"}
        return context({**form, "dataset": ds.name})

    ctx = await run_in_threadpool(make)
    await run_in_threadpool(review_list, request, ds, ctx, True)
    return RedirectResponse(review_url(ctx), status_code=303)


def review_page(request: Request, ds=None, ctx=None, at=None, conflict: str | None = None, status: int = 200):
    if ds is None:
        ctx = context(request.query_params)
        ds = dataset(request)
        at = params.text(request.query_params, "at", max_len=2000)
    worklist = review_list(request, ds, ctx)
    current = worklist.at_or_after(at)
    page: dict[str, Any] = {"dataset": ds, "ctx": ctx, "conflict": conflict, "total": len(worklist.frame_ids),
                            "reviewed": len(worklist.decided), "rate": worklist.rate_per_min(),
                            "labels": worklist.labels, "frame": None, "undo": bool(request.session.get("undo"))}
    if current is not None:
        frame = ds.get(current)
        previous = worklist.before(current)
        nxt = worklist.after(current)
        page.update(
            frame=plain(frame),
            position=worklist.position(current),
            prefetch=worklist.following(current, PREFETCH),
            previous_url=review_url(ctx, previous) if previous else None,
            next_url=review_url(ctx, nxt) if nxt else review_url(ctx, "\U0010ffff"),
        )
    return render(request, "review.html", page, status=status)


# -- decisions ----------------------------------------------------------------------------------
def changes_for(action: str, frame: dict, form: Any) -> list[dict]:
    """The commit changes one decision makes (without revisions)."""
    fid = frame["frame_id"]
    anns = frame["annotations"] or []
    note = params.text(form, "note", max_len=2000)
    if action in ("accept", "reject"):
        open_ = [a for a in anns if a["review_status"] == "unreviewed"] or anns
        if not open_:
            raise BadRequest(f"frame {fid!r} has no annotation to {action}; draw a box first (b) or go to the next frame")
        return [{"op": "review", "frame_id": fid, "ann_id": a["ann_id"], "status": action, "note": note} for a in open_]
    ann_id = params.text(form, "ann_id", max_len=2000)
    if action == "box":
        label = params.required(form, "label", max_len=200)
        return [{"op": "add", "frame_id": fid, "label": label, "bbox": params.bbox(form), "note": note}]
    known = {a["ann_id"]: a for a in anns}
    if ann_id not in known:
        raise BadRequest(f"field 'ann_id' must name an annotation of frame {fid!r}; pick one in the list")
    if action == "relabel":
        label = params.required(form, "label", max_len=200)
        return [{"op": "review", "frame_id": fid, "ann_id": ann_id, "status": "correct", "label": label, "note": note}]
    if action == "move":
        box = params.bbox(form)
        current = known[ann_id]["bbox"]
        if current is not None and all(abs(a - b) <= 1e-6 for a, b in zip(box, current)):
            # no commit for a move that moves nothing: it would be a decision that undo cannot restore
            raise BadRequest(f"annotation {ann_id!r} already has box {params.bbox_text(current)}; drag it somewhere else")
        return [{"op": "move", "frame_id": fid, "ann_id": ann_id, "bbox": box}]
    # note: keeps the annotation's review status (an unreviewed one stays unreviewed)
    if note is None:
        raise BadRequest("field 'note' is empty; write the note first (n)")
    if note == known[ann_id]["note"]:
        raise BadRequest(f"annotation {ann_id!r} already has that note; write another one or go on")
    status = STATUS_BACK[known[ann_id]["review_status"]]
    return [{"op": "review", "frame_id": fid, "ann_id": ann_id, "status": status, "note": note}]


def conflict_message(ds, frame_id: str) -> str:
    """'changed by <author> at <time> since you opened it', from the frame's latest history event."""
    events = ds.history(frame_id)
    if events.height == 0:
        return "this frame changed since you opened it; here is its current state"
    last = events.row(-1, named=True)
    when = last["created_at"].strftime("%Y-%m-%d %H:%M:%S UTC") if last["created_at"] else "an unknown time"
    return f"changed by {last['author']} at {when} since you opened it; nothing was overwritten, here is its current state"


def _push_undo(request: Request, ds, commit_id: str, frame_id: str, revision: int) -> None:
    stack = list(request.session.get("undo", []))[-(UNDO_DEPTH - 1):]
    stack.append({"d": ds.name, "c": commit_id, "f": frame_id, "r": revision})
    request.session["undo"] = stack


async def decide(request: Request) -> Response:
    form = await request.form()
    check_csrf(request, form)
    author = require_user(request)
    ctx = context(form)
    ds = dataset(request, form)
    frame_id = params.required(form, "frame_id", max_len=2000)
    revision = params.integer(form, "revision")
    action = params.choice(form, "action", ACTIONS)

    def run():
        frame = ds.get(frame_id)
        changes = changes_for(action, frame, form)
        for change in changes:
            change["revision"] = revision  # the revision the page showed: a later change makes this a conflict
        return ds.commit(changes, author=author, message=f"web review: {action}")

    try:
        result = await run_in_threadpool(run)
    except ConflictError:
        message = await run_in_threadpool(conflict_message, ds, frame_id)
        if wants_json(request):
            return JSONResponse({"status": "conflict", "message": message}, status_code=409)
        return await run_in_threadpool(review_page, request, ds, ctx, frame_id, message, 409)
    _push_undo(request, ds, result.commit_id, frame_id, revision + 1)
    worklist = await run_in_threadpool(review_list, request, ds, ctx)
    worklist.record(frame_id)
    if action in ADVANCES:
        nxt = worklist.after(frame_id)
        target = review_url(ctx, nxt if nxt is not None else "\U0010ffff")
    else:
        target = review_url(ctx, frame_id)
    if wants_json(request):
        return JSONResponse({"status": "ok", "commit_id": result.commit_id, "version": result.version, "next": target})
    return RedirectResponse(target, status_code=303)


def inverse_changes(events: list[dict], revision: int) -> list[dict]:
    """Changes that restore, annotation by annotation, what one commit's events changed."""
    out: list[dict] = []
    for ev in events:
        before, after, fid = ev["before"], ev["after"], ev["frame_id"]
        if before is None:
            out.append({"op": "delete", "frame_id": fid, "ann_id": after["ann_id"]})
            continue
        if after is None:
            out.append({"op": "add", "frame_id": fid, **{k: before[k] for k in
                        ("ann_id", "label", "bbox", "confidence", "count", "note")}})
            continue
        ann = before["ann_id"]
        if before["label"] != after["label"]:
            out.append({"op": "relabel", "frame_id": fid, "ann_id": ann, "label": before["label"]})
        if before["bbox"] != after["bbox"] and before["bbox"] is not None:
            out.append({"op": "move", "frame_id": fid, "ann_id": ann, "bbox": before["bbox"]})
        reviewed = ("review_status", "reviewed_by", "reviewed_at", "note")
        if any(before[k] != after[k] for k in reviewed):
            out.append({"op": "review", "frame_id": fid, "ann_id": ann,
                        "status": STATUS_BACK[before["review_status"]], "note": before["note"]})
    for change in out:
        change["revision"] = revision
    return out


async def undo(request: Request) -> Response:
    form = await request.form()
    check_csrf(request, form)
    author = require_user(request)
    ctx = context(form)
    stack = list(request.session.get("undo", []))
    if not stack:
        raise BadRequest("nothing to undo in this session", 409)
    entry = stack.pop()
    request.session["undo"] = stack
    ds = store_of(request).dataset(entry["d"])

    def run():
        history = ds.history(entry["f"])
        events = history.filter(history["commit_id"] == entry["c"]).to_dicts()
        changes = inverse_changes(events, entry["r"])
        if not changes:
            raise BadRequest("that decision changed nothing that can be restored", 409)
        return ds.commit(changes, author=author, message=f"web review: undo {entry['c'][:12]}")

    try:
        await run_in_threadpool(run)
    except ConflictError:
        message = await run_in_threadpool(conflict_message, ds, entry["f"])
        if wants_json(request):
            return JSONResponse({"status": "conflict", "message": message}, status_code=409)
        return await run_in_threadpool(review_page, request, ds, ctx, entry["f"], "cannot undo: " + message, 409)
    # the undo moved the frame one revision on; earlier decisions of this session on the same frame now
    # expect that revision (only someone else's change since should stop their undo)
    for older in stack:
        if (older["d"], older["f"]) == (entry["d"], entry["f"]):
            older["r"] = entry["r"] + 1
    request.session["undo"] = stack
    target = review_url(ctx, entry["f"])
    if wants_json(request):
        return JSONResponse({"status": "ok", "next": target})
    return RedirectResponse(target, status_code=303)


routes = [
    Route("/review", review_page),
    Route("/review/start", start, methods=["POST"]),
    Route("/review/decide", decide, methods=["POST"]),
    Route("/review/undo", undo, methods=["POST"]),
]
