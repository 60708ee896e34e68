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
from migrate.units import human_bytes


@contextmanager
def progress_bar(title: str) -> Iterator[Callable[[str, int], None]]:
    """Yields a callback taking (event, n): "total" sets the number of units of work,
    "listed"/"done" advances it (and the ETA), "items" counts objects (and the rate);
    "bytes-total"/"bytes" switch the bar, the rate and the ETA to bytes."""
    if not sys.stderr.isatty():
        with progress_lines(title) as update:
            yield update
        return
    # rich only on a terminal, imported here: ~0.05 s of start-up a pipe or CI never uses
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    console = Console(file=sys.stderr)
    with Progress(
        TextColumn(f"[bold]{title}"),
        BarColumn(),
        TextColumn("{task.fields[count]}"),
        TextColumn("{task.fields[what]}"),
        TextColumn("{task.fields[rate]}/s"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=False,
    ) as bar:
        task = bar.add_task(title, total=None, count="0/?", what="0 objects", rate="0")
        counts = Counts(title)

        def update(event: str, n: int) -> None:
            counts.update(event, n)
            if counts.bytes_mode:  # a few events a second: volume data
                volumes, moved, speed, _ = counts.bytes_figures()
                bar.update(task, total=counts.bytes_total or None, completed=counts.bytes_done,
                           count=volumes, what=moved, rate=speed)  # fmt: skip
            elif event == "total":
                bar.update(task, total=n, count=f"{counts.done}/{n}")
            elif event == "items":
                rate = counts.items / max(time.monotonic() - counts.start, 1e-3)
                bar.update(task, what=f"{counts.items} objects", rate=f"{rate:.0f}")
            else:
                bar.advance(task, n)
                bar.update(task, count=f"{counts.done}/{counts.total or '?'}")

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
        self.bytes_total = 0  # volume data: bytes to move (as claims' sizes become known)
        self.bytes_done = 0
        self.bytes_mode = False
        self.start = time.monotonic()
        self.lock = threading.Lock()

    def update(self, event: str, n: int) -> None:
        with self.lock:
            if event == "total":
                self.total = n
            elif event == "items":
                self.items += n
            elif event == "bytes-total":
                self.bytes_total += n
            elif event == "bytes":
                self.bytes_done += n
            else:
                self.done += n
            self.listing = self.listing or event in ("items", "listed")
            self.bytes_mode = self.bytes_mode or event in ("bytes", "bytes-total")

    def bytes_figures(self) -> tuple[str, str, str, str]:
        """("1/3 volumes", "340.0MiB of 1.0GiB", "85.0MiB", "8s"): volumes done, bytes
        moved of those known so far, bytes a second, ETA."""
        with self.lock:
            elapsed = max(time.monotonic() - self.start, 1e-3)
            total = "?" if self.total is None else str(self.total)
            volumes = f"{self.done}/{total} volumes"
            moved = f"{human_bytes(self.bytes_done)} of {human_bytes(self.bytes_total)}"
            rate = self.bytes_done / elapsed
            left = None
            if self.bytes_total and self.bytes_done:
                left = max(self.bytes_total - self.bytes_done, 0) / rate
        return volumes, moved, human_bytes(rate), "?" if left is None else f"{left:.0f}s"

    def line(self) -> str:
        """e.g. "restore r: 1200/10000 objects, 410/s, ETA 21s"; a backup (objects counted
        apart from the resources listed): "backup b: 12/40 listed, 5300 objects, 880/s,
        ETA 28s"; volume data: "volume data of b: 1/3 volumes, 340.0MiB of 1.0GiB,
        85.0MiB/s, ETA 8s"."""
        if self.bytes_mode:
            volumes, moved, speed, eta = self.bytes_figures()
            return f"{self.title}: {volumes}, {moved}, {speed}/s, ETA {eta}"
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
