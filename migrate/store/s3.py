"""An ``s3://`` store on AWS S3 or an S3-compatible server (MinIO, Ceph, ...).

This module (with its helpers s3_errors and s3_stream) is the only code that talks to
boto3.  It owns the client settings that make a migration survive a flaky network
(botocore's own retries with back-off, a connection pool sized for parallel uploads,
multipart uploads for large tarballs, resumable streaming reads, a multipart completion
whose reply was lost) and turns botocore's exceptions into :mod:`migrate.errors` classes
with a hint the user can act on.  Messages never contain credentials.  A read-only
store's client refuses every writing operation before it is signed.  With --s3-sse every
object written asks for server-side encryption (and the KMS key, if named).
"""

from __future__ import annotations

import builtins
import io
import threading
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, BinaryIO, TypeVar, cast

import boto3
from boto3.exceptions import S3UploadFailedError
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, ProfileNotFound

from migrate.errors import MigrateError, StoreError, StoreReadOnly, UsageError
from migrate.store.base import ObjectInfo, Store, StoreOptions
from migrate.store.s3_errors import safe_endpoint, translate
from migrate.store.s3_stream import BodyReader, HashingSource
from migrate.store.url import BucketURL

if TYPE_CHECKING:
    from botocore.model import OperationModel
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.type_defs import (
        DeleteTypeDef,
        GetObjectOutputTypeDef,
        ListObjectsV2OutputTypeDef,
    )

__all__ = ["MULTIPART_THRESHOLD", "S3Store"]

_T = TypeVar("_T")

MIB = 1024 * 1024
MULTIPART_THRESHOLD = 8 * MIB  # streams larger than this are uploaded in parts
_MAX_PARTS = 10_000  # S3's limit on parts per multipart upload
_DELETE_BATCH = 1000  # S3's limit on keys per DeleteObjects request

# The only S3 operations a read-only store lets its client send.  Store refuses writes
# before it touches anything; this allow-list refuses them once more, inside botocore
# before a request is signed, for any code that reaches the client some other way
# (boto3's managed transfers included).
READ_ONLY_OPERATIONS = frozenset(
    {
        "GetObject",  # open/get, and the Range requests that resume a broken read
        "HeadObject",  # head/exists
        "ListObjectsV2",  # list/list_prefixes, all pages
        "ListObjects",  # the v1 listing, for servers without v2
        "HeadBucket",
        "GetBucketLocation",
    }
)


class S3Store(Store):
    """Objects in ``url.bucket`` under ``url.prefix``; one lazily created, shared client."""

    def __init__(self, url: BucketURL, options: StoreOptions, read_only: bool = False) -> None:
        if url.scheme != "s3":
            raise ValueError(f"S3Store needs an s3:// URL, not {url}")
        super().__init__(url, read_only=read_only)
        self.options = options
        self._base = f"{url.prefix}/" if url.prefix else ""
        self._lock = threading.Lock()
        self._client: S3Client | None = None

    # -- client ---------------------------------------------------------------------

    @property
    def client(self) -> S3Client:
        """The boto3 client, created on first use (boto3 clients are thread-safe)."""
        client = self._client
        if client is None:
            with self._lock:
                if self._client is None:
                    self._client = self._make_client()
                client = self._client
        return client

    def _make_client(self) -> S3Client:
        opts = self.options
        region = opts.resolved_region()
        endpoint = opts.resolved_endpoint()
        try:
            # Sessions are not thread-safe: one per store, used here only.
            session = boto3.session.Session(profile_name=opts.profile, region_name=region)
        except ProfileNotFound as exc:
            raise UsageError(
                f"AWS profile {opts.profile!r} not found",
                hint="check ~/.aws/config and ~/.aws/credentials, or drop --s3-profile",
            ) from exc
        settings: dict[str, Any] = {
            "region_name": region,
            "signature_version": "s3v4",
            "retries": {"mode": "standard", "total_max_attempts": max(1, opts.max_attempts)},
            "max_pool_connections": opts.max_pool_connections,
            "connect_timeout": 10,
            "read_timeout": 120,
            "s3": {"addressing_style": "path" if opts.resolved_path_style() else "virtual"},
        }
        # Newer botocore adds CRC checksums to every request, which many S3-compatible
        # servers reject; only send them where the API requires one.
        for name in ("request_checksum_calculation", "response_checksum_validation"):
            if name in Config.OPTION_DEFAULTS:
                settings[name] = "when_required"
        try:
            client = session.client("s3", endpoint_url=endpoint, config=Config(**settings))
        except ValueError as exc:
            raise UsageError(
                f"invalid S3 endpoint {safe_endpoint(endpoint or '')!r}",
                hint="pass --s3-endpoint as a full URL, e.g. http://minio.example:9000",
            ) from exc
        client.meta.events.register("before-call.s3", self._guard)
        return client

    def _guard(self, model: OperationModel, **_: Any) -> None:
        """botocore's before-call hook: a read-only store sends no writing operation."""
        if self.read_only and model.name not in READ_ONLY_OPERATIONS:
            raise StoreReadOnly(f"cannot send {model.name} to {self.url}: the store is read-only")

    def _call(self, action: str, key: str, fn: Callable[[S3Client], _T]) -> _T:
        client = self.client
        try:
            return fn(client)
        except (ClientError, BotoCoreError, S3UploadFailedError) as exc:
            raise self._error(exc, action, key) from exc

    def _error(self, exc: Exception, action: str, key: str) -> MigrateError:
        return translate(
            exc,
            action=action,
            where=self.url.key_url(key),
            bucket=self.url.bucket,
            endpoint=self.options.resolved_endpoint(),
            not_found=self._not_found(key),
        )

    # -- writes ---------------------------------------------------------------------

    def _put(self, key: str, data: bytes) -> None:
        full = self._base + key
        sse: Any = self.options.sse_args()
        self._call(
            "write",
            key,
            lambda c: c.put_object(Bucket=self.url.bucket, Key=full, Body=data, **sse),
        )

    def _put_stream(self, key: str, fileobj: BinaryIO, size_hint: int | None) -> None:
        chunk = MULTIPART_THRESHOLD
        if size_hint is not None and size_hint > chunk * _MAX_PARTS:
            chunk = (size_hint // (_MAX_PARTS - 1) // MIB + 1) * MIB
        config = TransferConfig(
            multipart_threshold=MULTIPART_THRESHOLD,
            multipart_chunksize=chunk,
            max_concurrency=max(1, min(10, self.options.max_pool_connections)),
            use_threads=True,
        )
        full = self._base + key
        source = HashingSource(fileobj)
        try:
            self.client.upload_fileobj(  # ExtraArgs: on the PutObject or CreateMultipartUpload
                cast("BinaryIO", source),
                self.url.bucket,
                full,
                ExtraArgs=self.options.sse_args() or None,
                Config=config,
            )
        except ClientError as exc:
            if not self._completed_anyway(exc, key, source):
                raise self._error(exc, "write", key) from exc
        except (BotoCoreError, S3UploadFailedError) as exc:
            raise self._error(exc, "write", key) from exc

    def _completed_anyway(self, exc: ClientError, key: str, source: HashingSource) -> bool:
        """Whether a CompleteMultipartUpload that failed with NoSuchUpload had in fact
        completed (its reply was lost, and botocore's retry found the upload gone): only
        if the stored object is byte for byte what was uploaded."""
        code = exc.response.get("Error", {}).get("Code")
        if exc.operation_name != "CompleteMultipartUpload" or code != "NoSuchUpload":
            return False
        info = self._head(key)
        return info is not None and info.size == source.size and source.matches(self._open(key))

    def _delete(self, key: str) -> None:
        full = self._base + key
        self._call("delete", key, lambda c: c.delete_object(Bucket=self.url.bucket, Key=full))

    def _delete_prefix(self, prefix: str) -> int:
        count = 0
        for page in self._pages(prefix, None):
            keys = [obj["Key"] for obj in page.get("Contents", [])]
            for start in range(0, len(keys), _DELETE_BATCH):
                count += self._delete_batch(prefix, keys[start : start + _DELETE_BATCH])
        return count

    def _delete_batch(self, prefix: str, keys: builtins.list[str]) -> int:
        request: DeleteTypeDef = {"Objects": [{"Key": k} for k in keys], "Quiet": True}
        response = self._call(
            "delete",
            prefix,
            lambda c: c.delete_objects(Bucket=self.url.bucket, Delete=request),
        )
        errors = response.get("Errors", [])
        if errors:
            first = errors[0]
            raise StoreError(
                f"cannot delete {len(errors)} of {len(keys)} objects under "
                f"{self.url.key_url(prefix)}; first: {first.get('Key', '?')}: "
                f"{first.get('Code', '?')}: {first.get('Message', '')}"
            )
        return len(keys)

    # -- reads ----------------------------------------------------------------------

    def _get_object(self, key: str, start: int = 0, etag: str = "") -> GetObjectOutputTypeDef:
        args: dict[str, Any] = {"Bucket": self.url.bucket, "Key": self._base + key}
        if start:
            args["Range"] = f"bytes={start}-"
        if etag:
            args["IfMatch"] = etag
        return self._call("read", key, lambda c: c.get_object(**args))

    def _open(self, key: str) -> BinaryIO:
        return io.BufferedReader(BodyReader(self, key, self._get_object(key)), MIB)

    def _head(self, key: str) -> ObjectInfo | None:
        try:
            response = self.client.head_object(Bucket=self.url.bucket, Key=self._base + key)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return None
            raise self._error(exc, "stat", key) from exc
        except BotoCoreError as exc:
            raise self._error(exc, "stat", key) from exc
        return ObjectInfo(
            key=key,
            size=response["ContentLength"],
            etag=response.get("ETag", "").strip('"'),
            last_modified=response["LastModified"],
        )

    def _pages(self, prefix: str, delimiter: str | None) -> Iterator[ListObjectsV2OutputTypeDef]:
        args: dict[str, Any] = {"Bucket": self.url.bucket, "Prefix": self._base + prefix}
        if delimiter:
            args["Delimiter"] = delimiter
        pages = iter(self.client.get_paginator("list_objects_v2").paginate(**args))
        while True:
            try:
                page = next(pages)
            except StopIteration:
                return
            except (ClientError, BotoCoreError) as exc:
                raise self._error(exc, "list", prefix) from exc
            yield page

    def _list(self, prefix: str, delimiter: str | None) -> Iterator[ObjectInfo]:
        skip = len(self._base)
        for page in self._pages(prefix, delimiter):
            for obj in page.get("Contents", []):
                key = obj["Key"][skip:]
                if not key or key.endswith("/"):
                    continue  # "directory marker" objects made by some consoles
                yield ObjectInfo(
                    key=key,
                    size=obj["Size"],
                    etag=obj.get("ETag", "").strip('"'),
                    last_modified=obj["LastModified"],
                )

    def _list_prefixes(self, prefix: str, delimiter: str) -> builtins.list[str]:
        skip = len(self._base) + len(prefix)
        names: builtins.list[str] = []
        for page in self._pages(prefix, delimiter):
            for common in page.get("CommonPrefixes", []):
                name = common.get("Prefix", "")[skip:]
                name = name.removesuffix(delimiter)
                if name:
                    names.append(name)
        return names
