"""`backup delete` and `backup gc` with what a backup left in the source cluster: the
VolumeSnapshots kept as restore points (--keep-snapshots), and, when a cluster is
given, the temporary snapshots and claims interrupted backups left behind.  A backup's
volume data (kopia snapshots) is not deleted: that is said, per backup.

Here because the backup catalog (backup/) and the snapshots (volumes/) are two steps
that never import each other.  The snapshots go first: a backup whose snapshots could
not be deleted stays in the bucket, so the records saying where they are stay too.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from migrate.backup import catalog
from migrate.cluster import Cluster
from migrate.errors import MigrateError, UsageError
from migrate.store import Store
from migrate.volumes import records, snapshots
from migrate.volumes.mover_pod import BACKUP_LABEL

log = logging.getLogger(__name__)
Connect = Callable[[], Cluster]


@dataclass
class Deleted:
    backups: list[str] = field(default_factory=list)
    objects: int = 0
    snapshots: list[str] = field(default_factory=list)  # namespace/name, kept ones deleted
    leftovers: int = 0  # temporary snapshots and claims of interrupted backups
    volume_data_left: int = 0  # claims whose kopia snapshots stay in the bucket


def _data_left(store: Store, name: str) -> int:
    """Say so when a deleted backup's volume data stays in the bucket: kube-migrate does
    not delete kopia snapshots (nor run kopia's maintenance), so the repositories keep the
    data; returns how many claims' copies stay."""
    copies = [v for v in records.read(store, name) if v.snapshot]
    if copies:
        namespaces = sorted({v.namespace for v in copies})
        log.warning("backup %s: the volume data of its %d claim(s) stays in the bucket's kopia "
                    "repositories (%s): kube-migrate does not delete kopia snapshots yet",
                    name, len(copies),
                    ", ".join(f"kopia/{ns}/" for ns in namespaces))  # fmt: skip
    return len(copies)


def kept(store: Store, name: str) -> list[str]:
    """namespace/name of every VolumeSnapshot the backup kept in its source cluster."""
    copies = records.read(store, name)
    return [f"{v.namespace}/{v.kept_snapshot}" for v in copies if v.kept_snapshot]


def delete_backup(store: Store, name: str, connect: Connect, given: bool) -> Deleted:
    """Delete the backup's kept snapshots, then its folder.  `connect` reaches the source
    cluster: used when the backup kept snapshots, or when it was `given` by the user
    (then also for the temporary leftovers of this backup's interrupted attempts)."""
    out = Deleted()
    found = kept(store, name)
    if found or given:
        cluster = _connect(connect, name, found)
        out.snapshots = snapshots.delete_kept(cluster, name) if found else []
        out.leftovers = snapshots.leftovers(cluster, name)
    out.volume_data_left = _data_left(store, name)
    out.objects = catalog.delete(store, name)
    out.backups.append(name)
    return out


def gc(
    store: Store,
    connect: Connect,
    given: bool,
    now: datetime | None = None,
    keep: frozenset[str] = frozenset(),
) -> Deleted:
    """`backup gc`: every expired backup with its kept snapshots, but those in `keep` (a
    schedule's run never collects the backup it just made, whatever its TTL).  Without a
    cluster `given`, a backup that kept snapshots is left, with a warning; with one, the
    temporary leftovers of every interrupted backup go too."""
    out = Deleted()
    cluster = connect() if given else None
    if cluster is not None:
        out.leftovers = snapshots.leftovers(cluster, None)
    for row in catalog.expired(store, now):
        if row.name in keep:
            continue
        found = kept(store, row.name)
        if found and cluster is None:
            log.warning("backup %s expired but kept %d VolumeSnapshots in its source cluster: "
                        "not deleting it (pass --kubeconfig)", row.name, len(found))  # fmt: skip
            continue
        if found and cluster is not None:
            out.snapshots += snapshots.delete_kept(cluster, row.name)
        out.volume_data_left += _data_left(store, row.name)
        out.objects += catalog.delete(store, row.name)
        out.backups.append(row.name)
    out.backups.sort()
    return out


def _connect(connect: Connect, name: str, found: list[str]) -> Cluster:
    """The source cluster; when it cannot be reached and snapshots wait there, a
    UsageError before anything is deleted."""
    try:
        return connect()
    except MigrateError as exc:
        if not found:
            raise
        raise UsageError(
            f"backup {name} kept {len(found)} VolumeSnapshots in its source cluster "
            f"({', '.join(found[:3])}{', ...' if len(found) > 3 else ''}), which is not "
            f"reachable: {exc.message}",
            hint="pass --kubeconfig/--context of the source cluster so they go with it, or "
            f"delete them first: kubectl delete volumesnapshots -A -l "
            f"{BACKUP_LABEL}={name}",
        ) from exc
