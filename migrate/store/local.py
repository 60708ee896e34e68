"""A ``file://`` store: the bucket layout kept in a local directory.

Useful for air-gapped migrations, for moving a backup on a disk, and for tests that need
no S3.  Objects are files; writes go to a temporary file in the same directory, are
fsynced and then renamed over the target, so a reader never sees a half-written object.
Directories are created on write and removed when they become empty, so the tree looks
like an S3 listing.  A backup holds Secrets: files are written 0600 and the folders we
create 0700 (owner only, whatever the umask); existing folders keep their modes.
"""

from __future__ import annotations

import builtins
import contextlib
import errno
import os
import stat
import tempfile
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import BinaryIO

from migrate.errors import StoreError
from migrate.store.base import ObjectInfo, Store
from migrate.store.url import BucketURL

__all__ = ["LocalStore"]

_TMP_PREFIX = ".kube-migrate-tmp-"
_CHUNK = 1024 * 1024
FILE_MODE = 0o600  # objects: readable by their owner only
DIR_MODE = 0o700  # folders the store creates

# Writes an object's content into the open temporary file.
_Writer = Callable[[BinaryIO], None]


class LocalStore(Store):
    """Objects as files under ``url.path``; keys map to '/'-separated relative paths."""

    def __init__(self, url: BucketURL, read_only: bool = False) -> None:
        if url.scheme != "file":
            raise ValueError(f"LocalStore needs a file:// URL, not {url}")
        super().__init__(url, read_only=read_only)
        self.root = url.path

    def _path(self, key: str) -> str:
        return os.path.join(self.root, *key.split("/"))

    def _os_error(self, action: str, key: str, exc: OSError) -> StoreError:
        where = self.url.key_url(key)
        if isinstance(exc, PermissionError):
            return StoreError(
                f"cannot {action} {where}: permission denied",
                hint="check the directory's owner and permissions",
            )
        if isinstance(exc, (NotADirectoryError, IsADirectoryError, FileExistsError)):
            return StoreError(
                f"cannot {action} {where}: a file and a directory of the same name collide",
                hint="a local store cannot hold both KEY and KEY/... ; use another key",
            )
        return StoreError(f"cannot {action} {where}: {exc.strerror or exc}")

    # -- writes ---------------------------------------------------------------------

    def _put(self, key: str, data: bytes) -> None:
        def write(f: BinaryIO) -> None:
            f.write(data)

        self._atomic_write(key, write)

    def _put_stream(self, key: str, fileobj: BinaryIO, size_hint: int | None) -> None:
        def write(f: BinaryIO) -> None:
            while True:
                try:
                    chunk = fileobj.read(_CHUNK)
                except BaseException as exc:
                    raise _SourceFailedError(exc) from exc
                if not chunk:
                    return
                f.write(chunk)

        self._atomic_write(key, write)

    def _atomic_write(self, key: str, write: _Writer) -> None:
        target = self._path(key)
        directory = os.path.dirname(target)
        try:
            fd, tmp = self._mkstemp(directory, os.path.basename(target))
        except OSError as exc:
            raise self._os_error("write", key, exc) from exc
        try:
            with os.fdopen(fd, "wb") as f:
                write(f)
                f.flush()
                os.fsync(f.fileno())
            os.chmod(tmp, FILE_MODE)
            os.replace(tmp, target)
        except BaseException as exc:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            if isinstance(exc, _SourceFailedError):
                raise exc.error from None  # the caller's stream failed, not the store
            if isinstance(exc, OSError):
                raise self._os_error("write", key, exc) from exc
            raise
        _fsync_dir(directory)

    @staticmethod
    def _mkstemp(directory: str, name: str) -> tuple[int, str]:
        # A concurrent delete may prune the directory between makedirs and mkstemp.
        for attempt in range(5):
            make_private_dirs(directory)
            try:
                return tempfile.mkstemp(prefix=f"{_TMP_PREFIX}{name}.", dir=directory)
            except FileNotFoundError:
                if attempt == 4:
                    raise
        raise AssertionError("unreachable")

    def _delete(self, key: str) -> None:
        path = self._path(key)
        try:
            os.unlink(path)
        except (FileNotFoundError, NotADirectoryError):
            return
        except IsADirectoryError:
            return  # "key" is only a prefix of other keys: no such object
        except OSError as exc:
            if exc.errno == errno.EISDIR or (exc.errno == errno.EPERM and os.path.isdir(path)):
                return
            raise self._os_error("delete", key, exc) from exc
        self._prune(os.path.dirname(path))

    def _delete_prefix(self, prefix: str) -> int:
        count = 0
        for info in builtins.list(self._list(prefix, None)):
            self._delete(info.key)
            count += 1
        return count

    def _prune(self, directory: str) -> None:
        """Remove ``directory`` and its parents up to the root while they are empty."""
        root = os.path.normpath(self.root)
        directory = os.path.normpath(directory)
        while directory != root and directory.startswith(root + os.sep):
            try:
                os.rmdir(directory)
            except OSError:
                return  # not empty (or raced with a writer): stop
            directory = os.path.dirname(directory)

    # -- reads ----------------------------------------------------------------------

    def _open(self, key: str) -> BinaryIO:
        try:
            return open(self._path(key), "rb")
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError) as exc:
            raise self._not_found(key) from exc
        except OSError as exc:
            raise self._os_error("read", key, exc) from exc

    def _head(self, key: str) -> ObjectInfo | None:
        try:
            st = os.stat(self._path(key))
        except (FileNotFoundError, NotADirectoryError):
            return None
        except OSError as exc:
            raise self._os_error("stat", key, exc) from exc
        return _info(key, st) if stat.S_ISREG(st.st_mode) else None

    def _list(self, prefix: str, delimiter: str | None) -> Iterator[ObjectInfo]:
        base = prefix.rsplit("/", 1)[0] if "/" in prefix else ""
        start = self._path(base) if base else self.root
        found: builtins.list[ObjectInfo] = []
        for dirpath, dirnames, filenames in os.walk(start, onerror=self._walk_error):
            rel_dir = os.path.relpath(dirpath, self.root)
            rel_dir = "" if rel_dir == "." else rel_dir.replace(os.sep, "/") + "/"
            # Descend only where keys can still start with the prefix.
            dirnames[:] = [
                d
                for d in dirnames
                if (rel_dir + d + "/").startswith(prefix) or prefix.startswith(rel_dir + d + "/")
            ]
            for name in filenames:
                key = rel_dir + name
                if name.startswith(_TMP_PREFIX) or not key.startswith(prefix):
                    continue
                if delimiter and delimiter in key[len(prefix) :]:
                    continue
                try:
                    st = os.stat(os.path.join(dirpath, name))
                except FileNotFoundError:
                    continue  # deleted while we walked
                found.append(_info(key, st))
        found.sort(key=lambda info: info.key)
        return iter(found)

    def _walk_error(self, exc: OSError) -> None:
        if isinstance(exc, (FileNotFoundError, NotADirectoryError)):
            return  # nothing under this prefix
        raise self._os_error("list", os.path.relpath(exc.filename or self.root, self.root), exc)

    def _list_prefixes(self, prefix: str, delimiter: str) -> builtins.list[str]:
        if delimiter != "/":
            names = set()
            for info in self._list(prefix, None):
                rest = info.key[len(prefix) :]
                if delimiter in rest:
                    names.add(rest.split(delimiter, 1)[0])
            return sorted(names)
        directory = self._path(prefix.rstrip("/")) if prefix else self.root
        try:
            entries = builtins.list(os.scandir(directory))
        except (FileNotFoundError, NotADirectoryError):
            return []
        except OSError as exc:
            raise self._os_error("list", prefix, exc) from exc
        return sorted(
            e.name for e in entries if e.is_dir(follow_symlinks=False) and _has_object(e.path)
        )


class _SourceFailedError(Exception):
    """Carries an error raised by the caller's input stream past the store's OSError handling."""

    def __init__(self, error: BaseException) -> None:
        super().__init__(str(error))
        self.error = error


def _info(key: str, st: os.stat_result) -> ObjectInfo:
    return ObjectInfo(
        key=key,
        size=st.st_size,
        etag=f"{st.st_size:x}-{st.st_mtime_ns:x}",
        last_modified=datetime.fromtimestamp(st.st_mtime, tz=UTC),
    )


def _has_object(directory: str) -> bool:
    """Whether ``directory`` holds at least one (non-temporary) file, at any depth."""
    for _dirpath, _dirnames, filenames in os.walk(directory):
        if any(not name.startswith(_TMP_PREFIX) for name in filenames):
            return True
    return False


def make_private_dirs(directory: str) -> None:
    """os.makedirs, each folder it creates 0700 (makedirs' mode reaches the last only)."""
    missing = []
    path = os.path.abspath(directory)
    while not os.path.isdir(path):
        missing.append(path)
        parent = os.path.dirname(path)
        if parent == path:
            break
        path = parent
    for path in reversed(missing):
        try:
            os.mkdir(path, DIR_MODE)
        except FileExistsError:
            if not os.path.isdir(path):
                raise
            continue  # made meanwhile by a concurrent writer
        os.chmod(path, DIR_MODE)  # the umask may have taken bits away, never added: exact


def _fsync_dir(directory: str) -> None:
    """Make the rename durable; best effort (not every filesystem supports it)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
