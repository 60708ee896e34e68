"""Kept-alive connections to one API server on the standard library's `http.client`.

A backup of 100 namespaces sends ~3,000 LISTs, nearly all of them small; for those the
client's own CPU per request decides the pace on a busy machine.  urllib3's pool (the
kubernetes package's) spends ~0.38 ms of CPU a small LIST where `http.client` alone
spends ~0.26 ms (bench: a raw client).  So a server reached directly gets these
connections; a configuration they do not cover (an HTTP or SOCKS proxy, a TLS server
name or an `assert_hostname` other than the host's) keeps urllib3's pool, which
transport.py then uses.  TLS is the kubeconfig's: its CA (file or data), client
certificate and key, or no verification when the kubeconfig says so.
"""

from __future__ import annotations

import http.client
import logging
import select
import ssl
from collections import deque
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

log = logging.getLogger(__name__)

# A request on a kept-alive connection that the server closed while it sat idle fails
# before any answer: sent again once, at once, on a new connection.
STALE = (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError)


class Unreachable(Exception):
    """No HTTP answer (refused, timed out, TLS failed, dropped); the message says why."""


@dataclass(frozen=True, slots=True)
class Response:
    status: int
    reason: str
    headers: Any  # .get(name): http.client's HTTPMessage or urllib3's HTTPHeaderDict
    data: bytes


def direct_ok(cfg: Any) -> bool:
    """Whether `cfg` (a kubernetes Configuration) is one these connections serve as
    urllib3 would: no proxy, no TLS server name or hostname override, no socket options."""
    scheme = urlsplit(str(cfg.host)).scheme
    return (
        scheme in ("http", "https")
        and not cfg.proxy
        and not getattr(cfg, "tls_server_name", None)
        and cfg.assert_hostname in (None, True, False)
        and getattr(cfg, "socket_options", None) is None
    )


def tls_context(cfg: Any) -> ssl.SSLContext:
    """The TLS settings urllib3 makes of a kubernetes Configuration (rest.py's pool)."""
    ctx = ssl.create_default_context()
    if not cfg.verify_ssl:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    else:
        ca_file, ca_data = cfg.ssl_ca_cert, getattr(cfg, "ca_cert_data", None)
        if ca_file or ca_data:
            ctx.load_verify_locations(cafile=ca_file, cadata=ca_data)
        if cfg.assert_hostname is False:
            ctx.check_hostname = False
    if cfg.cert_file:
        ctx.load_cert_chain(cfg.cert_file, cfg.key_file)
    return ctx


class Connections:
    """Idle connections kept for reuse, shared by every thread (deque: atomic append and
    pop); as many are opened as threads ask for, `keep` are kept."""

    def __init__(self, cfg: Any, keep: int, connect_timeout: float, read_timeout: float) -> None:
        url = urlsplit(str(cfg.host))
        self._https = url.scheme == "https"
        self._host = url.hostname or ""
        self._port = url.port or (443 if self._https else 80)
        self._ssl = tls_context(cfg) if self._https else None
        self._keep = max(1, keep)
        self._connect_timeout = connect_timeout
        self._read_timeout = read_timeout
        self._idle: deque[http.client.HTTPConnection] = deque()

    def _new(self) -> http.client.HTTPConnection:
        log.debug("opening a connection to %s:%d", self._host, self._port)
        conn: http.client.HTTPConnection
        if self._ssl is not None:
            conn = http.client.HTTPSConnection(
                self._host, self._port, timeout=self._connect_timeout, context=self._ssl
            )
        else:
            conn = http.client.HTTPConnection(self._host, self._port, timeout=self._connect_timeout)
        conn.connect()
        if conn.sock is not None:
            conn.sock.settimeout(self._read_timeout)
        return conn

    def _idle_conn(self) -> http.client.HTTPConnection | None:
        """The most recently used idle connection the server has not closed."""
        while True:
            try:
                conn = self._idle.pop()
            except IndexError:
                return None
            sock = conn.sock
            # readable while idle: closed by the server (or stray bytes): not reusable
            if sock is not None and not select.select([sock], [], [], 0)[0]:
                return conn
            conn.close()

    def request(
        self, method: str, url: str, body: bytes | None, headers: dict[str, str]
    ) -> Response:
        """Send one request and read its whole answer (Unreachable: no answer)."""
        try:
            return self._request(method, url, body, headers)
        except (OSError, http.client.HTTPException) as exc:
            reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
            raise Unreachable(reason) from exc

    def _request(
        self, method: str, url: str, body: bytes | None, headers: dict[str, str]
    ) -> Response:
        conn = self._idle_conn()
        reused = conn is not None
        while True:
            if conn is None:
                conn = self._new()
            try:
                conn.request(method, url, body=body, headers=headers)
                resp = conn.getresponse()
                data = resp.read()
            except STALE:
                conn.close()
                if not reused:
                    raise
                conn, reused = None, False  # the server closed it while idle: a new one
                continue
            except BaseException:
                conn.close()
                raise
            if resp.will_close or len(self._idle) >= self._keep:
                conn.close()
            else:
                self._idle.append(conn)
            return Response(resp.status, resp.reason, resp.headers, data)

    def close(self) -> None:
        while self._idle:
            self._idle.pop().close()


class ViaUrllib3:
    """The kubernetes package's urllib3 pool (proxies, TLS server names): the same
    interface as Connections.  urllib3 is imported here, not at start-up."""

    def __init__(
        self, manager: Any, host: str, connect_timeout: float, read_timeout: float
    ) -> None:
        import urllib3

        self._manager, self._host = manager, host
        self._pool = manager.connection_from_url(host)
        self._timeout = urllib3.Timeout(connect=connect_timeout, read=read_timeout)

    def request(
        self, method: str, url: str, body: bytes | None, headers: dict[str, str]
    ) -> Response:
        import urllib3

        try:
            r = self._pool.urlopen(
                method,
                url,
                body=body,
                headers=headers,
                timeout=self._timeout,
                retries=False,
                redirect=False,
                assert_same_host=False,
            )
        except urllib3.exceptions.HTTPError as exc:
            reason = str(getattr(exc, "reason", None) or exc).split("connection: ")[-1]
            raise Unreachable(reason) from exc
        return Response(r.status, r.reason or "", r.headers, r.data)

    def close(self) -> None:
        self._manager.clear()
        self._pool = self._manager.connection_from_url(self._host)  # usable again
