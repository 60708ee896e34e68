"""Run a playbook's steps in order against real clusters and buckets, recording each
step in the run journal (so `--resume` continues after a crash or a failed gate), and
collecting what the report shows.  One function per step kind, registered in STEPS.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from migrate.backup import catalog
from migrate.backup.create import BackupOptions, create_backup
from migrate.cli.logs import NOTICE
from migrate.cli.options import connect, open_bucket
from migrate.cli.progress import progress_bar
from migrate.cli.run_steps import live_snapshot, preflight_step, scale_step, verify_step
from migrate.cluster import Cluster
from migrate.errors import EXIT_PARTIAL, MigrateError, UsageError
from migrate.playbook import Endpoints, Playbook, RunState, Step
from migrate.restore.bucket_journal import read_header
from migrate.restore.graph import to_dot
from migrate.restore.journal import Journal, state_dir
from migrate.restore.plan import RestoreOptions
from migrate.restore.ready import WORKLOAD_KINDS, wait_ready
from migrate.restore.run import plan_restore, run_restore
from migrate.store import Store, layout
from migrate.store.crypto import EncryptionKey, load_key
from migrate.sync.wait import wait_for_sync
from migrate.transform.modifiers import load_modifiers

log = logging.getLogger(__name__)


@dataclass
class Context:
    """What the steps of one run share: clients (made on first use), names, artefacts."""

    state: RunState
    pb: Playbook
    endpoints: Endpoints
    dry_run: bool = False
    qps: float | None = None  # None: adaptive (cluster/ratelimit.py)
    burst: int = 100
    clients: dict[str, Any] = field(default_factory=dict)
    artefacts: dict[str, Any] = field(default_factory=dict)  # graph DOT, junit XML

    def cluster(self, side: str) -> Cluster:
        if side not in self.clients:
            ep = self.endpoints.source if side == "source" else self.endpoints.target
            self.clients[side] = connect(
                ep.kubeconfig, ep.context, name=side, qps=self.qps, burst=self.burst, pool_size=24
            )
        c: Cluster = self.clients[side]
        return c

    def store(self, side: str = "source") -> Store:
        key = f"bucket-{side}"
        if key not in self.clients:
            ep = self.endpoints.target_bucket if side == "target" else self.endpoints.bucket
            ep = ep or self.endpoints.bucket
            if ep is None:
                raise UsageError(
                    "this playbook needs a bucket", hint="set --bucket or KUBE_MIGRATE_BUCKET"
                )
            kwargs = ep.open_kwargs()
            kwargs["read_only_bucket"] = kwargs["read_only_bucket"] or self.dry_run
            self.clients[key] = open_bucket(**kwargs)
        s: Store = self.clients[key]
        return s

    def key(self, side: str = "source") -> EncryptionKey | None:
        """The tarball key of the bucket on `side` (spec.bucket.encryptionKeyFile or
        --encryption-key-file; the target bucket's falls back to it), read once."""
        name = f"key-{side}"
        if name not in self.clients:
            ep = self.endpoints.target_bucket if side == "target" else self.endpoints.bucket
            ep = ep or self.endpoints.bucket
            path = ep.encryption_key_file if ep else None
            self.clients[name] = load_key(path) if path else None
        key: EncryptionKey | None = self.clients[name]
        return key

    @property
    def run(self) -> str:
        return self.state.run

    def backup_name(self) -> str:
        """The backup this run restores: its own, a named one, or the newest of a schedule."""
        if "backupName" in self.artefacts:
            return str(self.artefacts["backupName"])
        prefix = self.pb.backup.from_schedule
        if prefix:
            rows = [
                r
                for r in catalog.list_backups(self.store("target"))
                if r.name.startswith(prefix) and r.phase == "Completed"
            ]
            if not rows:
                raise UsageError(
                    f"no Completed backup named {prefix}* in the bucket",
                    hint="run the backup schedule first, or set spec.backup.name",
                )
            name = max(rows, key=lambda r: (r.created is not None, r.created, r.name)).name
        else:
            name = self.pb.backup_name(self.run)
        self.artefacts["backupName"] = name
        return name

    def restore_options(self, resume: bool) -> RestoreOptions:
        rs = self.pb.restore
        return RestoreOptions(
            name=self.pb.restore_name(self.run),
            backup=self.backup_name(),
            scope=self.pb.scope(),
            mappings=self.pb.mappings(),
            modifiers=load_modifiers(rs.resource_modifiers) if rs.resource_modifiers else None,
            existing_policy=rs.existing_resource_policy,
            restore_status=rs.restore_status,
            preserve_node_ports=rs.preserve_node_ports,
            pv_policy=rs.pv_policy,
            parallelism=rs.parallelism,
            resume=resume,
            encryption_key=self.key("target"),
            run=self.run,
        )


def _clash(name: str, row: catalog.BackupRow, run: str) -> str:
    owner = f"run {row.run}" if row.run else f"no run ({row.made_by}, {row.phase})"
    return f"backup {name!r} exists already and belongs to {owner}, not to this run {run}"


def _clash_hint(name: str, url: str) -> str:
    return (
        "give this run another backup name (--set backup.name=NEW, or unset spec.backup.name "
        f"to name it after the run), or delete the old one: `kube-migrate backup delete {name} "
        f"--bucket {url}`"
    )


StepFn = Callable[[Context, Step, int], tuple[int, dict[str, Any]]]


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
    with progress_bar(f"backup {name}") as progress:
        summary = create_backup(ctx.cluster("source"), store, opts, progress)
    result = summary.as_dict()
    result.pop("byNamespace", None)
    code = 0 if summary.phase == "Completed" else EXIT_PARTIAL
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
    with progress_bar(f"restore {opts.name}") as progress:
        summary = run_restore(target, store, opts, progress, planned=(loaded, plan))
    ctx.artefacts["plan"] = plan  # waitReady, in the same process, needs no second read
    result = summary.as_dict()
    result["levels"] = levels
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


STEPS: dict[str, StepFn] = {
    "preflight": preflight_step,
    "backup": backup_step,
    "waitForSync": wait_sync_step,
    "restore": restore_step,
    "waitReady": wait_ready_step,
    "verify": verify_step,
    "scale": scale_step,
}
# In --dry-run only these run (they write nothing); the others are reported as skipped.
DRY_RUN_STEPS = frozenset({"preflight", "restore"})


def run_steps(ctx: Context) -> int:
    """Run every pending step; stop at the first failure.  Returns the worst exit code."""
    worst = 0
    total = len(ctx.state.steps)
    for st in ctx.state.steps:
        if st.status in ("succeeded", "skipped"):
            continue
        step = ctx.pb.steps[st.index]
        if ctx.dry_run and step.name not in DRY_RUN_STEPS:
            ctx.state.finish_step(st.index, "skipped", {"note": "--dry-run writes nothing"})
            continue
        ctx.state.start_step(st.index)
        log.log(NOTICE, "step %d/%d: %s", st.index + 1, total, step.label)
        start = time.monotonic()
        try:
            code, result = STEPS[step.name](ctx, step, st.attempts)
        except MigrateError as exc:
            code, result = exc.exit_code, {"error": exc.message, "hint": exc.hint}
        except KeyboardInterrupt:
            ctx.state.finish_step(st.index, "failed", {"error": "interrupted"}, 130)
            raise
        result["seconds"] = round(time.monotonic() - start, 2)
        status = "succeeded" if code == 0 else "failed"
        ctx.state.finish_step(st.index, status, result, code)
        worst = max(worst, code)
        if code:
            log.warning("step %s failed (exit %d): %s", step.label, code, result.get("error", ""))
            break
    return worst
