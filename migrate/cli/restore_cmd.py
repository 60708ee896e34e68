"""`kube-migrate restore create`: restore a backup (ours or Velero's) into the target
cluster as a dependency graph, with the transforms for clones; `restore get|describe|logs`
are in restore_read_cmd."""

from __future__ import annotations

import dataclasses
import logging
import os
import sys
from dataclasses import dataclass
from datetime import UTC, datetime

import click
from click.core import ParameterSource

from migrate.cli import interrupt, restore_read_cmd
from migrate.cli.binding import Command, bind
from migrate.cli.dry_run import DryRunCommand, check_server_flags, dry_run_option, server_dry_run
from migrate.cli.logs import NOTICE
from migrate.cli.options import (
    BucketFlags,
    ClusterFlags,
    KeyFlags,
    MappingFlags,
    ScopeFlags,
    bucket_options,
    cluster_options,
    encryption_key_option,
    mapping_options,
    mover_image_option,
    pv_policy_option,
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


for _cmd in restore_read_cmd.COMMANDS:
    restore.add_command(_cmd)


def _target_from_env(flags: ClusterFlags) -> ClusterFlags:
    """restore create writes to the target cluster: KUBE_MIGRATE_TARGET_KUBECONFIG and
    KUBE_MIGRATE_TARGET_CONTEXT (read by the two-cluster commands) name it too, before
    KUBE_MIGRATE_KUBECONFIG/KUBE_MIGRATE_CONTEXT and $KUBECONFIG; the flags come first
    (and with --kubeconfig FILE, a context is FILE's, never the variable's)."""
    ctx = click.get_current_context()
    if ctx.get_parameter_source("kubeconfig") is ParameterSource.COMMANDLINE:
        return flags

    def pick(opt: str, given: str | None) -> str | None:
        value = os.environ.get(f"KUBE_MIGRATE_TARGET_{opt.upper()}")
        if value and ctx.get_parameter_source(opt) is not ParameterSource.COMMANDLINE:
            return value
        return given

    return dataclasses.replace(
        flags,
        kubeconfig=pick("kubeconfig", flags.kubeconfig),
        context=pick("context", flags.context),
    )


@dataclass(frozen=True)
class CreateArgs(Command):
    """`restore create`'s options."""

    name: str | None
    backup: str
    cluster: ClusterFlags
    bucket: BucketFlags
    scope: ScopeFlags
    mappings: MappingFlags
    resource_modifiers: str | None
    existing_resource_policy: str
    restore_status: bool
    preserve_node_ports: bool
    pv_policy: str
    yes: bool
    hold_workloads: bool
    parallelism: int
    wait_ready: bool
    ready_timeout: str
    resume: bool
    fail_on: str
    restore_volumes: bool
    clone_volumes: bool
    mover_image: str | None
    dry_run: str | None
    key: KeyFlags
    output: str

    def validate(self) -> None:
        self.scope.validate()
        self.mappings.validate()
        parse_duration(self.ready_timeout, "--ready-timeout")
        if self.dry_run == "server":
            check_server_flags(resume=self.resume, wait_ready=self.wait_ready)


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
    "--hold-workloads",
    is_flag=True,
    help="Restore Deployments/StatefulSets at 0 replicas and CronJobs suspended, their "
    "values kept in the kube-migrate.io/held annotation; `kube-migrate cluster release` "
    "starts them.",
)
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
@click.option(
    "--restore-volumes/--no-restore-volumes",
    default=True,
    show_default=True,
    help="Write the backup's volume data into the restored claims (before the workloads).",
)
@click.option(
    "--clone-volumes/--no-clone-volumes",
    default=True,
    show_default=True,
    help="Into the cluster the backup came from: make each claim whose VolumeSnapshot the "
    "backup kept (--keep-snapshots) from that snapshot, no data through the bucket.",
)
@mover_image_option
@dry_run_option
@encryption_key_option()
@output_option("table", "json", "yaml", "dot")
@bind(CreateArgs)
def create(args: CreateArgs) -> None:
    """Restore backup --from-backup into the cluster, as restore NAME
    (default <backup>-<timestamp>)."""
    name, backup, output = args.name, args.backup, args.output
    store = args.bucket.open()
    if args.resume and not name and not args.dry_run:
        name = _newest_unfinished(store, backup)
    name = name or f"{backup}-{datetime.now(UTC):%Y%m%d%H%M%S}"
    modifiers = args.resource_modifiers
    opts = RestoreOptions(
        name=name,
        backup=backup,
        scope=args.scope.to_scope(),
        mappings=args.mappings.to_mappings(),
        modifiers=load_modifiers(modifiers) if modifiers else None,
        existing_policy=args.existing_resource_policy,
        restore_status=args.restore_status,
        preserve_node_ports=args.preserve_node_ports,
        pv_policy=args.pv_policy,
        yes=args.yes,
        parallelism=args.parallelism,
        wait_ready=args.wait_ready,
        ready_timeout=parse_duration(args.ready_timeout, "--ready-timeout").total_seconds(),
        resume=args.resume,
        encryption_key=args.key.load(),
        fail_on=args.fail_on,
        hold_workloads=args.hold_workloads,
    )
    target = _target_from_env(args.cluster).connect(pool_size=opts.parallelism + 4)
    if args.dry_run == "server":
        server_dry_run(target, store, opts, output)
        return
    if args.dry_run:
        _, plan = plan_restore(target, store, opts)
        if output == "dot":
            sys.stdout.write(to_dot(plan.graph, plan.late) + "\n")
        else:
            emit(plan.rows(), output, ["level", "kind", "namespace", "name", "action"])
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

    data, planned = None, None
    if args.restore_volumes:
        from migrate.pipeline.restore_data import data_level
        from migrate.pipeline.steps_data import mover_settings

        planned = plan_restore(target, store, opts)
        key, image = opts.encryption_key, args.mover_image
        data = data_level(
            target, store, backup, planned,
            lambda: mover_settings(store, key, image, create=False),
            progress_bar, clone=args.clone_volumes, restore=name,
        )  # fmt: skip
    with progress_bar(f"restore {name}") as progress:
        summary = run_restore(
            target,
            store,
            opts,
            progress,
            announce=announce,
            planned=planned,
            after_level=data.after if data else None,
            before_level=data.before if data else None,
        )
    if data is not None and data.clones:
        for ns, claim in sorted(data.clones):
            log.info("claim %s/%s made from the backup's kept VolumeSnapshot", ns, claim)
        summary.warnings += data.finish()
    fmt = "json" if output == "dot" else output
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
