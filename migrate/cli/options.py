"""Flags shared by many commands, declared once so every verb spells them the same way.

Each group is a click decorator (`scope_options`...) and a typed dataclass with one
field per flag (`ScopeFlags`...), which a command's options dataclass holds and
migrate.cli.binding fills from click's values.  The cluster flags live in flags_cluster,
the bucket flags in flags_bucket; both are re-exported here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import click

from migrate.cli.binding import F, Flags, apply_options
from migrate.cli.flags_bucket import (
    BucketFlags,
    bucket_options,
    optional_bucket_options,
    sse_options,
)
from migrate.cli.flags_cluster import (
    ClientFlags,
    ClusterFlags,
    SourceTargetFlags,
    client_options,
    cluster_options,
    connect,
    source_target_options,
)
from migrate.cluster.selectors import Selector
from migrate.store import open_bucket
from migrate.store.crypto import EncryptionKey, load_key
from migrate.transform.mappings import Mappings, parse_mapping
from migrate.transform.scope import CLUSTER_MODES, Scope, split_list
from migrate.transform.volumes import DEFAULT_PV_POLICY, PV_POLICIES

__all__ = [
    "BucketFlags",
    "ClientFlags",
    "ClusterFlags",
    "KeyFlags",
    "MappingFlags",
    "ScopeFlags",
    "SourceTargetFlags",
    "bucket_options",
    "client_options",
    "cluster_options",
    "cluster_resources_option",
    "connect",
    "encryption_key_option",
    "mapping_options",
    "open_bucket",
    "optional_bucket_options",
    "pv_policy_option",
    "scope_options",
    "source_target_options",
    "sse_options",
]


def scope_options(f: F) -> F:
    """The scope filters every step takes (backup, restore, preflight, verify)."""
    return apply_options(
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


@dataclass(frozen=True)
class ScopeFlags(Flags):
    """scope_options (and cluster_resources_option, if the command has it)."""

    include_namespaces: str
    exclude_namespaces: str
    include_resources: str
    exclude_resources: str
    selector: str | None
    include_cluster_resources: str | None = "auto"

    def to_scope(self) -> Scope:
        """The Scope these flags name (UsageError on a bad selector)."""
        return Scope(
            include_namespaces=split_list(self.include_namespaces) or ("*",),
            exclude_namespaces=split_list(self.exclude_namespaces),
            include_resources=split_list(self.include_resources) or ("*",),
            exclude_resources=split_list(self.exclude_resources),
            selector=Selector.parse(self.selector),
            include_cluster_resources=self.include_cluster_resources or "auto",
        )

    def validate(self) -> None:
        self.to_scope()


def mapping_options(f: F) -> F:
    """The restore's rewrites for clones; verify takes the same to undo them."""
    return apply_options(
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
                "--pvc-size-mappings",
                default="",
                metavar="[NS/]CLAIM:SIZE,...",
                help="Restored claims ask for SIZE (globs; NS is the source namespace), "
                "e.g. 'shop/data-*:5Gi'. Smaller than the data: refused before writing.",
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


@dataclass(frozen=True)
class MappingFlags(Flags):
    """mapping_options (a command may declare only the first two, as preflight does)."""

    namespace_mappings: str
    storage_class_mappings: str
    image_registry_mappings: str = ""
    pvc_size_mappings: str = ""
    replicas: int | None = None
    suspend_cronjobs: bool = False

    def to_mappings(self) -> Mappings:
        """The Mappings these flags name (UsageError on a malformed one)."""
        return Mappings(
            namespaces=parse_mapping(self.namespace_mappings, "--namespace-mappings"),
            storage_classes=parse_mapping(self.storage_class_mappings, "--storage-class-mappings"),
            claim_sizes=parse_mapping(self.pvc_size_mappings, "--pvc-size-mappings"),
            registries=parse_mapping(
                self.image_registry_mappings, "--image-registry-mappings", "="
            ),
            replicas=self.replicas,
            suspend_cronjobs=self.suspend_cronjobs,
        )

    def validate(self) -> None:
        self.to_mappings()


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


@dataclass(frozen=True)
class KeyFlags(Flags):
    """encryption_key_option: `--encryption-key-file`."""

    encryption_key_file: str | None = None

    def load(self) -> EncryptionKey | None:
        """The key the file holds, if one was named (UsageError on a bad file)."""
        return load_key(self.encryption_key_file) if self.encryption_key_file else None


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


def mover_image_option(f: F) -> F:
    """--mover-image: the volume-data mover's image (kopia + kmmover; `make images`)."""
    return click.option(
        "--mover-image",
        default=None,
        envvar="KUBE_MIGRATE_MOVER_IMAGE",
        metavar="IMAGE",
        help="The volume-data mover's image, pushed where the nodes pull from "
        "[env KUBE_MIGRATE_MOVER_IMAGE].",
    )(f)
