"""A live migration's last two steps: pre-copy passes while the source keeps serving,
then the cut-over, whose downtime is measured and reported.

Cut-over: hold the source's workloads (0 replicas, the real value in an annotation) and
wait until their pods are gone; take, sync and restore the final increment; check the
target's claims against it (verifyData, before anything writes to them); release the
target's workloads and wait until they are ready — the downtime window ends there —
then verify the objects and run the user's hooks.  Any failure (or Ctrl-C) in it rolls back: the
target is held again and the source released, and the step fails saying so.  After a
crash, `run --resume` runs the cut-over again from the top: every part of it is
idempotent, so it completes, or fails and rolls back; it never leaves both sides down.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from migrate.errors import DriftFound, MigrateError
from migrate.pipeline.context import Context
from migrate.pipeline.cutover_hooks import run_hooks
from migrate.pipeline.cutover_movers import movers_standing_by
from migrate.pipeline.increments import Increment, child_name, take_increment
from migrate.pipeline.steps_check import restore_transforms
from migrate.pipeline.steps_data import check_data, data_result, target_settings
from migrate.playbook import Step
from migrate.restore.held import held, hold_all, release_all, wait_started, wait_stopped
from migrate.verify import VerifyOptions, run_verify
from migrate.volumes.verify import ClaimCheck

log = logging.getLogger(__name__)
AFTER = ("verify", "hooks")  # cut-over phases after the downtime window
BEFORE = ("standby",)  # ... and before it


def _namespaces(ctx: Context) -> tuple[list[str], list[str]]:
    """The scope's namespaces on the source and (mapped) on the target."""
    source = list(ctx.pb.scope().explicit_namespaces() or [])
    m = ctx.pb.mappings()
    return source, [m.namespace(ns) or ns for ns in source]


def precopy_step(ctx: Context, step: Step, attempts: int) -> tuple[int, dict[str, Any]]:
    """`precopy.passes` increments (fewer once one is below `precopy.untilBytes`), taken
    while the source runs."""
    pc = ctx.pb.precopy
    passes: list[dict[str, Any]] = []
    for n in range(1, pc.passes + 1):
        inc = take_increment(ctx, child_name(ctx.backup_name(), f"p{n}"))
        passes.append(inc.as_dict())
        log.info("pre-copy pass %d: %d objects, %d deleted, %d bytes", n, inc.objects,
                 inc.deleted, inc.bytes)  # fmt: skip
        if pc.until_bytes is not None and inc.bytes < pc.until_bytes:
            break
    moved = ", ".join(f"{p['bytes']} B" for p in passes)
    return 0, {"passes": passes, "message": f"{len(passes)} pass(es) moved {moved or 'nothing'}"}


def _claim_checks(inc: Increment) -> list[ClaimCheck]:
    """The checks the increment's movers made of the claims they wrote."""
    rows = ((inc.restore.get("volumes") or {}).get("claims")) or []
    return [
        ClaimCheck(r["claim"], r["files"], r["bytes"], r["differences"], r.get("diffs") or [])
        for r in rows if "differences" in r
    ]  # fmt: skip


class Clock:
    """A cut-over's phases: each one's seconds, and its span from the step's start (the
    report draws them on one time axis)."""

    def __init__(self) -> None:
        self.start = time.monotonic()
        self.phases: dict[str, float] = {}
        self.spans: list[dict[str, Any]] = []

    def mark(self, phase: str, since: float, now: float | None = None) -> float:
        now = time.monotonic() if now is None else now
        self.phases[phase] = round(now - since, 2)
        self.spans.append({"phase": phase, "start": round(since - self.start, 2),
                           "end": round(now - self.start, 2)})  # fmt: skip
        return now

    def after(self, since: float, phases: dict[str, float]) -> float:
        """Phases measured elsewhere, one after another from `since`."""
        for phase, seconds in phases.items():
            since = self.mark(phase, since, since + seconds)
        return since


def cutover_step(ctx: Context, step: Step, attempts: int) -> tuple[int, dict[str, Any]]:
    co = ctx.pb.cutover
    source, target = ctx.cluster("source"), ctx.cluster("target")
    src_ns, tgt_ns = _namespaces(ctx)
    clock = Clock()
    result: dict[str, Any] = {"attempt": attempts}
    try:
        check = co.verify_data and ctx.pb.volumes.mode != "none"  # before the app writes
        with movers_standing_by(ctx, src_ns, tgt_ns) as standbys:  # started before the downtime
            t = clock.mark("standby", clock.start)
            stopping = time.monotonic()  # the downtime starts with the first hold
            hold_all(source, src_ns)
            stopped = held(source, src_ns)
            result["stoppedOnSource"] = [w.label() for w in stopped]
            wait_stopped(source, stopped, co.stop_timeout)
            t = clock.mark("quiesce", stopping)
            inc = take_increment(ctx, child_name(ctx.backup_name(), f"c{attempts}"), check)
            t = clock.after(t, inc.phases)
        result["standbyMovers"] = standbys
        if check:
            t = time.monotonic()
            _verify_data(ctx, inc, result)
            clock.mark("verifyData", t)
        t = time.monotonic()
        released = release_all(target, tgt_ns)
        ready = wait_started(target, released, co.ready_timeout)
        clock.mark("start", t)
        result.update(_downtime(clock, stopping, ready, inc))
        result["releasedOnTarget"] = [w.label() for w in released]
        t = time.monotonic()
        _verify_objects(ctx, result)
        t = clock.mark("verify", t)
        if co.hooks:
            _hooks(ctx, result, tgt_ns)
            clock.mark("hooks", t)
    except (MigrateError, KeyboardInterrupt) as exc:
        result["rolledBack"] = _roll_back(ctx, src_ns, tgt_ns)
        if isinstance(exc, KeyboardInterrupt):
            raise
        result["error"] = exc.message
        result["hint"] = (
            "the source runs again and the target is held; fix the cause and "
            "`kube-migrate run --resume` cuts over again"
        )
        return exc.exit_code, result
    shares = ", ".join(f"{k} {v:.1f}s" for k, v in clock.phases.items() if k not in AFTER + BEFORE)
    result["message"] = f"downtime {result['downtimeSeconds']:.1f}s ({shares})"
    return 0, result


def _downtime(clock: Clock, stopped: float, ready: float, inc: Increment) -> dict[str, Any]:
    window = {"start": round(stopped - clock.start, 2), "end": round(ready - clock.start, 2)}
    return {
        "timeline": clock.spans,
        "downtime": window,
        "backup": inc.backup,
        "parent": inc.parent,
        "objects": inc.objects,
        "deleted": inc.deleted,
        "bytes": inc.bytes,
        "downtimeSeconds": round(ready - stopped, 2),
        "phases": clock.phases,
    }


def _verify_objects(ctx: Context, result: dict[str, Any]) -> None:
    """The source (stopped) against the target; drift is a failure (and a roll-back)."""
    opts = VerifyOptions(ctx.pb.scope(), restore_transforms(ctx))
    report = run_verify(ctx.cluster("source"), ctx.cluster("target"), opts)
    result["verify"] = {**report.summary(), "drifted": len(report.drifted)}
    drifted = [f"{r.kind} {r.namespace or ''}/{r.name}" for r in report.drifted]
    if drifted:
        raise DriftFound(f"verify after cut-over: {len(drifted)} drifted: {', '.join(drifted[:5])}")


def _verify_data(ctx: Context, inc: Increment, result: dict[str, Any]) -> None:
    """The target's claims against the final increment, while the target is still held
    (once it runs, the app's own writes differ).  The movers that wrote a claim checked it
    (every path's metadata; the content of what they wrote, and of any file whose size or
    mtime is not the copy's); a claim the increment created gets a mover that reads it."""
    quick = _claim_checks(inc)
    checks = quick + check_data(
        ctx.cluster("target"), ctx.store("target"), inc.backup,
        ctx.pb.mappings().namespace, target_settings(ctx),
        done=frozenset(c.claim for c in quick),
    )  # fmt: skip
    result["data"] = {**data_result(checks), "checkedByTheirWriter": len(quick)}
    bad = [c for c in checks if not c.ok]
    if bad:
        raise DriftFound(f"verify --data before the target starts: {len(bad)} claim(s) differ")


def _hooks(ctx: Context, result: dict[str, Any], namespaces: list[str]) -> None:
    """The user's cut-over hooks (pipeline/cutover_hooks.py), in order, once the target
    is ready; they learn the run, the target's namespaces and the downtime."""
    facts = {
        "KUBE_MIGRATE_RUN": ctx.run,
        "KUBE_MIGRATE_TARGET_NAMESPACES": ",".join(namespaces),
        "KUBE_MIGRATE_DOWNTIME_SECONDS": str(result.get("downtimeSeconds", "")),
    }
    local = {
        "KUBE_MIGRATE_TARGET_KUBECONFIG": ctx.endpoints.target.kubeconfig or "",
        "KUBE_MIGRATE_TARGET_CONTEXT": ctx.endpoints.target.context or "",
    }
    target = ctx.cluster("target")
    result["hooks"] = run_hooks(ctx.pb.cutover.hooks, target, facts, local, namespaces[0])


def _roll_back(ctx: Context, src_ns: list[str], tgt_ns: list[str]) -> dict[str, Any]:
    """Hold the target again, then release the source: never both down for longer."""
    done: dict[str, Any] = {}
    try:
        done["heldOnTarget"] = [w.label() for w in hold_all(ctx.cluster("target"), tgt_ns)]
    except MigrateError as exc:  # the target may be the reason: the source comes back anyway
        done["targetError"] = exc.message
        log.warning("roll-back: the target could not be held: %s", exc.message)
    released = release_all(ctx.cluster("source"), src_ns)
    done["releasedOnSource"] = [w.label() for w in released]
    log.warning("cut-over rolled back: %d workload(s) of the source released",
                len(released))  # fmt: skip
    return done
