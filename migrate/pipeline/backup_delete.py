"""`backup delete` and `backup gc` with what a backup left outside its folder: its volume
data (kopia snapshots in the bucket's repositories), the VolumeSnapshots it kept as restore
points (--keep-snapshots) in its source cluster, and, when a cluster is given, the
temporary snapshots and claims interrupted backups left behind.

Here because the backup catalog (backup/) and the volumes (volumes/) are two steps that
never import each other.  What lies outside the folder goes first: a backup whose
snapshots could not be deleted stays in the bucket, so the records saying where they are
stay too, and the next attempt finishes.  The volume data goes where a cluster to run its
mover in is given (--kubeconfig/--context) and the mover can open the repository (image,
password); otherwise the command says, per backup, that it stays.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from migrate.backup import catalog
from migrate.cluster import Cluster
from migrate.errors import MigrateError, UsageError
from migrate.runlog import NOTICE
from migrate.store import Store
from migrate.volumes import forget, records, snapshots
from migrate.volumes.mover_pod import BACKUP_LABEL, MoverSettings

log = logging.getLogger(__name__)
Connect = Callable[[], Cluster]
Settings = Callable[[], MoverSettings]  # the movers' image, bucket access and password


@dataclass
class Deleted:
    backups: list[str] = field(default_factory=list)
    objects: int = 0
    snapshots: list[str] = field(default_factory=list)  # namespace/name, kept ones deleted
    leftovers: int = 0  # temporary snapshots and claims of interrupted backups
    kopia_snapshots: list[str] = field(default_factory=list)  # volume data deleted
    volume_data_left: int = 0  # backups whose volume data stays in the bucket


def kept(copies: list[records.VolumeCopy]) -> list[str]:
    """namespace/name of every VolumeSnapshot a backup's copies kept in its source cluster."""
    return [f"{v.namespace}/{v.kept_snapshot}" for v in copies if v.kept_snapshot]


class VolumeData:
    """Deletes backups' volume data (volumes/forget.py) with one cluster and one set of
    mover settings, holding back what the bucket's other backups name."""

    def __init__(self, store: Store, cluster: Cluster | None, settings: Settings | None) -> None:
        self.store, self.cluster = store, cluster
        self._settings, self._why = settings, ""
        self._cfg: MoverSettings | None = None
        self._named: dict[str, set[str]] | None = None  # backup -> kopia snapshot ids

    def delete(self, name: str, copies: list[records.VolumeCopy], out: Deleted) -> None:
        """Delete backup `name`'s volume data (its `copies`), or say that it stays (and
        why)."""
        ids = forget.ids_of(copies)
        if not ids:
            return
        cfg = self._config() if self.cluster is not None else None
        if self.cluster is None or cfg is None:
            why = self._why or "no cluster given to run the mover deleting it in"
            log.warning("backup %s: its volume data (%d kopia snapshots in %s) stays in the "
                        "bucket: %s; pass --kubeconfig/--context of its source cluster to "
                        "delete it with the backup", name, sum(map(len, ids.values())),
                        ", ".join(f"kopia/{ns}/" for ns in sorted(ids)), why)  # fmt: skip
            out.volume_data_left += 1
            return
        others = set().union(*(v for k, v in self._references().items() if k != name))
        done = forget.forget(self.cluster, name, ids, cfg, others)
        out.kopia_snapshots += done.deleted
        log.log(NOTICE, "backup %s: %d kopia snapshots deleted from %s (%d already gone, "
                "%d kept: another backup names them); kopia's maintenance reclaims their "
                "contents once a day old", name, len(done.deleted), ", ".join(done.repositories),
                len(done.missing), len(done.shared))  # fmt: skip

    def forget_backup(self, name: str) -> None:
        """`name` is deleted: its snapshots no longer hold others back."""
        if self._named is not None:
            self._named.pop(name, None)

    def _references(self) -> dict[str, set[str]]:
        if self._named is None:
            self._named = {}
            for row in catalog.list_backups(self.store):
                self._named[row.name] = set().union(
                    *forget.snapshot_ids(self.store, row.name).values()
                )
        return self._named

    def _config(self) -> MoverSettings | None:
        if self._cfg is None and self._settings is not None and not self._why:
            try:
                self._cfg = self._settings()
            except MigrateError as exc:
                self._why = exc.message + (f" ({exc.hint})" if exc.hint else "")
        return self._cfg


def delete_backup(
    store: Store, name: str, connect: Connect, given: bool, settings: Settings | None = None
) -> Deleted:
    """Delete the backup's kept snapshots and volume data, then its folder.  `connect`
    reaches the source cluster: used when the backup kept snapshots, or when it was
    `given` by the user (then also for its volume data, with `settings`, and for the
    temporary leftovers of this backup's interrupted attempts)."""
    out = Deleted()
    copies = records.read(store, name)
    found = kept(copies)
    cluster = None
    if found or given:
        cluster = _connect(connect, name, found)
        out.snapshots = snapshots.delete_kept(cluster, name) if found else []
        out.leftovers = snapshots.leftovers(cluster, name)
    VolumeData(store, cluster if given else None, settings).delete(name, copies, out)
    out.objects = catalog.delete(store, name)
    out.backups.append(name)
    return out


def gc(
    store: Store,
    connect: Connect,
    given: bool,
    now: datetime | None = None,
    keep: frozenset[str] = frozenset(),
    settings: Settings | None = None,
) -> Deleted:
    """`backup gc`: every expired backup with its kept snapshots and volume data, but those
    in `keep` (a schedule's run never collects the backup it just made, whatever its
    TTL).  Without a cluster `given`, a backup that kept snapshots is left, with a warning,
    and volume data stays (said per backup); with one, the temporary leftovers of every
    interrupted backup go too."""
    out = Deleted()
    cluster = connect() if given else None
    if cluster is not None:
        out.leftovers = snapshots.leftovers(cluster, None)
    data = VolumeData(store, cluster, settings)
    for row in catalog.expired(store, now):
        if row.name in keep:
            continue
        copies = records.read(store, row.name)
        found = kept(copies)
        if found and cluster is None:
            log.warning("backup %s expired but kept %d VolumeSnapshots in its source cluster: "
                        "not deleting it (pass --kubeconfig)", row.name, len(found))  # fmt: skip
            continue
        if found and cluster is not None:
            out.snapshots += snapshots.delete_kept(cluster, row.name)
        data.delete(row.name, copies, out)
        out.objects += catalog.delete(store, row.name)
        data.forget_backup(row.name)
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
