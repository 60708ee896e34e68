"""The run journal behind `kube-migrate run --resume RUN`.

A run is journaled in `<state dir>/runs/<run>/state.json` (run_dirs.py: where, and the
run's name).  It holds what `--resume` needs without the playbook file, which may have
changed since: the resolved document (after `--set`, paths absolute), the overrides, the
resolved endpoints, and per step its status, times, attempts, exit code and result.
Every save replaces the file atomically (temp file, fsync, os.replace), so a kill leaves
the last complete state.

When the playbook restores into a writable bucket, every save is also copied there, next
to the restore (`restores/<restore>/journal/run-<run>.json`, see migrate/pipeline/resume.py),
so that another machine can adopt the run and resume it.  `claimed` lists the bucket
folders the run began writing (its backup), recorded before the first write: a backup
killed before its labelled `velero-backup.json` is thereby still known as the run's own.

Resume continues at the first step that has not succeeded or been skipped; a step found
`running` (the process died) or `failed` goes back to `pending` with its attempt count
kept, so the runner can tell a retry (restore then resumes its own journal).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from migrate.errors import UsageError
from migrate.playbook.endpoints import Endpoints
from migrate.playbook.load import playbook_from_document
from migrate.playbook.model import Playbook
from migrate.playbook.run_dirs import (
    check_run_name,
    hold_run,
    list_runs,
    new_run_name,
    runs_dir,
    write_atomically,
)

# Where runs are journaled (run_dirs.py) stays importable from here.
__all__ = ["DONE", "RunState", "StepState", "journal_path", "list_runs", "runs_dir"]

STATE_VERSION = 1
STEP_STATUSES = ("pending", "running", "succeeded", "failed", "skipped")
RUN_STATUSES = ("running", "succeeded", "failed")
DONE = frozenset({"succeeded", "skipped"})


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class StepState:
    index: int  # position in spec.steps
    name: str
    label: str  # 'restore', 'scale[6]'
    status: str = "pending"
    started: str | None = None
    finished: str | None = None
    attempts: int = 0
    exit_code: int | None = None
    result: dict[str, Any] = field(default_factory=dict)


def journal_path(run: str, env: Mapping[str, str] = os.environ) -> Path:
    """Where this machine journals run `run` (its state.json)."""
    return runs_dir(env) / run / "state.json"


@dataclass
class RunState:
    run: str
    playbook_path: str
    document: dict[str, Any]  # the resolved playbook, as validated
    overrides: list[str]
    steps: list[StepState]
    directory: Path
    endpoints: dict[str, Any] | None = None  # Endpoints.as_dict()
    status: str = "running"
    started: str = field(default_factory=_now)
    finished: str | None = None
    exit_code: int | None = None
    resumes: int = 0
    # bucket folders it began writing, and the increments restored (pipeline/increments.py)
    claimed: list[str] = field(default_factory=list)
    # workloads of the source it scaled to 0 (--quiesce scale-down) and has not scaled back
    # yet: {kind, namespace, name, replicas}; a resume gives them their replicas first
    quiesced: list[dict[str, Any]] = field(default_factory=list)
    # Called with state.json's text after each save (the copy in the bucket, so another
    # machine can resume the run: migrate/cli/run_cmd.py); None: local only.
    mirror: Callable[[bytes], None] | None = field(default=None, repr=False, compare=False)

    # -------------------------------------------------------------- creating and loading

    @classmethod
    def create(
        cls,
        pb: Playbook,
        *,
        endpoints: Endpoints | None = None,
        run: str | None = None,
        env: Mapping[str, str] = os.environ,
        now: datetime | None = None,
    ) -> RunState:
        """Start the journal of a new run (named from the playbook and the time)."""
        run = run or new_run_name(pb.name, now)
        check_run_name(run)
        directory = runs_dir(env) / run
        directory.parent.mkdir(parents=True, exist_ok=True)
        try:
            directory.mkdir()
        except FileExistsError:
            raise UsageError(
                f"run {run!r} exists already ({directory})",
                hint=f"continue it with --resume {run}, or start again in a second",
            ) from None
        state = cls(
            run=run,
            playbook_path=os.path.abspath(pb.path),
            document=json.loads(json.dumps(pb.document)),
            overrides=list(pb.overrides),
            steps=[StepState(s.index, s.name, s.label) for s in pb.steps],
            directory=directory,
            endpoints=endpoints.as_dict() if endpoints else None,
        )
        state.save()
        return state

    @classmethod
    def load(cls, run: str, env: Mapping[str, str] = os.environ) -> RunState:
        """Read a run's journal; an unknown run is a UsageError listing recent ones."""
        check_run_name(run)
        path = journal_path(run, env)
        if not path.is_file():
            recent = list_runs(env)[-5:]
            raise UsageError(
                f"no run named {run!r} in {runs_dir(env)}",
                hint=f"recent runs: {', '.join(recent)}"
                if recent
                else "no runs are journaled here; check KUBE_MIGRATE_STATE_DIR",
            )
        return cls._parse(run, path.read_bytes(), path)

    @classmethod
    def from_text(cls, run: str, text: bytes, env: Mapping[str, str] = os.environ) -> RunState:
        """A run's state.json from elsewhere (the bucket's copy), read only: nothing is
        journaled here."""
        check_run_name(run)
        return cls._parse(run, text, journal_path(run, env))

    @classmethod
    def _parse(cls, run: str, text: bytes, path: Path) -> RunState:
        try:
            d = json.loads(text.decode("utf-8"))
            if d.get("version") != STATE_VERSION:
                raise ValueError(f"state version {d.get('version')!r}, expected {STATE_VERSION}")
            return cls(
                run=d["run"],
                playbook_path=d["playbookPath"],
                document=d["playbook"],
                overrides=list(d["overrides"]),
                steps=[StepState(**s) for s in d["steps"]],
                directory=path.parent,
                endpoints=d.get("endpoints"),
                status=d["status"],
                started=d["started"],
                finished=d.get("finished"),
                exit_code=d.get("exitCode"),
                resumes=d.get("resumes", 0),
                claimed=list(d.get("claimed") or []),
                quiesced=list(d.get("quiesced") or []),
            )
        except (ValueError, KeyError, TypeError) as e:
            raise UsageError(
                f"the journal of run {run!r} is unreadable ({path}): {e}",
                hint="start a new run; this one cannot be resumed",
            ) from None

    @classmethod
    def adopt(cls, run: str, text: bytes, env: Mapping[str, str] = os.environ) -> RunState:
        """Take a run's state.json from elsewhere (the bucket's copy) as this machine's
        journal of it, to resume it here; refused when this machine journals it already."""
        check_run_name(run)
        path = journal_path(run, env)
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.exists():
            raise UsageError(
                f"run {run!r} is journaled here already ({path})", hint=f"--resume {run}"
            )
        path.write_bytes(text)
        return cls.load(run, env)

    @classmethod
    def resume(cls, run: str, env: Mapping[str, str] = os.environ) -> RunState:
        """Load a run to continue it: unfinished steps go back to pending."""
        state = cls.load(run, env)
        with state.lock():
            pass  # refuses while another process holds the run
        state.check_resumable()
        for step in state.steps:
            if step.status in ("running", "failed"):
                step.status = "pending"
                step.finished = None
                step.exit_code = None
        state.status, state.finished, state.exit_code = "running", None, None
        state.resumes += 1
        state.save()
        return state

    def check_resumable(self) -> None:
        """A run that succeeded has nothing left to resume (UsageError)."""
        if self.status == "succeeded":
            raise UsageError(
                f"run {self.run!r} already succeeded (finished {self.finished})",
                hint="nothing to resume; start a new run with `kube-migrate run PLAYBOOK`",
            )

    def playbook(self) -> Playbook:
        """The journaled playbook, validated again."""
        return playbook_from_document(
            self.document, self.playbook_path, self.overrides, source=str(self.path)
        )

    def resolved_endpoints(self) -> Endpoints | None:
        return Endpoints.from_dict(self.endpoints) if self.endpoints else None

    # -------------------------------------------------------------------------- progress

    @property
    def path(self) -> Path:
        return self.directory / "state.json"

    def pending(self) -> list[StepState]:
        """The steps still to run, in order."""
        return [s for s in self.steps if s.status not in DONE]

    def next_step(self) -> StepState | None:
        todo = self.pending()
        return todo[0] if todo else None

    def start_step(self, index: int) -> StepState:
        step = self.steps[index]
        step.status, step.started, step.finished = "running", _now(), None
        step.attempts += 1
        step.exit_code, step.result = None, {}
        self.save()
        return step

    def finish_step(
        self,
        index: int,
        status: str,
        result: Mapping[str, Any] | None = None,
        exit_code: int | None = None,
    ) -> StepState:
        """Record a step's outcome: succeeded, failed or skipped (with its result)."""
        if status not in ("succeeded", "failed", "skipped"):
            raise ValueError(f"a step finishes succeeded, failed or skipped, not {status!r}")
        step = self.steps[index]
        step.status, step.finished = status, _now()
        step.started = step.started or step.finished
        step.result = dict(result or {})
        step.exit_code = exit_code if exit_code is not None else (0 if status != "failed" else None)
        self.save()
        return step

    def claim(self, what: str) -> None:
        """Record, before the first write, that this run is writing `what` (a bucket folder
        such as 'backups/NAME'), so that a retry may delete it and no other run may."""
        if what not in self.claimed:
            self.claimed.append(what)
            self.save()

    def record_quiesced(self, workloads: list[dict[str, Any]]) -> None:
        """Journal the workloads scaled down now (before the write; [] once all are back)."""
        self.quiesced = list(workloads)
        self.save()

    def pause(self) -> None:
        """Leave the run unfinished with its pending steps (`run --stop-before`): `--resume`
        runs them."""
        self.status, self.exit_code, self.finished = "paused", 0, None
        self.save()

    def finish(self, exit_code: int) -> None:
        """Close the run with its exit code (0: succeeded, anything else: failed)."""
        self.status = "succeeded" if exit_code == 0 else "failed"
        self.exit_code, self.finished = exit_code, _now()
        self.save()

    # --------------------------------------------------------------------------- storage

    def as_dict(self) -> dict[str, Any]:
        return {
            "version": STATE_VERSION,
            "run": self.run,
            "playbookPath": self.playbook_path,
            "playbook": self.document,
            "overrides": self.overrides,
            "endpoints": self.endpoints,
            "status": self.status,
            "started": self.started,
            "finished": self.finished,
            "exitCode": self.exit_code,
            "resumes": self.resumes,
            "claimed": self.claimed,
            "quiesced": self.quiesced,
            "steps": [asdict(s) for s in self.steps],
        }

    def save(self) -> None:
        """Write state.json atomically: a temp file in the same directory, then replace."""
        text = json.dumps(self.as_dict(), indent=2, default=str) + "\n"
        write_atomically(self.path, text)
        if self.mirror is not None:
            self.mirror(text.encode())

    def lock(self) -> AbstractContextManager[None]:
        """Hold the run for this process; a second `--resume` of it meanwhile is refused."""
        return hold_run(self.directory, self.run)
