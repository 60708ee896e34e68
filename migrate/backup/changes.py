"""Which objects changed on the source while a backup ran.

A backup lists each resource type in a consistent snapshot (one LIST, paged with continue
tokens), so every object in it is internally consistent — but different types (and
namespaces) are listed at different moments, and a live cluster keeps writing.  Users
migrating a live cluster need to know how stale the backup is, so the backup's results
say how many objects were modified, created or deleted after they were listed.

How, without listing anything twice: before the listing starts, one watch per resource
type (metadata only; cluster-wide when the type is listed namespace by namespace) starts
at the current revision.  At the end, an event counts when its object is in scope and
its resourceVersion is newer than the snapshot that object's LIST saw.  Watches cost a
connection each and nothing while nothing changes.

Where a watch cannot follow (no `watch` permission, a compacted revision, a server whose
resourceVersions are not numbers), one-page LISTs fall back to a metadata re-list compared
by resourceVersion (per object a 64-bit hash of namespace/name and its resourceVersion is
kept for that), and longer ones are reported as "cannot tell" rather than guessed.
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
TaskKey = tuple[str, str | None]


def _number(rv: str) -> int | None:
    return int(rv) if rv.isdigit() else None


class ChangeTracker:
    """Watches every resource type of the backup from its start; see the module doc."""

    def __init__(
        self,
        c: Cluster,
        label_selector: str | None,
        included: Callable[[APIResource, dict[str, Any]], bool],
        tasks: list[Task],
    ) -> None:
        self._c = c
        self._selector = label_selector
        self._included = included
        self._seen: dict[TaskKey, dict[int, int]] = {}
        self._snapshots: dict[TaskKey, str] = {}  # the resourceVersion each LIST saw
        self._pages: dict[TaskKey, bool] = {}  # whether the LIST took several pages
        self._tasks = {(res.full_name, ns): (res, ns) for res, ns in tasks}
        self._watches: dict[str, ChangeWatch] = {}
        self._lock = threading.Lock()
        self._starter: threading.Thread | None = None
        self.listing_ended = 0.0  # all_listed(): when the last LIST returned (0: now)
        start = str(self._c.current_revision() or "")
        if _number(start) is not None:  # else not an etcd-like server: re-list instead
            # A watch from `start` receives every change after it, however late its
            # connection opens: the connections (a TLS handshake each) open in the
            # background while the listing already runs.
            self._starter = threading.Thread(target=self._start_watches, args=(tasks, start))
            self._starter.start()

    def _start_watches(self, tasks: list[Task], start: str) -> None:
        by_type: dict[str, list[Task]] = {}
        for res, ns in tasks:
            by_type.setdefault(res.full_name, []).append((res, ns))
        for gr, group in by_type.items():
            res = group[0][0]
            ns = group[0][1] if len(group) == 1 else None
            self._watches[gr] = ChangeWatch(
                self._c, res, ns, start, self._selector, self._accept_for(res)
            )

    def _accept_for(self, res: APIResource) -> Callable[[dict[str, Any]], bool]:
        return lambda meta: self._wanted(res, meta)

    def seen_page(self, task: Task, objs: list[dict[str, Any]]) -> None:
        """Remember the objects of a one-page LIST, in case its type's watch fails."""
        keys = []
        for obj in objs:
            meta = obj.get("metadata") or {}
            keys.append(
                (_key(meta.get("namespace"), meta["name"]), _rv(meta.get("resourceVersion")))
            )
        with self._lock:
            self._seen.setdefault((task[0].full_name, task[1]), {}).update(keys)

    @staticmethod
    def paged(snapshot: dict[str, Any]) -> bool:
        """Whether a LIST took several pages (its objects are not remembered)."""
        return bool(snapshot.get("continue"))

    def all_listed(self) -> None:
        """The listing is over: events in flight now get SETTLE_SECONDS from here."""
        self.listing_ended = time.monotonic()

    def listed(self, task: Task, snapshot: dict[str, Any]) -> None:
        """A task's LIST is done: note the revision it saw."""
        key = (task[0].full_name, task[1])
        with self._lock:
            self._snapshots[key] = str(snapshot.get("resourceVersion") or "")
            self._pages[key] = self.paged(snapshot)

    def _wanted(self, res: APIResource, meta: dict[str, Any]) -> bool:
        if (meta.get("labels") or {}).get(EXCLUDE_LABEL) == "true":
            return False
        return self._included(res, meta)

    def close(self) -> None:
        """Stop every watch (idempotent)."""
        if self._starter is not None:
            self._starter.join()
        for watch in self._watches.values():
            watch.stop()

    def compare(self, parallelism: int) -> Changes:
        """Stop the watches (after a moment for in-flight events), count what changed
        after each LIST's snapshot; re-list where a watch failed.  Single use."""
        counts: dict[str, dict[str, int]] = {}
        unknown: dict[str, str] = {}
        if self._starter is not None:
            self._starter.join()
        if self._watches:  # in-flight events get SETTLE_SECONDS from the listing's end
            ended = self.listing_ended or time.monotonic()
            since = max([ended] + [w.wait_open() for w in self._watches.values()])
            time.sleep(max(0.0, SETTLE_SECONDS - (time.monotonic() - since)))
        self.close()
        relist: list[TaskKey] = []
        for key in self._snapshots:  # the LISTs that succeeded
            watch = self._watches.get(key[0])
            if watch is not None and not watch.error and _number(self._snapshots[key]) is not None:
                continue
            if self._pages[key]:
                unknown[key[0]] = watch.error if watch is not None and watch.error else "no watch"
            else:
                relist.append(key)
        for gr, watch in self._watches.items():
            if not watch.error:
                self._count_events(gr, watch, counts)
        self._relist(relist, parallelism, counts, unknown)
        return Changes(
            {gr: c_ for gr, c_ in counts.items() if any(c_.values()) and gr not in unknown},
            unknown,
        )

    def _count_events(self, gr: str, watch: ChangeWatch, counts: dict[str, dict[str, int]]) -> None:
        """Net effect per object of the events after its LIST's snapshot: created then
        deleted is no change, deleted then created again a modification."""
        per_object: dict[tuple[str, str], tuple[str, str]] = {}
        for ns, name, kind, rv in watch.events:
            snap = self._snapshots.get((gr, ns or None), self._snapshots.get((gr, None)))
            after, before = _number(rv), _number(snap or "")
            if after is None or before is None or after <= before:
                continue  # not listed in scope, or already in the backup's copy
            first = per_object.get((ns, name), (kind, kind))[0]
            per_object[(ns, name)] = (first, kind)
        c_ = counts.setdefault(gr, dict.fromkeys(KINDS, 0))
        for first, last in per_object.values():
            if last == "DELETED":
                if first != "ADDED":
                    c_["deleted"] += 1
            elif first == "ADDED":
                c_["created"] += 1
            else:
                c_["modified"] += 1

    def _relist(
        self,
        keys: list[TaskKey],
        parallelism: int,
        counts: dict[str, dict[str, int]],
        unknown: dict[str, str],
    ) -> None:
        """Re-list one-page LISTs as metadata and compare by resourceVersion."""

        def bump(gr: str, kind: str, n: int = 1) -> None:
            with self._lock:
                c_ = counts.setdefault(gr, dict.fromkeys(KINDS, 0))
                c_[kind] += n

        def one(key: TaskKey) -> None:
            res, ns = self._tasks[key]
            left = self._seen.pop(key, {})
            try:
                for meta in self._c.list_metadata(res, ns, label_selector=self._selector):
                    if not self._wanted(res, meta):
                        continue
                    before = left.pop(_key(meta.get("namespace"), meta.get("name", "")), None)
                    if before is None:
                        bump(res.full_name, "created")
                    elif before != _rv(meta.get("resourceVersion")):
                        bump(res.full_name, "modified")
            except ClusterUnreachable:
                raise
            except ClusterError as exc:  # unknowable (its listing failed too, likely)
                log.info("re-listing %s for changes failed: %s", res.full_name, exc.message)
                with self._lock:
                    unknown[res.full_name] = exc.message
                return
            if left:
                bump(res.full_name, "deleted", len(left))

        with ThreadPoolExecutor(max_workers=max(1, parallelism)) as pool:
            for fut in [pool.submit(one, k) for k in keys]:
                fut.result()


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
