"""An append-only scratch file for the objects a restore holds between reading the backup
and creating them on the target.

A restore of 100k objects needs each one twice (as stored, and as it will be created)
at moments far apart; on the heap that alone is ~75 MB, growing with the backup.  Here
each blob is written once to an unlinked temporary file and read back by offset
(pread: the page cache serves it, the process's memory does not grow with it).  The file
disappears when the spool is garbage-collected or the process ends.
"""

from __future__ import annotations

import functools
import os
import tempfile
import threading

from migrate.errors import UsageError

# A ref is offset << 28 | length: one int per blob that fits 64 bits (arrays of refs hold
# 8 bytes an object): blobs under 256 MiB (an object is at most ~1.5 MiB in etcd), a
# file under 64 GiB.
_LENGTH_BITS = 28
_OFFSET_BITS = 64 - _LENGTH_BITS


class Spool:
    def __init__(self, directory: str | None = None) -> None:
        """In `directory`, or where tempfile puts temporary files ($TMPDIR, /tmp, ...)."""
        self._dir = directory or tempfile.gettempdir()
        try:
            # Open as long as the spool lives (closed with it): no `with` to scope it to.
            self._file = tempfile.TemporaryFile(prefix="kube-migrate-", dir=self._dir)  # noqa: SIM115
        except OSError as exc:
            raise self._error(exc) from None
        self._fd = self._file.fileno()
        self._end = 0
        self._lock = threading.Lock()

    def put(self, blob: bytes) -> int:
        """Store blob; return the ref that get() takes."""
        if len(blob) >> _LENGTH_BITS:
            raise ValueError(f"a spooled blob must be under 256 MiB, not {len(blob)} bytes")
        with self._lock:  # reserve the range; the writes themselves may overlap in time
            at = self._end
            if (at + len(blob)) >> _OFFSET_BITS:
                raise UsageError(
                    f"the restore's scratch file in {self._dir} passed 64 GiB",
                    hint="restore the backup in parts (--include-namespaces)",
                )
            self._end += len(blob)
        view = memoryview(blob)
        while view:
            try:
                n = os.pwrite(self._fd, view, at)
            except OSError as exc:
                raise self._error(exc) from None
            view, at = view[n:], at + n
        return (at - len(blob)) << _LENGTH_BITS | len(blob)

    def get(self, ref: int) -> bytes:
        length, at = ref & ((1 << _LENGTH_BITS) - 1), ref >> _LENGTH_BITS
        blob = os.pread(self._fd, length, at)
        if len(blob) != length:
            raise OSError(f"spool file truncated at {at + len(blob)} (wanted {length} bytes)")
        return blob

    def _error(self, exc: OSError) -> UsageError:
        return UsageError(
            f"cannot write the restore's scratch file in {self._dir}: {exc.strerror or exc}",
            hint="point TMPDIR at a writable directory with room for ~1 KB per object",
        )

    @property
    def size(self) -> int:
        """Bytes written so far."""
        return self._end

    def close(self) -> None:
        self._file.close()


@functools.cache
def shared() -> Spool:
    """The process's spool for objects made outside a loaded backup (hand-built items);
    a loaded backup has a spool of its own, freed with it.  (Two threads racing the first
    call may each get one: harmless, an item keeps a reference to its own spool.)"""
    return Spool()
