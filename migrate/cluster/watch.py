"""Watch a resource from a revision and record every change (metadata only).

Backup uses it to tell how many objects changed while it ran without listing anything
a second time: one watch per resource type from the revision the backup started at
receives every change made since (each event carries the object's new resourceVersion,
so it can be held against the revision the object was listed at), and costs nothing
while nothing changes.  One thread per watch reads the event stream; `stop()` ends it.

An incremental backup watches with whole objects (`objects=True`): the changed objects
come from the stream instead of a GET each (what changed is told by a LIST: a short
watch gets no reliable "caught up" bookmark from the API server, measured).
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import orjson

from migrate.cluster.discovery import APIResource

if TYPE_CHECKING:
    from migrate.cluster.client import Cluster

log = logging.getLogger(__name__)

# Watch events carry only metadata (served for every resource, CRDs included).
METADATA_WATCH = "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1"
WATCH_SECONDS = 3600  # the server's end of the stream; stop() comes long before


class ChangeWatch:
    """Events after `resource_version` as (namespace, name, type, resourceVersion);
    `error` is set when the watch could not follow (410 Gone: the revision was compacted;
    403: no watch permission) — the caller then re-lists, or says it cannot tell."""

    def __init__(
        self,
        c: Cluster,
        res: APIResource,
        namespace: str | None,
        resource_version: str,
        label_selector: str | None = None,
        accept: Callable[[dict[str, Any]], bool] = lambda _meta: True,
        objects: bool = False,
    ) -> None:
        self.res = res
        self._accept = accept
        self.events: list[tuple[str, str, str, str]] = []  # (namespace, name, type, rv)
        self._objects = objects  # keep each object's last state (whole objects watched)
        self.latest: dict[tuple[str, str], dict[str, Any]] = {}
        self._arrived = threading.Condition()
        self.error: str | None = None
        self._stopping = threading.Event()
        self._resp: Any = None
        self.opened = 0.0  # when the server answered (or the watch failed to start)
        self._open = threading.Event()
        self._lock = threading.Lock()
        query = {
            "watch": "1",
            "resourceVersion": resource_version,
            "labelSelector": label_selector,
            "timeoutSeconds": WATCH_SECONDS,
            "allowWatchBookmarks": "false",
        }
        self._thread = threading.Thread(
            target=self._run, args=(c, res.path(namespace), query), daemon=True
        )
        self._thread.start()

    def _run(self, c: Cluster, path: str, query: dict[str, Any]) -> None:
        try:
            try:
                resp = c.open_stream(
                    path, query, "application/json" if self._objects else METADATA_WATCH
                )
            finally:
                self.opened = time.monotonic()
                self._open.set()
            with self._lock:
                self._resp = resp
                if self._stopping.is_set():
                    resp.close()
                    return
            if resp.status != 200:
                self.error = f"watch {path}: {resp.status} {resp.reason}"
                return
            pending = b""
            for chunk in resp.stream(65536, decode_content=True):
                pending += chunk
                *lines, pending = pending.split(b"\n")
                for line in lines:
                    if line.strip():
                        self._event(orjson.loads(line))
            if not self._stopping.is_set():
                self.error = self.error or f"watch {path} ended early"
        except Exception as exc:  # a broken stream: the caller falls back to a re-list
            if not self._stopping.is_set():
                self.error = f"watch {path}: {exc}"

    def _event(self, event: dict[str, Any]) -> None:
        kind = str(event.get("type", ""))
        obj = event.get("object") or {}
        if kind == "ERROR":  # e.g. 410 Gone: too old a resourceVersion
            self.error = f"watch: {obj.get('code')} {obj.get('message')}"
            return
        if kind not in ("ADDED", "MODIFIED", "DELETED"):
            return
        meta = obj.get("metadata") or {}
        if not self._accept(meta):
            return
        ns, name = str(meta.get("namespace") or ""), str(meta.get("name"))
        if self._objects:
            with self._arrived:
                self.latest[(ns, name)] = obj
                self._arrived.notify_all()
            return
        self.events.append((ns, name, kind, str(meta.get("resourceVersion") or "")))

    def object_at(
        self, namespace: str | None, name: str, rv: str, wait: float
    ) -> dict[str, Any] | None:
        """The watched object at resourceVersion `rv`, waiting up to `wait` seconds for
        it to arrive (objects=True); None when it did not (the caller reads it)."""
        deadline = time.monotonic() + wait
        key = (namespace or "", name)
        with self._arrived:
            while True:
                obj = self.latest.get(key)
                if obj is not None and (obj.get("metadata") or {}).get("resourceVersion") == rv:
                    return obj
                left = deadline - time.monotonic()
                if left <= 0 or self.error:
                    return None
                self._arrived.wait(left)

    def wait_open(self, timeout: float = 5.0) -> float:
        """Wait until the server answered the watch; when that was (monotonic)."""
        self._open.wait(timeout)
        return self.opened or time.monotonic()

    def stop(self, timeout: float = 5.0) -> None:
        self._stopping.set()
        with self._lock:
            resp = self._resp
        if resp is not None:
            with contextlib.suppress(Exception):
                resp.shutdown()
            with contextlib.suppress(Exception):
                resp.release_conn()
        self._thread.join(timeout)
