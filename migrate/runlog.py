"""Capture a run's own log lines (never object data) so backup and restore can store
them next to their results (`<name>-logs.gz`), as Velero does."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager


class LogCapture(logging.Handler):
    """Keeps this backup's log lines for <name>-logs.gz (never object data)."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.lines: list[str] = []
        self.setFormatter(logging.Formatter("time=%(asctime)s level=%(levelname)s msg=%(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        if len(self.lines) < 100_000:
            self.lines.append(self.format(record))


@contextmanager
def captured() -> Iterator[LogCapture]:
    """Collect migrate.* log lines for the duration of the block."""
    capture = LogCapture()
    logger = logging.getLogger("migrate")
    old_level = logger.level
    if logger.getEffectiveLevel() > logging.INFO:  # a library caller that set no level
        logger.setLevel(logging.INFO)
    logger.addHandler(capture)
    try:
        yield capture
    finally:
        logger.removeHandler(capture)
        logger.setLevel(old_level)
