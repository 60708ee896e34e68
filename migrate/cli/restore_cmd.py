"""`kube-migrate restore create|get|describe|logs`: restore a backup (ours or Velero's)
into the target cluster as a dependency graph, with the transforms for clones."""

from __future__ import annotations

import logging
import os
import sys
from datetime import UTC, datetime
from typing import Any

import click
from click.core import ParameterSource

from migrate.cli import interrupt
from migrate.cli.dry_run import DryRunCommand, dry_run_option, server_dry_run
from migrate.cli.logs import NOTICE
from migrate.cli.options import (
    bucket_options,
    cluster_options,
    connect,
    encryption_key_option,
    key_from,
    mapping_options,
    mappings_from,
    pop_bucket,
    pv_policy_option,
    scope_from,
    scope_options,
)
from migrate.cli.output import emit, emit_with_rows, output_option
from migrate.cli.progress import progress_bar
from migrate.errors import PartialFailure, UsageError
from migrate.restore import results
from migrate.restore.graph import to_dot
from migrate.restore.plan import EXISTING_POLICIES, RestoreOptions
from migrate.restore.run import plan_restore, run_restore
from migrate.store import Store
from migrate.transform.modifiers import load_modifiers
from migrate.units import parse_duration

log = logging.getLogger(__name__)


@click.group()
def restore() -> None:
    """Restore a backup into a cluster."""


def _target_from_env(kw: dict[str, Any]) -> None:
    """restore create writes to the target cluster: KUBE_MIGRATE_TARGET_KUBECONFIG and
    KUBE_MIGRATE_TARGET_CONTEXT (read by the two-cluster commands) name it too, before
    KUBE_MIGRATE_KUBECONFIG/KUBE_MIGRATE_CONTEXT and $KUBECONFIG; the flags come first
    (and with --kubeconfig FILE, a context is FILE's, never the variable's)."""
    ctx = click.get_current_context()
    if ctx.get_parameter_source("kubeconfig") is ParameterSource.COMMANDLINE:
        return
    for opt in ("kubeconfig", "context"):
        value = os.environ.get(f"KUBE_MIGRATE_TARGET_{opt.upper()}")
        if value and ctx.get_parameter_source(opt) is not ParameterSource.COMMANDLINE:
            kw[opt] = value


@restore.command("create", cls=DryRunCommand)
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
@pv_policy_option
@click.option(
    "--yes",
    is_flag=True,
    help="Confirm --pv-policy retain-as-is into the cluster the backup came from.",
)
@click.option("--parallelism", type=click.IntRange(min=1), default=16, show_default=True)
@click.option("--wait-ready", is_flag=True, help="Wait until restored workloads are ready.")
@click.option("--ready-timeout", default="10m", show_default=True)
@click.option(
    "--resume",
    is_flag=True,
    help="Continue restore NAME after a crash (without NAME: the newest unfinished "
    "restore of --from-backup).",
)
@click.option(
    "--fail-on",
    type=click.Choice(["error", "warning"]),
    default="error",
    show_default=True,
    help="warning: also refuse a PartiallyFailed backup (exit 3) instead of warning.",
)
@dry_run_option
@encryption_key_option()
@output_option("table", "json", "yaml", "dot")
def create(name: str | None, backup: str, **kw: Any) -> None:
    """Restore backup --from-backup into the cluster, as restore NAME
    (default <backup>-<timestamp>)."""
    store = pop_bucket(kw)
    if kw["resume"] and not name and not kw["dry_run"]:
        name = _newest_unfinished(store, backup)
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
        pv_policy=kw["pv_policy"],
        yes=kw["yes"],
        parallelism=kw["parallelism"],
        wait_ready=kw["wait_ready"],
        ready_timeout=parse_duration(kw["ready_timeout"], "--ready-timeout").total_seconds(),
        resume=kw["resume"],
        encryption_key=key_from(kw),
        fail_on=kw["fail_on"],
    )
    _target_from_env(kw)
    target = connect(
        kw["kubeconfig"],
        kw["context"],
        qps=kw["qps"],
        burst=kw["burst"],
        pool_size=opts.parallelism + 4,
    )
    if kw["dry_run"] == "server":
        server_dry_run(target, store, opts, kw["output"])
        return
    if kw["dry_run"]:
        _, plan = plan_restore(target, store, opts)
        if kw["output"] == "dot":
            sys.stdout.write(to_dot(plan.graph, plan.late) + "\n")
        else:
            emit(plan.rows(), kw["output"], ["level", "kind", "namespace", "name", "action"])
        return

    def announce() -> None:  # once every check passed, before the first write
        interrupt.set_hint(
            f"continue it with `kube-migrate restore create {name} --from-backup {backup} "
            "--resume` (and the same flags)"
        )
        log.log(
            NOTICE,
            "restore %s of backup %s into context %s (%s, Kubernetes %s)%s",
            name, backup, target.context, target.host, target.version(),
            ", resumed" if opts.resume else "",
        )  # fmt: skip

    with progress_bar(f"restore {name}") as progress:
        summary = run_restore(target, store, opts, progress, announce=announce)
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


def _newest_unfinished(store: Store, backup: str) -> str:
    name = results.newest_unfinished(store, backup)
    if name is None:
        raise UsageError(
            f"no unfinished restore of backup {backup!r} in {store.url} (or in this "
            "machine's state directory) to resume",
            hint="`kube-migrate restore get` lists the restores; name one: "
            f"`kube-migrate restore create NAME --from-backup {backup} --resume`",
        )
    log.log(NOTICE, "resuming restore %s, the newest unfinished restore of %s", name, backup)
    return name


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
