"""A fault-injecting HTTP/1.1 proxy for the moto S3 server of the tests (issue 20, "Storage faults").

It sits on 127.0.0.1 at a free port and forwards every request to the moto server (also on 127.0.0.1). It
reads requests and responses as HTTP/1.1 messages (Content-Length, chunked, keep-alive, `Expect:
100-continue`), so a fault hits whole requests, not whichever bytes happen to cross a socket, and a
request that is not faulted goes through unchanged.

Faults, switched at runtime with `proxy.fault(mode, times=K | seconds=T | neither = permanently)`, optionally
only for some HTTP methods (`methods=("PUT", "POST")`: a fault on writes only):

  drop      close the client's connection (with a TCP reset) when a request arrives; nothing is forwarded
  delay     sleep `delay_s` before forwarding the request
  slowdown  answer `503 Slow Down` with S3's XML `<Error><Code>SlowDown</Code>…` body; nothing is forwarded
  denied    answer `403 Forbidden` with S3's `AccessDenied` body (with methods=("PUT", ...): a read-only store)
  cut       forward the request, then send the response with its body cut short after `cut_after` bytes
            (at most half of it) and close the connection
  dark      hold the request unanswered while the window lasts (for `seconds=T`: until T seconds after the
            fault was set; for `times=K`: `hold_s` per request; permanently: until the proxy is switched
            back or stopped), then forward it. A client that gives up closes its connection and the held
            request is dropped. New connections are accepted and held too.

`proxy.requests` counts every request seen, `proxy.injected[mode]` the faults injected (a test whose fault
was never hit proves nothing), `proxy.log` lists (method, path, what happened). Every wait polls a stop
event, every socket has a timeout, and `stop()` closes all sockets and joins all threads.
"""

from __future__ import annotations

import collections
import contextlib
import select
import socket
import struct
import threading
import time
from dataclasses import dataclass

__all__ = ["MODES", "FaultProxy"]

MODES = ("pass", "drop", "delay", "slowdown", "cut", "dark", "denied")
_LOCAL = "127.0.0.1"
_MAX_HEAD = 64 * 1024
_IO_TIMEOUT = 60.0  # no single socket read or write of the proxy waits longer than this
_POLL = 0.05

DENIED_BODY = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n'
    b"<Error><Code>AccessDenied</Code><Message>Access Denied</Message>"
    b"<RequestId>FAULTPROXY</RequestId><HostId>faultproxy</HostId></Error>"
)
SLOWDOWN_BODY = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n'
    b"<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message>"
    b"<RequestId>FAULTPROXY</RequestId><HostId>faultproxy</HostId></Error>"
)


class _Closed(Exception):
    """The peer closed its side, or a read timed out: this connection is done."""


@dataclass
class _Fault:
    mode: str = "pass"
    times: int | None = None  # faults left to inject (None: not counted)
    until: float | None = None  # time.monotonic() after which the fault no longer applies (None: no end)
    delay_s: float = 0.5
    cut_after: int = 64
    hold_s: float | None = None  # dark with times=K: how long each request is held
    methods: tuple[str, ...] | None = None  # only requests with these HTTP methods (None: all)


class _Stream:
    """Buffered reads from a socket that give up on the proxy's stop event or `_IO_TIMEOUT`."""

    def __init__(self, sock: socket.socket, stop: threading.Event):
        self.sock, self.stop, self.buf = sock, stop, bytearray()

    def _fill(self) -> None:
        deadline = time.monotonic() + _IO_TIMEOUT
        while not self.stop.is_set():
            if time.monotonic() > deadline:
                raise _Closed("read timed out")
            ready, _, _ = select.select([self.sock], [], [], _POLL)
            if ready:
                data = self.sock.recv(65536)
                if not data:
                    raise _Closed("peer closed")
                self.buf += data
                return
        raise _Closed("proxy stopping")

    def has_data(self) -> bool:
        return bool(self.buf) or bool(select.select([self.sock], [], [], 0)[0])

    def readline(self) -> bytes:
        while b"\r\n" not in self.buf:
            if len(self.buf) > _MAX_HEAD:
                raise _Closed("line too long")
            self._fill()
        i = self.buf.index(b"\r\n") + 2
        line, self.buf = bytes(self.buf[:i]), self.buf[i:]
        return line

    def read_head(self) -> bytes:
        while b"\r\n\r\n" not in self.buf:
            if len(self.buf) > _MAX_HEAD:
                raise _Closed("head too long")
            self._fill()
        i = self.buf.index(b"\r\n\r\n") + 4
        head, self.buf = bytes(self.buf[:i]), self.buf[i:]
        return head

    def read_exact(self, n: int) -> bytes:
        while len(self.buf) < n:
            self._fill()
        data, self.buf = bytes(self.buf[:n]), self.buf[n:]
        return data

    def read_to_close(self) -> bytes:
        with contextlib.suppress(_Closed):
            while True:
                self._fill()
        data, self.buf = bytes(self.buf), bytearray()
        return data


def _headers(head: bytes) -> tuple[str, dict[str, str]]:
    lines = head.decode("latin-1").split("\r\n")
    fields = {}
    for line in lines[1:]:
        if ":" in line:
            k, v = line.split(":", 1)
            fields[k.strip().lower()] = v.strip()
    return lines[0], fields


def _read_body(stream: _Stream, fields: dict[str, str], to_close: bool) -> bytes:
    """The raw body bytes of a message (chunk framing kept, so they can be forwarded as they came)."""
    if "chunked" in fields.get("transfer-encoding", "").lower():
        out = bytearray()
        while True:
            line = stream.readline()
            out += line
            size = int(line.split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while True:  # trailers, then the empty line
                    trailer = stream.readline()
                    out += trailer
                    if trailer == b"\r\n":
                        return bytes(out)
            out += stream.read_exact(size + 2)
    if "content-length" in fields:
        return stream.read_exact(int(fields["content-length"]))
    return stream.read_to_close() if to_close else b""


def _without_expect(head: bytes) -> bytes:
    lines = head.split(b"\r\n")
    return b"\r\n".join(line for line in lines if not line.lower().startswith(b"expect:"))


class FaultProxy:
    """HTTP proxy 127.0.0.1:<free port> -> 127.0.0.1:`upstream_port`, with switchable faults."""

    def __init__(self, upstream_port: int, upstream_host: str = _LOCAL):
        if upstream_host != _LOCAL:
            raise ValueError("the fault proxy forwards only to 127.0.0.1")
        self.upstream = (upstream_host, upstream_port)
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._fault = _Fault()
        self._sockets: set[socket.socket] = set()
        self._threads: list[threading.Thread] = []
        self.requests = 0
        self.injected: collections.Counter[str] = collections.Counter()
        self.log: list[tuple[str, str, str]] = []
        self._listener = socket.create_server((_LOCAL, 0))
        self._listener.settimeout(_POLL * 4)
        self.port = self._listener.getsockname()[1]
        self.endpoint = f"http://{_LOCAL}:{self.port}"
        self._acceptor = threading.Thread(target=self._accept_loop, name="fault-proxy-accept", daemon=True)

    # -- control -----------------------------------------------------------------------------
    def start(self) -> FaultProxy:
        self._acceptor.start()
        return self

    def fault(
        self,
        mode: str,
        *,
        times: int | None = None,
        seconds: float | None = None,
        delay_s: float = 0.5,
        cut_after: int = 64,
        hold_s: float | None = None,
        methods: tuple[str, ...] | None = None,
    ) -> None:
        """Inject `mode` into the next `times` requests, or those of the next `seconds`, or (neither) all.

        `methods` (e.g. ("PUT", "POST")) limits the fault to requests with those methods; others pass.
        """
        if mode not in MODES:
            raise ValueError(f"unknown fault {mode!r}; one of {MODES}")
        if times is not None and seconds is not None:
            raise ValueError("give times or seconds, not both")
        if mode == "dark" and times is not None and hold_s is None:
            raise ValueError("dark with times=K needs hold_s (how long each request is held)")
        until = time.monotonic() + seconds if seconds is not None else None
        with self._changed:
            self._fault = _Fault(mode, times, until, delay_s, cut_after, hold_s,
                                 tuple(m.upper() for m in methods) if methods else None)
            self._changed.notify_all()

    def passthrough(self) -> None:
        """Stop injecting faults; held (dark) requests are forwarded now."""
        self.fault("pass")

    def reset_counts(self) -> None:
        with self._lock:
            self.requests = 0
            self.injected.clear()
            self.log.clear()

    @property
    def faults(self) -> int:
        """How many faults were injected so far (all modes)."""
        with self._lock:
            return sum(self.injected.values())

    def stop(self) -> None:
        self._stop.set()
        with self._changed:
            self._changed.notify_all()
        with contextlib.suppress(OSError):
            self._listener.close()
        if self._acceptor.is_alive():
            self._acceptor.join(timeout=5)
        with self._lock:
            sockets, threads = list(self._sockets), list(self._threads)
        for s in sockets:
            with contextlib.suppress(OSError):
                s.close()
        for t in threads:
            t.join(timeout=5)

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- decisions ---------------------------------------------------------------------------
    def _take(self, method: str, path: str) -> _Fault:
        """The fault this request gets (consuming one of `times`), and count it."""
        with self._lock:
            self.requests += 1
            f = self._fault
            now = time.monotonic()
            live = f.mode != "pass" and (f.until is None or now < f.until) and (f.times is None or f.times > 0)
            live = live and (f.methods is None or method.upper() in f.methods)
            if not live:
                self.log.append((method, path, "pass"))
                return _Fault()
            if f.times is not None:
                f.times -= 1
            self.injected[f.mode] += 1
            self.log.append((method, path, f.mode))
            return f

    def _dark_over(self, fault: _Fault, held_until: float | None) -> bool:
        if self._stop.is_set() or self._fault is not fault:
            return True
        end = held_until if held_until is not None else fault.until
        return end is not None and time.monotonic() >= end

    def _hold(self, fault: _Fault, client: socket.socket) -> bool:
        """Hold a request while `fault` (dark) lasts; False if the client hung up meanwhile."""
        held_until = time.monotonic() + fault.hold_s if fault.times is not None and fault.hold_s is not None else None
        while True:
            with self._changed:
                if self._dark_over(fault, held_until):
                    return not self._stop.is_set()
                self._changed.wait(_POLL)
            ready, _, _ = select.select([client], [], [], 0)
            if ready:  # a held client only ever speaks again to hang up (or it pipelines, which S3 clients don't)
                try:
                    if not client.recv(1, socket.MSG_PEEK):
                        return False
                except OSError:
                    return False

    # -- plumbing ----------------------------------------------------------------------------
    def _track(self, sock: socket.socket) -> socket.socket:
        with self._lock:
            self._sockets.add(sock)
        return sock

    def _forget(self, sock: socket.socket | None) -> None:
        if sock is None:
            return
        with self._lock:
            self._sockets.discard(sock)
        with contextlib.suppress(OSError):
            sock.close()

    def _accept_loop(self) -> None:
        while not self._stop.is_set():
            try:
                client, addr = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            if addr[0] != _LOCAL:
                client.close()
                continue
            client.settimeout(_IO_TIMEOUT)
            self._track(client)
            t = threading.Thread(target=self._serve, args=(client,), name="fault-proxy-conn", daemon=True)
            with self._lock:
                self._threads = [x for x in self._threads if x.is_alive()] + [t]
            t.start()

    def _serve(self, client: socket.socket) -> None:
        upstream: socket.socket | None = None
        try:
            incoming = _Stream(client, self._stop)
            while not self._stop.is_set():
                head = incoming.read_head()
                request_line, fields = _headers(head)
                method, path = (request_line.split(" ") + ["", ""])[:2]
                if "100-continue" in fields.get("expect", "").lower():
                    client.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
                    head = _without_expect(head)
                body = _read_body(incoming, fields, to_close=False)
                fault = self._take(method, path)
                if fault.mode == "drop":
                    client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    return
                if fault.mode in ("slowdown", "denied"):
                    status, body = ((b"503 Slow Down", SLOWDOWN_BODY) if fault.mode == "slowdown"
                                    else (b"403 Forbidden", DENIED_BODY))
                    client.sendall(
                        b"HTTP/1.1 " + status + b"\r\nContent-Type: application/xml\r\n"
                        + f"Content-Length: {len(body)}\r\n\r\n".encode()
                        + body
                    )
                    continue
                if fault.mode == "delay" and self._stop.wait(fault.delay_s):
                    return
                if fault.mode == "dark" and not self._hold(fault, client):
                    return
                if upstream is not None and select.select([upstream], [], [], 0)[0]:
                    self._forget(upstream)  # the server closed its idle keep-alive connection: open a new one
                    upstream = None
                if upstream is None:
                    upstream = self._track(socket.create_connection(self.upstream, timeout=_IO_TIMEOUT))
                upstream.sendall(head + body)
                outgoing = _Stream(upstream, self._stop)
                response = outgoing.read_head()
                status, rfields = _headers(response)
                while status.split(" ")[1:2] == ["100"]:  # an interim answer: the real one follows
                    response = outgoing.read_head()
                    status, rfields = _headers(response)
                no_body = method == "HEAD" or status.split(" ")[1:2] in (["204"], ["304"])
                closing = rfields.get("connection", "").lower() == "close" or (
                    "content-length" not in rfields and "chunked" not in rfields.get("transfer-encoding", "").lower()
                )
                rbody = b"" if no_body else _read_body(outgoing, rfields, to_close=closing)
                if fault.mode == "cut":
                    if rbody:
                        client.sendall(response + rbody[: max(0, min(fault.cut_after, len(rbody) // 2))])
                    else:  # nothing to cut short: cut the head instead
                        client.sendall(response[: len(response) // 2])
                    return
                client.sendall(response + rbody)
                if closing:
                    return
        except (_Closed, OSError, ValueError, IndexError):
            return
        finally:
            self._forget(upstream)
            self._forget(client)
