"""The backup bucket (Velero's layout) on S3/MinIO or in a local directory.

This package is the only place that imports boto3/botocore; everything else opens a
:class:`Store` with :func:`open_store` and sees only :mod:`migrate.errors` exceptions.
"""

from __future__ import annotations

from migrate.store.base import ObjectInfo, Store, StoreOptions
from migrate.store.opener import open_bucket, open_store
from migrate.store.url import BucketURL

__all__ = ["BucketURL", "ObjectInfo", "Store", "StoreOptions", "open_bucket", "open_store"]
