"""Frame page: the image with its boxes, each annotation's provenance, history, blame, its sequence."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .. import params
from ..source import read_rows
from ._shared import dataset, frame_json, plain, render, sql_literal


def sequence(ds, seq_id: str | None, camera: str | None = None) -> list[dict]:
    """The frames of a sequence (burst/event) at the frame's camera, in frame_num order.

    A burst is one camera's; naming the camera lets its index narrow the read (seq_id has none: at 1M
    frames the seq_id scan alone took ~60 ms of a frame page)."""
    if not seq_id:
        return []
    where = f"seq_id = {sql_literal(seq_id)}" + (f" AND camera = {sql_literal(camera)}" if camera else "")
    rows = read_rows(ds.query(where), ["frame_id", "frame_num"]).to_pylist()
    return sorted(rows, key=lambda r: (r["frame_num"] is None, r["frame_num"] or 0, r["frame_id"]))


def frame_page(request: Request) -> Response:
    ds = dataset(request)
    frame_id = params.required(request.query_params, "frame_id", max_len=2000)
    frame = ds.get(frame_id)
    history = [plain(r) for r in ds.history(frame_id).drop(["before", "after"], strict=False).to_dicts()]
    blame = [plain(r) for r in ds.blame(frame_id).to_dicts()]
    ctx = {"dataset": ds, "frame": plain(frame), "history": history, "blame": blame,
           "sequence": sequence(ds, frame.get("seq_id"), frame.get("camera"))}
    return render(request, "frame.html", ctx)


def frame_api(request: Request) -> Response:
    ds = dataset(request)
    frame = ds.get(params.required(request.query_params, "frame_id", max_len=2000))
    return JSONResponse(frame_json(ds, frame))


routes = [Route("/frame", frame_page), Route("/api/frame", frame_api)]
