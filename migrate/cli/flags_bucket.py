"""The bucket flags, declared once: `--bucket URL`, the S3 connection flags and S3
server-side encryption, as click decorators and as the typed `BucketFlags`
(migrate.cli.binding) that opens the store they name.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import click

from migrate.cli.binding import F, Flags, apply_options
from migrate.errors import UsageError
from migrate.store import Store, open_bucket
from migrate.store.base import SSE_MODES


def sse_options(f: F) -> F:
    """`--s3-sse` and `--s3-kms-key-id`: S3 server-side encryption of every object written."""
    return apply_options(
        f,
        [
            click.option(
                "--s3-sse",
                type=click.Choice(SSE_MODES),
                envvar="KUBE_MIGRATE_S3_SSE",
                default=None,
                help="Server-side encryption of every object written to S3 "
                "[env KUBE_MIGRATE_S3_SSE].",
            ),
            click.option(
                "--s3-kms-key-id",
                metavar="KEY",
                envvar="KUBE_MIGRATE_S3_KMS_KEY_ID",
                default=None,
                help="KMS key (id, ARN or alias) for --s3-sse aws:kms (default: the account's "
                "aws/s3 key) [env KUBE_MIGRATE_S3_KMS_KEY_ID].",
            ),
        ],
    )


def _bucket_options(f: F, required: bool) -> F:
    return apply_options(
        f,
        [
            click.option(
                "--bucket",
                metavar="URL",
                envvar="KUBE_MIGRATE_BUCKET",
                required=required,
                help="s3://bucket[/prefix] or file:///abs/dir [env KUBE_MIGRATE_BUCKET].",
            ),
            click.option(
                "--s3-endpoint",
                metavar="URL",
                envvar="KUBE_MIGRATE_S3_ENDPOINT",
                help="S3 endpoint (MinIO, Ceph...); default $AWS_ENDPOINT_URL or AWS.",
            ),
            click.option("--s3-region", metavar="REGION", help="S3 region (default $AWS_REGION)."),
            click.option("--s3-profile", metavar="NAME", help="AWS shared-credentials profile."),
            click.option(
                "--s3-path-style/--s3-virtual-hosted",
                default=None,
                help="Addressing style (default: path-style when an endpoint is set).",
            ),
            click.option(
                "--read-only-bucket",
                is_flag=True,
                help="Never write or delete anything in the bucket.",
            ),
            sse_options,
        ],
    )


def bucket_options(f: F) -> F:
    """`--bucket URL` (required) and the S3 connection flags."""
    return _bucket_options(f, required=True)


def optional_bucket_options(f: F) -> F:
    """The bucket flags for commands that need a bucket only in some modes (e.g. with
    --from-backup); BucketFlags.bucket is then None when not given."""
    return _bucket_options(f, required=False)


@dataclass(frozen=True)
class BucketFlags(Flags):
    """bucket_options (or optional_bucket_options): where the backups are, and how to
    reach and write them."""

    bucket: str | None
    s3_endpoint: str | None = None
    s3_region: str | None = None
    s3_profile: str | None = None
    s3_path_style: bool | None = None
    read_only_bucket: bool = False
    s3_sse: str | None = None
    s3_kms_key_id: str | None = None

    def open(self, read_only: bool = False) -> Store:
        """Open the store (read-only when the command only reads, whatever the flags say:
        the store then refuses writes)."""
        if not self.bucket:
            raise UsageError("no bucket", hint="pass --bucket URL or set KUBE_MIGRATE_BUCKET")
        values = asdict(self)
        values["read_only_bucket"] = self.read_only_bucket or read_only
        return open_bucket(**values)
