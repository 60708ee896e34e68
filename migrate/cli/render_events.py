"""How `kube-migrate run` shows its pipeline's events on stderr: a NOTICE line when a
step starts, a warning when one fails, and a progress bar (progress.py: rich on a
terminal, periodic NOTICE lines off it) from a task's start to its end.  Findings and
results are not printed here: they are journaled and go into the report directory.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextlib import ExitStack

from migrate.cli.logs import NOTICE
from migrate.cli.progress import progress_bar
from migrate.pipeline.events import (
    Event,
    Progress,
    StepFinished,
    StepStarted,
    TaskFinished,
    TaskStarted,
)

log = logging.getLogger(__name__)


class StderrRenderer:
    """The EventSink of `kube-migrate run`."""

    def __init__(self) -> None:
        # open bars by task title: Progress events (from worker threads) only read this
        self._bars: dict[str, tuple[ExitStack, Callable[[str, int], None]]] = {}

    def __call__(self, event: Event) -> None:
        if type(event) is Progress:  # the frequent one (an event per object) first
            bar = self._bars.get(event.task)
            if bar is not None:
                bar[1](event.kind, event.amount)
        elif isinstance(event, StepStarted):
            log.log(NOTICE, "step %d/%d: %s", event.index + 1, event.total, event.label)
        elif isinstance(event, StepFinished):
            if event.code and not event.interrupted:
                error = event.result.get("error", "")
                log.warning("step %s failed (exit %d): %s", event.label, event.code, error)
        elif isinstance(event, TaskStarted):
            stack = ExitStack()
            self._bars[event.task] = (stack, stack.enter_context(progress_bar(event.task)))
        elif isinstance(event, TaskFinished):
            opened = self._bars.pop(event.task, None)
            if opened is not None:
                opened[0].close()
        # StepSkipped, Finding: in the journal and the report, not on stderr
