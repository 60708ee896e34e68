"""Stream a backup tarball (tar inside gzip) straight into the bucket, and back out.

Writing: objects go into a tar stream, through gzip and a pipe into the store's
multipart upload running in a thread, so memory stays flat however many objects a
backup holds; size and sha256 are computed on the way.  If writing fails, the upload
is made to fail too (never completed with a truncated body).
Reading: entries come out one at a time from a streaming download; a corrupted or
truncated tarball raises IntegrityError, and so does a sha256 that does not match.
With a key (`--encryption-key-file`) the gzip stream is sealed on the way out and
authenticated on the way in (migrate.store.crypto); size and sha256 are always those
of the stored bytes.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import io
import os
import queue
import tarfile
import threading
import time
import zlib
from collections.abc import Iterator
from typing import Any, BinaryIO

from migrate.errors import IntegrityError, MigrateError, StoreError
from migrate.store.base import Store
from migrate.store.crypto import MAGIC, DecryptingReader, EncryptingWriter, EncryptionKey
from migrate.store.tarread import TarFormatError, iter_files
from migrate.store.ustar import Template, ustar_header

COMPRESS_LEVEL = 1  # JSON compresses well even at 1, and 6 costs ~3x the CPU
FLUSH_BYTES = 1 << 20  # entries are gathered and compressed a MiB at a time
QUEUED_CHUNKS = 8  # MiB waiting for compression at most (memory stays flat)


_ZEROS = memoryview(bytes(512))


class _Aborted(Exception):
    pass


class _PipeReader(io.RawIOBase):
    """The upload's view of the pipe: raises instead of EOF when the writer aborted."""

    def __init__(self, fd: int, aborted: threading.Event) -> None:
        self._f = os.fdopen(fd, "rb", buffering=0)
        self._aborted = aborted

    def readable(self) -> bool:
        return True

    def readinto(self, buf: Any) -> int:
        n = self._f.readinto(buf)
        if not n and self._aborted.is_set():
            raise _Aborted("backup aborted; upload cancelled")
        return n or 0

    def close(self) -> None:
        self._f.close()
        super().close()


class _HashingWriter(io.RawIOBase):
    def __init__(self, raw: BinaryIO) -> None:
        self._raw = raw
        self.sha256 = hashlib.sha256()
        self.size = 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        mv = memoryview(data)
        self._raw.write(mv)
        self.sha256.update(mv)
        self.size += len(mv)
        return len(mv)


class TarballWriter:
    """`with TarballWriter(store, key) as tw: tw.add(path, data)`; then tw.size, tw.sha256.

    With `encrypt_with`, the gzip stream is encrypted before it is hashed and uploaded."""

    def __init__(self, store: Store, key: str, encrypt_with: EncryptionKey | None = None) -> None:
        self.key = key
        self.size = 0
        self.sha256 = ""
        self.entries = 0
        rfd, wfd = os.pipe()
        self._aborted = threading.Event()
        self._reader = io.BufferedReader(_PipeReader(rfd, self._aborted), 1 << 20)
        self._raw = os.fdopen(wfd, "wb", buffering=1 << 20)
        self._hash = _HashingWriter(self._raw)
        self._enc: EncryptingWriter | None = None
        if encrypt_with is not None:
            self._enc = EncryptingWriter(self._hash, encrypt_with, os.path.basename(key))
        self._gz = gzip.GzipFile(
            fileobj=self._hash if self._enc is None else self._enc,
            mode="wb",
            compresslevel=COMPRESS_LEVEL,
            mtime=0,
        )
        self._buf = bytearray()
        self._error: BaseException | None = None
        self._template = Template(int(time.time()))
        self._thread = threading.Thread(target=self._upload, args=(store,), daemon=True)
        self._thread.start()
        # gzip (and the pipe into the upload) run in their own thread, so the threads
        # adding objects never wait for compression or for the upload to read the pipe
        self._chunks: queue.Queue[bytes | None] = queue.Queue(maxsize=QUEUED_CHUNKS)
        self._compress_error: BaseException | None = None
        self._compressor = threading.Thread(target=self._compress, daemon=True)
        self._compressor.start()

    def _compress(self) -> None:
        while (chunk := self._chunks.get()) is not None:
            if self._compress_error is not None:
                continue  # failed: drain, so add() never blocks on a full queue
            try:
                self._gz.write(chunk)
            except BaseException as exc:  # raised to the adding thread by _flush/close
                self._compress_error = exc

    def _upload(self, store: Store) -> None:
        try:
            store.put_stream(self.key, self._reader)
        except BaseException as exc:  # reported by add()/close() in the writing thread
            self._error = exc
        finally:
            self._reader.close()

    def add(self, path: str, data: bytes) -> None:
        """Append one regular file (mode 0755 and a fixed mtime, as Velero writes)."""
        self.add_copies((path,), data)

    def add_copies(self, paths: tuple[str, ...], data: bytes) -> None:
        """Append the same content under each of `paths` (an item's two Velero paths)."""
        self.append(self.entries_of(paths, data), len(paths))

    def entries_of(self, paths: tuple[str, ...], data: bytes) -> bytes:
        """The tar entries of the same content under each of `paths`, to `append` later:
        touches nothing shared, so threads build theirs at once."""
        size = len(data)
        pad = _ZEROS[size % 512 :] if size % 512 else b""
        out: list[bytes | memoryview] = []
        for path in paths:
            header = ustar_header(path, size, self._template)
            if header is None:  # a name longer than ustar holds: a PAX header, as Go writes
                info = tarfile.TarInfo(path)
                info.size, info.mode, info.mtime = size, 0o755, self._template.mtime
                header = info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")
            out += (header, data, pad)
        return b"".join(out)

    def append(self, entries: bytes, count: int) -> None:
        """Append `count` entries made by `entries_of` (callers serialize their appends)."""
        self._buf += entries
        self.entries += count
        if len(self._buf) >= FLUSH_BYTES:
            self._flush()

    def _flush(self) -> None:
        if self._compress_error is not None:
            raise self._failure() from self._compress_error
        self._chunks.put(bytes(self._buf))
        self._buf.clear()

    def _failure(self) -> MigrateError:
        self._thread.join(timeout=30)
        for err in (self._error, self._compress_error):
            if isinstance(err, MigrateError):
                return err
        return StoreError(f"upload of {self.key} failed: {self._error or self._compress_error}")

    def close(self) -> None:
        self._buf += bytes(1024)  # end-of-archive marker: two zero blocks
        self._flush()
        self._chunks.put(None)
        self._compressor.join()
        if self._compress_error is not None:
            raise self._failure() from self._compress_error
        try:
            self._gz.close()
            if self._enc is not None:
                self._enc.finish()
            self._raw.close()
        except OSError as exc:
            raise self._failure() from exc
        self._thread.join()
        if self._error is not None:
            raise self._failure()
        self.size = self._hash.size
        self.sha256 = self._hash.sha256.hexdigest()

    def abort(self) -> None:
        """Make the upload fail (no object is completed), then release everything."""
        self._aborted.set()
        self._compress_error = self._compress_error or _Aborted("aborted")
        with contextlib.suppress(queue.Full):  # the compressor drains fast once failed
            self._chunks.put(None, timeout=60)
        with contextlib.suppress(OSError):
            self._raw.close()
        self._compressor.join(timeout=60)
        self._thread.join(timeout=60)

    def __enter__(self) -> TarballWriter:
        return self

    def __exit__(self, exc_type: Any, *_: Any) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


class _HashingReader(io.RawIOBase):
    def __init__(self, raw: BinaryIO) -> None:
        self._raw = raw
        self.sha256 = hashlib.sha256()
        self.size = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buf: Any) -> int:
        data = self._raw.read(len(buf))
        n = len(data)
        buf[:n] = data
        self.sha256.update(data)
        self.size += n
        return n


def read_tarball(
    store: Store,
    key: str,
    expect_sha256: str | None = None,
    decrypt_with: EncryptionKey | None = None,
) -> Iterator[tuple[str, bytes]]:
    """Yield (path, content) of every regular file in a tarball, streaming.

    With expect_sha256, the whole download is checked after the last entry; with
    decrypt_with, every segment is authenticated before its entries come out, and the
    stream's completeness after the last one."""
    raw = store.open(key)
    hashing = _HashingReader(raw)
    stream: io.RawIOBase = hashing
    if decrypt_with is not None:
        name = os.path.basename(key)
        stream = DecryptingReader(hashing, decrypt_with, name, f"backup tarball {key}")
    buffered = io.BufferedReader(stream, 1 << 20)
    try:
        if decrypt_with is None and buffered.peek(len(MAGIC))[: len(MAGIC)] == MAGIC:
            raise IntegrityError(
                f"backup tarball {key} is encrypted, but the backup's manifest does not say so",
                hint="the manifest is missing or was altered; restore it, or re-run the backup",
            )
        with gzip.GzipFile(fileobj=buffered, mode="rb") as unzipped:
            yield from iter_files(unzipped)  # type: ignore[arg-type]
            while unzipped.read(1 << 20):  # past the end-of-archive blocks: must inflate
                pass
        while buffered.read(1 << 20):  # drain what tar did not need (padding; the
            pass  # last encrypted segments, which must authenticate too)
    except (TarFormatError, EOFError, zlib.error, gzip.BadGzipFile) as exc:
        raise IntegrityError(f"backup tarball {key} is corrupted or truncated: {exc}") from exc
    finally:
        raw.close()
    if expect_sha256 and hashing.sha256.hexdigest() != expect_sha256:
        raise IntegrityError(
            f"backup tarball {key}: sha256 {hashing.sha256.hexdigest()[:16]}... does not match "
            f"the manifest's {expect_sha256[:16]}..."
        )
