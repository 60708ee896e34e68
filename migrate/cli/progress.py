"""Live progress on stderr: a rich bar on a terminal, nothing when stderr is not a TTY
(CI logs and pipes get the -v log lines instead)."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)


@contextmanager
def progress_bar(title: str) -> Iterator[Callable[[str, int], None]]:
    """Yields a callback taking (event, n): "total" sets the number of units of work,
    "listed"/"done" advances it (and the ETA), "items" counts objects (and the rate)."""
    if not sys.stderr.isatty():
        yield lambda _event, _n: None
        return
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
