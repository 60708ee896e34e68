"""Where the object steps meet the volume-data step (migrate/volumes): backup copies the
claims' data after the objects, restore fills each claim between the level that creates
it and the workloads that use it, verify checks the files.  Steps never import each
other, so the meeting happens here, for a run and for the single-step commands alike.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import Any

from migrate.backup.create import Addition
from migrate.backup.sink import BackupSummary, note
from migrate.cluster import Cluster
from migrate.cluster.identity import cluster_id
from migrate.errors import UsageError
from migrate.pipeline.context import Context
from migrate.pipeline.events import task
from migrate.store import Store
from migrate.store.crypto import EncryptionKey
from migrate.store.mover_access import mover_access
from migrate.transform.scope import Scope
from migrate.volumes import records
from migrate.volumes.backup import VolumeBackupOptions, VolumeBackupSummary, backup_volumes
from migrate.volumes.mover_pod import MoverSettings
from migrate.volumes.password import repository_id, repository_password
from migrate.volumes.quiesce import AnnotationRecord, Record, left_scaled, restore_replicas
from migrate.volumes.verify import ClaimCheck, verify_data

log = logging.getLogger(__name__)
IMAGE_ENV = "KUBE_MIGRATE_MOVER_IMAGE"
WORKLOADS = ("Pod", "Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "CronJob")


def mover_settings(
    store: Store,
    key: EncryptionKey | None,
    image: str | None,
    *,
    create: bool,
    timeout: float = 4 * 3600,
) -> MoverSettings:
    """How this process's movers reach the bucket and open its repositories."""
    image = image or os.environ.get(IMAGE_ENV)
    if not image:
        raise UsageError(
            "no mover image for the volume data",
            hint=f"pass --mover-image (or set {IMAGE_ENV}); `make images` builds it "
            "(README, 'Volume data'); or move objects only with --volumes none",
        )
    access = mover_access(store)
    repo = repository_id(store, create=create)
    password = repository_password(repo, key.secret if key else None, create=create)
    return MoverSettings(image=image, access=access, password=password, timeout=timeout)


@dataclass
class VolumeStep:
    """The volume data of one backup, as BackupOptions.add: it runs once the objects are
    in, before the files that make the backup visible, so a visible backup holds its data
    too; failed copies become the backup's errors (PartiallyFailed), and the manifest lists
    the records and the repository blobs the wait for sync looks for."""

    cluster: Cluster
    store: Store
    scope: Scope
    backup: str
    mode: str
    settings: Callable[[], MoverSettings]
    # opens the progress task of the copies: events.task on a run's sink, a CLI bar
    open_task: Callable[[str], AbstractContextManager[Callable[[str, int], None]]] | None = None
    parallelism: int = 8
    per_node: int = 2
    quiesce: str = "none"
    snapshot_volumes: str = "auto"
    keep_snapshots: bool = False
    move_data: bool = True
    record: Record | None = None
    summary: VolumeBackupSummary | None = None

    def __call__(self, backup: BackupSummary) -> Addition:
        opts = VolumeBackupOptions(
            self.backup, self.mode, self.settings, self.parallelism, self.per_node,
            quiesce=self.quiesce, record=self.record,
            snapshot_volumes=self.snapshot_volumes, keep_snapshots=self.keep_snapshots,
            move_data=self.move_data,
        )  # fmt: skip
        title = f"volume data of {self.backup}"
        with self.open_task(title) if self.open_task else nullcontext(None) as progress:
            s = backup_volumes(self.cluster, self.store, self.scope, opts, progress)
        self.summary = s
        for ns, message in s.failures:
            note(backup.errors, ns, message)
        for message in s.warnings:
            note(backup.warnings, None, message)
        return Addition(s.files, {"volumeBlobs": s.blobs} if s.blobs else {})


def volume_step(ctx: Context, name: str) -> VolumeStep | None:
    """A run's volume data (None with spec.volumes.mode none)."""
    vs = ctx.pb.volumes
    if vs.mode == "none":
        return None
    clone = clones_in_cluster(ctx) and vs.snapshot_volumes != "never"
    if clone:
        log.info("source and target are one cluster: snapshotted claims are kept as "
                 "VolumeSnapshots and cloned, not copied through the bucket")  # fmt: skip
    return VolumeStep(
        ctx.cluster("source"),
        ctx.store(),
        ctx.pb.scope(),
        name,
        vs.mode,
        source_settings(ctx),
        parallelism=vs.parallelism,
        per_node=vs.per_node,
        quiesce=vs.quiesce,
        snapshot_volumes=vs.snapshot_volumes,
        keep_snapshots=vs.keep_snapshots or clone,
        move_data=not clone,
        record=ctx.state.record_quiesced,
        open_task=lambda title: task(ctx.sink, title),
    )


def clones_in_cluster(ctx: Context) -> bool:
    """The run restores into the cluster it backs up, with restore.cloneVolumes."""
    if not (ctx.pb.has_step("restore") and ctx.pb.restore.clone_volumes):
        return False
    source = cluster_id(ctx.cluster("source"))
    return source is not None and source == cluster_id(ctx.cluster("target"))


def source_settings(ctx: Context) -> Callable[[], MoverSettings]:
    """The source side's mover settings (its repositories created when missing)."""
    vs = ctx.pb.volumes
    return lambda: mover_settings(
        ctx.store(), ctx.key(), vs.mover_image, create=True, timeout=vs.timeout
    )


def target_settings(ctx: Context) -> Callable[[], MoverSettings]:
    """The target side's mover settings, made when first needed."""
    vs = ctx.pb.volumes
    return lambda: mover_settings(
        ctx.store("target"), ctx.key("target"), vs.mover_image, create=False, timeout=vs.timeout
    )


def check_data(
    target: Cluster,
    store: Store,
    backup: str,
    namespace: Callable[[str | None], str | None],
    settings: Callable[[], MoverSettings],
    done: frozenset[str] = frozenset(),
) -> list[ClaimCheck]:
    """verify --data: every copied claim of the backup against its restored copy, but
    those `done` ("namespace/claim" on the target: checked already)."""
    copies = [
        v for v in records.read(store, backup)
        if f"{namespace(v.namespace) or v.namespace}/{v.claim}" not in done
    ]  # fmt: skip
    if not any(v.manifest_snapshot for v in copies):
        return []
    return verify_data(target, copies, lambda ns: namespace(ns) or ns, settings())


def data_result(checks: list[ClaimCheck]) -> dict[str, Any]:
    return {
        "claims": len(checks),
        "drifted": sum(1 for c in checks if not c.ok),
        "checks": [c.as_dict() for c in checks],
    }


def annotation_record(cluster: Cluster, scope: Scope) -> Record:
    """`backup create --quiesce scale-down`'s record (annotations on the workloads), after
    giving back the replicas an interrupted earlier backup of the scope took."""
    left = left_scaled(cluster, scope.explicit_namespaces())
    record = AnnotationRecord(cluster, left)
    if left:
        restore_replicas(cluster, left, record)
        log.warning("gave %d workload(s) their replicas back: an interrupted backup had "
                    "scaled them down", len(left))  # fmt: skip
    return record


def unquiesce(ctx: Context) -> list[dict[str, Any]]:
    """Give back the replicas an interrupted attempt of this run took (a resume's first
    act); returns what was scaled back."""
    scaled = list(ctx.state.quiesced)
    if scaled:
        restore_replicas(ctx.cluster("source"), scaled, ctx.state.record_quiesced)
    return scaled
