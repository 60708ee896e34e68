"""`kube-migrate verify`: diff the source (live, or a backup) against the target after
the restore's transforms; exit 0 when equal, 1 on drift (like `kubectl diff`)."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import click

from migrate.cli.binding import Command, bind
from migrate.cli.logs import NOTICE
from migrate.cli.options import (
    BucketFlags,
    KeyFlags,
    MappingFlags,
    ScopeFlags,
    SourceTargetFlags,
    cluster_resources_option,
    encryption_key_option,
    mapping_options,
    mover_image_option,
    optional_bucket_options,
    pv_policy_option,
    scope_options,
    source_target_options,
)
from migrate.cli.output import output_option
from migrate.cli.progress import progress_bar
from migrate.cluster import Cluster
from migrate.errors import DriftFound, UsageError
from migrate.store import Store
from migrate.transform.modifiers import load_modifiers
from migrate.transform.sanitize import SanitizeOptions
from migrate.verify import Transforms, VerifyOptions, VerifyReport, run_verify
from migrate.verify.ignorefile import load_ignore_rules
from migrate.verify.junit import write_junit
from migrate.verify.render import html_page, markdown, table

log = logging.getLogger(__name__)
RENDER: dict[str, Callable[[VerifyReport], str]] = {
    "table": table,
    "json": lambda report: json.dumps(report.as_dict(), indent=2, default=str),
    "markdown": markdown,
    "html": html_page,
}


@dataclass(frozen=True)
class VerifyArgs(Command):
    """`verify`'s options."""

    clusters: SourceTargetFlags
    backup: str | None
    data: bool
    mover_image: str | None
    bucket: BucketFlags
    key: KeyFlags
    scope: ScopeFlags
    mappings: MappingFlags
    resource_modifiers: str | None
    preserve_node_ports: bool
    pv_policy: str
    ignore_fields: str | None
    show_values: bool
    show_secrets: str | None
    junit: str | None
    parallelism: int
    output: str

    def validate(self) -> None:
        if str(self.show_secrets).lower() not in ("none", "false", "0", "no"):
            raise UsageError(
                "verify never prints Secret values (--show-secrets was removed)",
                hint="Secrets are compared by hash: a changed one is listed, its values shown "
                "as <redacted>; --show-values prints ConfigMap values",
            )
        if self.data and not self.backup:
            raise UsageError(
                "--data needs --from-backup NAME",
                hint="the file manifests that the restored claims are compared with are "
                "part of a backup",
            )
        if self.backup and not self.bucket.bucket:
            raise UsageError("--from-backup needs --bucket", hint="or set KUBE_MIGRATE_BUCKET")
        if self.key.encryption_key_file and not self.backup:
            raise UsageError(
                "--encryption-key-file applies to --from-backup only",
                hint="a live source is read from the cluster, not from a backup",
            )
        self.scope.validate()
        self.mappings.validate()


@click.command("verify")
@source_target_options
@click.option(
    "--from-backup",
    "backup",
    metavar="NAME",
    help="Compare the target with this backup instead of the live source.",
)
@click.option(
    "--data",
    is_flag=True,
    help="Also compare the files of every claim the backup copied with the restored "
    "claims (type, size, mode, owner, sha256).",
)
@mover_image_option
@optional_bucket_options
@encryption_key_option()
@scope_options
@cluster_resources_option(
    "auto: all when no namespace filter, else Namespaces (and --from-backup: "
    "what the backup brought along)."
)
@mapping_options
@click.option("--resource-modifiers", metavar="FILE", help="The restore's resource modifiers.")
@click.option("--preserve-node-ports", is_flag=True, help="The restore kept nodePorts.")
@pv_policy_option
@click.option(
    "--ignore-fields",
    metavar="FILE",
    help="More fields to ignore (Argo CD ignoreDifferences format).",
)
@click.option(
    "--show-values",
    is_flag=True,
    help="Print ConfigMap values in the diff (default: their sha256 and size).  Secret "
    "values are never printed: they are compared by hash and shown as <redacted>.",
)
@click.option(
    "--show-secrets",
    hidden=True,
    is_flag=False,
    flag_value="true",
    default=None,
    expose_value=True,
)
@click.option(
    "--junit", metavar="FILE", help="Also write a JUnit XML report (one case per object)."
)
@click.option(
    "--parallelism",
    type=click.IntRange(min=1),
    default=8,
    show_default=True,
    help="LIST requests in flight (both clusters together).",
)
@output_option("table", "json", "markdown", "html")
@bind(VerifyArgs)
def verify(args: VerifyArgs) -> None:
    """Diff the source (or --from-backup) against the target, after the restore's
    transforms.  Exit 0: equal; 1: drift; >= 2: errors."""
    key = args.key.load()
    store = args.bucket.open() if args.backup else None
    modifiers, ignore_fields = args.resource_modifiers, args.ignore_fields
    transforms = Transforms(
        mappings=args.mappings.to_mappings(),
        modifiers=load_modifiers(modifiers) if modifiers else None,
        sanitize=SanitizeOptions(
            preserve_node_ports=args.preserve_node_ports, pv_policy=args.pv_policy
        ),
        ignore=tuple(load_ignore_rules(ignore_fields)) if ignore_fields else (),
        show_values=args.show_values,
    )
    opts = VerifyOptions(
        args.scope.to_scope(),
        transforms,
        args.backup,
        parallelism=args.parallelism,
        encryption_key=key,
    )
    pool = args.parallelism + 4
    target = args.clusters.target.connect(pool_size=pool)
    source = None if args.backup else args.clusters.source.connect(pool_size=pool)
    with progress_bar("verify") as progress:
        report = run_verify(source, target, opts, store, progress)
    sys.stdout.write(RENDER[args.output](report) + "\n")
    sys.stdout.flush()
    if args.junit:
        write_junit(report, args.junit)
    data_drift = False
    if args.data and store is not None and args.backup:
        data_drift = _verify_data(args, target, store, key)
    if report.drift or data_drift:
        raise DriftFound(
            f"drift between source and target: {report.summary_line()}"
            + (" (and in the volume data)" if data_drift else ""),
            hint="read the diff; intended changes: pass the restore's mappings, or "
            "--ignore-fields FILE",
        )


def _verify_data(args: VerifyArgs, target: Cluster, store: Store, key: Any) -> bool:
    """Check the restored claims' files; print one line per claim and its first
    differences on stderr (stdout holds the object report); True on any difference."""
    from migrate.pipeline.steps_data import check_data, mover_settings

    assert args.backup is not None
    mappings = args.mappings.to_mappings()
    checks = check_data(
        target,
        store,
        args.backup,
        mappings.namespace,
        lambda: mover_settings(store, key, args.mover_image, create=False),
    )
    for c in checks:
        state = "ok" if c.ok else f"{c.differences} difference(s)"
        log.log(NOTICE, "data %s: %d files, %d bytes: %s", c.claim, c.files, c.bytes, state)
        for d in c.diffs:
            log.log(
                NOTICE, "  %s: %s (backup: %s, target: %s)",
                d.get("path"), d.get("what"), d.get("source"), d.get("target"),
            )  # fmt: skip
    return any(not c.ok for c in checks)
