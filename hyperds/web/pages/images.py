"""Image routes: /image/thumb and /image/display take a dataset and a frame_id, nothing else.

The image comes from the URI stored on that frame; ETag + Cache-Control let the browser keep it.
"""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ...errors import HyperdsError
from .. import params
from ..errors import BadRequest
from ..images import SIZES, Rendered
from ._shared import store_of

CACHE_CONTROL = "private, max-age=86400"


def _respond(request: Request, img: Rendered) -> Response:
    etag = f'"{img.etag}"'
    headers = {"ETag": etag, "Cache-Control": CACHE_CONTROL if img.error is None else "no-store"}
    if img.error is not None:
        headers["X-Hyperds-Image-Error"] = img.error.encode("ascii", "replace").decode()[:200]
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers=headers)
    return Response(img.body, media_type=img.media_type, headers=headers)


def _fields(request: Request) -> tuple[str, str, str]:
    size = request.path_params["size"]
    if size not in SIZES:
        raise BadRequest(f"unknown image size {size!r}; use one of {sorted(SIZES)}", 404)
    extra = sorted(set(request.query_params) - {"dataset", "frame_id"})
    if extra:
        raise BadRequest(f"image routes take only dataset and frame_id, not {extra}")
    qp = request.query_params
    return params.required(qp, "dataset", max_len=200), params.required(qp, "frame_id", max_len=2000), size


async def image(request: Request) -> Response:
    name, frame_id, size = _fields(request)
    store = store_of(request)
    service = request.app.state.images
    names = request.app.state.names
    known = names.get() if names.fresh() else await run_in_threadpool(names.get)
    if name not in known:
        raise BadRequest(f"no dataset {name!r} in this store", 404)
    hit = service.cached(name, frame_id, size)  # one small local file read: cheaper inline than a thread hop
    if hit is not None:
        return _respond(request, hit)

    def make() -> Rendered:
        # one Dataset per name for the app's life: its warm index cache makes the uri lookup ~1 ms instead of
        # a fresh open's ~9 ms (1M frames). Each read still sees the latest version; a name dropped and made
        # again is a new table, so a miss reopens once before it is a 404.
        cached = request.app.state.datasets.get(name)
        ds = cached or store.dataset(name)
        try:
            frame = ds.get(frame_id, ["frame_id", "uri"])  # only the stored URI is ever read
        except HyperdsError:  # not found, or the cached table was dropped under it: open the name afresh once
            if cached is None:
                raise
            ds = store.dataset(name)
            frame = ds.get(frame_id, ["frame_id", "uri"])  # FrameNotFoundError -> 404
        request.app.state.datasets[name] = ds
        return service.render(ds, frame, size)

    return _respond(request, await run_in_threadpool(make))


routes = [Route("/image/{size}", image)]
