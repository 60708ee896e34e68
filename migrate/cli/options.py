"""Flags shared by many commands, declared once so every verb spells them the same way.

Single-cluster verbs take `--kubeconfig/--context` (kubectl's habit); two-cluster verbs
take `--source-*` and `--target-*`, each also read from a KUBE_MIGRATE_* variable.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

from migrate.cluster import Cluster, ClusterRef
from migrate.store import BucketURL, Store, StoreOptions, open_store

F = TypeVar("F", bound=Callable[..., Any])


def _apply(f: F, decorators: list[Callable[[F], F]]) -> F:
    for dec in reversed(decorators):
        f = dec(f)
    return f


def client_options(f: F) -> F:
    """Client-side throttling, like client-go's --kube-api-qps/--kube-api-burst."""
    return _apply(
        f,
        [
            click.option(
                "--qps",
                type=float,
                default=50.0,
                show_default=True,
                help="Client-side requests per second to each API server.",
            ),
            click.option(
                "--burst",
                type=int,
                default=100,
                show_default=True,
                help="Requests allowed in a burst above --qps.",
            ),
        ],
    )


def cluster_options(f: F) -> F:
    """`--kubeconfig/--context` for verbs that talk to one cluster."""
    return _apply(
        f,
        [
            click.option(
                "--kubeconfig",
                metavar="FILE",
                envvar="KUBE_MIGRATE_KUBECONFIG",
                help="Kubeconfig file (default: $KUBECONFIG, then ~/.kube/config).",
            ),
            click.option(
                "--context",
                metavar="NAME",
                envvar="KUBE_MIGRATE_CONTEXT",
                help="Kubeconfig context (default: its current-context).",
            ),
            client_options,
        ],
    )


def source_target_options(f: F) -> F:
    """`--source-*` and `--target-*` for verbs that talk to both clusters."""
    opts: list[Callable[[F], F]] = []
    for side in ("source", "target"):
        up = side.upper()
        opts += [
            click.option(
                f"--{side}-kubeconfig",
                metavar="FILE",
                envvar=f"KUBE_MIGRATE_{up}_KUBECONFIG",
                help=f"Kubeconfig of the {side} cluster [env KUBE_MIGRATE_{up}_KUBECONFIG].",
            ),
            click.option(
                f"--{side}-context",
                metavar="NAME",
                envvar=f"KUBE_MIGRATE_{up}_CONTEXT",
                help=f"Context in the {side} kubeconfig [env KUBE_MIGRATE_{up}_CONTEXT].",
            ),
        ]
    return _apply(f, [*opts, client_options])


def connect(
    kubeconfig: str | None,
    context: str | None,
    *,
    name: str | None = None,
    qps: float = 50.0,
    burst: int = 100,
    pool_size: int = 16,
) -> Cluster:
    """Build a Cluster from flag values (raises KubeconfigError on a bad file/context)."""
    return Cluster(
        ClusterRef(kubeconfig, context), name=name, qps=qps, burst=burst, pool_size=pool_size
    )


def bucket_options(f: F) -> F:
    """`--bucket URL` and the S3 connection flags."""
    return _apply(
        f,
        [
            click.option(
                "--bucket",
                metavar="URL",
                envvar="KUBE_MIGRATE_BUCKET",
                required=True,
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
        ],
    )


def open_bucket(
    bucket: str,
    s3_endpoint: str | None = None,
    s3_region: str | None = None,
    s3_profile: str | None = None,
    s3_path_style: bool | None = None,
    read_only_bucket: bool = False,
    **_: Any,
) -> Store:
    """Open the store named by the bucket flags (pass the command's kwargs through)."""
    options = StoreOptions(
        endpoint_url=s3_endpoint, region=s3_region, profile=s3_profile, path_style=s3_path_style
    )
    return open_store(BucketURL.parse(bucket), options, read_only=read_only_bucket)


BUCKET_KWARGS = (
    "bucket",
    "s3_endpoint",
    "s3_region",
    "s3_profile",
    "s3_path_style",
    "read_only_bucket",
)


def pop_bucket(kwargs: dict[str, Any]) -> Store:
    """Remove the bucket flags from a command's kwargs and open the store."""
    return open_bucket(**{k: kwargs.pop(k) for k in BUCKET_KWARGS if k in kwargs})
