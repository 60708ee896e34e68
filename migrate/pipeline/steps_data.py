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
from migrate.errors import UsageError
from migrate.pipeline.context import Context
from migrate.pipeline.events import task
from migrate.restore.journal import Journal, ObjectResult
from migrate.restore.plan import Plan
from migrate.restore.source import Item
from migrate.store import Store
from migrate.store.crypto import EncryptionKey
from migrate.store.mover_access import mover_access
from migrate.transform.scope import Scope
from migrate.transform.workloads import pod_spec
from migrate.volumes import records
from migrate.volumes.backup import VolumeBackupOptions, VolumeBackupSummary, backup_volumes
from migrate.volumes.mover_pod import MoverSettings
from migrate.volumes.password import repository_id, repository_password
from migrate.volumes.quiesce import AnnotationRecord, Record, left_scaled, restore_replicas
from migrate.volumes.restore import DataLevel, PlannedClaim, check_sizes, placements
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
    record: Record | None = None
    summary: VolumeBackupSummary | None = None

    def __call__(self, backup: BackupSummary) -> Addition:
        opts = VolumeBackupOptions(
            self.backup, self.mode, self.settings, self.parallelism, self.per_node,
            quiesce=self.quiesce, record=self.record,
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
    store, key = ctx.store(), ctx.key()
    return VolumeStep(
        ctx.cluster("source"),
        store,
        ctx.pb.scope(),
        name,
        vs.mode,
        lambda: mover_settings(store, key, vs.mover_image, create=True, timeout=vs.timeout),
        parallelism=vs.parallelism,
        per_node=vs.per_node,
        quiesce=vs.quiesce,
        record=ctx.state.record_quiesced,
        open_task=lambda title: task(ctx.sink, title),
    )


def target_settings(ctx: Context) -> Callable[[], MoverSettings]:
    """The target side's mover settings, made when first needed."""
    vs = ctx.pb.volumes
    return lambda: mover_settings(
        ctx.store("target"), ctx.key("target"), vs.mover_image, create=False, timeout=vs.timeout
    )


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
    plan: Plan,
    settings: Callable[[], MoverSettings],
    open_task: Callable[[str], AbstractContextManager[Callable[[str, int], None]]] | None = None,
) -> tuple[DataLevel | None, Callable[[list[Item], Journal], None] | None]:
    """Restore's data level for this plan, after checking (before any write) that every
    target claim holds its data; (None, None) when the backup has no volume data."""
    copies = {(v.namespace, v.claim): v for v in records.read(store, backup) if v.snapshot}
    foreign = None if copies else records.velero_only(store, backup)
    if foreign:
        log.warning("%s", foreign)
    claims = planned_claims(plan)
    if not copies or not any((c.source_ns, c.name) in copies for c in claims):
        return None, None
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

    return level, after


def check_data(
    target: Cluster,
    store: Store,
    backup: str,
    namespace: Callable[[str | None], str | None],
    settings: Callable[[], MoverSettings],
) -> list[ClaimCheck]:
    """verify --data: every copied claim of the backup against its restored copy."""
    copies = records.read(store, backup)
    if not any(v.snapshot for v in copies):
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
