"""One increment of a live migration: back up what changed on the source since the last
backup the target holds, wait for the target's view of the bucket, and restore it onto the
target with its workloads held.  The pre-copy passes and the cut-over are each one.

The run journal records each increment restored (`restored:<backup>` among its claims),
so a resumed run continues from the last backup the target holds completely: an
increment interrupted midway is taken again from there (its changes are in the next).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from migrate.backup import catalog
from migrate.backup.create import BackupOptions, create_backup
from migrate.cluster import Cluster
from migrate.errors import PartialFailure
from migrate.pipeline.context import Context
from migrate.pipeline.events import task
from migrate.pipeline.restore_data import data_level
from migrate.pipeline.steps_data import target_settings, volume_step
from migrate.pipeline.volume_deltas import apply_volume_deltas
from migrate.restore.plan import Plan
from migrate.restore.run import plan_restore, run_restore
from migrate.store import Store
from migrate.store.positions import read_positions
from migrate.sync.wait import wait_for_sync

log = logging.getLogger(__name__)
RESTORED = "restored:"  # the run journal's claim for an increment the target holds
NAME_LIMIT = 63


def child_name(base: str, suffix: str) -> str:
    """`<base>-<suffix>`, the base shortened to keep the name within 63 characters."""
    keep = NAME_LIMIT - len(suffix) - 1
    return f"{base[:keep].rstrip('-.')}-{suffix}"


def last_restored(ctx: Context) -> str:
    """The newest backup of this run the target holds in full."""
    done = [c.removeprefix(RESTORED) for c in ctx.state.claimed if c.startswith(RESTORED)]
    return done[-1] if done else ctx.backup_name()


@dataclass
class Increment:
    """What one increment moved and how long each part took (seconds)."""

    backup: str
    parent: str
    objects: int = 0
    deleted: int = 0
    bytes: int = 0  # the tarball's and the volume data uploaded
    phases: dict[str, float] = field(default_factory=dict)
    restore: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "backup": self.backup,
            "parent": self.parent,
            "objects": self.objects,
            "deleted": self.deleted,
            "bytes": self.bytes,
            "phases": {k: round(v, 2) for k, v in self.phases.items()},
            "restore": self.restore,
        }


def _timed(phases: dict[str, float], name: str, fn: Callable[[], Any]) -> Any:
    start = time.monotonic()
    try:
        return fn()
    finally:
        phases[name] = time.monotonic() - start


def take_increment(ctx: Context, name: str, verify: bool = False) -> Increment:
    """Back up, sync and restore (held) what changed since the last backup the target
    holds; PartialFailure when the backup or the restore did not complete.  With
    `verify`, the movers writing the changed files check their whole claims after."""
    parent = last_restored(ctx)
    inc = Increment(name, parent)
    store = ctx.store()
    row = catalog.find(store, name)
    if row is not None:  # this run's interrupted attempt: take it again
        if row.run != ctx.run and f"backups/{name}" not in ctx.state.claimed:
            raise PartialFailure(f"backup {name} exists and is not this run's")
        catalog.delete(store, name)
    ctx.state.claim(f"backups/{name}")
    bs = ctx.pb.backup
    opts = BackupOptions(
        name,
        ctx.pb.scope(),
        ttl=timedelta(seconds=bs.ttl_seconds),
        parallelism=bs.parallelism,
        encryption_key=ctx.key(),
        run=ctx.run,
        parent=parent,
    )
    volumes = volume_step(ctx, name)
    opts.add = volumes

    def backup() -> Any:
        with task(ctx.sink, f"backup {name} (since {parent})") as progress:
            return create_backup(ctx.cluster("source"), store, opts, progress)

    summary = _timed(inc.phases, "backup", backup)
    inc.objects = summary.items
    inc.deleted = int(summary.incremental.get("deleted", 0))
    inc.bytes = summary.tarball_bytes
    if volumes is not None and volumes.summary is not None:
        inc.bytes += int(volumes.summary.as_dict().get("uploadedBytes", 0))
    if summary.phase != "Completed":
        raise PartialFailure(f"increment {name} is {summary.phase}")
    ws = ctx.pb.wait_for_sync
    target_store = ctx.store("target")
    _timed(inc.phases, "sync", lambda: wait_for_sync(target_store, name, ws.timeout, ws.interval))
    inc.restore = _timed(inc.phases, "restore", lambda: _restore(ctx, name, verify))
    ctx.state.claim(f"{RESTORED}{name}")
    return inc


def chain_of(store: Store, name: str) -> list[str]:
    positions = read_positions(store, name)
    return positions.chain if positions is not None else [name]


def _restore(ctx: Context, name: str, verify: bool) -> dict[str, Any]:
    """The increment's objects, and beside them (neither needs the other) the changed
    files of the claims the target holds; claims the increment creates are filled by
    the restore's own data level."""
    target, store = ctx.cluster("target"), ctx.store("target")
    opts = ctx.restore_options(resume=False)
    opts.name, opts.backup, opts.hold_workloads = name, name, True
    loaded, plan = plan_restore(target, store, opts)
    data = data_level(
        target, store, name, (loaded, plan), target_settings(ctx),
        lambda t: task(ctx.sink, t), clone=False, restore=name,
    )  # fmt: skip
    files = None
    if ctx.pb.volumes.mode != "none":
        created = _new_claims(target, plan)
        pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="km-volume-deltas")
        files = pool.submit(
            apply_volume_deltas, target, store, name, chain_of(store, name), opts.mappings,
            created, target_settings(ctx), lambda t: task(ctx.sink, t), verify,
        )  # fmt: skip
        pool.shutdown(wait=False)
    try:
        with task(ctx.sink, f"restore {name}") as progress:
            summary = run_restore(
                target, store, opts, progress, planned=(loaded, plan),
                after_level=data.after, before_level=data.before,
            )  # fmt: skip
    finally:
        volumes = files.result() if files is not None else None  # its movers end first
    if summary.phase != "Completed":
        failed = [r for r in summary.results if r.result == "failed"][:3]
        detail = "; ".join(f"{r.key[1]} {r.key[3]}: {r.message}" for r in failed)
        raise PartialFailure(f"restore of increment {name} is {summary.phase}: {detail}")
    out = {k: v for k, v in summary.as_dict().items() if k in ("created", "updated", "deleted")}
    if volumes is not None:
        out["volumes"] = volumes
    return out


def _new_claims(target: Cluster, plan: Plan) -> set[tuple[str, str]]:
    """(namespace, claim) of the claims the restore creates: planned, not on the target."""
    pvc = target.discovery().get("", "persistentvolumeclaims")
    assert pvc is not None
    planned = {
        (it.target_ns or "", it.key[3]) for it in plan.restorable
        if it.kind == "PersistentVolumeClaim"
    }  # fmt: skip
    have = {
        (ns, o["metadata"]["name"])
        for ns in sorted({ns for ns, _ in planned})
        for o in target.list(pvc, ns)
    }
    return planned - have
