"""Where runs are journaled on this machine, and what a run is called.

`$KUBE_MIGRATE_STATE_DIR/runs/<run>/state.json` (default state dir:
`$XDG_STATE_HOME/kube-migrate`, else `~/.local/state/kube-migrate`: migrate/statedir.py),
a run being named `<playbook name>-<UTC yyyymmddhhmmss>`; and the two file operations on a
run's folder: the atomic write of its journal and the lock held while the run is going on.
Kept apart from state.py (what a journal holds) because this is the filesystem side
alone: `--resume` looks a run up by name here before any journal is read.
"""

from __future__ import annotations

import fcntl
import os
import re
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from migrate.errors import UsageError
from migrate.statedir import state_root  # the one state folder, also restore's

__all__ = [
    "check_run_name",
    "hold_run",
    "list_runs",
    "new_run_name",
    "runs_dir",
    "state_root",
    "write_atomically",
]

_RUN_NAME = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")


def runs_dir(env: Mapping[str, str] = os.environ) -> Path:
    return state_root(env) / "runs"


def new_run_name(playbook_name: str, now: datetime | None = None) -> str:
    """'migrate-cluster' -> 'migrate-cluster-20250102030405' (UTC)."""
    return f"{playbook_name}-{(now or datetime.now(UTC)).astimezone(UTC):%Y%m%d%H%M%S}"


def list_runs(env: Mapping[str, str] = os.environ) -> list[str]:
    """Journaled runs, oldest first."""
    root = runs_dir(env)
    found = [p for p in root.glob("*/state.json")] if root.is_dir() else []
    return [p.parent.name for p in sorted(found, key=lambda p: (p.stat().st_mtime, p))]


def check_run_name(run: str) -> None:
    if not _RUN_NAME.match(run):
        raise UsageError(
            f"invalid run name {run!r}",
            hint="a run is named <playbook>-<yyyymmddhhmmss>, e.g. migrate-cluster-20250102030405",
        )


def write_atomically(path: Path, text: str) -> None:
    """Replace `path` with `text` so that a kill leaves the old or the new content: a temp
    file in the same directory, fsync, os.replace."""
    fd, tmp = tempfile.mkstemp(prefix=".state.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@contextmanager
def hold_run(directory: Path, run: str) -> Iterator[None]:
    """Hold a run for this process; a second `--resume` of it meanwhile is refused."""
    with (directory / "lock").open("w") as f:
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise UsageError(
                f"run {run!r} is in progress in another process",
                hint="wait for it to finish, or stop it first",
            ) from None
        try:
            yield
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)
