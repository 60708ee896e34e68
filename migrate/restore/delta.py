"""Restore an incremental backup onto a target that already holds its parent.

The delta's objects go through the same plan, graph and transforms as any restore, with
the existing-resource policy `update` (an object the parent's restore created is replaced
with its newer version).  Then the objects the source deleted since the parent are
deleted on the target, but only those a restore of this backup's chain created (they
carry Velero's restore labels naming a backup of the chain): anything else by that name
is left alone and reported.  Deleting is idempotent, so a resumed restore repeats it.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from migrate.cluster import Cluster
from migrate.errors import ClusterError, ClusterUnreachable, NotFound, UsageError
from migrate.restore.journal import ObjectResult
from migrate.restore.source import LoadedBackup
from migrate.store import Store
from migrate.store.positions import Deleted, read_positions
from migrate.transform.mappings import BACKUP_LABEL, RESTORE_LABEL, Mappings
from migrate.transform.scope import Scope

log = logging.getLogger(__name__)


@dataclass
class DeltaInfo:
    chain: list[str]  # the backups it builds on, oldest first, itself last
    deleted: list[Deleted] = field(default_factory=list)

    @property
    def parent(self) -> str:
        return self.chain[-2]


def delta_of(store: Store, loaded: LoadedBackup, scope: Scope) -> DeltaInfo | None:
    """The chain and deletions of an incremental backup (in the restore's scope); None
    for a full one."""
    raw = loaded.manifest.raw if loaded.manifest else {}
    if not raw.get("incremental"):
        return None
    positions = read_positions(store, loaded.info.name)
    if positions is None or not positions.incremental:
        raise UsageError(f"backup {loaded.info.name} is incremental but records no parent")
    deleted = [
        d for d in positions.deleted if d.namespace is None or scope.namespace_included(d.namespace)
    ]
    return DeltaInfo(positions.chain, deleted)


# Where a restore of the chain leaves its labels, looked at in this order (a namespace that
# existed before the restore is used as it is, unlabelled; its objects are not).
RESTORED_KINDS = (("", "namespaces"), ("", "serviceaccounts"), ("", "configmaps"),
                  ("", "services"), ("apps", "deployments"), ("apps", "statefulsets"))  # fmt: skip


def check_parent_restored(target: Cluster, info: DeltaInfo, namespaces: list[str]) -> None:
    """The target must hold what the chain's restores created: one object in the
    namespaces labelled with a backup of the chain is enough to tell."""
    if not namespaces:
        return
    selector = f"{BACKUP_LABEL} in ({','.join(info.chain[:-1])})"
    disc = target.discovery()
    for group, resource in RESTORED_KINDS:
        res = disc.get(group, resource)
        if res is None:
            continue
        for ns in namespaces:
            where = None if resource == "namespaces" else ns
            try:
                found = next(iter(target.list(res, where, label_selector=selector, limit=1)), None)
            except NotFound:
                continue
            if found is not None and (where or found["metadata"]["name"] in namespaces):
                return
    raise UsageError(
        f"backup {info.chain[-1]} is an increment of {info.parent}, and the target holds no "
        f"restore of it (nothing in {', '.join(namespaces)} was restored from its chain)",
        hint=f"restore {info.chain[0]} (and its increments in order) first",
    )


def apply_deletions(
    target: Cluster, info: DeltaInfo, mappings: Mappings, parallelism: int
) -> list[ObjectResult]:
    """Delete on the target what the source deleted, where a restore of the chain made it."""
    chain = set(info.chain)

    def one(d: Deleted) -> ObjectResult:
        res = target.discovery().get(d.group, d.resource)
        ns = mappings.namespace(d.namespace)
        kind = res.kind if res is not None else d.resource
        key = (d.group, kind, ns, d.name)
        gr = f"{d.resource}.{d.group}" if d.group else d.resource
        if res is None:
            return ObjectResult(key, gr, "skipped", "deleted on the source; not served here")
        try:
            live = target.get(res, d.name, ns if res.namespaced else None)
            labels = live["metadata"].get("labels") or {}
            if labels.get(BACKUP_LABEL) not in chain or not labels.get(RESTORE_LABEL):
                why = "deleted on the source, but not restored by kube-migrate here: left alone"
                return ObjectResult(key, gr, "skipped", why, live["metadata"].get("uid", ""))
            target.delete(res, d.name, ns if res.namespaced else None)
        except NotFound:
            return ObjectResult(key, gr, "skipped", "deleted on the source; already gone here")
        except ClusterUnreachable:
            raise
        except ClusterError as exc:
            return ObjectResult(key, gr, "failed", f"delete refused: {exc.message}")
        log.debug("deleted %s %s/%s (deleted on the source)", kind, ns or "", d.name)
        return ObjectResult(key, gr, "deleted", "deleted on the source")

    with ThreadPoolExecutor(max_workers=max(1, parallelism)) as pool:
        return list(pool.map(one, info.deleted))
