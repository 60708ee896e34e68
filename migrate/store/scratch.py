"""A throw-away local store for a backup nobody keeps: preflight's copy of a live source.

That copy holds the source's Secrets in plain text, so it lives in a fresh 0700 folder
(LocalStore writes 0600 files and 0700 folders) and is removed however the command ends:
on leaving the ``with`` block (success, an error, Ctrl-C, or SIGTERM, which the CLI turns
into KeyboardInterrupt), and once more at interpreter exit, after the worker threads were
joined, in case a worker still writing re-created a folder after the first removal.
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
from types import TracebackType

from migrate.store.local import LocalStore
from migrate.store.url import BucketURL

__all__ = ["ScratchStore"]


class ScratchStore:
    """A LocalStore in a new private temporary folder; ``cleanup()`` (or leaving the
    ``with`` block) deletes the folder and everything in it."""

    def __init__(self, prefix: str = "kube-migrate-") -> None:
        self.path = tempfile.mkdtemp(prefix=prefix)  # mode 0700
        self.store = LocalStore(BucketURL(scheme="file", path=self.path))
        atexit.register(self._remove)

    def _remove(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)

    def cleanup(self) -> None:
        """Delete the folder now (and again at exit, should a straggler re-create it)."""
        self._remove()

    def __enter__(self) -> LocalStore:
        return self.store

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.cleanup()
