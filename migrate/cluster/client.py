"""One connection to one Kubernetes API server, speaking plain JSON dicts.

Every request of kube-migrate goes through `Cluster.request`: it passes the client-side
limiter (ratelimit.py: adaptive to the server's 429s by default, or a fixed --qps),
sends the request on the kubernetes package's TLS pool,
maps HTTP failures to the project's error classes (the table below), and retries the
transient ones (429, 5xx, dropped connections) with tenacity, here and nowhere else.
Objects stay plain dicts end to end: the typed models of the kubernetes package are
slow to build and lose fields they do not know (custom resources).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote, urlencode

import orjson
import urllib3
from tenacity import RetryCallState, Retrying, retry_if_exception

from migrate import __version__
from migrate.cluster.config import ClusterRef, auth_headers, load_configuration, new_api_client
from migrate.cluster.discovery import APIResource, Discovery, discover
from migrate.cluster.ratelimit import limiter_for
from migrate.cluster.statuses import (
    ServerVersion,
    Transient,
    error_for,
    retry_after,
    retry_wait,
)
from migrate.errors import (
    ClusterError,
    ClusterUnreachable,
    NotFound,
)

log = logging.getLogger(__name__)

PATCH_TYPES = {
    "merge": "application/merge-patch+json",
    "json": "application/json-patch+json",
    "strategic": "application/strategic-merge-patch+json",
    "apply": "application/apply-patch+yaml",
}
FIELD_MANAGER = "kube-migrate"
# Ask for objects as metadata only (served for every resource, CRDs included, since 1.15)
METADATA_LIST = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1"


class Cluster:
    """A client for one cluster.  Thread-safe: share one instance across workers."""

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
        self.name = name or self.context
        # Until the server has answered once, a dead address fails fast (connect_timeout);
        # afterwards outages (an API server restart) are retried for retry_timeout.
        self.retry_timeout = retry_timeout
        self.connect_timeout = connect_timeout
        self.status_retry_timeout = status_retry_timeout
        self._reached = False
        self._timeout = urllib3.Timeout(connect=5.0, read=request_timeout)
        self.dry_run = False  # True: every create/replace/patch/delete sent with dryRun=All
        # qps None: adapts to the server's 429s; 0: no limit; N: N per second
        self.limiter = limiter_for(qps, burst, self.name)
        self._stream_pool: Any = None  # watches: long-lived, kept off the request pool
        self._discovery: Discovery | None = None
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
    ) -> Any:
        """Send one request (retrying transient failures) and return the decoded JSON."""
        retrying = Retrying(
            retry=retry_if_exception(lambda e: isinstance(e, Transient)),
            wait=retry_wait,
            stop=self._stop,
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
            return retrying(self._send, method, path, query, body, content_type, accept)
        except Transient as exc:
            raise exc.final from None

    def _stop(self, state: RetryCallState) -> bool:
        """Connection failures: retry_timeout once the server has answered (it may be
        restarting), connect_timeout before.  HTTP 5xx: status_retry_timeout; 429 (the
        server is up and asks us to slow down; the limiter backs off): retry_timeout."""
        exc = state.outcome.exception() if state.outcome else None
        elapsed = state.seconds_since_start or 0.0
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
    ) -> Any:
        url = self.host + path
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
            resp = self._pool.request(
                method, url, body=data, headers=headers, timeout=self._timeout, retries=False
            )
        except urllib3.exceptions.HTTPError as exc:
            reason = str(getattr(exc, "reason", None) or exc).split("connection: ")[-1]
            final = ClusterUnreachable(f"{self.name}: cannot reach {self.host}: {reason}")
            raise Transient(final, None) from exc
        finally:
            throttled = resp is not None and resp.status == 429
            self.limiter.release(ticket, throttled, retry_after(resp) if throttled else None)
        self._reached = True
        if resp.status >= 400:
            raise error_for(f"{self.name}: {method} {path}", resp)
        return orjson.loads(resp.data) if resp.data else {}

    def get_path(self, path: str, *, accept: str = "application/json") -> Any:
        return self.request("GET", path, accept=accept)

    # -- cluster facts ---------------------------------------------------------------
    def version(self) -> ServerVersion:
        return ServerVersion.parse(self.get_path("/version"))

    def discovery(self, refresh: bool = False) -> Discovery:
        """Served resources; cached until refresh=True (after creating CRDs, say)."""
        with self._lock:
            if self._discovery is None or refresh:
                self._discovery = discover(self.get_path)
            return self._discovery

    # -- objects ---------------------------------------------------------------------
    def list(
        self,
        res: APIResource,
        namespace: str | None = None,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
        limit: int = 500,
        snapshot: dict[str, Any] | None = None,
    ) -> Iterator[dict[str, Any]]:
        """Every object of a resource, page by page (limit/continue), as plain dicts
        with apiVersion and kind filled in (list items lack them).  `snapshot` receives
        the first page's list metadata (resourceVersion: the snapshot's revision)."""
        query: dict[str, Any] = {
            "limit": limit,
            "labelSelector": label_selector,
            "fieldSelector": field_selector,
        }
        while True:
            try:
                page = self.request("GET", res.path(namespace), query=query)
            except ClusterError as exc:
                # 410 Gone: the continue token expired (etcd compaction).  The server
                # offers an inconsistent continue token; take it rather than restart.
                meta = exc.details.get("metadata")
                token = meta.get("continue") if isinstance(meta, dict) else None
                if exc.status == 410 and token:
                    log.warning("%s: list of %s restarted past compaction", self.name, res)
                    query["continue"] = token
                    continue
                raise
            if snapshot is not None and not snapshot:
                snapshot.update(page.get("metadata") or {"resourceVersion": ""})
            for item in page.get("items") or []:
                item.setdefault("apiVersion", res.api_version)
                item.setdefault("kind", res.kind)
                yield item
            token = (page.get("metadata") or {}).get("continue")
            if not token:
                return
            query["continue"] = token

    def list_metadata(
        self,
        res: APIResource,
        namespace: str | None = None,
        *,
        label_selector: str | None = None,
        limit: int = 500,
    ) -> Iterator[dict[str, Any]]:
        """Only the metadata of every object (PartialObjectMetadataList): a cheap re-list
        to see which objects changed since a full list."""
        query: dict[str, Any] = {"limit": limit, "labelSelector": label_selector}
        while True:
            page = self.request("GET", res.path(namespace), query=query, accept=METADATA_LIST)
            for item in page.get("items") or []:
                yield item.get("metadata") or {}
            token = (page.get("metadata") or {}).get("continue")
            if not token:
                return
            query["continue"] = token

    def current_revision(self) -> str | None:
        """The store's current resourceVersion (a one-item LIST is a quorum read)."""
        try:
            page = self.request("GET", "/api/v1/namespaces", query={"limit": 1})
        except ClusterUnreachable:
            raise
        except ClusterError:  # may not list namespaces: unknown
            return None
        rv = (page.get("metadata") or {}).get("resourceVersion")
        return str(rv) if rv else None

    def count(self, res: APIResource, namespace: str | None = None) -> int:
        """How many objects a resource has, from one small page (remainingItemCount)."""
        page = self.request("GET", res.path(namespace), query={"limit": 1})
        remaining = (page.get("metadata") or {}).get("remainingItemCount") or 0
        return len(page.get("items") or []) + int(remaining)

    def get(self, res: APIResource, name: str, namespace: str | None = None) -> dict[str, Any]:
        obj: dict[str, Any] = self.request("GET", res.path(namespace, quote(name)))
        return obj

    def create(
        self,
        res: APIResource,
        obj: dict[str, Any],
        namespace: str | None = None,
        *,
        dry_run: bool = False,
    ) -> dict[str, Any]:
        query = {"fieldManager": FIELD_MANAGER, "dryRun": self._dry(dry_run)}
        created: dict[str, Any] = self.request("POST", res.path(namespace), query=query, body=obj)
        return created

    def _dry(self, dry_run: bool) -> str | None:
        """The dryRun parameter of a write: All (admission and validation run, nothing is
        persisted) when asked for, or when the whole client is a dry run."""
        return "All" if dry_run or self.dry_run else None

    def replace(
        self,
        res: APIResource,
        obj: dict[str, Any],
        namespace: str | None = None,
        *,
        dry_run: bool = False,
    ) -> dict[str, Any]:
        name = quote(obj["metadata"]["name"])
        query = {"fieldManager": FIELD_MANAGER, "dryRun": self._dry(dry_run)}
        out: dict[str, Any] = self.request("PUT", res.path(namespace, name), query=query, body=obj)
        return out

    def patch(
        self,
        res: APIResource,
        name: str,
        patch: Any,
        namespace: str | None = None,
        *,
        patch_type: str = "merge",
        sub: str = "",
        force: bool = False,
        dry_run: bool = False,
    ) -> dict[str, Any]:
        query = {
            "fieldManager": FIELD_MANAGER,
            "force": "true" if force else None,
            "dryRun": self._dry(dry_run),
        }
        out: dict[str, Any] = self.request(
            "PATCH",
            res.path(namespace, quote(name), sub),
            query=query,
            body=patch,
            content_type=PATCH_TYPES[patch_type],
        )
        return out

    def delete(
        self,
        res: APIResource,
        name: str,
        namespace: str | None = None,
        *,
        propagation: str = "Background",
    ) -> None:
        body = {"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": propagation}
        query = {"dryRun": self._dry(False)}
        try:
            self.request("DELETE", res.path(namespace, quote(name)), query=query, body=body)
        except NotFound:
            return

    def open_stream(self, path: str, query: dict[str, Any], accept: str) -> Any:
        """Start one long-lived GET (a watch) on a pool of its own, unretried; the caller
        reads the urllib3 response and ends it with .shutdown()."""
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
            timeout=urllib3.Timeout(connect=5.0, read=None),
        )

    def close(self) -> None:
        self._pool.clear()
        if self._stream_pool is not None:
            self._stream_pool.clear()
