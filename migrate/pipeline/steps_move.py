"""The steps that move a migration's data: backup, wait for sync, restore, and wait
for the restored workloads.  Each takes the run's Context, its Step and the attempt
number, and returns (exit code, result); the result is journaled and reported.

A run reuses, deletes or restores only what it made itself: its backup carries its run
id (or, killed before that label was written, is claimed in its journal), and a
restore journal names its run.
"""

from __future__ import annotations

import logging
import time
from datetime import timedelta
from typing import Any

from migrate.backup import catalog
from migrate.backup.create import BackupOptions, create_backup
from migrate.errors import EXIT_PARTIAL, UsageError
from migrate.pipeline.context import Context
from migrate.pipeline.events import task
from migrate.pipeline.restore_data import data_level
from migrate.pipeline.snapshot import live_snapshot
from migrate.pipeline.steps_data import target_settings, volume_step
from migrate.playbook import Step
from migrate.restore.bucket_journal import read_header
from migrate.restore.graph import to_dot
from migrate.restore.journal import Journal, state_dir
from migrate.restore.ready import WORKLOAD_KINDS, wait_ready
from migrate.restore.run import plan_restore, run_restore
from migrate.store import layout
from migrate.sync.wait import wait_for_sync

log = logging.getLogger(__name__)


def _clash(name: str, row: catalog.BackupRow, run: str) -> str:
    owner = f"run {row.run}" if row.run else f"no run ({row.made_by}, {row.phase})"
    return f"backup {name!r} exists already and belongs to {owner}, not to this run {run}"


def _clash_hint(name: str, url: str) -> str:
    return (
        "give this run another backup name (--set backup.name=NEW, or unset spec.backup.name "
        f"to name it after the run), or delete the old one: `kube-migrate backup delete {name} "
        f"--bucket {url}`"
    )


def backup_step(ctx: Context, step: Step, attempts: int) -> tuple[int, dict[str, Any]]:
    """Back up as this run's backup.  A backup of that name already in the bucket is
    reused (Completed) or deleted and taken again only when this run made it: labelled
    with its run id, or (Incomplete, so unlabelled) claimed in its journal before the
    first write.  Another run's backup is an error naming both runs."""
    name = ctx.backup_name()
    store = ctx.store()
    row = catalog.find(store, name)
    claim = f"backups/{name}"
    if row is not None:
        mine = row.run == ctx.run or (
            row.run is None and row.phase == catalog.INCOMPLETE and claim in ctx.state.claimed
        )
        if not mine:
            raise UsageError(_clash(name, row, ctx.run), hint=_clash_hint(name, str(store.url)))
        if row.phase == "Completed":
            return 0, {"backup": name, "phase": "Completed", "note": "reused: made by this run"}
        catalog.delete(store, name)  # this run's interrupted attempt: take it again
    ctx.state.claim(claim)
    bs = ctx.pb.backup
    ttl = timedelta(seconds=bs.ttl_seconds)
    opts = BackupOptions(
        name,
        ctx.pb.scope(),
        ttl=ttl,
        parallelism=bs.parallelism,
        encryption_key=ctx.key(),
        run=ctx.run,
    )
    volumes = volume_step(ctx, name)
    opts.add = volumes
    with task(ctx.sink, f"backup {name}") as progress:
        summary = create_backup(ctx.cluster("source"), store, opts, progress)
    result = summary.as_dict()
    result.pop("byNamespace", None)
    code = 0 if summary.phase == "Completed" else EXIT_PARTIAL
    if volumes is not None and volumes.summary is not None:
        result["volumes"] = volumes.summary.as_dict()
    return code, result


def wait_sync_step(ctx: Context, step: Step, attempts: int) -> tuple[int, dict[str, Any]]:
    ws = ctx.pb.wait_for_sync
    start = time.monotonic()
    state = wait_for_sync(ctx.store("target"), ctx.backup_name(), ws.timeout, ws.interval)
    return 0, {
        "backup": ctx.backup_name(),
        "phase": state.phase,
        "seconds": round(time.monotonic() - start, 2),
        "message": state.message,
    }


def restore_step(ctx: Context, step: Step, attempts: int) -> tuple[int, dict[str, Any]]:
    """Restore (or, dry, plan).  A journal of this restore name (here or in the bucket)
    is resumed only when it is this run's (Journal checks and names both runs), and
    the backup this run took is restored only if it still carries this run's label."""
    target, store = ctx.cluster("target"), ctx.store("target")
    name = ctx.pb.restore_name(ctx.run)
    journal = state_dir() / "restores" / f"{name}.journal.jsonl"
    opts = ctx.restore_options(resume=journal.exists() or read_header(store, name) is not None)
    if ctx.dry_run and not ctx.pb.backup.from_schedule:  # the backup is not taken: plan
        store, opts.backup = live_snapshot(ctx)  # from what it would hold (not encrypted)
        opts.encryption_key = None
    loaded, plan = plan_restore(target, store, opts)
    owner = loaded.info.labels.get(layout.RUN_LABEL)
    if ctx.pb.has_step("backup") and not ctx.dry_run and owner != ctx.run:
        raise UsageError(
            f"backup {opts.backup!r} is not the one this run {ctx.run} took "
            f"(it belongs to {f'run {owner}' if owner else 'no run'}); not restoring it",
            hint=_clash_hint(opts.backup, str(store.url)),
        )
    ctx.artefacts["graph"] = to_dot(plan.graph, plan.late)
    levels = [
        {"level": n, "objects": len(lv), "kinds": ", ".join(sorted({it.kind for it in lv}))}
        for n, lv in enumerate(plan.levels)
    ]
    if ctx.dry_run:
        return 0, {
            "restore": opts.name,
            "planned": len(plan.restorable),
            "levels": levels,
            "skipped": sum(1 for it in plan.items if it.skip),
        }
    data = data_level(
        target, store, opts.backup, (loaded, plan), target_settings(ctx),
        lambda t: task(ctx.sink, t), clone=ctx.pb.restore.clone_volumes, restore=opts.name,
    )  # fmt: skip
    with task(ctx.sink, f"restore {opts.name}") as progress:
        summary = run_restore(
            target, store, opts, progress, planned=(loaded, plan),
            after_level=data.after, before_level=data.before,
        )  # fmt: skip
    ctx.artefacts["plan"] = plan  # waitReady, in the same process, needs no second read
    result = summary.as_dict()
    result["levels"] = levels
    if data.level is not None:
        result["volumes"] = data.level.results
    if data.clones:
        result["clonedClaims"] = sorted(f"{ns}/{claim}" for ns, claim in data.clones)
        unbound = data.finish()
        for message in unbound:
            log.warning("%s", message)
        if unbound:
            result["cloneWarnings"] = unbound
    result["failedObjects"] = [
        {"kind": r.key[1], "namespace": r.key[2] or "", "name": r.key[3], "message": r.message}
        for r in summary.results
        if r.result == "failed"
    ]
    gate = ctx.pb.gates.fail_on("restore")
    failed = summary.phase != "Completed" and gate != "never"
    return (EXIT_PARTIAL if failed else 0), result


def wait_ready_step(ctx: Context, step: Step, attempts: int) -> tuple[int, dict[str, Any]]:
    """Wait for the workloads this run's restore created or updated (not for objects it
    found already there: their readiness is not the migration's doing)."""
    target, store = ctx.cluster("target"), ctx.store("target")
    opts = ctx.restore_options(resume=False)
    journal = Journal(opts.name, resume=True, store=store, run=ctx.run)
    journal.close()
    plan = ctx.artefacts.get("plan") or plan_restore(target, store, opts)[1]
    items = [
        it
        for it in plan.restorable
        if it.kind in WORKLOAD_KINDS
        and (done := journal.done(it.key)) is not None
        and done.result in ("created", "updated")
    ]
    start = time.monotonic()
    wait_ready(target, items, ctx.pb.wait_ready_timeout)
    return 0, {"workloads": len(items), "seconds": round(time.monotonic() - start, 1)}
