"""Bytes progress of many movers at once, for one task's bar or NOTICE lines.

Each mover pod prints `{"kind":"progress","bytes":N,"totalBytes":T}` lines (absolute for
its claim; T once it knows it); mover.py hands the latest to a claim's watcher while the
pod runs.  The task's callback wants amounts to add, so this turns each claim's absolute
figures into deltas: "bytes-total" once per claim, "bytes" as it grows.  A mover that is
run again (a retried pod) starts from 0: only growth beyond what was told counts.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

Tell = Callable[[str, int], None]
Key = tuple[str, str]  # (namespace, claim)


class ClaimBytes:
    """What the task was told per claim: its total (once) and bytes so far."""

    def __init__(self, tell: Tell) -> None:
        self.tell = tell
        self.lock = threading.Lock()
        self.total: dict[Key, int] = {}
        self.done: dict[Key, int] = {}

    def expect(self, key: Key, total: int) -> None:
        """The claim's size, when known before its mover starts (a restore's record)."""
        self.update(key, 0, total)

    def watcher(self, key: Key) -> Callable[[dict[str, Any]], None]:
        """The MoverJob.watch of a claim: takes the mover's latest progress line."""

        def watch(line: dict[str, Any]) -> None:
            self.update(key, int(line.get("bytes") or 0), int(line.get("totalBytes") or 0))

        return watch

    def finish(self, key: Key, total: int) -> None:
        """The claim is done: all of its `total` bytes count, whatever was sampled."""
        self.update(key, total, total, final=True)

    def update(self, key: Key, done: int, total: int, final: bool = False) -> None:
        with self.lock:
            new_total = 0
            if key not in self.total and (total > 0 or final):
                self.total[key] = new_total = total
            cap = self.total.get(key)
            if cap is not None:  # a restore's disk figures may include other writers
                done = min(done, cap)
            grew = max(0, done - self.done.get(key, 0))
            if grew:
                self.done[key] = done
        if new_total:
            self.tell("bytes-total", new_total)
        if grew:
            self.tell("bytes", grew)
