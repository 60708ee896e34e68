"""Pure tests of the pipeline's run loop and event stream (no cluster, no bucket): a run
over a table of fake steps journals each step and reports it as typed events, in order;
a failing gate stops the run; Ctrl-C is journaled and re-raised; the live snapshot is
removed on every way out; and the CLI's renderer turns the events into today's stderr."""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import Any

import pytest

from migrate.cli.render_events import StderrRenderer
from migrate.errors import EXIT_PARTIAL, EXIT_USAGE, UsageError
from migrate.pipeline.context import Context
from migrate.pipeline.events import (
    Event,
    Finding,
    Progress,
    StepFinished,
    StepSkipped,
    StepStarted,
    TaskFinished,
    TaskStarted,
    task,
)
from migrate.pipeline.run import StepFn, execute, run_steps
from migrate.playbook import ClusterEndpoint, Endpoints, RunState, Step, load_playbook
from migrate.store.scratch import ScratchStore

PLAYBOOK = """apiVersion: kube-migrate.io/v1alpha1
kind: Playbook
metadata:
  name: unit
spec:
  scope:
    includeNamespaces: [shop]
  steps: [preflight, backup, restore]
"""
Result = tuple[int, dict[str, Any]]


@pytest.fixture
def events() -> list[Event]:
    """What the run under test reported, in order (its sink appends here)."""
    return []


@pytest.fixture
def ctx(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, events: list[Event]) -> Context:
    monkeypatch.setenv("KUBE_MIGRATE_STATE_DIR", str(tmp_path / "state"))
    (tmp_path / "pb.yaml").write_text(PLAYBOOK)
    pb = load_playbook(tmp_path / "pb.yaml", env={})
    endpoints = Endpoints(ClusterEndpoint(), ClusterEndpoint(), None, None)
    return Context(RunState.create(pb, endpoints=endpoints), pb, endpoints, sink=events.append)


def preflight(ctx: Context, step: Step, attempt: int) -> Result:
    ctx.sink(Finding("warning", "collisions", "ConfigMap shop/a", "exists", "-"))
    return 0, {"errors": 0, "warnings": 1}


def backup(ctx: Context, step: Step, attempt: int) -> Result:
    with task(ctx.sink, "backup b") as progress:
        progress("total", 2)
        progress("listed", 1)
        progress("items", 5)
        progress("listed", 1)
    return 0, {"phase": "Completed"}


def restore(ctx: Context, step: Step, attempt: int) -> Result:
    return 0, {"phase": "Completed", "attempt": attempt}


FAKE: dict[str, StepFn] = {"preflight": preflight, "backup": backup, "restore": restore}


def test_a_run_reports_each_step_and_its_progress_in_order(
    ctx: Context, events: list[Event]
) -> None:
    assert run_steps(ctx, FAKE) == 0
    assert [type(e) for e in events] == [
        StepStarted, Finding, StepFinished,
        StepStarted, TaskStarted, Progress, Progress, Progress, Progress, TaskFinished,
        StepFinished,
        StepStarted, StepFinished,
    ]  # fmt: skip
    assert events[0] == StepStarted(0, 3, "preflight", "preflight", 1)
    assert events[1] == Finding("warning", "collisions", "ConfigMap shop/a", "exists", "-")
    progress = [(e.task, e.kind, e.amount) for e in events if isinstance(e, Progress)]
    assert progress == [
        ("backup b", "total", 2),
        ("backup b", "listed", 1),
        ("backup b", "items", 5),
        ("backup b", "listed", 1),
    ]
    finished = [e for e in events if isinstance(e, StepFinished)]
    assert [(e.label, e.status, e.code) for e in finished] == [
        ("preflight", "succeeded", 0),
        ("backup", "succeeded", 0),
        ("restore", "succeeded", 0),
    ]
    assert finished[1].result["phase"] == "Completed" and finished[1].seconds >= 0
    # what the events announced is what the journal holds (and the report shows)
    journal = RunState.load(ctx.run)
    assert [(s.status, s.exit_code) for s in journal.steps] == [("succeeded", 0)] * 3
    assert journal.steps[0].result == {"errors": 0, "warnings": 1, "seconds": finished[0].seconds}


def test_a_failing_step_stops_the_run_with_its_code(ctx: Context, events: list[Event]) -> None:
    def refused(ctx: Context, step: Step, attempt: int) -> Result:
        with task(ctx.sink, "backup b") as progress:
            progress("total", 1)
            raise UsageError("backup 'b' belongs to another run", hint="rename it")

    assert run_steps(ctx, {**FAKE, "backup": refused}) == EXIT_USAGE
    assert [type(e) for e in events][-4:] == [TaskStarted, Progress, TaskFinished, StepFinished]
    last = events[-1]
    assert isinstance(last, StepFinished)
    assert (last.label, last.status, last.code) == ("backup", "failed", EXIT_USAGE)
    assert last.result["error"] == "backup 'b' belongs to another run"
    assert last.result["hint"] == "rename it"
    assert not any(isinstance(e, StepStarted) and e.label == "restore" for e in events)
    journal = RunState.load(ctx.run)
    assert [s.status for s in journal.steps] == ["succeeded", "failed", "pending"]
    assert journal.steps[1].exit_code == EXIT_USAGE


def test_a_gate_code_stops_the_run_and_a_resume_retries_that_step(ctx: Context) -> None:
    def partial(ctx: Context, step: Step, attempt: int) -> Result:
        return EXIT_PARTIAL, {"phase": "PartiallyFailed"}

    assert run_steps(ctx, {**FAKE, "restore": partial}) == EXIT_PARTIAL
    ctx.state.finish(EXIT_PARTIAL)
    again = RunState.resume(ctx.run)
    seen: list[Event] = []
    resumed = Context(again, ctx.pb, ctx.endpoints, sink=seen.append)
    assert run_steps(resumed, FAKE) == 0
    assert [type(e) for e in seen] == [StepStarted, StepFinished]  # done steps: silent
    assert seen[0] == StepStarted(2, 3, "restore", "restore", 2)
    assert isinstance(seen[1], StepFinished) and seen[1].result["attempt"] == 2


def test_dry_run_skips_the_steps_that_write(ctx: Context, events: list[Event]) -> None:
    ctx.dry_run = True
    assert run_steps(ctx, FAKE) == 0
    assert StepSkipped(1, "backup", "--dry-run writes nothing") in events
    started = [e.label for e in events if isinstance(e, StepStarted)]
    assert started == ["preflight", "restore"]
    assert RunState.load(ctx.run).steps[1].status == "skipped"


def test_ctrl_c_is_journaled_reported_and_raised_and_the_snapshot_removed(
    ctx: Context, events: list[Event]
) -> None:
    scratch = ScratchStore("kube-migrate-unit-")
    ctx.snapshot = (scratch, "preflight")

    def interrupted(ctx: Context, step: Step, attempt: int) -> Result:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        execute(ctx, {**FAKE, "backup": interrupted})
    last = events[-1]
    assert isinstance(last, StepFinished) and last.interrupted
    assert (last.label, last.status, last.code) == ("backup", "failed", 130)
    assert not os.path.exists(scratch.path)  # it held the source's Secrets
    journal = RunState.load(ctx.run)
    assert journal.steps[1].status == "failed" and journal.steps[1].exit_code == 130


def test_renderer_prints_todays_lines(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KUBE_MIGRATE_PROGRESS_INTERVAL", "0.05")
    render = StderrRenderer()
    with caplog.at_level(logging.INFO):
        render(StepStarted(1, 6, "backup", "backup", 1))
        render(TaskStarted("backup b"))
        render(Progress("backup b", "total", 4))
        render(Progress("backup b", "listed", 1))
        render(Progress("backup b", "items", 40))
        deadline = time.monotonic() + 5  # the periodic line off a terminal (progress.py)
        while time.monotonic() < deadline:
            if any("backup b: " in r.getMessage() for r in caplog.records):
                break
            time.sleep(0.01)
        render(TaskFinished("backup b"))
        render(Progress("backup b", "done", 1))  # a straggler after the end: ignored
        render(StepFinished(1, "backup", "failed", 2, {"error": "boom"}, 1.0))
        render(StepFinished(2, "restore", "failed", 130, {"error": "interrupted"}, 1.0, True))
        render(Finding("error", "compat", "x", "y", "z"))
    lines = [(r.levelname, r.getMessage()) for r in caplog.records]
    assert lines[0] == ("NOTICE", "step 2/6: backup")
    bars = [m for lvl, m in lines if m.startswith("backup b: ")]
    assert bars and all(m.startswith("backup b: 1/4 listed, 40 objects, ") for m in bars)
    assert lines[-1] == ("WARNING", "step backup failed (exit 2): boom")  # not for Ctrl-C
