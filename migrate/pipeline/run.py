"""Run a playbook's steps in order, recording each in the run journal before the next
starts (so `--resume` continues after a crash or a failed gate), and announcing each on
the event stream.  One function per step kind, registered in STEPS.

A new step is a function `(Context, Step, attempt) -> (exit code, result)` in this
package, registered in STEPS under the name the playbook schema gives it
(playbook/schema.json); a step that writes nothing may join DRY_RUN_STEPS.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from migrate import __version__
from migrate.errors import MigrateError
from migrate.pipeline.cleanup import cleanup_step
from migrate.pipeline.context import Context
from migrate.pipeline.events import StepFinished, StepSkipped, StepStarted
from migrate.pipeline.live import cutover_step, precopy_step
from migrate.pipeline.steps_check import preflight_step, scale_step, verify_step
from migrate.pipeline.steps_data import unquiesce
from migrate.pipeline.steps_move import backup_step, restore_step, wait_ready_step, wait_sync_step
from migrate.playbook import Step

StepFn = Callable[[Context, Step, int], tuple[int, dict[str, Any]]]

STEPS: dict[str, StepFn] = {
    "preflight": preflight_step,
    "backup": backup_step,
    "waitForSync": wait_sync_step,
    "restore": restore_step,
    "precopy": precopy_step,
    "cutover": cutover_step,
    "waitReady": wait_ready_step,
    "verify": verify_step,
    "scale": scale_step,
    "cleanup": cleanup_step,
}
log = logging.getLogger(__name__)
# In --dry-run only these run (they write nothing); the others are reported as skipped.
DRY_RUN_STEPS = frozenset({"preflight", "restore"})
INTERRUPTED = 130  # the exit code journaled for a step stopped by Ctrl-C or SIGTERM


def run_steps(ctx: Context, steps: Mapping[str, StepFn] = STEPS) -> int:
    """Run every pending step; stop at the first failure.  Returns the worst exit code."""
    worst = 0
    total = len(ctx.state.steps)
    for st in ctx.state.steps:
        if st.status in ("succeeded", "skipped"):
            continue
        step = ctx.pb.steps[st.index]
        if step.name == ctx.stop_before:  # `run --stop-before`: the rest waits for --resume
            ctx.paused = step.label
            break
        if ctx.dry_run and step.name not in DRY_RUN_STEPS:
            note = "--dry-run writes nothing"
            ctx.state.finish_step(st.index, "skipped", {"note": note})
            ctx.sink(StepSkipped(st.index, step.label, note))
            continue
        ctx.state.start_step(st.index)
        ctx.sink(StepStarted(st.index, total, step.name, step.label, st.attempts))
        start = time.monotonic()
        try:
            code, result = steps[step.name](ctx, step, st.attempts)
        except MigrateError as exc:
            code, result = exc.exit_code, {"error": exc.message, "hint": exc.hint}
        except KeyboardInterrupt:
            stopped = {"error": "interrupted"}
            ctx.state.finish_step(st.index, "failed", stopped, INTERRUPTED)
            seconds = round(time.monotonic() - start, 2)
            ctx.sink(
                StepFinished(st.index, step.label, "failed", INTERRUPTED, stopped, seconds, True)
            )
            raise
        result["seconds"] = round(time.monotonic() - start, 2)
        status = "succeeded" if code == 0 else "failed"
        ctx.state.finish_step(st.index, status, result, code)
        ctx.sink(StepFinished(st.index, step.label, status, code, result, result["seconds"]))
        worst = max(worst, code)
        if code:
            break
    return worst


def execute(ctx: Context, steps: Mapping[str, StepFn] = STEPS) -> int:
    """The whole run under the journal's lock: the pending steps, then the run's end
    journaled; the live snapshot is removed on every way out.  Returns the exit code."""
    with ctx.state.lock():
        try:
            back = unquiesce(ctx)  # an interrupted attempt left workloads scaled down
            if back:
                log.warning("run %s: gave %d workload(s) their replicas back", ctx.run, len(back))
            code = run_steps(ctx, steps)
        finally:
            ctx.close()
        if ctx.paused and code == 0:
            ctx.state.pause()
        else:
            ctx.state.finish(code)
    return code


def run_document(
    ctx: Context, started: datetime, finished: datetime, code: int, command: str
) -> dict[str, Any]:
    """The run as plain data, what report/write.py renders (report.json) and `-o json`
    prints: the journaled steps with a one-line summary each, and the clusters' versions."""
    steps = []
    for st in ctx.state.steps:
        result = st.result or {}
        brief = result.get("error") or result.get("phase") or result.get("message") or ""
        if "equal" in result:
            brief = brief or f"{result.get('equal', 0)} equal, {result.get('drifted', 0)} drift"
        steps.append(
            {
                "step": st.label,
                "status": st.status,
                "seconds": result.get("seconds", ""),
                "started": st.started,  # the journal's times: the report's timeline
                "finished": st.finished,
                "summary": str(brief)[:120],
                "result": result,
            }
        )
    versions = ctx.artefacts.get("versions", ("", ""))
    for side, idx in (("source", 0), ("target", 1)):
        if not versions[idx] and side in ctx.clusters:
            versions = tuple(
                str(ctx.clusters[s].version()) if s == side else versions[i]
                for i, s in enumerate(("source", "target"))
            )
    return {
        "run": ctx.state.run,
        "playbook": ctx.pb.path,
        "kubeMigrate": __version__,
        "dryRun": ctx.dry_run,
        "started": started.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "finished": finished.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "exitCode": code,
        "source": {"version": versions[0]},
        "target": {"version": versions[1]},
        "steps": steps,
        "command": command,
    }
