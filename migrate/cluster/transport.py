"""How every request reaches one Kubernetes API server, as plain JSON dicts.

Every request of kube-migrate goes through `Connection.request`: it passes the client-side
limiter (ratelimit.py: adaptive to the server's 429s by default, or a fixed --qps),
sends the request on the kubernetes package's TLS pool,
maps HTTP failures to the project's error classes (statuses.py), and retries the
transient ones (429, 5xx, dropped connections) with tenacity, here and nowhere else.
Kept apart from client.py, which builds the API verbs (list, get, create, patch...) on
top: this module is the transport they all share, and the only one that sends.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any
from urllib.parse import urlencode, urlsplit

import orjson
from tenacity import RetryCallState, Retrying, retry_if_exception

from migrate import __version__
from migrate.cluster.config import ClusterRef, auth_headers, load_configuration, new_api_client
from migrate.cluster.connections import Connections, Unreachable, ViaUrllib3, direct_ok
from migrate.cluster.ratelimit import limiter_for
from migrate.cluster.statuses import Transient, error_for, retry_after, retry_wait
from migrate.errors import ClusterUnreachable

log = logging.getLogger(__name__)

CONNECT_SECONDS = 5.0  # to open one connection (TLS included)


class Connection:
    """The transport to one cluster.  Thread-safe: share one instance across workers."""

    def __init__(
        self,
        ref: ClusterRef,
        *,
        name: str | None = None,
        qps: float | None = None,
        burst: int = 100,
        pool_size: int = 16,
        retry_timeout: float = 90.0,
        connect_timeout: float = 5.0,
        status_retry_timeout: float = 20.0,
        request_timeout: float = 60.0,
    ) -> None:
        self.ref = ref
        self._cfg, self.context = load_configuration(ref, pool_size)
        self._api = new_api_client(self._cfg)  # owns the TLS pool; keep alive
        self._pool: Any = self._api.rest_client.pool_manager
        self.host = str(self._cfg.host).rstrip("/")
        # Requests go over http.client's connections where they serve (connections.py:
        # a third less CPU a request than urllib3's pool), else the kubernetes package's.
        self._conns: Connections | ViaUrllib3
        if direct_ok(self._cfg):
            self._conns = Connections(self._cfg, pool_size, CONNECT_SECONDS, request_timeout)
        else:
            self._conns = ViaUrllib3(self._pool, self.host, CONNECT_SECONDS, request_timeout)
        self._prefix = urlsplit(self.host).path  # a server URL may carry a path
        self.name = name or self.context
        # Until the server has answered once, a dead address fails fast (connect_timeout);
        # afterwards outages (an API server restart) are retried for retry_timeout.
        self.retry_timeout = retry_timeout
        self.connect_timeout = connect_timeout
        self.status_retry_timeout = status_retry_timeout
        self._reached = False
        # qps None: adapts to the server's 429s; 0: no limit; N: N per second
        self.limiter = limiter_for(qps, burst, self.name)
        self._stream_pool: Any = None  # watches: long-lived, kept off the request pool
        self._lock = threading.Lock()

    # -- transport -------------------------------------------------------------------
    def request(
        self,
        method: str,
        path: str,
        *,
        query: dict[str, Any] | None = None,
        body: Any = None,
        content_type: str = "application/json",
        accept: str = "application/json",
        raw: bool = False,
    ) -> Any:
        """Send one request (retrying transient failures) and return the decoded JSON
        (the body's bytes with raw=True: a pod's log is text).

        The first attempt goes out directly; only a transient failure builds the retry
        loop (tenacity costs ~50 us a request, a sixth of a small LIST's client time)."""
        args = (method, path, query, body, content_type, accept, raw)
        started = time.monotonic()
        try:
            return self._send(*args)
        except Transient as exc:
            first: Transient | None = exc
        offset = time.monotonic() - started  # the first attempt counts toward the stop

        def again(*a: Any) -> Any:
            nonlocal first
            if first is not None:  # replayed once, so tenacity logs it and waits
                failed, first = first, None
                raise failed
            return self._send(*a)

        retrying = Retrying(
            retry=retry_if_exception(lambda e: isinstance(e, Transient)),
            wait=retry_wait,
            stop=lambda state: self._stop(state, offset),
            before_sleep=lambda s: (
                log.info(
                    "%s: %s %s failed (%s); retrying",
                    self.name,
                    method,
                    path,
                    s.outcome.exception(),
                )
                if s.outcome
                else None
            ),
            reraise=True,
        )
        try:
            return retrying(again, *args)
        except Transient as exc:
            raise exc.final from None

    def _stop(self, state: RetryCallState, offset: float = 0.0) -> bool:
        """Connection failures: retry_timeout once the server has answered (it may be
        restarting), connect_timeout before.  HTTP 5xx: status_retry_timeout; 429 (the
        server is up and asks us to slow down; the limiter backs off): retry_timeout."""
        exc = state.outcome.exception() if state.outcome else None
        elapsed = (state.seconds_since_start or 0.0) + offset
        if isinstance(exc, Transient) and exc.status == 429:
            return elapsed >= self.retry_timeout
        if isinstance(exc, Transient) and exc.status is not None:
            return elapsed >= min(self.retry_timeout, self.status_retry_timeout)
        return elapsed >= (self.retry_timeout if self._reached else self.connect_timeout)

    def _send(
        self,
        method: str,
        path: str,
        query: dict[str, Any] | None,
        body: Any,
        content_type: str,
        accept: str,
        raw: bool = False,
    ) -> Any:
        url = self._prefix + path
        if query:
            url += "?" + urlencode({k: v for k, v in query.items() if v is not None})
        headers = {"Accept": accept, "User-Agent": f"kube-migrate/{__version__}"}
        headers.update(auth_headers(self._cfg))
        data = None
        if body is not None:
            headers["Content-Type"] = content_type
            data = body if isinstance(body, bytes) else orjson.dumps(body)
        resp = None
        ticket = self.limiter.acquire()
        try:
            resp = self._conns.request(method, url, data, headers)
        except Unreachable as exc:
            final = ClusterUnreachable(f"{self.name}: cannot reach {self.host}: {exc}")
            raise Transient(final, None) from exc
        finally:
            throttled = resp is not None and resp.status == 429
            self.limiter.release(ticket, throttled, retry_after(resp) if throttled else None)
        self._reached = True
        if resp.status >= 400:
            raise error_for(f"{self.name}: {method} {path}", resp)
        if raw:
            return bytes(resp.data or b"")
        return orjson.loads(resp.data) if resp.data else {}

    def get_path(self, path: str, *, accept: str = "application/json") -> Any:
        return self.request("GET", path, accept=accept)

    def open_stream(self, path: str, query: dict[str, Any], accept: str) -> Any:
        """Start one long-lived GET (a watch) on a pool of its own, unretried; the caller
        reads the urllib3 response and ends it with .shutdown()."""
        import urllib3

        with self._lock:
            if self._stream_pool is None:
                kw = {k: v for k, v in self._pool.connection_pool_kw.items() if k != "maxsize"}
                self._stream_pool = urllib3.PoolManager(maxsize=64, block=False, **kw)
        url = f"{self.host}{path}?{urlencode({k: v for k, v in query.items() if v is not None})}"
        headers = {"Accept": accept, "User-Agent": f"kube-migrate/{__version__}"}
        headers.update(auth_headers(self._cfg))
        return self._stream_pool.request(
            "GET",
            url,
            headers=headers,
            preload_content=False,
            retries=False,
            timeout=urllib3.Timeout(connect=CONNECT_SECONDS, read=None),
        )

    def close(self) -> None:
        self._conns.close()
        self._pool.clear()
        if self._stream_pool is not None:
            self._stream_pool.clear()
