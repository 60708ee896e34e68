"""Live progress on stderr: a rich bar on a terminal; when stderr is not a TTY (CI logs,
pipes) one NOTICE log line every 10 s (done/total, rate, ETA), so that a long run shows
it is alive without filling the log.  KUBE_MIGRATE_PROGRESS_INTERVAL (seconds) sets that
interval."""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from migrate.cli.logs import NOTICE


@contextmanager
def progress_bar(title: str) -> Iterator[Callable[[str, int], None]]:
    """Yields a callback taking (event, n): "total" sets the number of units of work,
    "listed"/"done" advances it (and the ETA), "items" counts objects (and the rate)."""
    if not sys.stderr.isatty():
        with progress_lines(title) as update:
            yield update
        return
    # rich only on a terminal, imported here: ~0.05 s of start-up a pipe or CI never uses
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    console = Console(file=sys.stderr)
    with Progress(
        TextColumn(f"[bold]{title}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[items]} objects"),
        TextColumn("{task.fields[rate]}/s"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=False,
    ) as bar:
        task = bar.add_task(title, total=None, items=0, rate=0)
        counts = {"items": 0}
        start = time.monotonic()

        def update(event: str, n: int) -> None:
            if event == "total":
                bar.update(task, total=n)
            elif event == "items":
                counts["items"] += n
                rate = counts["items"] / max(time.monotonic() - start, 1e-3)
                bar.update(task, items=counts["items"], rate=f"{rate:.0f}")
            else:
                bar.advance(task, n)

        yield update


INTERVAL_ENV = "KUBE_MIGRATE_PROGRESS_INTERVAL"
log = logging.getLogger("migrate.progress")


class Counts:
    """What the progress callback was told, and the NOTICE line it makes of it."""

    def __init__(self, title: str) -> None:
        self.title = title
        self.total: int | None = None
        self.done = 0
        self.items = 0  # objects, when the units of work are not (backup: resources)
        self.listing = False  # the units are lists of objects ("listed" events)
        self.start = time.monotonic()
        self.lock = threading.Lock()

    def update(self, event: str, n: int) -> None:
        with self.lock:
            if event == "total":
                self.total = n
            elif event == "items":
                self.items += n
            else:
                self.done += n
            self.listing = self.listing or event in ("items", "listed")

    def line(self) -> str:
        """e.g. "restore r: 1200/10000 objects, 410/s, ETA 21s"; a backup (objects counted
        apart from the resources listed): "backup b: 12/40 listed, 5300 objects, 880/s,
        ETA 28s"."""
        with self.lock:
            elapsed = max(time.monotonic() - self.start, 1e-3)
            total = "?" if self.total is None else str(self.total)
            if self.listing:
                what = f"{self.done}/{total} listed, {self.items} objects"
            else:
                what = f"{self.done}/{total} objects"
            rate = (self.items or self.done) / elapsed
            left = None
            if self.total is not None and self.done:
                left = elapsed * max(self.total - self.done, 0) / self.done
        eta = "?" if left is None else f"{left:.0f}s"
        return f"{self.title}: {what}, {rate:.0f}/s, ETA {eta}"


def interval() -> float:
    try:
        seconds = float(os.environ.get(INTERVAL_ENV) or 10.0)
    except ValueError:
        seconds = 10.0
    return seconds if seconds > 0 else 10.0


@contextmanager
def progress_lines(title: str, every: float | None = None) -> Iterator[Callable[[str, int], None]]:
    """The callback of progress_bar off a terminal: a NOTICE line every `every` seconds
    (default interval()) while the block runs; none for a run shorter than that."""
    counts = Counts(title)
    stop = threading.Event()
    period = every or interval()

    def tick() -> None:
        while not stop.wait(period):
            log.log(NOTICE, "%s", counts.line())

    ticker = threading.Thread(target=tick, name="progress", daemon=True)
    ticker.start()
    try:
        yield counts.update
    finally:
        stop.set()
        ticker.join()
