"""Streams over S3 objects that survive a flaky network, for :mod:`migrate.store.s3`.

botocore retries whole requests, but two things it cannot retry on its own: a GetObject
body that breaks after the response began (the caller is already reading it), and a
CompleteMultipartUpload whose reply was lost (the server completed the upload, so the
retry is told ``NoSuchUpload``).  :class:`BodyReader` resumes the first with a Range
request pinned to the object's ETag; :class:`HashingSource` counts and hashes what an
upload read, so that the second can be recognised as a success by comparing the stored
object with it, never by trusting the error.
"""

from __future__ import annotations

import hashlib
import io
from typing import TYPE_CHECKING, Any, BinaryIO, Protocol

from botocore.exceptions import BotoCoreError

from migrate.errors import MigrateError, StoreError
from migrate.store.url import BucketURL

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer
    from mypy_boto3_s3.type_defs import GetObjectOutputTypeDef

__all__ = ["READ_RESUMES", "BodyReader", "HashingSource"]

READ_RESUMES = 3  # broken reads resumed in a row without getting a byte, before giving up


class _Getter(Protocol):
    url: BucketURL

    def _get_object(self, key: str, start: int = 0, etag: str = "") -> GetObjectOutputTypeDef: ...

    def _error(self, exc: Exception, action: str, key: str) -> MigrateError: ...


class BodyReader(io.RawIOBase):
    """A raw stream over a GetObject body that resumes with a Range request if it breaks.

    The resumed request carries ``If-Match: <etag>``, so an object replaced meanwhile is
    an error ("changed while it was being read"), never a splice of two objects.  A
    long download may break many times; it gives up only after READ_RESUMES resumes in a
    row that brought no data.
    """

    def __init__(self, store: _Getter, key: str, response: GetObjectOutputTypeDef) -> None:
        super().__init__()
        self._store = store
        self._key = key
        self._body = response["Body"]
        self._etag = response.get("ETag", "")
        self._size = response.get("ContentLength", -1)
        self._pos = 0
        self._resumes = 0  # in a row, without progress

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: WriteableBuffer) -> int:
        view = memoryview(buffer).cast("B")
        while True:
            try:
                data = self._body.read(len(view))
            except (BotoCoreError, OSError) as exc:
                self._resume(exc)
                continue
            if not data and 0 <= self._pos < self._size:
                self._resume(None)
                continue
            view[: len(data)] = data
            self._pos += len(data)
            if data:
                self._resumes = 0
            return len(data)

    def _resume(self, exc: Exception | None) -> None:
        where = self._store.url.key_url(self._key)
        if self._resumes >= READ_RESUMES:
            if exc is not None:
                raise self._store._error(exc, "read", self._key) from exc
            raise StoreError(f"{where} ended after {self._pos} of {self._size} bytes")
        self._resumes += 1
        self._body.close()
        response = self._store._get_object(self._key, self._pos, self._etag)
        self._body = response["Body"]

    def close(self) -> None:
        if not self.closed:
            self._body.close()
        super().close()


class HashingSource:
    """What an upload reads from ``raw``, counted and hashed on the way.

    It has no ``seek``: boto3 treats it as the non-seekable stream it stands for, and
    ``read(n)`` returns ``n`` bytes unless the stream ends (upload parts must be full).
    """

    def __init__(self, raw: BinaryIO) -> None:
        self._raw = raw
        self.sha256 = hashlib.sha256()
        self.size = 0

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        data = self._raw.read(n)
        self.sha256.update(data)
        self.size += len(data)
        return data

    def matches(self, stream: Any) -> bool:
        """Whether ``stream`` (read to its end and closed) holds exactly what was read."""
        digest = hashlib.sha256()
        size = 0
        with stream as f:
            while chunk := f.read(1 << 20):
                digest.update(chunk)
                size += len(chunk)
        return (size, digest.hexdigest()) == (self.size, self.sha256.hexdigest())
