"""`kube-migrate restore create|get|describe|logs`: restore a backup (ours or Velero's)
into the target cluster as a dependency graph, with the transforms for clones."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from typing import Any

import click

from migrate.cli.options import (
    bucket_options,
    cluster_options,
    connect,
    encryption_key_option,
    key_from,
    mapping_options,
    mappings_from,
    pop_bucket,
    scope_from,
    scope_options,
)
from migrate.cli.output import emit, emit_with_rows, output_option
from migrate.cli.progress import progress_bar
from migrate.errors import PartialFailure
from migrate.restore import results
from migrate.restore.graph import to_dot
from migrate.restore.plan import EXISTING_POLICIES, RestoreOptions
from migrate.restore.run import plan_restore, run_restore
from migrate.transform.modifiers import load_modifiers
from migrate.units import parse_duration


@click.group()
def restore() -> None:
    """Restore a backup into a cluster."""


@restore.command("create")
@click.argument("name", required=False)
@click.option("--from-backup", "backup", required=True, help="Name of the backup to restore.")
@cluster_options
@bucket_options
@scope_options
@mapping_options
@click.option("--resource-modifiers", metavar="FILE", help="Velero-format resource modifiers.")
@click.option(
    "--existing-resource-policy",
    type=click.Choice(EXISTING_POLICIES),
    default="none",
    show_default=True,
    help="What to do with objects that already exist.",
)
@click.option("--restore-status", is_flag=True, help="Also restore .status where allowed.")
@click.option("--preserve-node-ports", is_flag=True, help="Keep Services' nodePorts.")
@click.option("--parallelism", type=click.IntRange(min=1), default=16, show_default=True)
@click.option("--wait-ready", is_flag=True, help="Wait until restored workloads are ready.")
@click.option("--ready-timeout", default="10m", show_default=True)
@click.option("--resume", is_flag=True, help="Continue restore NAME after a crash.")
@click.option("--dry-run", is_flag=True, help="Print the plan; write nothing.")
@encryption_key_option()
@output_option("table", "json", "yaml", "dot")
def create(name: str | None, backup: str, **kw: Any) -> None:
    """Restore backup --from-backup into the cluster, as restore NAME
    (default <backup>-<timestamp>)."""
    store = pop_bucket(kw)
    name = name or f"{backup}-{datetime.now(UTC):%Y%m%d%H%M%S}"
    opts = RestoreOptions(
        name=name,
        backup=backup,
        scope=scope_from(kw),
        mappings=mappings_from(kw),
        modifiers=load_modifiers(kw["resource_modifiers"]) if kw["resource_modifiers"] else None,
        existing_policy=kw["existing_resource_policy"],
        restore_status=kw["restore_status"],
        preserve_node_ports=kw["preserve_node_ports"],
        parallelism=kw["parallelism"],
        wait_ready=kw["wait_ready"],
        ready_timeout=parse_duration(kw["ready_timeout"], "--ready-timeout").total_seconds(),
        resume=kw["resume"],
        encryption_key=key_from(kw),
    )
    target = connect(
        kw["kubeconfig"],
        kw["context"],
        qps=kw["qps"],
        burst=kw["burst"],
        pool_size=opts.parallelism + 4,
    )
    if kw["dry_run"]:
        _, plan = plan_restore(target, store, opts)
        if kw["output"] == "dot":
            sys.stdout.write(to_dot(plan.graph, plan.late) + "\n")
        else:
            emit(plan.rows(), kw["output"], ["level", "kind", "namespace", "name", "action"])
        return
    with progress_bar(f"restore {name}") as progress:
        summary = run_restore(target, store, opts, progress)
    fmt = "json" if kw["output"] == "dot" else kw["output"]
    if fmt == "table":
        columns = ["name", "backup", "phase", "created", "updated", "skipped", "failed"]
        emit(summary.as_dict(), fmt, [*columns, "warnings"])
    else:  # as as_dict(details=True), one object's row at a time
        rows = (r.as_dict() for r in summary.results)
        emit_with_rows(summary.details_head(), fmt, "objects", rows)
    if summary.phase != "Completed":
        raise PartialFailure(
            f"restore {name} is {summary.phase}: {summary.counts['failed']} objects failed",
            hint=f"see `kube-migrate restore describe {name} --details`, fix, rerun with --resume",
        )


@restore.command("get")
@bucket_options
@output_option()
def get(**kw: Any) -> None:
    """List restores recorded in the bucket (and locally, for read-only buckets)."""
    store = pop_bucket(kw, read_only=True)
    emit(
        results.list_restores(store),
        kw["output"],
        ["name", "backup", "phase", "created", "updated", "skipped", "failed", "completed"],
    )


@restore.command("describe")
@click.argument("name")
@click.option("--details", is_flag=True, help="Include every object's result.")
@bucket_options
@output_option("yaml", "json")
def describe(name: str, details: bool, **kw: Any) -> None:
    """Show a restore's summary (and per-object results with --details)."""
    emit(results.describe(pop_bucket(kw, read_only=True), name, details), kw["output"])


@restore.command("logs")
@click.argument("name")
@bucket_options
def logs(name: str, **kw: Any) -> None:
    """Print a restore's log."""
    sys.stdout.write(results.logs(pop_bucket(kw, read_only=True), name))
