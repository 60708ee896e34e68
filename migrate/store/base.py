"""The storage interface every step uses to read and write the backup bucket.

Backup, sync and restore only ever see a :class:`Store`; whether the bytes go to S3,
MinIO or a local directory is decided once, from the bucket URL, by :func:`open_store`
(migrate.store.opener).  The base class owns the rules that must hold for every backend:
keys are relative to the URL's prefix and validated, and a read-only store refuses every
write *before* it touches anything.
"""

from __future__ import annotations

import abc
import builtins
import os
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import BinaryIO

from migrate.errors import StoreNotFound, StoreReadOnly, UsageError
from migrate.store.url import BucketURL, check_key, check_prefix

__all__ = ["SSE_MODES", "ObjectInfo", "Store", "StoreOptions"]

DEFAULT_REGION = "us-east-1"
# S3 server-side encryption modes (the x-amz-server-side-encryption header's values):
# keys managed by S3 (SSE-S3), or by AWS KMS (SSE-KMS, optionally naming the key).
SSE_MODES = ("AES256", "aws:kms")


@dataclass(frozen=True)
class ObjectInfo:
    """One object: ``key`` relative to the store's prefix, size in bytes, an opaque etag."""

    key: str
    size: int
    etag: str
    last_modified: datetime  # timezone-aware (UTC)


@dataclass(frozen=True)
class StoreOptions:
    """How to reach an S3 endpoint; every field falls back to the usual AWS env vars."""

    endpoint_url: str | None = None
    region: str | None = None
    profile: str | None = None
    path_style: bool | None = None  # None: path-style when an endpoint is set, else virtual
    max_pool_connections: int = 32
    max_attempts: int = 8  # tries per request, first included; botocore backs off between
    sse: str | None = None  # server-side encryption of every write: one of SSE_MODES
    kms_key_id: str | None = None  # the KMS key of sse="aws:kms" (else the bucket's default)

    def __post_init__(self) -> None:
        if self.sse is not None and self.sse not in SSE_MODES:
            raise UsageError(
                f"invalid --s3-sse {self.sse!r}: use {' or '.join(SSE_MODES)}",
                hint="AES256: keys managed by S3 (SSE-S3); aws:kms: keys in AWS KMS (SSE-KMS)",
            )
        if self.kms_key_id is not None and self.sse != "aws:kms":
            raise UsageError(
                "--s3-kms-key-id needs --s3-sse aws:kms",
                hint="add --s3-sse aws:kms (spec.bucket.sse: aws:kms in a playbook), "
                "or drop the key id",
            )
        if self.kms_key_id is not None and not self.kms_key_id.strip():
            raise UsageError("--s3-kms-key-id is empty", hint="give a KMS key id, ARN or alias")

    def sse_args(self) -> dict[str, str]:
        """The extra arguments of every PutObject and CreateMultipartUpload."""
        args: dict[str, str] = {}
        if self.sse:
            args["ServerSideEncryption"] = self.sse
        if self.kms_key_id:
            args["SSEKMSKeyId"] = self.kms_key_id
        return args

    def resolved_endpoint(self) -> str | None:
        """The endpoint URL: the option, else ``AWS_ENDPOINT_URL_S3``/``AWS_ENDPOINT_URL``."""
        for value in (
            self.endpoint_url,
            os.environ.get("AWS_ENDPOINT_URL_S3"),
            os.environ.get("AWS_ENDPOINT_URL"),
        ):
            if value:
                return value
        return None

    def resolved_region(self) -> str:
        """The region: the option, else ``AWS_REGION``/``AWS_DEFAULT_REGION``, else us-east-1."""
        for value in (
            self.region,
            os.environ.get("AWS_REGION"),
            os.environ.get("AWS_DEFAULT_REGION"),
        ):
            if value:
                return value
        return DEFAULT_REGION

    def resolved_path_style(self) -> bool:
        """Path-style addressing if asked for, or by default whenever an endpoint is set."""
        if self.path_style is not None:
            return self.path_style
        return self.resolved_endpoint() is not None


class Store(abc.ABC):
    """A bucket location holding objects under string keys relative to ``url``'s prefix.

    Public methods validate keys and enforce ``read_only``; backends implement the
    underscore methods and translate their own errors into :mod:`migrate.errors` classes.
    """

    def __init__(self, url: BucketURL, read_only: bool = False) -> None:
        self.url = url
        self.read_only = read_only

    def __repr__(self) -> str:
        mode = " read-only" if self.read_only else ""
        return f"<{type(self).__name__} {self.url}{mode}>"

    # -- writes ---------------------------------------------------------------------

    def put(self, key: str, data: bytes) -> None:
        """Store ``data`` under ``key``, replacing any previous object, atomically."""
        self._check_writable("write", key)
        self._put(check_key(key), data)

    def put_all(self, blobs: Mapping[str, bytes]) -> None:
        """put() each of several independent small objects, in parallel (a backup's and a
        restore's sidecar files: each PUT is mostly round trip)."""
        with ThreadPoolExecutor(max_workers=max(1, len(blobs))) as pool:
            for fut in [pool.submit(self.put, key, blob) for key, blob in blobs.items()]:
                fut.result()

    def put_stream(self, key: str, fileobj: BinaryIO, size_hint: int | None = None) -> None:
        """Store everything read from ``fileobj`` under ``key`` (multipart when large)."""
        self._check_writable("write", key)
        self._put_stream(check_key(key), fileobj, size_hint)

    def delete(self, key: str) -> None:
        """Delete ``key``; deleting a missing key is not an error."""
        self._check_writable("delete", key)
        self._delete(check_key(key))

    def delete_prefix(self, prefix: str) -> int:
        """Delete every object whose key starts with ``prefix``; return how many.

        The prefix is a plain string prefix: pass ``"backups/b1/"`` (trailing slash) to
        delete one backup without also deleting ``backups/b10/``.  An empty prefix is
        refused, so a bug cannot wipe the whole store.
        """
        self._check_writable("delete", prefix)
        if not prefix:
            raise UsageError(
                f"refusing to delete everything under {self.url}",
                hint="delete_prefix needs a non-empty prefix",
            )
        return self._delete_prefix(check_prefix(prefix))

    # -- reads ----------------------------------------------------------------------

    def get(self, key: str) -> bytes:
        """The whole content of ``key``; StoreNotFound if it does not exist."""
        with self.open(key) as f:
            return f.read()

    def open(self, key: str) -> BinaryIO:
        """A streaming, binary reader of ``key``; StoreNotFound if it does not exist."""
        return self._open(check_key(key))

    def head(self, key: str) -> ObjectInfo | None:
        """The object's metadata, or None if it does not exist."""
        return self._head(check_key(key))

    def exists(self, key: str) -> bool:
        """Whether ``key`` exists."""
        return self.head(key) is not None

    def list(self, prefix: str = "", delimiter: str | None = None) -> Iterator[ObjectInfo]:
        """Every object whose key starts with ``prefix``, sorted by key, all pages.

        With a ``delimiter``, objects whose key has the delimiter after ``prefix`` (those
        "in subdirectories") are left out.  Keys are relative to the store's prefix.
        """
        return self._list(check_prefix(prefix), delimiter or None)

    def list_prefixes(self, prefix: str = "", delimiter: str = "/") -> builtins.list[str]:
        """The sorted names of the "subdirectories" directly under ``prefix``.

        ``prefix`` names a directory: ``list_prefixes("backups")`` and
        ``list_prefixes("backups/")`` both give e.g. ``["b1", "b2"]`` for objects
        ``backups/b1/...`` and ``backups/b2/...``.
        """
        if not delimiter:
            raise UsageError("list_prefixes needs a non-empty delimiter")
        check_prefix(prefix)
        if prefix and not prefix.endswith(delimiter):
            prefix += delimiter
        return sorted(set(self._list_prefixes(prefix, delimiter)))

    # -- helpers for backends -------------------------------------------------------

    def _check_writable(self, action: str, key: str) -> None:
        if self.read_only:
            raise StoreReadOnly(f"cannot {action} {self.url.key_url(key)}: the store is read-only")

    def _not_found(self, key: str) -> StoreNotFound:
        return StoreNotFound(f"{self.url.key_url(key)} does not exist")

    # -- backend interface ----------------------------------------------------------

    @abc.abstractmethod
    def _put(self, key: str, data: bytes) -> None: ...

    @abc.abstractmethod
    def _put_stream(self, key: str, fileobj: BinaryIO, size_hint: int | None) -> None: ...

    @abc.abstractmethod
    def _open(self, key: str) -> BinaryIO: ...

    @abc.abstractmethod
    def _head(self, key: str) -> ObjectInfo | None: ...

    @abc.abstractmethod
    def _list(self, prefix: str, delimiter: str | None) -> Iterator[ObjectInfo]: ...

    @abc.abstractmethod
    def _list_prefixes(self, prefix: str, delimiter: str) -> builtins.list[str]:
        """Names (without ``prefix`` and trailing delimiter) of the common prefixes."""

    @abc.abstractmethod
    def _delete(self, key: str) -> None: ...

    @abc.abstractmethod
    def _delete_prefix(self, prefix: str) -> int: ...
