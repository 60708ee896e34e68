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
from typing import Any

import click

from migrate.cli.options import (
    bucket_options,
    cluster_resources_option,
    connect,
    encryption_key_option,
    key_from,
    pop_bucket,
    pv_policy_option,
    scope_from,
    scope_options,
    source_target_options,
)
from migrate.cli.output import output_option, table
from migrate.cluster import Cluster
from migrate.errors import PreflightFailed, UsageError
from migrate.pipeline.snapshot import SNAPSHOT, check_plan, take_snapshot
from migrate.preflight import Report
from migrate.preflight.render import html_report, markdown, rows, summary_lines
from migrate.restore.plan import EXISTING_POLICIES, RestoreOptions
from migrate.transform.mappings import Mappings, parse_mapping

COLUMNS = ["severity", "check", "objects", "message", "fix"]


@click.command("preflight")
@source_target_options
@bucket_options
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
    "--existing-resource-policy",
    type=click.Choice(EXISTING_POLICIES),
    default="none",
    show_default=True,
    help="The policy the restore will use (changes what collisions mean).",
)
@pv_policy_option
@click.option(
    "--fail-on",
    type=click.Choice(["error", "warning"]),
    default="error",
    show_default=True,
    help="Exit 3 when a finding is this severe or more (after printing the report).",
)
@click.option("--parallelism", type=click.IntRange(min=1), default=8, show_default=True)
@output_option("table", "markdown", "json", "html")
def preflight(**kw: Any) -> None:
    """Check that the source (a live cluster, or --from-backup) can be restored into the
    target, before anything is written.  Exit 3 when findings reach --fail-on."""
    scope = scope_from(kw)
    restore = RestoreOptions(
        name="preflight",
        backup=kw["from_backup"] or SNAPSHOT,
        mappings=Mappings(
            namespaces=parse_mapping(kw["namespace_mappings"], "--namespace-mappings"),
            storage_classes=parse_mapping(kw["storage_class_mappings"], "--storage-class-mappings"),
        ),
        existing_policy=kw["existing_resource_policy"],
        pv_policy=kw["pv_policy"],
    )
    if not (kw["target_kubeconfig"] or kw["target_context"]):
        raise UsageError("no target cluster", hint="pass --target-kubeconfig FILE")
    target = _connect(kw, "target")
    if kw["from_backup"]:
        if not kw["bucket"]:
            raise UsageError("--from-backup needs --bucket", hint="pass --bucket URL")
        if scope.include_cluster_resources != "auto":
            raise UsageError(
                "--include-cluster-resources applies to a live source only",
                hint="the backup decided which cluster-scoped objects it holds",
            )
        kw["read_only_bucket"] = True  # preflight never writes to the bucket
        restore.scope = scope
        restore.encryption_key = key_from(kw)
        store = pop_bucket(kw)
        report = check_plan(target, store, restore, "backup", kw["parallelism"])
    else:
        if not (kw["source_kubeconfig"] or kw["source_context"]):
            raise UsageError(
                "no source: pass --source-kubeconfig, or --from-backup NAME with --bucket",
                hint="see 'kube-migrate preflight --help'",
            )
        if kw["encryption_key_file"]:
            raise UsageError(
                "--encryption-key-file applies to --from-backup only",
                hint="a live source is read from the cluster, not from a backup",
            )
        source = _connect(kw, "source")
        # the copy holds the source's Secrets: private, removed on every way out
        snapshot = take_snapshot(source, scope, kw["parallelism"], "kube-migrate-preflight-")
        try:
            report = check_plan(target, snapshot.store, restore, "cluster", kw["parallelism"])
        finally:
            snapshot.cleanup()
        report.source["name"] = f"{source.name} ({source.host})"
    _print(report, kw["output"])
    failing = report.reaches(kw["fail_on"])
    if failing:
        counts = report.counts()
        raise PreflightFailed(
            f"preflight found {counts['error']} errors and {counts['warning']} warnings "
            f"({len(failing)} at or above --fail-on {kw['fail_on']})"
        )


def _connect(kw: dict[str, Any], side: str) -> Cluster:
    return connect(
        kw[f"{side}_kubeconfig"],
        kw[f"{side}_context"],
        name=side,
        qps=kw["qps"],
        burst=kw["burst"],
        pool_size=kw["parallelism"] + 4,
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


# --bucket is needed only with --from-backup (bucket_options declares it required).
for _param in preflight.params:
    if _param.name == "bucket":
        _param.required = False
