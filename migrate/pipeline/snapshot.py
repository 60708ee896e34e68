"""Live snapshot + preflight, once for `kube-migrate preflight` and the run's steps.

A live source is backed up by backup's own code into a private temporary local folder,
restore's own planner turns that backup (or a real one) into the objects restore would
create, and preflight checks them against the target.  So preflight judges exactly
what backup and restore would do, and the live and from-backup modes agree.  Steps meet
here because the step packages never import each other.
"""

from __future__ import annotations

from migrate.backup.create import BackupOptions, create_backup
from migrate.cluster import Cluster
from migrate.cluster.identity import cluster_id
from migrate.pipeline.context import Context
from migrate.preflight import PreflightOptions, Report, read_source_facts, run_preflight
from migrate.restore.guard import backup_cluster_id
from migrate.restore.plan import RestoreOptions
from migrate.restore.run import plan_restore
from migrate.store import Store
from migrate.store.scratch import ScratchStore
from migrate.transform.scope import Scope
from migrate.transform.snapshot_method import SnapshotSupport
from migrate.volumes import records, snapshots

SNAPSHOT = "preflight"  # name of the throw-away backup of a live source


def take_snapshot(source: Cluster, scope: Scope, parallelism: int, prefix: str) -> ScratchStore:
    """Back up `source` as backup SNAPSHOT into a new private folder (prefix: its name's
    start).  The copy holds the source's Secrets: the caller removes it (cleanup())
    on every way out; it is removed here if the backup fails."""
    tmp = ScratchStore(prefix)
    opts = BackupOptions(
        SNAPSHOT,
        scope,
        parallelism=parallelism,
        detect_changes=False,
        warn_plaintext_secrets=False,
    )
    try:
        create_backup(source, tmp.store, opts)
    except BaseException:
        tmp.cleanup()
        raise
    return tmp


def check_plan(
    target: Cluster,
    store: Store,
    restore: RestoreOptions,
    origin: str,
    parallelism: int = 8,
    volumes: str = "none",
    source: Cluster | None = None,
    snapshot_volumes: str = "auto",
    same_cluster: bool = False,
) -> Report:
    """Preflight of backup `restore.backup` in `store` (origin "cluster": a live
    snapshot, "backup": a real one) against `target`, as `restore` would restore it.
    `source` (the live source) says which claims a backup would read from snapshots."""
    facts = read_source_facts(store, restore.backup, origin)
    loaded, plan = plan_restore(target, store, restore)
    if origin == "backup":  # its kept snapshots are clones only in the cluster they are in
        source_id = backup_cluster_id(loaded)
        same_cluster = source_id is not None and source_id == cluster_id(target)
    options = PreflightOptions(
        existing_policy=restore.existing_policy,
        namespace_mappings=restore.mappings.namespaces,
        storage_class_mappings=restore.mappings.storage_classes,
        parallelism=parallelism,
        pv_policy=restore.pv_policy,
        volumes=volumes,
        data_bytes=_recorded(store, restore.backup) if origin == "backup" else None,
        kept=_kept(store, restore.backup) if origin == "backup" else {},
        same_cluster=same_cluster,
        snapshot_volumes=snapshot_volumes,
        snapshot_support=_support(source, volumes, snapshot_volumes),
    )
    return run_preflight(facts, target, list(plan.items), options)


def _recorded(store: Store, backup: str) -> dict[tuple[str, str], int]:
    """(namespace, claim) -> bytes of every claim whose data the backup holds."""
    return {
        (v.namespace, v.claim): v.total_bytes for v in records.read(store, backup) if v.snapshot
    }


def _support(source: Cluster | None, volumes: str, mode: str) -> SnapshotSupport | None:
    """What the live source offers for snapshots (not read with --snapshot-volumes never:
    then every claim says it is copied live by request); None: no live source."""
    if source is None or volumes == "none":
        return None
    return SnapshotSupport() if mode == "never" else snapshots.support(source)


def _kept(store: Store, backup: str) -> dict[tuple[str, str], str]:
    """(namespace, claim) -> the VolumeSnapshot kept instead of a data copy."""
    return {
        (v.namespace, v.claim): v.kept_snapshot
        for v in records.read(store, backup)
        if v.kept_snapshot and not v.snapshot
    }


def live_snapshot(ctx: Context) -> tuple[Store, str]:
    """The run's snapshot of the live source (taken once per run, removed by
    Context.close()), for preflight and for --dry-run plans: exactly what backup would
    take, written nowhere."""
    if ctx.snapshot is None:
        tmp = take_snapshot(
            ctx.cluster("source"), ctx.pb.scope(), ctx.pb.backup.parallelism, "kube-migrate-run-"
        )
        ctx.snapshot = (tmp, SNAPSHOT)
    return ctx.snapshot[0].store, ctx.snapshot[1]
