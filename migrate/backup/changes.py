"""Which objects changed on the source while a backup ran.

A backup lists each resource type in a consistent snapshot (one LIST, paged with continue
tokens), so every object in it is internally consistent — but different types (and
namespaces) are listed at different moments, and a live cluster keeps writing.  Users
migrating a live cluster need to know how stale the backup is, so the backup's results
say how many objects were modified, created or deleted after they were listed:

- a LIST that took more than one page is watched from its snapshot's resourceVersion
  (metadata only) until the backup ends: exact, and free while nothing changes;
- a one-page LIST is remembered (per object a 64-bit hash of namespace/name and its
  resourceVersion) and re-listed as metadata at the end — cheaper than a watch each.

A watch that cannot follow (no `watch` permission, a compacted revision) makes that
resource "unknown" in the results rather than a guess.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from migrate.backup.policy import EXCLUDE_LABEL
from migrate.backup.sink import BackupSummary, note
from migrate.cluster import APIResource, Cluster
from migrate.cluster.watch import ChangeWatch
from migrate.errors import ClusterError, ClusterUnreachable
from migrate.transform.scope import Scope

log = logging.getLogger(__name__)

KINDS = ("modified", "created", "deleted")
# How long in-flight watch events get to arrive before the watches stop.
SETTLE_SECONDS = 0.1


def _key(namespace: str | None, name: str) -> int:
    digest = hashlib.blake2b(f"{namespace or ''}/{name}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little")


def _rv(value: Any) -> int:
    text = str(value or "")
    if text.isdigit():
        return int(text)
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "little")


@dataclass
class Changes:
    """Counts per resource.group of objects that changed after they were listed."""

    by_resource: dict[str, dict[str, int]]
    unknown: dict[str, str]  # resource.group -> why it could not be told

    def total(self) -> int:
        return sum(sum(c.values()) for c in self.by_resource.values())

    def messages(self) -> list[str]:
        out = []
        for gr, c in sorted(self.by_resource.items()):
            parts = ", ".join(f"{c[k]} {k}" for k in KINDS if c.get(k))
            out.append(
                f"{gr}: {sum(c.values())} changed on the source while the backup ran "
                f"({parts}); the backup holds each object as it was when listed"
            )
        for gr, why in sorted(self.unknown.items()):
            out.append(f"{gr}: cannot tell what changed while the backup ran ({why})")
        return out


Task = tuple[APIResource, str | None]  # a resource, and the namespace listed (None: all)


class ChangeTracker:
    """Follows every listed (resource, namespace) until the backup ends: a big one with a
    watch from its snapshot's revision (free while nothing changes), a small one — or
    one whose watch failed — by remembering (namespace/name -> resourceVersion) and
    re-listing it as metadata at the end."""

    def __init__(
        self,
        c: Cluster,
        label_selector: str | None,
        included: Callable[[APIResource, dict[str, Any]], bool],
    ) -> None:
        self._c = c
        self._selector = label_selector
        self._included = included
        self._seen: dict[tuple[str, str | None], dict[int, int]] = {}
        self._watches: dict[tuple[str, str | None], ChangeWatch] = {}
        self._relist: list[Task] = []  # listed in one page: re-listed at the end
        self._lock = threading.Lock()

    def seen(self, task: Task, obj: dict[str, Any]) -> None:
        meta = obj.get("metadata") or {}
        key = _key(meta.get("namespace"), meta["name"])
        rv = _rv(meta.get("resourceVersion"))
        with self._lock:
            self._seen.setdefault((task[0].full_name, task[1]), {})[key] = rv

    @staticmethod
    def watched(snapshot: dict[str, Any]) -> bool:
        """Whether a LIST (by its first page's metadata) is followed by a watch."""
        return bool(snapshot.get("continue") and snapshot.get("resourceVersion"))

    def listed(self, task: Task, snapshot: dict[str, Any]) -> None:
        """A task's LIST is done: watch it from its snapshot if it took several pages."""
        res, ns = task
        if not self.watched(snapshot):
            with self._lock:
                self._relist.append(task)
            return
        rv = str(snapshot["resourceVersion"])
        watch = ChangeWatch(
            self._c, res, ns, rv, self._selector, lambda meta: self._wanted(res, meta)
        )
        with self._lock:
            self._watches[(res.full_name, ns)] = watch

    def _wanted(self, res: APIResource, meta: dict[str, Any]) -> bool:
        if (meta.get("labels") or {}).get(EXCLUDE_LABEL) == "true":
            return False
        return self._included(res, meta)

    def close(self) -> None:
        """Stop every watch (idempotent)."""
        for watch in self._watches.values():
            watch.stop()

    def compare(self, parallelism: int) -> Changes:
        """Stop the watches (after a moment for in-flight events) and re-list the rest
        (metadata only, `parallelism` at once); count what differs.  Single use."""
        counts: dict[str, dict[str, int]] = {}
        failed: dict[str, str] = {}  # resource.group -> why its changes are unknown

        def bump(gr: str, kind: str, n: int = 1) -> None:
            with self._lock:
                c_ = counts.setdefault(gr, dict.fromkeys(KINDS, 0))
                c_[kind] += n

        if self._watches:
            time.sleep(SETTLE_SECONDS)
        for watch in self._watches.values():
            watch.stop()
        for watch in self._watches.values():
            res = watch.res
            if watch.error:
                failed[res.full_name] = watch.error
                continue
            for kind, n in watch.counts().items():
                if n:
                    bump(res.full_name, kind, n)

        def one(task: Task) -> None:
            res, ns = task
            left = self._seen.pop((res.full_name, ns), {})
            try:
                for meta in self._c.list_metadata(res, ns, label_selector=self._selector):
                    if not self._wanted(res, meta):
                        continue
                    key = _key(meta.get("namespace"), meta.get("name", ""))
                    before = left.pop(key, None)
                    if before is None:
                        bump(res.full_name, "created")
                    elif before != _rv(meta.get("resourceVersion")):
                        bump(res.full_name, "modified")
            except ClusterUnreachable:
                raise
            except ClusterError as exc:  # unknowable (its listing failed too, likely)
                log.info("re-listing %s for changes failed: %s", res.full_name, exc.message)
                with self._lock:
                    failed[res.full_name] = exc.message
                return
            if left:
                bump(res.full_name, "deleted", len(left))

        with ThreadPoolExecutor(max_workers=max(1, parallelism)) as pool:
            for fut in [pool.submit(one, t) for t in self._relist]:
                fut.result()
        return Changes(
            {gr: c_ for gr, c_ in counts.items() if any(c_.values()) and gr not in failed},
            failed,
        )


def included_in(scope: Scope) -> Callable[[APIResource, dict[str, Any]], bool]:
    """The backup's namespace filter, on an object's metadata."""

    def included(res: APIResource, meta: dict[str, Any]) -> bool:
        if res.namespaced:
            return scope.namespace_included(meta.get("namespace") or "")
        if res.full_name == "namespaces":
            return scope.namespace_included(meta.get("name") or "")
        return True

    return included


def record_changes(tracker: ChangeTracker, parallelism: int, summary: BackupSummary) -> None:
    """Count the objects that changed on the source while the backup ran (a warning each
    resource type, and counts in the summary); the backup itself stays as listed."""
    changes = tracker.compare(parallelism)
    summary.changed = changes.by_resource
    for msg in changes.messages():
        log.warning("%s", msg)
        note(summary.warnings, None, msg)
