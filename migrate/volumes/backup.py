"""Back up the data of the claims in a backup's scope: one mover pod per claim, on the
node of the pod that uses it, the claim mounted read-only, kopia writing straight into
the bucket's per-namespace repository.

Parallel across claims, bounded per node (a node's disk and network are shared by its
movers).  Each claim's snapshots form one incremental chain (source `<claim>@<namespace>`,
whatever pod or node ran the mover), so a second backup of unchanged data uploads almost
nothing.  A mover that ends without a result (killed, evicted) is run once more; kopia
writes a snapshot's manifest only after its content, so a killed copy never counts.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from migrate.cluster import Cluster
from migrate.errors import PartialFailure
from migrate.store import Store
from migrate.transform.claims import Claim, host_path_volumes, plan_claims
from migrate.transform.scope import Scope
from migrate.transform.workloads import pod_spec
from migrate.volumes import records
from migrate.volumes.hooks import pod_hook, run_hook
from migrate.volumes.live import claims_and_pods, workloads
from migrate.volumes.mover import delete_movers, run_mover
from migrate.volumes.mover_pod import BACKUP_LABEL, MoverJob, MoverSettings
from migrate.volumes.password import repository_exists
from migrate.volumes.progress import ClaimBytes
from migrate.volumes.quiesce import Record, owner_of, restore_replicas, scale_down
from migrate.volumes.records import VolumeCopy
from migrate.volumes.restore import placements

log = logging.getLogger(__name__)
Progress = Callable[[str, int], None]


@dataclass
class VolumeBackupOptions:
    backup: str
    mode: str  # all | annotated | none (claims.MODES)
    settings: Callable[[], MoverSettings]  # called only when some claim's data moves
    parallelism: int = 8  # movers at once
    per_node: int = 2  # movers at once on one node
    attempts: int = 2  # a mover that ends without a result is run again once
    quiesce: str = "none"  # none | scale-down (quiesce.py)
    record: Record | None = None  # where scale-downs are journaled (the run's state)


@dataclass
class VolumeBackupSummary:
    copies: list[VolumeCopy]
    warnings: list[str]
    seconds: float
    failures: list[tuple[str, str]] = field(default_factory=list)  # (namespace, message)
    files: dict[str, bytes] = field(default_factory=dict)  # the records, key -> content
    blobs: dict[str, int] = field(default_factory=dict)  # repository blob key -> size

    def as_dict(self) -> dict[str, Any]:
        moved = [v for v in self.copies if v.snapshot]
        return {
            "claims": len(self.copies),
            "copied": len(moved),
            "notCopied": [
                {"claim": f"{v.namespace}/{v.claim}", "reason": v.skip}
                for v in self.copies
                if v.skip
            ],
            "bytes": sum(v.total_bytes for v in moved),
            "uploadedBytes": sum(v.incremental_bytes for v in moved),
            "files": sum(v.files for v in moved),
            "seconds": round(self.seconds, 2),
            "warnings": self.warnings,
        }


def source_claims(
    cluster: Cluster, scope: Scope, mode: str
) -> tuple[list[Claim], list[str], list[str], dict[tuple[str, str], dict[str, Any]]]:
    """The claims in scope with their movers' placement, warnings about data that cannot
    move (hostPath volumes), the simulated nodes no mover may use, and the live pods."""
    claims, live, simulated = claims_and_pods(cluster, scope.explicit_namespaces())

    def wanted(o: dict[str, Any]) -> bool:
        meta = o.get("metadata") or {}
        return scope.namespace_included(meta.get("namespace", ""))

    claims = [
        c for c in claims if wanted(c) and scope.selector.matches(c["metadata"].get("labels"))
    ]
    live = [p for p in live if wanted(p)]
    warnings = [
        f"pod {where} mounts hostPath {path} (volume {vol}): its data stays on the node"
        for where, vol, path in host_path_volumes(live)
    ]
    pods = {(p["metadata"]["namespace"], p["metadata"]["name"]): p for p in live}
    planned = plan_claims(claims, live, mode, set(simulated))
    if any(c.moves and not c.node for c in planned):
        place_by_workload(planned, workloads(cluster, scope.explicit_namespaces()))
    return planned, warnings, simulated, pods


def place_by_workload(claims: list[Claim], objs: list[dict[str, Any]]) -> None:
    """Claims no running pod mounts get their workload's constraints (else a mover could
    wait for a node it does not tolerate, or land where the workload never runs)."""
    found = placements(
        (o["metadata"]["namespace"], o, spec) for o in objs if (spec := pod_spec(o)) is not None
    )
    for c in claims:
        p = found.get((c.namespace, c.name))
        if c.moves and not c.node and p is not None:
            c.node_selector, c.affinity, c.tolerations = p.node_selector, p.affinity, p.tolerations


def backup_volumes(
    cluster: Cluster,
    store: Store,
    scope: Scope,
    opts: VolumeBackupOptions,
    progress: Progress | None = None,
) -> VolumeBackupSummary:
    """Copy every moving claim's data, a pod's claims between its pre and post hooks
    (or with its workload scaled down).  A failed copy does not stop the others: it is
    listed as not copied and in `failures`; the records are returned, not written."""
    started = time.monotonic()
    claims, warnings, simulated, pods = source_claims(cluster, scope, opts.mode)
    for c in claims:
        if c.skip and c.skip not in ("none", "not-annotated", "excluded", "unbound"):
            warnings.append(f"claim {c.key}: data not copied: {c.reason}")
    copies = [VolumeCopy.of(c) for c in claims]
    run = _Run(cluster, opts, progress or (lambda _e, _n: None), simulated, pods, warnings)
    run.has_repository = lambda ns: repository_exists(store, ns)
    for c, v in zip(claims, copies, strict=True):
        if c.moves:  # a pod's claims together (its hooks), a claim without a pod alone
            run.groups.setdefault((c.namespace, c.pod or f"claim/{c.name}"), []).append((c, v))
    settings = run.start()
    for w in warnings:
        log.warning("%s", w)
    copied = {v.namespace for v in copies if v.snapshot}
    return VolumeBackupSummary(
        copies,
        warnings,
        time.monotonic() - started,
        run.failures,
        # the records: when data was copied, or every claim's fate was asked for (all)
        records.files(opts.backup, copies, settings.access if settings else None)
        if copied or (opts.mode == "all" and copies)
        else {},
        records.repository_blobs(store, copied) if copied else {},
    )


Key = tuple[str, str]  # (namespace, pod name), or (namespace, "claim/<name>") alone


class _Run:
    """One backup's copies: groups in parallel, a group's claims one after another."""

    def __init__(
        self,
        cluster: Cluster,
        opts: VolumeBackupOptions,
        tell: Progress,
        simulated: list[str],
        pods: dict[Key, dict[str, Any]],
        warnings: list[str],
    ) -> None:
        self.cluster, self.opts, self.tell = cluster, opts, tell
        self.simulated, self.pods, self.warnings = simulated, pods, warnings
        self.groups: dict[Key, list[tuple[Claim, VolumeCopy]]] = {}
        self.stopped: dict[Key, tuple[str, str, str]] = {}
        self.failures: list[tuple[str, str]] = []
        self.lock = threading.Lock()
        self.slots: dict[str, threading.Semaphore] = {}
        self.settings: MoverSettings | None = None
        self.has_repository: Callable[[str], bool] = lambda _ns: False
        self.bytes = ClaimBytes(tell)

    def start(self) -> MoverSettings | None:
        if not self.groups:
            return None
        self.settings = self.opts.settings()
        self.tell("total", sum(len(g) for g in self.groups.values()))
        for ns in sorted({ns for ns, _ in self.groups}):  # an interrupted attempt's movers
            delete_movers(self.cluster, ns, f"{BACKUP_LABEL}={self.opts.backup}")
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
        try:
            with ThreadPoolExecutor(max_workers=max(1, self.opts.parallelism)) as pool:
                list(pool.map(self._group, first))
                list(pool.map(self._group, rest))
        finally:
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
            pre, post = (pod_hook(pod, "pre"), pod_hook(pod, "post")) if pod else (None, None)
            problem = run_hook(self.cluster, key[0], key[1], pre) if pre else ""
            for c, v in members:
                if problem:
                    self._failed(c, v, problem)
                else:
                    try:
                        assert self.settings is not None
                        _copy(
                            self.cluster, c, v, self.opts, self.settings, self.simulated, self.bytes
                        )
                        self.bytes.finish((c.namespace, c.name), v.total_bytes)
                    except PartialFailure as exc:
                        self._failed(c, v, exc.message)
                self.tell("done", 1)
            if post and not problem:
                after = run_hook(self.cluster, key[0], key[1], post)
                if after:
                    with self.lock:
                        self.warnings.append(after)


def _copy(
    cluster: Cluster,
    c: Claim,
    v: VolumeCopy,
    opts: VolumeBackupOptions,
    settings: MoverSettings,
    simulated: list[str],
    watch: ClaimBytes,
) -> None:
    job = MoverJob(
        "backup",
        c.namespace,
        c.name,
        ["--user", c.name, "--host", c.namespace, "--create"],
        node=c.node,
        tolerations=c.tolerations,
        node_selector=c.node_selector,
        affinity=c.affinity,
        labels={BACKUP_LABEL: opts.backup},
        avoid_nodes=simulated,
        watch=watch.watcher((c.namespace, c.name)),
    )
    v.started = records.now()
    v.record(run_mover(cluster, job, settings, opts.attempts))
    v.completed = records.now()
    log.info(
        "claim %s: %d bytes, %d files, %d uploaded, %.1fs",
        c.key, v.total_bytes, v.files, v.incremental_bytes, v.seconds,
    )  # fmt: skip
