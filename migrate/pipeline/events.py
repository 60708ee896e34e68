"""What a run reports while it runs, as typed events on one stream.

The pipeline knows nothing of terminals, log formats or reports: it calls the
:class:`EventSink` it was given with one of the events below, and whoever drives the run
renders them (`kube-migrate run` turns them into NOTICE lines and progress bars,
cli/render_events.py; a test records them).  What a step finally returns goes to the run
journal and from there into the report; the events announce it as it happens.

Order of a run: per step either ``StepSkipped``, or ``StepStarted``, then any number of
``TaskStarted`` / ``Progress`` ... / ``TaskFinished`` and ``Finding``, then
``StepFinished``.  A task always finishes, also when its step raises.  ``Progress``
comes from worker threads (one per object, at 100k objects: keep a sink's handling of
it cheap and thread-safe); every other event from the thread that runs the steps.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Literal, Protocol

# What a step's progress callback says (backup/sink.py, restore/execute.py,
# verify/collect.py call it with these):
#   total   the number of units of work (resources to list, objects to create)
#   listed  one more unit listed (its objects are counted by "items")
#   done    one more unit done (restore: an object)
#   items   objects seen, for the rate (backup and verify: units are lists of objects)
#   bytes-total  more bytes to move (volume data: a claim's size, once known)
#   bytes   bytes moved (volume data: the rate and the ETA are in bytes)
ProgressKind = Literal["total", "listed", "done", "items", "bytes-total", "bytes"]
KINDS: dict[str, ProgressKind] = {
    k: k for k in ("total", "listed", "done", "items", "bytes-total", "bytes")
}


@dataclass(frozen=True, slots=True)
class StepStarted:
    index: int  # position in spec.steps
    total: int  # number of steps in the playbook
    name: str  # kind of step: "backup", "scale", ...
    label: str  # as the journal and report name it: "restore", "scale[6]"
    attempt: int  # 1 on the first try, more on a resumed retry


@dataclass(frozen=True, slots=True)
class StepSkipped:
    index: int
    label: str
    reason: str  # e.g. "--dry-run writes nothing"


@dataclass(frozen=True, slots=True)
class StepFinished:
    index: int
    label: str
    status: str  # "succeeded" or "failed", as journaled
    code: int  # the step's exit code (0: succeeded)
    result: Mapping[str, Any]  # what the step returned (journaled, in the report)
    seconds: float
    interrupted: bool = False  # Ctrl-C or SIGTERM: the run stops after this event


@dataclass(frozen=True, slots=True)
class TaskStarted:
    """A long task with progress begins inside a step, e.g. "backup NAME"."""

    task: str


@dataclass(frozen=True, slots=True)
class Progress:
    task: str
    kind: ProgressKind
    amount: int


@dataclass(frozen=True, slots=True)
class TaskFinished:
    task: str


@dataclass(frozen=True, slots=True)
class Finding:
    """A preflight finding, as the report's findings table shows it."""

    severity: str  # "error", "warning", "info"
    check: str
    object: str
    message: str
    fix: str


Event = StepStarted | StepSkipped | StepFinished | TaskStarted | Progress | TaskFinished | Finding


class EventSink(Protocol):
    """Takes each event of a run (a function, a bound method, `list.append`)."""

    def __call__(self, event: Event, /) -> None: ...


def discard(event: Event) -> None:
    """The sink of a run nobody watches."""


@contextmanager
def task(sink: EventSink, title: str) -> Iterator[Callable[[str, int], None]]:
    """Yields the progress callback a step passes to backup, restore or verify; what
    it is told reaches `sink` as Progress events of task `title`, between TaskStarted
    and TaskFinished."""
    sink(TaskStarted(title))

    def progress(event: str, amount: int) -> None:
        sink(Progress(title, KINDS[event], amount))

    try:
        yield progress
    finally:
        sink(TaskFinished(title))
