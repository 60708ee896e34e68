"""`kube-migrate preflight`: can the source move to the target, and what will break?

The check is the pipeline's (migrate.pipeline.snapshot, as in a playbook's preflight
step): a live source is backed up by backup's own code into a private temporary local
folder, restore's own planner turns that backup (or the one named by --from-backup) into
the objects restore would create, and preflight checks them against the target.  So
preflight judges exactly what backup and restore would do, and the live and
--from-backup modes agree.  Nothing is written to either cluster or the bucket (opened
read-only).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from dataclasses import dataclass

import click

from migrate.cli.binding import Command, bind
from migrate.cli.options import (
    BucketFlags,
    KeyFlags,
    MappingFlags,
    ScopeFlags,
    SourceTargetFlags,
    cluster_resources_option,
    encryption_key_option,
    optional_bucket_options,
    pv_policy_option,
    scope_options,
    source_target_options,
)
from migrate.cli.output import output_option, table
from migrate.errors import PreflightFailed, UsageError
from migrate.pipeline.snapshot import SNAPSHOT, check_plan, take_snapshot
from migrate.preflight import Report
from migrate.preflight.render import html_report, markdown, rows, summary_lines
from migrate.restore.plan import EXISTING_POLICIES, RestoreOptions

COLUMNS = ["severity", "check", "objects", "message", "fix"]


@dataclass(frozen=True)
class PreflightArgs(Command):
    """`preflight`'s options."""

    clusters: SourceTargetFlags
    bucket: BucketFlags
    from_backup: str | None
    key: KeyFlags
    scope: ScopeFlags
    mappings: MappingFlags
    existing_resource_policy: str
    pv_policy: str
    volumes: str
    snapshot_volumes: str
    fail_on: str
    parallelism: int
    output: str

    def validate(self) -> None:
        self.scope.validate()
        self.mappings.validate()
        if not self.clusters.target.given:
            raise UsageError("no target cluster", hint="pass --target-kubeconfig FILE")
        if self.from_backup:
            if not self.bucket.bucket:
                raise UsageError("--from-backup needs --bucket", hint="pass --bucket URL")
            if self.scope.include_cluster_resources != "auto":
                raise UsageError(
                    "--include-cluster-resources applies to a live source only",
                    hint="the backup decided which cluster-scoped objects it holds",
                )
            return
        if not self.clusters.source.given:
            raise UsageError(
                "no source: pass --source-kubeconfig, or --from-backup NAME with --bucket",
                hint="see 'kube-migrate preflight --help'",
            )
        if self.key.encryption_key_file:
            raise UsageError(
                "--encryption-key-file applies to --from-backup only",
                hint="a live source is read from the cluster, not from a backup",
            )


@click.command("preflight")
@source_target_options
@optional_bucket_options
@click.option(
    "--from-backup",
    "from_backup",
    metavar="NAME",
    help="Read the source side from this backup (ours or Velero's) in --bucket.",
)
@encryption_key_option()
@scope_options
@cluster_resources_option("Live source: as in backup create (auto: what the namespaces need).")
@click.option("--namespace-mappings", default="", metavar="SRC:DST,...")
@click.option("--storage-class-mappings", default="", metavar="OLD:NEW,...")
@click.option(
    "--pvc-size-mappings",
    default="",
    metavar="[NS/]CLAIM:SIZE,...",
    help="The sizes restored claims would ask for (as restore create).",
)
@click.option(
    "--existing-resource-policy",
    type=click.Choice(EXISTING_POLICIES),
    default="none",
    show_default=True,
    help="The policy the restore will use (changes what collisions mean).",
)
@pv_policy_option
@click.option(
    "--volumes",
    type=click.Choice(["all", "annotated", "none"]),
    default="annotated",
    show_default=True,
    help="Whose claim data the backup would copy (as `backup create --volumes`).",
)
@click.option(
    "--snapshot-volumes",
    type=click.Choice(["always", "auto", "never"]),
    default="auto",
    show_default=True,
    help="Which claims the backup would read from CSI snapshots (as `backup create`).",
)
@click.option(
    "--fail-on",
    type=click.Choice(["error", "warning"]),
    default="error",
    show_default=True,
    help="Exit 3 when a finding is this severe or more (after printing the report).",
)
@click.option("--parallelism", type=click.IntRange(min=1), default=8, show_default=True)
@output_option("table", "markdown", "json", "html")
@bind(PreflightArgs)
def preflight(args: PreflightArgs) -> None:
    """Check that the source (a live cluster, or --from-backup) can be restored into the
    target, before anything is written.  Exit 3 when findings reach --fail-on."""
    scope = args.scope.to_scope()
    restore = RestoreOptions(
        name="preflight",
        backup=args.from_backup or SNAPSHOT,
        mappings=args.mappings.to_mappings(),
        existing_policy=args.existing_resource_policy,
        pv_policy=args.pv_policy,
    )
    pool = args.parallelism + 4
    target = args.clusters.target.connect(name="target", pool_size=pool)
    if args.from_backup:
        restore.scope = scope
        restore.encryption_key = args.key.load()
        store = args.bucket.open(read_only=True)  # preflight never writes to the bucket
        report = check_plan(target, store, restore, "backup", args.parallelism, args.volumes)
    else:
        source = args.clusters.source.connect(name="source", pool_size=pool)
        # the copy holds the source's Secrets: private, removed on every way out
        snapshot = take_snapshot(source, scope, args.parallelism, "kube-migrate-preflight-")
        try:
            report = check_plan(
                target, snapshot.store, restore, "cluster", args.parallelism, args.volumes,
                source=source, snapshot_volumes=args.snapshot_volumes,
            )  # fmt: skip
        finally:
            snapshot.cleanup()
        report.source["name"] = f"{source.name} ({source.host})"
    _print(report, args.output)
    failing = report.reaches(args.fail_on)
    if failing:
        counts = report.counts()
        raise PreflightFailed(
            f"preflight found {counts['error']} errors and {counts['warning']} warnings "
            f"({len(failing)} at or above --fail-on {args.fail_on})"
        )


def _table(report: Report) -> str:
    head = "\n".join(f"{k}: {v}" for k, v in summary_lines(report))
    found = rows(report)
    return head + "\n\n" + (table(found, COLUMNS) if found else "No findings.")


RENDERERS: dict[str, Callable[[Report], str]] = {
    "table": _table,
    "markdown": markdown,
    "json": lambda report: json.dumps(report.as_dict(), indent=2),
    "html": html_report,
}


def _print(report: Report, fmt: str) -> None:
    sys.stdout.write(RENDERERS[fmt](report).rstrip("\n") + "\n")
