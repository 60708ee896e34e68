"""Restore's volume data: the mover level that fills each claim between the level that
creates it and the workloads that use it, and the claims cloned from the snapshots a
backup kept (into the cluster it came from).  Here because the restore and volumes
steps never import each other.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any

from migrate.cluster import Cluster
from migrate.cluster.identity import cluster_id
from migrate.restore.guard import backup_cluster_id
from migrate.restore.journal import Journal, ObjectResult
from migrate.restore.plan import Plan
from migrate.restore.source import Item, LoadedBackup
from migrate.store import Store
from migrate.transform.workloads import pod_spec
from migrate.volumes import records
from migrate.volumes.clone import Clone, finish, plan_clones, prepare
from migrate.volumes.mover_pod import MoverSettings
from migrate.volumes.records import VolumeCopy
from migrate.volumes.restore import DataLevel, PlannedClaim, check_sizes, placements

log = logging.getLogger(__name__)
DEFAULT_CLASS = "storageclass.kubernetes.io/is-default-class"
WORKLOADS = ("Pod", "Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "CronJob")


def planned_claims(plan: Plan) -> list[PlannedClaim]:
    return [_planned(it) for it in plan.restorable if it.kind == "PersistentVolumeClaim"]


def _planned(it: Item) -> PlannedClaim:
    spec = it.read_desired().get("spec") or {}
    request = ((spec.get("resources") or {}).get("requests") or {}).get("storage", "")
    return PlannedClaim(
        it.namespace or "", it.name, it.target_ns or "", str(request), spec.get("volumeName") or ""
    )


DATA_RESOURCE = "volumedata.kube-migrate.io"  # the data level's lines in a restore journal


def data_key(c: PlannedClaim) -> tuple[str, str, str | None, str]:
    return ("kube-migrate.io", "VolumeData", c.target_ns or None, c.name)


def data_level(
    target: Cluster,
    store: Store,
    backup: str,
    planned: tuple[LoadedBackup, Plan],
    settings: Callable[[], MoverSettings],
    open_task: Callable[[str], AbstractContextManager[Callable[[str, int], None]]] | None = None,
    clone: bool = True,
    restore: str = "",
) -> RestoreData:
    """Restore's data level for this plan, after checking (before any write) that every
    target claim holds its data.  With `clone`, into the cluster the backup came from,
    claims whose snapshot the backup kept are made from it (their plan gets a
    dataSource) instead of being filled by a mover."""
    loaded, plan = planned
    kept = records.read(store, backup)
    copies = {(v.namespace, v.claim): v for v in kept if v.snapshot}
    foreign = None if kept else records.velero_only(store, backup)
    if foreign:
        log.warning("%s", foreign)
    claims = planned_claims(plan)
    out = RestoreData(target)
    if clone and any(v.kept_snapshot for v in kept):
        out.clones = _clones(target, loaded, plan, kept, restore or backup)
        copies = {k: v for k, v in copies.items() if (k[0], k[1]) not in out.cloned_sources}
    if not copies or not any((c.source_ns, c.name) in copies for c in claims):
        return out
    check_sizes(claims, copies)
    workloads = []
    for it in plan.restorable:
        if it.kind in WORKLOADS:
            obj = it.read_desired()
            spec = pod_spec(obj)
            if spec is not None:
                workloads.append((it.target_ns or "", obj, spec))
    level = DataLevel(target, copies, placements(workloads), settings(), open_task=open_task)

    def after(created: list[Item], journal: Journal) -> None:
        """Fill the claims the level created, but not those a former attempt of this
        restore filled already (journaled): their workloads may run by now."""

        def done(c: PlannedClaim, row: dict[str, Any]) -> None:
            message = f"{row['bytes']} bytes, {row['files']} files from snapshot {row['snapshot']}"
            journal.record(ObjectResult(data_key(c), DATA_RESOURCE, "created", message))

        level.on_done = done
        todo = [_planned(it) for it in created]
        level([c for c in todo if journal.done(data_key(c)) is None])

    out.level, out.after = level, after
    return out


@dataclass
class RestoreData:
    """What restore does with the volume data: a mover level (`after`, each level's
    claims filled) and the claims cloned from kept snapshots (`before`, their snapshot
    bound in the target namespace before the level creating them)."""

    cluster: Cluster
    level: DataLevel | None = None
    after: Callable[[list[Item], Journal], None] | None = None
    # (target namespace, claim) -> (source namespace, its clone)
    clones: dict[tuple[str, str], tuple[str, Clone]] = field(default_factory=dict)

    @property
    def cloned_sources(self) -> set[tuple[str, str]]:
        return {(src_ns, c.claim) for src_ns, c in self.clones.values()}

    def before(self, level: Iterable[Item]) -> None:
        if not self.clones:  # the usual restore: no level is read again
            return
        for it in level:
            hit = self.clones.get((it.target_ns or "", it.name))
            if it.kind == "PersistentVolumeClaim" and hit is not None:
                prepare(self.cluster, hit[1])

    def finish(self) -> list[str]:
        """Remove the clones' objects once their claims are bound; warnings for others."""
        return finish(self.cluster, [c for _ns, c in self.clones.values()]) if self.clones else []


def provisioners(target: Cluster) -> dict[str, str]:
    """StorageClass -> provisioner on the target; "" -> the default class's name."""
    res = target.discovery().get("storage.k8s.io", "storageclasses")
    out: dict[str, str] = {}
    for sc in target.list(res) if res is not None else []:
        meta = sc["metadata"]
        out[meta["name"]] = str(sc.get("provisioner") or "")
        if (meta.get("annotations") or {}).get(DEFAULT_CLASS) == "true":
            out[""] = meta["name"]
    return out


def _clones(
    target: Cluster, loaded: LoadedBackup, plan: Plan, kept: list[VolumeCopy], restore: str
) -> dict[tuple[str, str], tuple[str, Clone]]:
    """Claims of the plan made from the backup's kept snapshots, when the target is the
    cluster they are in; their planned objects get the snapshot as dataSource."""
    source_id, target_id = backup_cluster_id(loaded), cluster_id(target)
    if source_id is None or source_id != target_id:
        log.warning("backup %s kept VolumeSnapshots in its source cluster, and %s is not "
                    "that cluster: its claims are filled by movers (or start empty)",
                    loaded.info.name, target.name)  # fmt: skip
        return {}
    items = [it for it in plan.restorable if it.kind == "PersistentVolumeClaim"]
    wanted = [(it.namespace or "", it.name, it.target_ns or "") for it in items]
    found = plan_clones(kept, wanted, restore)
    drivers = provisioners(target) if found else {}
    out = {}
    for it in items:
        c = found.get((it.target_ns or "", it.name))
        if c is None:
            continue
        desired = it.read_desired()
        cls = (desired.get("spec") or {}).get("storageClassName") or drivers.get("", "")
        if drivers.get(cls) != c.driver:  # a mapped class: its driver cannot use the snapshot
            log.warning("claim %s/%s: StorageClass %r is not of driver %s: not cloned from "
                        "its kept snapshot (a mover fills it if the backup copied its data; "
                        "else it starts empty)", c.target_ns, c.claim, cls, c.driver)  # fmt: skip
            continue
        plan.items.decide(it, c.claim_patch(desired))
        out[(c.target_ns, c.claim)] = (it.namespace or "", c)
    return out
