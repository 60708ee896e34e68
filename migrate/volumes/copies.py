"""One backup's claim copies: a pod's claims as one group between its hooks, groups in
parallel, bounded per node (a node's disk and network are shared by its movers).

A group's order: pre hook -> a VolumeSnapshot of each claim read from a snapshot ->
wait until every one is cut -> the live copies (still between the hooks) -> post hook
-> the snapshot copies (a temporary claim from each snapshot, a mover reading it, both
removed, or the snapshot kept).  So an app whose claims are all snapshotted is frozen
for the snapshots' cut only, and `frozen_seconds` says how long.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from migrate.cluster import Cluster
from migrate.cluster.podexec import warm_up
from migrate.errors import ClusterError, MigrateError, PartialFailure
from migrate.transform.claims import Claim
from migrate.transform.snapshot_method import Method
from migrate.volumes import records, snapshots
from migrate.volumes.hooks import has_hooks, pod_hook, run_hook
from migrate.volumes.mover import delete_movers, run_mover
from migrate.volumes.mover_pod import BACKUP_LABEL, MoverJob, MoverSettings
from migrate.volumes.progress import ClaimBytes
from migrate.volumes.quiesce import owner_of, restore_replicas, scale_down
from migrate.volumes.records import VolumeCopy

if TYPE_CHECKING:
    from migrate.volumes.backup import VolumeBackupOptions

log = logging.getLogger(__name__)
Key = tuple[str, str]  # (namespace, pod name), or (namespace, "claim/<name>") alone
Member = tuple[Claim, VolumeCopy, Method]


class Copies:
    """The groups of one backup and what happened to them."""

    def __init__(
        self,
        cluster: Cluster,
        opts: VolumeBackupOptions,
        tell: Callable[[str, int], None],
        simulated: list[str],
        pods: dict[Key, dict[str, Any]],
        warnings: list[str],
    ) -> None:
        self.cluster, self.opts, self.tell = cluster, opts, tell
        self.simulated, self.pods, self.warnings = simulated, pods, warnings
        self.groups: dict[Key, list[Member]] = {}
        self.stopped: dict[Key, tuple[str, str, str]] = {}
        self.failures: list[tuple[str, str]] = []
        self.lock = threading.Lock()
        self.slots: dict[str, threading.Semaphore] = {}
        self.settings: MoverSettings | None = None
        self.has_repository: Callable[[str], bool] = lambda _ns: False
        self.bytes = ClaimBytes(tell)
        self.stop = threading.Event()  # set on Ctrl-C: no new copy starts

    def start(self) -> MoverSettings | None:
        if not self.groups:
            return None
        self.settings = self.opts.settings()
        self.tell("total", sum(len(g) for g in self.groups.values()))
        namespaces = sorted({ns for ns, _ in self.groups})
        for ns in namespaces:  # an interrupted attempt's movers, snapshots, claims
            delete_movers(self.cluster, ns, f"{BACKUP_LABEL}={self.opts.backup}")
        if any(m.snapshot for g in self.groups.values() for _c, _v, m in g):
            snapshots.leftovers(self.cluster, self.opts.backup, namespaces)
        if any(has_hooks(p) for p in self.pods.values()):
            warm_up()  # the hooks' exec imported before any app is held
        record = self.opts.record or (lambda _w: None)
        if self.opts.quiesce == "scale-down":
            self._owners()
        stopped = self.stopped
        scaled = scale_down(self.cluster, stopped.values(), stopped, record) if stopped else []
        # kopia loses snapshots when movers create one repository at once: in a
        # namespace without a repository yet, one group runs first, the rest after it
        fresh = {ns for ns, _ in self.groups if not self.has_repository(ns)}
        first = [next(k for k in self.groups if k[0] == ns) for ns in sorted(fresh)]
        rest = [k for k in self.groups if k not in first]
        pool = ThreadPoolExecutor(max_workers=max(1, self.opts.parallelism))
        try:
            list(pool.map(self._group, first))
            list(pool.map(self._group, rest))
        except BaseException:
            self.stop.set()  # running copies end at their next step; queued ones never start
            pool.shutdown(wait=True, cancel_futures=True)
            raise
        finally:
            pool.shutdown(wait=True)
            if scaled:
                restore_replicas(self.cluster, scaled, record)
        return self.settings

    def _owners(self) -> None:
        for key in self.groups:
            if key not in self.pods:
                continue
            owner = owner_of(self.cluster, self.pods[key])
            if owner is None:
                self.warnings.append(f"pod {key[0]}/{key[1]}: no Deployment or StatefulSet to "
                                     "scale down: copied live")  # fmt: skip
            else:
                self.stopped[key] = owner

    def _failed(self, c: Claim, v: VolumeCopy, why: str) -> None:
        log.warning("claim %s: data not copied: %s", c.key, why)
        v.skip = f"copy failed: {why}"
        with self.lock:
            self.failures.append((c.namespace, f"data of claim {c.name} not copied: {why}"))

    def _group(self, key: Key) -> None:
        members = self.groups[key]
        pod = self.pods.get(key) if key not in self.stopped else None  # stopped: no hooks
        with self.lock:
            node = members[0][0].node
            slot = self.slots.setdefault(node, threading.Semaphore(self.opts.per_node))
        with slot:
            if self.stop.is_set():
                return
            pre, post = (pod_hook(pod, "pre"), pod_hook(pod, "post")) if pod else (None, None)
            frozen = time.monotonic()
            problem = run_hook(self.cluster, key[0], key[1], pre) if pre else ""
            cut: list[tuple[Claim, VolumeCopy, str]] = []
            try:
                for c, v, m in members:
                    if problem:
                        self._failed(c, v, problem)
                    elif m.snapshot:
                        name = self._cut(c, v, m)
                        if name:
                            cut.append((c, v, name))
                for c, v, m in members:
                    if not problem and not m.snapshot:
                        self._copy(c, v, m)
            finally:
                if post and not problem:
                    after = run_hook(self.cluster, key[0], key[1], post)
                    if after:
                        with self.lock:
                            self.warnings.append(after)
                held = round(time.monotonic() - frozen, 3) if pre or post else 0.0
                for _c, v, _m in members:
                    v.frozen_seconds = held
            methods = {c.name: m for c, _v, m in members}
            for c, v, name in cut:
                self._copy(c, v, methods[c.name], name)
            for _ in range(sum(1 for c, _v, _m in members if problem)):
                self.tell("done", 1)

    def _cut(self, c: Claim, v: VolumeCopy, m: Method) -> str:
        """Take the claim's snapshot and wait for its cut; "" when that failed (the
        snapshot is removed and the claim listed as not copied)."""
        name = ""
        try:
            start = time.monotonic()
            name = snapshots.take(self.cluster, c, m.snapshot_class, self.opts.backup)
            snapshots.wait(self.cluster, c.namespace, name, ready=False)
            v.cut_seconds = round(time.monotonic() - start, 3)
            return name
        except (MigrateError, ClusterError) as exc:
            if name:
                snapshots.remove(self.cluster, c.namespace, snapshot=name)
            self._failed(c, v, f"snapshot not taken: {exc.message}")
            self.tell("done", 1)
            return ""

    def _copy(self, c: Claim, v: VolumeCopy, m: Method, snapshot: str = "") -> None:
        """One claim's copy: live, or from its snapshot through a temporary claim."""
        temp, kept = "", False
        try:
            if self.stop.is_set():
                raise PartialFailure("interrupted")
            v.method = "CSISnapshot" if snapshot else "PodVolumeBackup"
            v.snapshot_class, v.live_reason = m.snapshot_class, m.reason
            if snapshot:
                status = snapshots.wait(self.cluster, c.namespace, snapshot, ready=True)
                v.snapshot_content, v.snapshot_handle, v.driver = snapshots.content(
                    self.cluster, status
                )
                v.node = v.node or snapshots.node_of(self.cluster, c)  # where it lives
                temp = snapshots.temporary_claim(
                    self.cluster, c, snapshot, status, self.opts.backup
                )
            # without moving data the snapshot is the copy: the mover records its files'
            # manifest only (what `verify --data` checks a clone against)
            self._mover(c, v, temp, manifest_only=bool(snapshot) and not self.opts.move_data)
            self.bytes.finish((c.namespace, c.name), v.total_bytes)
            if snapshot and (self.opts.keep_snapshots or not self.opts.move_data):
                snapshots.keep(self.cluster, c.namespace, snapshot)
                v.kept_snapshot, kept = snapshot, True
        except (MigrateError, ClusterError) as exc:
            self._failed(c, v, exc.message)
        finally:
            if snapshot or temp:
                snapshots.remove(
                    self.cluster, c.namespace, snapshot="" if kept else snapshot, claim=temp
                )
            self.tell("done", 1)

    def _mover(self, c: Claim, v: VolumeCopy, mount: str, manifest_only: bool = False) -> None:
        assert self.settings is not None
        job = MoverJob(
            "backup",
            c.namespace,
            c.name,
            ["--user", c.name, "--host", c.namespace, "--create"]
            + (["--manifest-only"] if manifest_only else []),
            node=c.node,
            tolerations=c.tolerations,
            node_selector=c.node_selector,
            affinity=c.affinity,
            labels={BACKUP_LABEL: self.opts.backup},
            avoid_nodes=self.simulated,
            watch=self.bytes.watcher((c.namespace, c.name)),
            mount=mount,
            stop=self.stop,
        )
        v.started = records.now()
        v.record(run_mover(self.cluster, job, self.settings, self.opts.attempts))
        v.completed = records.now()
        log.info(
            "claim %s: %d bytes, %d files, %d uploaded, %.1fs%s",
            c.key, v.total_bytes, v.files, v.incremental_bytes, v.seconds,
            f" (from snapshot, temporary claim {mount})" if mount else "",
        )  # fmt: skip
