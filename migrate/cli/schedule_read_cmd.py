"""`schedule get|describe|pause|unpause|run-now|delete`, and `fire`: what the CronJob's pod
runs (a backup named after the schedule and the time, then `backup gc`).

`describe` joins the two places a schedule's history lives: the Jobs the cluster keeps
(its history limits) and the backups in the bucket labelled with the schedule's name,
the bucket read from the CronJob's own settings unless --bucket says otherwise.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import click

from migrate.cli.binding import Command, bind
from migrate.cli.options import (
    BucketFlags,
    ClusterFlags,
    cluster_options,
    optional_bucket_options,
)
from migrate.cli.output import emit, output_option
from migrate.schedule.manifests import SCHEDULE_LABEL, TTL_ANNOTATION, VELERO_SCHEDULE_LABEL

log = logging.getLogger(__name__)
COMMANDS: list[click.Command] = []
namespace_option = click.option("-n", "--namespace", default="kube-migrate", show_default=True)


def _register(cmd: click.Command) -> click.Command:
    COMMANDS.append(cmd)
    return cmd


@dataclass(frozen=True)
class OneArgs(Command):
    name: str
    namespace: str
    cluster: ClusterFlags


def _row(cron: dict[str, Any]) -> dict[str, Any]:
    spec, st, meta = cron["spec"], cron.get("status") or {}, cron["metadata"]
    return {
        "name": meta["name"],
        "namespace": meta["namespace"],
        "status": "Paused" if spec.get("suspend") else "Enabled",
        "schedule": spec["schedule"],
        "ttl": (meta.get("annotations") or {}).get(TTL_ANNOTATION, ""),
        "last-run": st.get("lastScheduleTime", "<never>"),
        "last-success": st.get("lastSuccessfulTime", "<never>"),
        "active": len(st.get("active") or []),
    }


@dataclass(frozen=True)
class GetArgs(Command):
    name: str | None
    namespace: str
    all_namespaces: bool
    cluster: ClusterFlags
    output: str


@_register
@click.command("get")
@click.argument("name", required=False)
@namespace_option
@click.option("-A", "--all-namespaces", is_flag=True, help="Schedules in every namespace.")
@cluster_options
@output_option()
@bind(GetArgs)
def get(args: GetArgs) -> None:
    """List the schedules (or one)."""
    from migrate.schedule import install

    cluster = args.cluster.connect()
    ns = None if args.all_namespaces else args.namespace
    crons = install.list_schedules(cluster, ns)
    if args.name:
        crons = [c for c in crons if c["metadata"]["name"] == args.name]
        if not crons:
            install.get(cluster, args.namespace, args.name)  # the not-found error
    rows = [_row(c) for c in crons]
    if args.output == "table" and not rows:
        log.info("no schedules in %s", ns or "any namespace")
    cols = ["name", "status", "schedule", "ttl", "last-run", "last-success", "active"]
    emit(rows, args.output, (["namespace"] if ns is None else []) + cols)


@dataclass(frozen=True)
class DescribeArgs(Command):
    name: str
    namespace: str
    cluster: ClusterFlags
    bucket: BucketFlags
    output: str


@_register
@click.command("describe")
@click.argument("name")
@namespace_option
@cluster_options
@optional_bucket_options
@output_option()
@bind(DescribeArgs)
def describe(args: DescribeArgs) -> None:
    """A schedule, its last runs (Jobs) and its backups in the bucket, with their outcome."""
    from dataclasses import asdict, replace

    from migrate.backup import catalog
    from migrate.schedule import install

    cluster = args.cluster.connect()
    cron = install.get(cluster, args.namespace, args.name)
    head = _row(cron)
    head["image"] = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0][
        "image"
    ]
    head["jobs"] = [asdict(r) for r in install.runs(cluster, args.namespace, args.name)]
    env = _pod_env(cron)
    bucket = args.bucket
    source = click.get_current_context().get_parameter_source("bucket")
    if source != click.core.ParameterSource.COMMANDLINE:  # the schedule's own bucket
        # (not $KUBE_MIGRATE_BUCKET), read with this machine's credentials
        bucket = replace(
            bucket,
            bucket=env.get("KUBE_MIGRATE_BUCKET"),
            s3_endpoint=bucket.s3_endpoint or env.get("KUBE_MIGRATE_S3_ENDPOINT"),
        )
    store = bucket.open(read_only=True)
    rows = [r for r in catalog.list_backups(store) if r.schedule == args.name]
    head["bucket"] = store.url
    head["backups"] = [_backup_row(r) for r in rows]
    if args.output != "table":
        emit(head, args.output)
        return
    lines = [f"{k.capitalize()}: {head[k]}" for k in ("name", "namespace", "status", "schedule",
             "ttl", "image", "last-run", "last-success", "bucket")]  # fmt: skip
    lines += ["", "Jobs (newest first):"]
    lines += [f"  {j['name']}  {j['outcome']}  started {j['started'] or '-'}"
              f"  finished {j['finished'] or '-'}{'  (run-now)' if j['manual'] else ''}"
              for j in head["jobs"]] or ["  <none>"]  # fmt: skip
    lines += ["", "Backups (newest first):"]
    lines += [f"  {b['name']}  {b['phase']}  created {b['created']}  expires {b['expires']}"
              for b in head["backups"]] or ["  <none>"]  # fmt: skip
    click.echo("\n".join(lines))


def _backup_row(r: Any) -> dict[str, Any]:
    d: dict[str, Any] = r.as_dict()
    return {k: d[k] for k in ("name", "phase", "created", "expires", "items", "expired")}


def _pod_env(cron: dict[str, Any]) -> dict[str, str]:
    c = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]
    return {e["name"]: e.get("value", "") for e in c.get("env") or [] if "value" in e}


def _suspend(suspend: bool) -> click.Command:
    verb = "pause" if suspend else "unpause"

    @click.command(verb)
    @click.argument("name")
    @namespace_option
    @cluster_options
    @bind(OneArgs)
    def cmd(args: OneArgs) -> None:
        from migrate.schedule import install

        install.set_suspend(args.cluster.connect(), args.namespace, args.name, suspend)
        click.echo(f"schedule {args.name} {'paused' if suspend else 'unpaused'}", err=True)

    cmd.help = "Stop new runs (a running one finishes)." if suspend else "Start runs again."
    return _register(cmd)


pause = _suspend(True)
unpause = _suspend(False)


@_register
@click.command("run-now")
@click.argument("name")
@namespace_option
@cluster_options
@bind(OneArgs)
def run_now(args: OneArgs) -> None:
    """Start a run now, as a Job from the schedule's template; print the Job's name."""
    from migrate.schedule import install

    click.echo(install.run_now(args.cluster.connect(), args.namespace, args.name))


@_register
@click.command("delete")
@click.argument("name")
@namespace_option
@cluster_options
@bind(OneArgs)
def delete(args: OneArgs) -> None:
    """Remove the schedule (CronJob, its Jobs, ServiceAccount, RBAC); its backups stay."""
    from migrate.schedule import install

    for what in install.delete(args.cluster.connect(), args.namespace, args.name):
        click.echo(what)


@_register
@click.command(
    "fire",
    hidden=True,
    context_settings={"ignore_unknown_options": True, "allow_extra_args": True},
)
@click.argument("name")
@click.option("--ttl", required=True)
@click.pass_context
def fire(ctx: click.Context, name: str, ttl: str) -> None:
    """(The CronJob's pod) back up as NAME-<YYYYMMDDhhmmss>, then collect expired backups."""
    from migrate.cli.main import run

    flags = [a for a in ctx.args if a != "--"]
    labels = f"{VELERO_SCHEDULE_LABEL}={name},{SCHEDULE_LABEL}={name}"
    for i, a in enumerate(flags):  # the schedule's labels join the user's
        if a == "--labels" and i + 1 < len(flags):
            labels, flags = f"{flags[i + 1]},{labels}", flags[:i] + flags[i + 2 :]
            break
        if a.startswith("--labels="):
            labels, flags = f"{a.split('=', 1)[1]},{labels}", flags[:i] + flags[i + 1 :]
            break
    backup = f"{name}-{datetime.now(UTC):%Y%m%d%H%M%S}"
    log.info("schedule %s: backup %s", name, backup)
    code = run(["backup", "create", backup, "--ttl", ttl, "--labels", labels, *flags])
    gc_code = run(["backup", "gc", "--keep", backup])
    if code or gc_code:
        raise click.exceptions.Exit(code or gc_code)
