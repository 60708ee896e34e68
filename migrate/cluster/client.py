"""The Kubernetes API verbs kube-migrate uses, on plain JSON dicts.

`Cluster` adds list (paginated, past compaction), get, create, replace, patch, delete,
discovery and the server's version to the transport of transport.py, which sends every
request (limiter, retries, error mapping).  Objects stay plain dicts end to end: the
typed models of the kubernetes package are slow to build and lose fields they do not
know (custom resources).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any
from urllib.parse import quote

from migrate.cluster.discovery import APIResource, Discovery, discover
from migrate.cluster.statuses import ServerVersion
from migrate.cluster.transport import Connection
from migrate.errors import ClusterError, ClusterUnreachable, NotFound

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
PAGE_THREADS = 8  # long lists read ahead at once (one page ahead each)
Page = list[dict[str, Any]]  # one LIST page's objects


class Cluster(Connection):
    """A client for one cluster.  Thread-safe: share one instance across workers."""

    dry_run = False  # True: every create/replace/patch/delete sent with dryRun=All
    _discovery: Discovery | None = None
    _page_pool: ThreadPoolExecutor | None = None

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
        """Every object of a resource, as plain dicts with apiVersion and kind filled in
        (list items lack them); `snapshot`: see list_pages."""
        for page in self.list_pages(
            res,
            namespace,
            label_selector=label_selector,
            field_selector=field_selector,
            limit=limit,
            snapshot=snapshot,
        ):
            yield from page

    def list_pages(
        self,
        res: APIResource,
        namespace: str | None = None,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
        limit: int = 500,
        snapshot: dict[str, Any] | None = None,
    ) -> Iterator[Page]:
        """Every object of a resource, page by page (limit/continue), as plain dicts
        with apiVersion and kind filled in (list items lack them).  `snapshot` receives
        the first page's list metadata (resourceVersion: the snapshot's revision).  The
        next page is asked for before this one is yielded: a reader's work on it (a
        backup's serialization) overlaps the server's on the next."""
        query: dict[str, Any] = {
            "limit": limit,
            "labelSelector": label_selector,
            "fieldSelector": field_selector,
        }
        path = res.path(namespace)
        api_version, kind = res.api_version, res.kind
        ahead: Future[Any] | None = None  # the next page, asked for while this one is used
        while True:
            try:
                page = ahead.result() if ahead else self.request("GET", path, query=query)
            except ClusterError as exc:
                # 410 Gone: the continue token expired (etcd compaction).  The server
                # offers an inconsistent continue token; take it rather than restart.
                meta = exc.details.get("metadata")
                token = meta.get("continue") if isinstance(meta, dict) else None
                if exc.status == 410 and token:
                    log.warning("%s: list of %s restarted past compaction", self.name, res)
                    query["continue"], ahead = token, None
                    continue
                raise
            if snapshot is not None and not snapshot:
                snapshot.update(page.get("metadata") or {"resourceVersion": ""})
            token = (page.get("metadata") or {}).get("continue")
            ahead = None
            if token:  # a long list: the server makes the next page while we use this one
                query["continue"] = token
                ahead = self._pages().submit(self.request, "GET", path, query=dict(query))
            items = page.get("items") or []
            for item in items:
                item.setdefault("apiVersion", api_version)
                item.setdefault("kind", kind)
            if items:
                yield items
            if not token:
                return

    def close(self) -> None:
        with self._lock:
            pool, self._page_pool = self._page_pool, None
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)
        super().close()

    def _pages(self) -> ThreadPoolExecutor:
        """Threads that fetch the next page of long lists ahead of their readers."""
        with self._lock:
            if self._page_pool is None:
                self._page_pool = ThreadPoolExecutor(PAGE_THREADS, "km-pages")
            return self._page_pool

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

    def pod_log(
        self, namespace: str, pod: str, container: str = "", tail_lines: int | None = None
    ) -> bytes:
        """A pod's container log as bytes (the kubelet's, through the API server); its last
        `tail_lines` lines only when given."""
        path = f"/api/v1/namespaces/{quote(namespace)}/pods/{quote(pod)}/log"
        tail = None if tail_lines is None else str(tail_lines)
        query = {"container": container or None, "tailLines": tail}
        out: bytes = self.request("GET", path, query=query, accept="*/*", raw=True)
        return out

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
        grace_seconds: int | None = None,
    ) -> None:
        body: dict[str, Any] = {
            "kind": "DeleteOptions",
            "apiVersion": "v1",
            "propagationPolicy": propagation,
        }
        if grace_seconds is not None:
            body["gracePeriodSeconds"] = grace_seconds
        query = {"dryRun": self._dry(False)}
        try:
            self.request("DELETE", res.path(namespace, quote(name)), query=query, body=body)
        except NotFound:
            return
