"""Live progress on stderr: a rich bar on a terminal, nothing when stderr is not a TTY
(CI logs and pipes get the -v log lines instead)."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn


@contextmanager
def progress_bar(title: str) -> Iterator[Callable[[str, int], None]]:
    """Yields a callback taking (event, n): "total" sets the number of units of work,
    "listed"/"done" advances it, "items" counts objects."""
    if not sys.stderr.isatty():
        yield lambda _event, _n: None
        return
    console = Console(file=sys.stderr)
    with Progress(
        TextColumn(f"[bold]{title}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[items]} objects"),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    ) as bar:
        task = bar.add_task(title, total=None, items=0)
        counts = {"items": 0}

        def update(event: str, n: int) -> None:
            if event == "total":
                bar.update(task, total=n)
            elif event == "items":
                counts["items"] += n
                bar.update(task, items=counts["items"])
            else:
                bar.advance(task, n)

        yield update
