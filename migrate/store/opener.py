"""Which backend a bucket URL opens: the one place that knows every :class:`Store`
subclass.  Kept apart from base.py so the interface does not import its own
implementations (local.py and s3.py import base.py, never the reverse)."""

from __future__ import annotations

from typing import Any

from migrate.errors import UsageError
from migrate.store.base import Store, StoreOptions
from migrate.store.local import LocalStore
from migrate.store.url import BucketURL


def open_store(
    url: BucketURL | str,
    options: StoreOptions | None = None,
    read_only: bool = False,
) -> Store:
    """Open the store for ``url`` (``s3://`` or ``file://``); no request is made yet."""
    parsed = url if isinstance(url, BucketURL) else BucketURL.parse(url)
    if parsed.scheme == "s3":
        from migrate.store.s3 import S3Store  # boto3 is loaded for an s3:// bucket only

        return S3Store(parsed, options or StoreOptions(), read_only=read_only)
    if options is not None and options.sse:  # asked for encryption it cannot have: say so
        raise UsageError(
            f"--s3-sse applies to s3:// buckets, not {parsed}",
            hint="drop --s3-sse (and KUBE_MIGRATE_S3_SSE) for a local folder; "
            "--encryption-key-file encrypts backups anywhere",
        )
    return LocalStore(parsed, read_only=read_only)


def open_bucket(
    bucket: str,
    s3_endpoint: str | None = None,
    s3_region: str | None = None,
    s3_profile: str | None = None,
    s3_path_style: bool | None = None,
    read_only_bucket: bool = False,
    s3_sse: str | None = None,
    s3_kms_key_id: str | None = None,
    **_: Any,
) -> Store:
    """Open the store named by the bucket flags (or a playbook's bucket,
    BucketEndpoint.open_kwargs()): the one place their names become StoreOptions."""
    options = StoreOptions(
        endpoint_url=s3_endpoint,
        region=s3_region,
        profile=s3_profile,
        path_style=s3_path_style,
        sse=s3_sse,
        kms_key_id=s3_kms_key_id,
    )
    return open_store(BucketURL.parse(bucket), options, read_only=read_only_bucket)
