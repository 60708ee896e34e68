"""An incremental backup's objects: only those created or changed since its parent, and
the list of those deleted (store/positions.py has the why).

Per (resource, namespace) a metadata LIST compared with the resourceVersions the parent
recorded tells which objects changed and which are gone: a short watch gets no reliable
"caught up" signal from the API server (its bookmarks come late or not at all, measured
on 1.30 and 1.37), so only a LIST proves the delta complete.  The changed objects are
read from a watch of whole objects started at the parent's revision (types the parent
held WATCH_MIN_OBJECTS of, or more: the stream replaces a GET per object), or one by one;
where the watch cannot follow (410 Gone: the revision is older than the server's watch
cache or compacted; no watch permission) they are read one by one too.  A (resource,
namespace) the parent never listed (a CRD or namespace new since) is listed in full.
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
from migrate.cluster.watch import ChangeWatch
from migrate.errors import ClusterError, ClusterUnreachable, NotFound, UsageError
from migrate.store import Store, layout
from migrate.store.positions import Positions, object_key, parent_positions, task_key

log = logging.getLogger(__name__)
# A type whose parent held this many objects (in scope) is also watched: its changed
# objects come from the stream, not a GET each (below, the GETs cost less than a watch).
WATCH_MIN_OBJECTS = 1000
WATCH_WAIT = 0.5  # seconds a changed object may take to arrive on the watch before a GET
Task = tuple[APIResource, str | None]
ListTask = Callable[[Task], None]  # create.py's full LIST of one task


@dataclass
class DeltaStats:
    """How the delta was read, for the summary: types watched, types whose changed
    objects were read one by one (and why), tasks listed in full; objects deleted."""

    watched: int = 0
    relisted: dict[str, str] = field(default_factory=dict)
    listed: int = 0
    deleted: int = 0
    from_watch: int = 0  # changed objects the watch delivered (the others: a GET each)

    def as_dict(self) -> dict[str, Any]:
        return {
            "watched": self.watched,
            "fromWatch": self.from_watch,
            "relisted": dict(sorted(self.relisted.items())),
            "listedInFull": self.listed,
            "deleted": self.deleted,
        }


class Delta:
    def __init__(
        self,
        c: Cluster,
        selector: str | None,
        scope_filter: Callable[[APIResource, dict[str, Any]], bool],
        sink: Sink,
        collector: Collector,
        positions: Positions,
        watch_min: int = WATCH_MIN_OBJECTS,
    ) -> None:
        self.c = c
        self.watch_min = watch_min
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
        """Every task of one resource type: a metadata LIST compared with the parent's
        resourceVersions tells what changed; the changed objects come from a watch from
        the parent's revision where one runs, else a GET each.  A task the parent never
        listed is listed in full."""
        res = tasks[0][0]
        known = [t for t in tasks if task_key(res.full_name, t[1]) in self.positions.revisions]
        for t in tasks:
            if t not in known:
                list_task(t)
                self.stats.listed += 1
        if not known:
            return
        watch = self._watch(res, known)
        try:
            for t in known:
                self._relist(t, watch)
        finally:
            if watch is not None:
                watch.stop()
                with self.sink.lock:
                    if watch.error:
                        self.stats.relisted[res.full_name] = watch.error
                    else:
                        self.stats.watched += 1

    def _watch(self, res: APIResource, known: list[Task]) -> ChangeWatch | None:
        """A watch of whole objects from the oldest revision the parent recorded, for a
        type large enough that reading its changed objects one by one would cost more."""
        held = sum(len(self.positions.held(res.full_name, t[1])) for t in known)
        revs = [self.positions.revisions[task_key(res.full_name, t[1])] for t in known]
        numbers = [int(r) for r in revs if r.isdigit()]
        if held < self.watch_min or len(numbers) != len(revs):
            with self.sink.lock:
                self.stats.relisted[res.full_name] = f"{held} objects: read one by one"
            return None
        ns = known[0][1] if len(known) == 1 else None
        return ChangeWatch(self.c, res, ns, str(min(numbers)), self.selector, objects=True)

    def _relist(self, task: Task, watch: ChangeWatch | None) -> None:
        """Compare a metadata LIST with the parent's resourceVersions; write the changed
        objects (from the watch, or read), record the deleted."""
        res, ns = task
        revision = self.c.current_revision() or ""
        held = self.positions.held(res.full_name, ns)
        changed: list[tuple[str | None, str, str]] = []
        for meta in self.c.list_metadata(res, ns, label_selector=self.selector):
            if not self._wanted(res, meta):
                continue
            obj_ns, name = meta.get("namespace") or None, str(meta.get("name"))
            rv = str(meta.get("resourceVersion"))
            if held.pop(object_key(obj_ns, name), None) != rv:
                changed.append((obj_ns, name, rv))
        for obj_ns, name, rv in changed:
            obj = watch.object_at(obj_ns, name, rv, WATCH_WAIT) if watch is not None else None
            if obj is not None:
                with self.sink.lock:
                    self.stats.from_watch += 1
            else:
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
    watch_min: int = WATCH_MIN_OBJECTS,
) -> DeltaStats:
    """Write what changed since the parent (positions on the sink) into the backup."""
    assert sink.positions is not None
    delta = Delta(c, selector, included_in(scope), sink, collector, sink.positions, watch_min)
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

    with ThreadPoolExecutor(max_workers=max(1, parallelism)) as pool:
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
