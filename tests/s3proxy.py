"""A fault-injecting reverse proxy in front of MinIO, for the S3 fault tests.

toxiproxy is not on the module proxy here, and the faults we need are HTTP-aware (an S3
SlowDown body, a reset in the middle of one response body, a corrupted GET), so this is
a small HTTP/1.1 proxy of our own on 127.0.0.1.  Clients talk to it with path-style
addressing; requests go to MinIO byte for byte, the client's Host header included, so
SigV4 signatures still verify (only ``Expect: 100-continue``, which SigV4 does not sign,
is answered by the proxy itself).  Rules pick requests by method, S3 operation, key
pattern, query, "the Nth match", "every Nth match" or a probability, and inject:

  status    an error status with S3's XML error body (500 InternalError, 503 ...)
  slowdown  503 SlowDown, as S3 throttles
  reset     a TCP reset: ``phase="request"`` after half the request body, before MinIO
            sees it; ``"response"`` after the head and half the response body; ``"lost"``
            after MinIO handled the request, before any response byte is relayed
  delay     latency before the request is forwarded (``seconds``)
  corrupt   one byte of a response body flipped (GET)
  rewrite   a regex substitution in the response head and body (``sub=(pattern, repl)``)

Every request is recorded (method, path, query, operation, Range and If-Match headers,
all its headers, status, injected fault).
"""

from __future__ import annotations

import contextlib
import random
import re
import socket
import struct
import threading
import time
from collections.abc import Collection
from dataclasses import dataclass, field
from urllib.parse import unquote, urlsplit

__all__ = ["Recorded", "Rule", "S3Proxy", "operation"]

WRITE_METHODS = frozenset({"PUT", "POST", "DELETE"})
_ERRORS = {
    500: ("InternalError", "We encountered an internal error. Please try again."),
    502: ("BadGateway", "Bad gateway."),
    503: ("ServiceUnavailable", "Please reduce your request rate."),
    504: ("GatewayTimeout", "Gateway timeout."),
}
_REASONS = {500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable",
            504: "Gateway Timeout"}  # fmt: skip


def operation(method: str, path: str, query: str) -> str:
    """The S3 API operation of a path-style request (enough of them for the tests)."""
    params = {p.split("=", 1)[0] for p in query.split("&") if p}
    object_level = path.strip("/").count("/") >= 1
    if method == "POST":
        if "uploads" in params:
            return "CreateMultipartUpload"
        if "uploadId" in params:
            return "CompleteMultipartUpload"
        return "DeleteObjects" if "delete" in params else "POST"
    if method == "PUT":
        if "partNumber" in params:
            return "UploadPart"
        return "PutObject" if object_level else "PutBucket"
    if method == "DELETE":
        if "uploadId" in params:
            return "AbortMultipartUpload"
        return "DeleteObject" if object_level else "DeleteBucket"
    if method == "GET":
        if not object_level:
            return "ListObjectsV2" if "list-type" in params else "ListBucket"
        return "ListParts" if "uploadId" in params else "GetObject"
    if method == "HEAD":
        return "HeadObject" if object_level else "HeadBucket"
    return method


@dataclass(frozen=True)
class Recorded:
    """One request as the proxy saw it."""

    method: str
    path: str  # unquoted, e.g. /kube-migrate/t-1/backups/b1/b1.tar.gz
    query: str  # raw
    operation: str
    range: str  # the Range header, "" if none
    if_match: str  # the If-Match header, "" if none
    status: int  # relayed to the client; 0 when the connection was reset
    fault: str  # "" or the action injected
    headers: tuple[tuple[str, str], ...] = ()  # the request's headers, as sent

    def header(self, name: str) -> str:
        """The request header `name` (any case), "" if it was not sent."""
        return next((v for k, v in self.headers if k.lower() == name.lower()), "")

    @property
    def is_write(self) -> bool:
        return self.method in WRITE_METHODS


@dataclass
class Rule:
    """When a request matches every given filter, the rule may fire on it.

    Of the matching requests, the first ``after`` pass; then it fires on the ``nth``
    ones (1-based, counted after ``after``), or every ``every``-th one starting with the
    first, or with ``probability``; at most ``limit`` times.
    """

    action: str  # status | slowdown | reset | delay | corrupt | rewrite
    method: str | None = None
    op: str | None = None  # an operation() name
    key: str | None = None  # regex searched in the unquoted path
    query: str | None = None  # regex searched in the raw query
    probability: float = 1.0
    nth: Collection[int] | None = None
    every: int = 0
    after: int = 0
    limit: int | None = None
    status: int = 503
    phase: str = "request"  # reset: request | response | lost
    seconds: float = 0.0  # delay
    sub: tuple[bytes, bytes] = (b"", b"")  # rewrite: (regex, replacement)
    matched: int = field(default=0, init=False)
    fired: int = field(default=0, init=False)

    def matches(self, method: str, path: str, query: str) -> bool:
        return (
            (self.method is None or self.method == method)
            and (self.op is None or self.op == operation(method, path, query))
            and (self.key is None or re.search(self.key, path) is not None)
            and (self.query is None or re.search(self.query, query) is not None)
        )

    def decide(self, rng: random.Random) -> bool:
        """Count one matching request; whether the rule fires on it."""
        self.matched += 1
        n = self.matched - self.after
        if n <= 0 or (self.limit is not None and self.fired >= self.limit):
            return False
        if self.nth is not None:
            fire = n in self.nth
        elif self.every:
            fire = (n - 1) % self.every == 0
        else:
            fire = rng.random() < self.probability
        self.fired += fire
        return fire


class _Closed(Exception):
    """The peer closed the connection."""


class _Conn:
    """A socket with a read buffer: HTTP heads, fixed-length and chunked bodies."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buf = b""

    def _fill(self) -> None:
        data = self.sock.recv(1 << 16)
        if not data:
            raise _Closed
        self.buf += data

    def head(self) -> bytes:
        while b"\r\n\r\n" not in self.buf:
            self._fill()
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        return head + b"\r\n\r\n"

    def exactly(self, n: int) -> bytes:
        while len(self.buf) < n:
            self._fill()
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def line(self) -> bytes:
        while b"\r\n" not in self.buf:
            self._fill()
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line + b"\r\n"

    def chunked(self) -> bytes:
        """A chunked body, raw (chunk framing and trailers included)."""
        out = b""
        while True:
            size_line = self.line()
            out += size_line
            size = int(size_line.split(b";")[0], 16)
            if size == 0:
                while (trailer := self.line()) != b"\r\n":
                    out += trailer
                return out + b"\r\n"
            out += self.exactly(size + 2)

    def rest(self) -> bytes:
        try:
            while True:
                self._fill()
        except (_Closed, OSError):
            pass
        data, self.buf = self.buf, b""
        return data


def _headers(head: bytes) -> tuple[str, list[tuple[str, str]]]:
    lines = head.decode("latin-1").split("\r\n")
    pairs = []
    for line in lines[1:]:
        if ":" in line:
            name, value = line.split(":", 1)
            pairs.append((name.strip(), value.strip()))
    return lines[0], pairs


def _get(pairs: list[tuple[str, str]], name: str) -> str:
    for key, value in pairs:
        if key.lower() == name:
            return value
    return ""


def _body(conn: _Conn, pairs: list[tuple[str, str]]) -> bytes:
    if "chunked" in _get(pairs, "transfer-encoding").lower():
        return conn.chunked()
    return conn.exactly(int(_get(pairs, "content-length") or 0))


def _reset(sock: socket.socket) -> None:
    """Close with a TCP RST (SO_LINGER 0) instead of a FIN."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    finally:
        sock.close()


def _error_response(status: int, code: str, message: str, path: str, head_only: bool) -> bytes:
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>{code}</Code><Message>{message}</Message>"
        f"<Resource>{path}</Resource><RequestId>s3proxy-{time.monotonic_ns()}</RequestId>"
        "</Error>"
    ).encode()
    reason = _REASONS.get(status, "Error")
    head = (
        f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/xml\r\n"
        f"Content-Length: {0 if head_only else len(body)}\r\nx-amz-request-id: s3proxy\r\n\r\n"
    ).encode()
    return head if head_only else head + body


class S3Proxy:
    """``with S3Proxy(upstream) as proxy:`` point clients at ``proxy.url``."""

    def __init__(self, upstream: str, seed: int = 0) -> None:
        parts = urlsplit(upstream)
        if parts.hostname not in ("127.0.0.1", "localhost", "::1"):
            raise ValueError(f"the proxy only forwards to this machine, not {upstream}")
        self.upstream = (parts.hostname, parts.port or 80)
        self.rules: list[Rule] = []
        self.log: list[Recorded] = []
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._open: set[socket.socket] = set()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._stopped = threading.Event()

    # -- control --------------------------------------------------------------------

    def start(self) -> S3Proxy:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopped.set()  # also ends injected delays at once
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)  # wakes accept()
        self._listener.close()
        with self._lock:
            conns = list(self._open)
        for sock in conns:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        self._thread.join(5)

    def __enter__(self) -> S3Proxy:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    def add(self, rule: Rule) -> Rule:
        with self._lock:
            self.rules.append(rule)
        return rule

    def clear(self) -> None:
        """Drop every rule and the request log."""
        with self._lock:
            self.rules.clear()
            self.log.clear()

    def requests(self, op: str | None = None) -> list[Recorded]:
        with self._lock:
            return [r for r in self.log if op is None or r.operation == op]

    def writes(self) -> list[Recorded]:
        return [r for r in self.requests() if r.is_write]

    def faults(self) -> list[Recorded]:
        return [r for r in self.requests() if r.fault]

    # -- serving --------------------------------------------------------------------

    def _accept(self) -> None:
        while not self._stopped.is_set():
            try:
                sock, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                self._open.add(sock)
            threading.Thread(target=self._serve, args=(sock,), daemon=True).start()

    def _serve(self, sock: socket.socket) -> None:
        client = _Conn(sock)
        upstream: _Conn | None = None
        try:
            while True:
                upstream = self._one(client, upstream)
        except (_Closed, OSError):
            pass
        finally:
            with self._lock:
                self._open.discard(sock)
            sock.close()
            if upstream is not None:
                upstream.sock.close()

    def _choose(self, method: str, path: str, query: str) -> tuple[float, Rule | None]:
        delay, chosen = 0.0, None
        with self._lock:
            for rule in self.rules:
                if not rule.matches(method, path, query):
                    continue
                if rule.action == "delay":
                    if rule.decide(self._rng):
                        delay += rule.seconds
                elif chosen is None and rule.decide(self._rng):
                    chosen = rule
        return delay, chosen

    def _record(self, req: _Request, status: int, fault: str) -> None:
        with self._lock:
            self.log.append(
                Recorded(
                    req.method,
                    req.path,
                    req.query,
                    req.op,
                    req.range,
                    req.if_match,
                    status,
                    fault,
                    tuple(req.pairs),
                )
            )

    def _forward(self, upstream: _Conn | None, request: bytes) -> tuple[_Conn, bytes]:
        """Send ``request`` upstream; the connection and the response head.  A kept-alive
        connection that MinIO closed meanwhile is replaced once (that is no fault)."""
        if upstream is not None:
            try:
                upstream.sock.sendall(request)
                return upstream, upstream.head()
            except (_Closed, OSError):
                upstream.sock.close()
        fresh = _Conn(socket.create_connection(self.upstream, timeout=300))
        fresh.sock.sendall(request)
        return fresh, fresh.head()

    def _fetch(self, upstream: _Conn | None, req: _Request) -> tuple[_Conn | None, _Response]:
        """MinIO's whole response to ``req``, and the upstream connection to use next."""
        conn, head = self._forward(upstream, req.head + req.body)
        status_line, pairs = _headers(head)
        status = int(status_line.split(" ", 2)[1])
        if req.method == "HEAD" or status in (204, 304):
            body = b""
        elif _get(pairs, "content-length") or "chunked" in _get(pairs, "transfer-encoding"):
            body = _body(conn, pairs)
        else:
            body = conn.rest()
        if "close" in _get(pairs, "connection").lower():
            conn.sock.close()
            return None, _Response(head, body, status)
        return conn, _Response(head, body, status)

    def _one(self, client: _Conn, upstream: _Conn | None) -> _Conn | None:
        """Relay one request and its response; the upstream connection to use next."""
        req = _read_request(client)
        delay, rule = self._choose(req.method, req.path, req.query)
        action, phase = (rule.action, rule.phase) if rule else ("", "")
        if action == "reset" and phase == "request":
            client.exactly(int(_get(req.pairs, "content-length") or 0) // 2)
            self._record(req, 0, "reset-request")
            _reset(client.sock)
            raise _Closed
        req.body = _body(client, req.pairs)
        if delay and self._stopped.wait(delay):
            raise _Closed
        if rule is not None and action in ("status", "slowdown"):
            status = 503 if action == "slowdown" else rule.status
            code, message = ("SlowDown", "Please reduce your request rate.")
            if action == "status":
                code, message = _ERRORS.get(status, ("InternalError", "Injected error."))
            head_only = req.method == "HEAD"
            self._record(req, status, action)  # before the client can act on the reply
            client.sock.sendall(_error_response(status, code, message, req.path, head_only))
            return upstream
        upstream, resp = self._fetch(upstream, req)
        if action == "reset":
            self._record(req, 0, f"reset-{phase}")
            if phase == "response":
                client.sock.sendall(resp.head + resp.body[: len(resp.body) // 2])
                # let the client read that much first: a reset discards unread data
                self._stopped.wait(0.2)
            _reset(client.sock)
            if upstream is not None:
                upstream.sock.close()
            raise _Closed
        fault = resp.mangle(rule) if rule is not None else ""
        self._record(req, resp.status, fault or ("delay" if delay else ""))
        client.sock.sendall(resp.head + resp.body)
        if "close" in _get(req.pairs, "connection").lower():
            raise _Closed
        return upstream


@dataclass
class _Request:
    method: str
    path: str
    query: str
    op: str
    range: str
    if_match: str
    pairs: list[tuple[str, str]]
    head: bytes  # as forwarded
    body: bytes = b""


def _read_request(client: _Conn) -> _Request:
    """The next request's head (its body is left to read); ``Expect: 100-continue`` is
    answered here and not forwarded (SigV4 does not sign it)."""
    head = client.head()
    request_line, pairs = _headers(head)
    method, target, _ = request_line.split(" ", 2)
    raw_path, _, query = target.partition("?")
    path = unquote(raw_path)
    if _get(pairs, "expect").lower() == "100-continue":
        client.sock.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
        kept = [p for p in pairs if p[0].lower() != "expect"]
        text = request_line + "\r\n" + "".join(f"{k}: {v}\r\n" for k, v in kept) + "\r\n"
        head = text.encode("latin-1")
    op = operation(method, path, query)
    return _Request(
        method, path, query, op, _get(pairs, "range"), _get(pairs, "if-match"), pairs, head
    )


@dataclass
class _Response:
    head: bytes
    body: bytes
    status: int

    def mangle(self, rule: Rule) -> str:
        """Apply a corrupt/rewrite rule; the fault recorded ("" if none)."""
        if rule.action == "corrupt" and self.body:
            at = len(self.body) // 2
            self.body = self.body[:at] + bytes([self.body[at] ^ 0x01]) + self.body[at + 1 :]
            return "corrupt"
        if rule.action == "rewrite":
            pattern, repl = rule.sub
            self.head = re.sub(pattern, repl, self.head)
            length = len(self.body)
            self.body = re.sub(pattern, repl, self.body)
            if len(self.body) != length:
                self.head = self.head.replace(
                    b"Content-Length: %d\r\n" % length, b"Content-Length: %d\r\n" % len(self.body)
                )
            return "rewrite"
        return ""
