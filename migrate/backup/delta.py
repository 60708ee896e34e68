"""An incremental backup's objects: only those created or changed since its parent, and
the list of those deleted (backup/positions.py has the why).

One watch per resource type from the oldest revision its parent recorded for it reads
every change since, with whole objects, until the server's bookmark; the net effect per
object is written (its last state) or recorded as deleted.  Where a watch cannot follow
(410 Gone: the revision is compacted; no watch permission; no bookmark in time) a
metadata LIST compared with the parent's resourceVersions finds the changed objects,
which are then read one by one; a (resource, namespace) the parent never listed (a CRD
or namespace new since) is listed in full.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from migrate.backup.changes import included_in
from migrate.backup.deps import Collector
from migrate.backup.policy import EXCLUDE_LABEL
from migrate.backup.sink import BackupSummary, Progress, Sink, note
from migrate.cluster import APIResource, Cluster
from migrate.cluster.identity import cluster_id
from migrate.cluster.watch import changes_since
from migrate.errors import ClusterError, ClusterUnreachable, NotFound, UsageError
from migrate.store import Store, layout
from migrate.store.positions import Positions, object_key, parent_positions, task_key

log = logging.getLogger(__name__)
Task = tuple[APIResource, str | None]
ListTask = Callable[[Task], None]  # create.py's full LIST of one task


@dataclass
class DeltaStats:
    """How the delta was read, for the summary: types watched, types re-listed (and
    why), tasks listed in full; objects written and deleted."""

    watched: int = 0
    relisted: dict[str, str] = field(default_factory=dict)
    listed: int = 0
    deleted: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "watched": self.watched,
            "relisted": dict(sorted(self.relisted.items())),
            "listedInFull": self.listed,
            "deleted": self.deleted,
        }


def _number(rv: str) -> int | None:
    return int(rv) if rv.isdigit() else None


class Delta:
    def __init__(
        self,
        c: Cluster,
        selector: str | None,
        scope_filter: Callable[[APIResource, dict[str, Any]], bool],
        sink: Sink,
        collector: Collector,
        positions: Positions,
    ) -> None:
        self.c = c
        self.selector = selector
        self.included = scope_filter
        self.sink = sink
        self.collector = collector
        self.positions = positions
        self.stats = DeltaStats()

    def _wanted(self, res: APIResource, meta: dict[str, Any]) -> bool:
        if (meta.get("labels") or {}).get(EXCLUDE_LABEL) == "true":
            return False
        return self.included(res, meta)

    def _write(self, res: APIResource, obj: dict[str, Any], part: str | None) -> None:
        if self.sink.add(res, obj, part) and res.namespaced:
            self.collector.observe(obj, res.group, res.resource)

    def _deleted(self, res: APIResource, ns: str | None, name: str) -> None:
        if self.positions.gone(res.group, res.resource, ns, name):
            with self.sink.lock:
                self.stats.deleted += 1

    def one_type(self, tasks: list[Task], list_task: ListTask) -> None:
        """Every task of one resource type: watched from the parent's revision, else
        re-listed (metadata) and compared, a task the parent never listed in full."""
        res = tasks[0][0]
        known = [t for t in tasks if task_key(res.full_name, t[1]) in self.positions.revisions]
        for t in tasks:
            if t not in known:
                list_task(t)
                self.stats.listed += 1
        if not known:
            return
        revs = {t[1]: self.positions.revisions[task_key(res.full_name, t[1])] for t in known}
        numbers = [_number(r) for r in revs.values()]
        why = "the parent's revisions are not numbers"
        if all(n is not None for n in numbers):
            ns = known[0][1] if len(known) == 1 else None
            start = str(min(n for n in numbers if n is not None))
            since = changes_since(self.c, res, ns, start, self.selector)
            if since.error is None and _number(since.revision) is not None:
                self._apply(res, known, revs, since.events, since.revision)
                self.stats.watched += 1
                return
            why = since.error or "no bookmark"
        log.info("incremental backup: %s re-listed (%s)", res.full_name, why)
        with self.sink.lock:
            self.stats.relisted[res.full_name] = why
        for t in known:
            self._relist(t)

    def _apply(
        self,
        res: APIResource,
        tasks: list[Task],
        revs: dict[str | None, str],
        events: list[tuple[str, dict[str, Any]]],
        revision: str,
    ) -> None:
        """The net effect of the events per object: its last state, or deleted."""
        whole = None in revs  # one watch of all namespaces, as the parent listed them
        last: dict[tuple[str | None, str], tuple[str, dict[str, Any]]] = {}
        for kind, obj in events:
            meta = obj.get("metadata") or {}
            ns = meta.get("namespace") or None
            since = revs.get(None if whole else ns)
            rv = _number(str(meta.get("resourceVersion") or ""))
            if since is None or rv is None or rv <= int(since) or not self._wanted(res, meta):
                continue  # out of scope, or already in the parent
            last[(ns, meta["name"])] = (kind, obj)
        for (ns, name), (kind, obj) in sorted(last.items(), key=lambda kv: str(kv[0])):
            if kind == "DELETED":
                self._deleted(res, ns, name)
            else:
                obj.setdefault("apiVersion", res.api_version)
                obj.setdefault("kind", res.kind)
                self._write(res, obj, None if whole else ns)
        for _res, ns in tasks:
            self.positions.listed(res.full_name, ns, revision)

    def _relist(self, task: Task) -> None:
        """Compare a metadata LIST with the parent's resourceVersions; read the changed."""
        res, ns = task
        revision = self.c.current_revision() or ""
        held = self.positions.held(res.full_name, ns)
        changed: list[tuple[str | None, str]] = []
        for meta in self.c.list_metadata(res, ns, label_selector=self.selector):
            if not self._wanted(res, meta):
                continue
            obj_ns, name = meta.get("namespace") or None, str(meta.get("name"))
            if held.pop(object_key(obj_ns, name), None) != str(meta.get("resourceVersion")):
                changed.append((obj_ns, name))
        for obj_ns, name in changed:
            try:
                obj = self.c.get(res, name, obj_ns)
            except NotFound:  # deleted meanwhile
                self._deleted(res, obj_ns, name)
                continue
            obj.setdefault("apiVersion", res.api_version)
            obj.setdefault("kind", res.kind)
            self._write(res, obj, ns)
        for key in held:
            obj_ns, _, name = key.partition("/")
            self._deleted(res, obj_ns or None, name)
        self.positions.listed(res.full_name, ns, revision)


def list_delta(
    c: Cluster,
    selector: str | None,
    scope: Any,
    tasks: list[Task],
    sink: Sink,
    collector: Collector,
    summary: BackupSummary,
    emit: Progress,
    list_task: ListTask,
    parallelism: int,
) -> DeltaStats:
    """Write what changed since the parent (positions on the sink) into the backup."""
    assert sink.positions is not None
    delta = Delta(c, selector, included_in(scope), sink, collector, sink.positions)
    by_type: dict[str, list[Task]] = {}
    for t in tasks:
        by_type.setdefault(t[0].full_name, []).append(t)

    def one(group: list[Task]) -> None:
        try:
            delta.one_type(group, list_task)
        except ClusterUnreachable:
            raise
        except NotFound:
            with sink.lock:
                note(summary.warnings, None, f"{group[0][0].full_name} is no longer served")
        except ClusterError as exc:
            with sink.lock:
                note(summary.errors, None, f"incremental {group[0][0].full_name}: {exc.message}")
        emit("listed", len(group))

    # every watch waits ~1 s for its bookmark: all types at once, not `parallelism` at a time
    with ThreadPoolExecutor(max_workers=max(parallelism, min(len(by_type), 64))) as pool:
        for fut in [pool.submit(one, g) for g in by_type.values()]:
            fut.result()
    return delta.stats


def start_from(
    store: Store, parent: str, name: str, c: Cluster, scope: dict[str, Any]
) -> Positions:
    """The positions an incremental backup `name` of `parent` starts from, after checking
    that the parent was taken of this cluster with the same scope (else the delta would
    be against other objects): a usage error before anything is written."""
    positions = parent_positions(store, parent)
    keys = layout.BackupKeys(parent)
    manifest = layout.Manifest.parse(store.get(keys.manifest), parent)
    theirs = {k: v for k, v in (manifest.raw.get("scope") or {}).items() if k != "ttl"}
    ours = {k: v for k, v in scope.items() if k != "ttl"}
    if manifest.source.get("clusterId") != cluster_id(c):
        raise UsageError(
            f"parent backup {parent} was taken of another cluster "
            f"({manifest.source.get('server')}), not of {c.host}",
            hint="an incremental backup continues a backup of the same cluster",
        )
    if theirs != ours:
        raise UsageError(
            f"backup {name} has another scope than its parent {parent}",
            hint="pass the parent's namespaces, resources and selector again "
            "(`kube-migrate backup describe " + parent + "` shows them)",
        )
    return positions.child(name)
