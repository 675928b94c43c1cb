"""`hyperds serve`: the reviewers' web app over a store (needs the `web` extra)."""

from __future__ import annotations

import argparse
import ipaddress
import logging
import secrets
import sys

from ..errors import HyperdsError
from ._common import open_store

log = logging.getLogger(__name__)
LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "serve",
        help="web app to browse, review, correct and audit frames",
        description="Serve the web app for the store on http://HOST:PORT. It binds 127.0.0.1 by default; any other "
        "host needs a token, given with --token or generated (--token auto) and printed once; people sign in "
        "with it and their name, which becomes the author of their commits.",
    )
    # also after the command, as `hyperds serve --store URI`; absent, the global --store (or $HYPERDS_STORE) holds
    p.add_argument("--store", default=argparse.SUPPRESS, help="store URI (default: $HYPERDS_STORE or ~/.hyperds/store)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=8765, help="port (default 8765)")
    p.add_argument("--token", help="access token for sign-in (required for a non-local --host; 'auto' generates one)")
    p.add_argument("--cache-dir", help="disk cache of thumbnails (default: a folder under the system temp dir)")
    p.add_argument("--cache-mb", type=int, default=512, help="size bound of the image cache in MiB (default 512)")
    p.set_defaults(func=run)


def check_bind(host: str, token: str | None) -> str | None:
    """The token to use; refuses a non-local bind without one (HyperdsError). 'auto' makes a fresh token."""
    if token == "auto":
        return secrets.token_urlsafe(24)
    if token is None and not is_local(host):
        raise HyperdsError(
            f"refusing to serve on {host!r} without a token: anyone who can reach it could change labels. "
            "Pass --token SECRET (or --token auto to generate one), or bind 127.0.0.1"
        )
    return token


def is_local(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def run(args: argparse.Namespace) -> int:
    token = check_bind(args.host, args.token)
    try:
        import uvicorn

        from ..web import create_app
    except ImportError as exc:
        raise HyperdsError(f"the web app needs the web extra ({exc.name} is missing): pip install 'hyperds[web]'") from None
    store = open_store(args)
    app = create_app(store, token=token, cache_dir=args.cache_dir, cache_bytes=args.cache_mb << 20)
    if token is not None and args.token == "auto":
        print(f"hyperds: sign-in token (shown once): {token}", file=sys.stderr)
    print(f"hyperds: serving {store.uri} on http://{args.host}:{args.port}/ (Ctrl-C stops)", file=sys.stderr)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", access_log=False)
    return 0
