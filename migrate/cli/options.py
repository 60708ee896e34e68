"""Flags shared by many commands, declared once so every verb spells them the same way.

Single-cluster verbs take `--kubeconfig/--context` (kubectl's habit); two-cluster verbs
take `--source-*` and `--target-*`, each also read from a KUBE_MIGRATE_* variable.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

from migrate.cluster import Cluster, ClusterRef
from migrate.cluster.selectors import Selector
from migrate.store import BucketURL, Store, StoreOptions, open_store
from migrate.store.base import SSE_MODES
from migrate.store.crypto import EncryptionKey, load_key
from migrate.transform.mappings import Mappings, parse_mapping
from migrate.transform.scope import CLUSTER_MODES, Scope, split_list
from migrate.transform.volumes import DEFAULT_PV_POLICY, PV_POLICIES

F = TypeVar("F", bound=Callable[..., Any])


def _apply(f: F, decorators: list[Callable[[F], F]]) -> F:
    for dec in reversed(decorators):
        f = dec(f)
    return f


def client_options(f: F) -> F:
    """Client-side throttling, like client-go's --kube-api-qps/--kube-api-burst; by default
    none fixed: the client adapts to the server's 429s (cluster/ratelimit.py)."""
    return _apply(
        f,
        [
            click.option(
                "--qps",
                type=click.FloatRange(min=0),
                default=None,
                metavar="N",
                help="Fixed client-side requests per second to each API server; 0: no "
                "limit.  Default: none fixed, backing off when the server answers 429 "
                "(priority and fairness), honouring its Retry-After.",
            ),
            click.option(
                "--burst",
                type=int,
                default=100,
                show_default=True,
                metavar="N",
                help="Requests allowed in a burst above a fixed --qps.",
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
    qps: float | None = None,
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
            sse_options,
        ],
    )


def sse_options(f: F) -> F:
    """`--s3-sse` and `--s3-kms-key-id`: S3 server-side encryption of every object written."""
    return _apply(
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
    """Open the store named by the bucket flags (pass the command's kwargs through)."""
    options = StoreOptions(
        endpoint_url=s3_endpoint,
        region=s3_region,
        profile=s3_profile,
        path_style=s3_path_style,
        sse=s3_sse,
        kms_key_id=s3_kms_key_id,
    )
    return open_store(BucketURL.parse(bucket), options, read_only=read_only_bucket)


BUCKET_KWARGS = (
    "bucket",
    "s3_endpoint",
    "s3_region",
    "s3_profile",
    "s3_path_style",
    "read_only_bucket",
    "s3_sse",
    "s3_kms_key_id",
)


def pop_bucket(kwargs: dict[str, Any], read_only: bool = False) -> Store:
    """Remove the bucket flags from a command's kwargs and open the store (read-only
    when the command only reads, whatever the flags say: the store then refuses writes)."""
    flags = {k: kwargs.pop(k) for k in BUCKET_KWARGS if k in kwargs}
    if read_only:
        flags["read_only_bucket"] = True
    return open_bucket(**flags)


def scope_options(f: F) -> F:
    """The scope filters every step takes (backup, restore, preflight, verify)."""
    return _apply(
        f,
        [
            click.option(
                "--include-namespaces",
                default="*",
                show_default=True,
                metavar="NS,...",
                help="Namespaces in scope ('*' = all; globs allowed).",
            ),
            click.option(
                "--exclude-namespaces", default="", metavar="NS,...", help="Namespaces left out."
            ),
            click.option(
                "--include-resources",
                default="*",
                show_default=True,
                metavar="RES,...",
                help="Resources in scope, e.g. deployments.apps,configmaps ('*' = all).",
            ),
            click.option(
                "--exclude-resources", default="", metavar="RES,...", help="Resources left out."
            ),
            click.option(
                "-l",
                "--selector",
                default=None,
                help="Only objects with these labels, e.g. app=web,tier!=db.",
            ),
        ],
    )


def scope_from(kw: dict[str, Any]) -> Scope:
    """The Scope named by scope_options (and --include-cluster-resources, if the command
    has it)."""
    return Scope(
        include_namespaces=split_list(kw["include_namespaces"]) or ("*",),
        exclude_namespaces=split_list(kw["exclude_namespaces"]),
        include_resources=split_list(kw["include_resources"]) or ("*",),
        exclude_resources=split_list(kw["exclude_resources"]),
        selector=Selector.parse(kw["selector"]),
        include_cluster_resources=kw.get("include_cluster_resources") or "auto",
    )


def mapping_options(f: F) -> F:
    """The restore's rewrites for clones; verify takes the same to undo them."""
    return _apply(
        f,
        [
            click.option(
                "--namespace-mappings",
                default="",
                metavar="SRC:DST,...",
                help="Restore namespace SRC as DST.",
            ),
            click.option(
                "--storage-class-mappings",
                default="",
                metavar="OLD:NEW,...",
                help="Claims of class OLD use class NEW.",
            ),
            click.option(
                "--image-registry-mappings",
                default="",
                metavar="OLD=NEW,...",
                help="Rewrite image prefixes, e.g. docker.io/acme=registry.test/acme.",
            ),
            click.option(
                "--replicas",
                type=click.IntRange(min=0),
                default=None,
                help="Replicas of Deployments, StatefulSets and ReplicaSets.",
            ),
            click.option("--suspend-cronjobs", is_flag=True, help="CronJobs suspended."),
        ],
    )


def mappings_from(kw: dict[str, Any]) -> Mappings:
    return Mappings(
        namespaces=parse_mapping(kw["namespace_mappings"], "--namespace-mappings"),
        storage_classes=parse_mapping(kw["storage_class_mappings"], "--storage-class-mappings"),
        registries=parse_mapping(kw["image_registry_mappings"], "--image-registry-mappings", "="),
        replicas=kw["replicas"],
        suspend_cronjobs=kw["suspend_cronjobs"],
    )


def cluster_resources_option(help_text: str) -> Callable[[F], F]:
    """`--include-cluster-resources auto|true|false` (what "auto" means is the command's)."""
    return click.option(
        "--include-cluster-resources",
        type=click.Choice(CLUSTER_MODES),
        default="auto",
        show_default=True,
        help=help_text,
    )


_KEY_FORMAT = (
    "FILE: 32 raw bytes, or text with 64 hex digits or base64 of 32 bytes "
    "(e.g. `head -c32 /dev/urandom > backup.key`)."
)


def encryption_key_option(writing: bool = False) -> Callable[[F], F]:
    """`--encryption-key-file FILE`: AES-256-GCM of the backup tarball (our extension to
    Velero's format); `writing` for backup create, else the commands that read backups."""
    if writing:
        text = (
            "Encrypt the backup tarball with this AES-256 key (AES-256-GCM, streamed); the "
            "bucket then holds no plaintext object data.  Velero cannot read an encrypted "
            "backup: restore, verify and preflight it with kube-migrate and the same key. "
        )
    else:
        text = (
            "Key of an encrypted backup (the file it was made with; Velero cannot read "
            "encrypted backups, they are our extension). "
        )
    return click.option(
        "--encryption-key-file", metavar="FILE", default=None, help=text + _KEY_FORMAT
    )


def key_from(kw: dict[str, Any]) -> EncryptionKey | None:
    """Remove --encryption-key-file from a command's kwargs; the key it names, if any."""
    path = kw.pop("encryption_key_file", None)
    return load_key(path) if path else None


def pv_policy_option(f: F) -> F:
    """`--pv-policy`: what a restore (and so verify and preflight) does with volumes."""
    text = "; ".join(f"{name}: {what}" for name, what in PV_POLICIES.items())
    return click.option(
        "--pv-policy",
        type=click.Choice(tuple(PV_POLICIES)),
        default=DEFAULT_PV_POLICY,
        show_default=True,
        help=f"What happens to PersistentVolumes ({text}).",
    )(f)
