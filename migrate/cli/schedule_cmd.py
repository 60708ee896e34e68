"""`kube-migrate schedule ...`: scheduled backups run by the cluster itself, as a CronJob
whose pod runs this same CLI from the kube-migrate image; create (or print with --dry-run),
and (schedule_read_cmd) get, describe, pause, unpause, run-now, delete, fire."""

from __future__ import annotations

import json
import logging
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
import yaml

from migrate.cli import schedule_read_cmd
from migrate.cli.binding import Command, bind_params
from migrate.cli.options import BucketFlags, ClusterFlags, bucket_options, cluster_options
from migrate.errors import UsageError
from migrate.schedule.cron import check_schedule
from migrate.schedule.manifests import ScheduleSpec
from migrate.units import parse_duration

# `backup create` flags a schedule sets itself, or that cannot work in its pod
NOT_PASSED = {
    "--kubeconfig": "the pod uses its ServiceAccount",
    "--context": "the pod uses its ServiceAccount",
    "--bucket": "give it to `schedule create` itself",
    "--ttl": "give it to `schedule create` itself",
    "--incremental-from": "a schedule's backups are full ones",
    "--encryption-key-file": "not yet for schedules: the key would have to be a Secret",
    "-o": "the pod's log shows the result",
    "--output": "the pod's log shows the result",
}
log = logging.getLogger(__name__)
BUCKET_ENV = {  # BucketFlags field -> the variable the pod's CLI reads it from
    "bucket": "KUBE_MIGRATE_BUCKET",
    "s3_endpoint": "KUBE_MIGRATE_S3_ENDPOINT",
    "s3_region": "AWS_REGION",
    "s3_sse": "KUBE_MIGRATE_S3_SSE",
    "s3_kms_key_id": "KUBE_MIGRATE_S3_KMS_KEY_ID",
}


@click.group()
def schedule() -> None:
    """Scheduled backups, run in the source cluster by a CronJob."""


for _cmd in schedule_read_cmd.COMMANDS:
    schedule.add_command(_cmd)


@dataclass(frozen=True)
class CreateArgs(Command):
    name: str
    schedule: str
    ttl: str
    namespace: str
    image: str
    credentials_secret: str | None
    time_zone: str | None
    paused: bool
    starting_deadline: int
    history: int
    pod_overrides: str | None
    sa_annotation: tuple[str, ...]
    drill: str | None
    drill_target_kubeconfig: str | None
    drill_target_context: str | None
    dry_run: bool
    output: str
    cluster: ClusterFlags
    bucket: BucketFlags
    backup_flags: tuple[str, ...]

    def validate(self) -> None:
        check_schedule(self.schedule)
        parse_duration(self.ttl, "--ttl")
        if self.bucket.s3_profile or self.bucket.read_only_bucket:
            raise UsageError(
                "--s3-profile and --read-only-bucket do not apply to a schedule's pod",
                hint="give its credentials as a Secret: --credentials-secret NAME[:KEY]",
            )
        for flag in self.backup_flags:
            key = flag.split("=", 1)[0]
            if key in NOT_PASSED:
                raise UsageError(f"{key} is not a schedule's backup flag", hint=NOT_PASSED[key])
        if self.drill and self.backup_flags:
            raise UsageError(
                f"a drill runs its playbook, not a backup: {' '.join(self.backup_flags)}",
                hint="set what it restores in the playbook (or drop --drill)",
            )
        if (self.drill_target_kubeconfig or self.drill_target_context) and not self.drill:
            raise UsageError("--drill-target-* go with --drill PLAYBOOK", hint="add --drill")
        if self.output not in ("yaml", "json") and self.dry_run:
            raise UsageError("--dry-run prints the manifests", hint="add -o yaml (or -o json)")


@schedule.command(
    "create", context_settings={"ignore_unknown_options": True, "allow_extra_args": True}
)
@click.argument("name")
@click.option("--schedule", required=True, metavar="CRON", help='e.g. "0 */6 * * *".')
@click.option("--ttl", default="720h0m0s", show_default=True, help="How long each backup lives.")
@click.option("-n", "--namespace", default="kube-migrate", show_default=True, help="Where.")
@click.option(
    "--image",
    envvar="KUBE_MIGRATE_IMAGE",
    required=True,
    help="The kube-migrate image, as the cluster pulls it (`make image` builds it) "
    "[env KUBE_MIGRATE_IMAGE].",
)
@click.option(
    "--credentials-secret",
    metavar="NAME[:KEY]",
    help="Secret (in --namespace) holding the bucket's credentials in AWS's shared-"
    "credentials format under KEY (default cloud: Velero's cloud-credentials works). "
    "None: workload identity (see --sa-annotation).",
)
@click.option("--time-zone", metavar="TZ", help="The CronJob's spec.timeZone (default: UTC).")
@click.option("--paused", is_flag=True, help="Install suspended (`schedule unpause` starts it).")
@click.option("--starting-deadline", type=click.IntRange(min=10), default=300, show_default=True)
@click.option("--history", type=click.IntRange(min=0), default=3, show_default=True)
@click.option(
    "--pod-overrides",
    metavar="FILE",
    help="JSON patch (RFC 6902, JSON or YAML) applied to the pod template: node selectors, "
    "a proxy's variables...",
)
@click.option(
    "--sa-annotation",
    multiple=True,
    metavar="K=V",
    help="Annotation on the ServiceAccount (workload identity: eks.amazonaws.com/role-arn=...).",
)
@click.option(
    "--drill",
    metavar="PLAYBOOK",
    type=click.Path(exists=True, dir_okay=False),
    help="Run this playbook (a DR drill: playbooks/disaster-recovery.yaml) on the schedule "
    "instead of a backup, against --drill-target-kubeconfig (default: --kubeconfig's).",
)
@click.option(
    "--drill-target-kubeconfig", metavar="FILE", help="The cluster a drill restores into."
)
@click.option("--drill-target-context", metavar="NAME", help="Its context.")
@click.option("--dry-run", is_flag=True, help="Print the manifests (with -o yaml), apply none.")
@click.option("-o", "--output", type=click.Choice(["table", "yaml", "json"]), default="table")
@cluster_options
@bucket_options
@click.pass_context
def create(ctx: click.Context, /, **params: Any) -> None:
    """Install a schedule: NAME's backups, named NAME-<YYYYMMDDhhmmss>, every CRON.  Any
    other flag is a `backup create` flag (--include-namespaces, --volumes...)."""
    args = bind_params(CreateArgs, {**params, "backup_flags": tuple(ctx.args)})
    args.validate()
    from migrate.schedule import install
    from migrate.schedule.manifests import manifests

    backup = _backup_args(() if args.drill else args.backup_flags)
    cluster = args.cluster.connect()
    spec = _spec(args, backup)
    objs = manifests(spec, [] if args.drill else install.served_resources(cluster))
    ns = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": args.namespace}}
    objs.insert(0, ns)
    secret = _drill_secret(args, spec) if args.drill else None
    if args.dry_run:
        if secret:
            log.warning("not printed: Secret %s (the playbook and the target's kubeconfig: "
                        "credentials); `schedule create` without --dry-run makes it",
                        secret["metadata"]["name"])  # fmt: skip
        _print(objs, args.output)
        return
    if secret:
        objs.insert(len(objs) - 1, secret)
    install.apply(cluster, objs)
    click.echo(f"schedule {args.name} installed in {args.namespace} ({spec.schedule})", err=True)
    for o in objs:
        where = o["metadata"].get("namespace")
        click.echo(f"{o['kind']}/{o['metadata']['name']}" + (f" -n {where}" if where else ""))


def _drill_secret(args: CreateArgs, spec: ScheduleSpec) -> dict[str, Any]:
    from migrate.cluster import ClusterRef
    from migrate.cluster.config import flatten
    from migrate.playbook import load_playbook
    from migrate.schedule.manifests import drill_secret

    assert args.drill
    load_playbook(args.drill)  # the usual errors, with file and line, before installing
    target = ClusterRef(args.drill_target_kubeconfig, args.drill_target_context)
    if not (args.drill_target_kubeconfig or args.drill_target_context):
        target = ClusterRef(args.cluster.kubeconfig, args.cluster.context)
    return drill_secret(spec, Path(args.drill).read_text(), flatten(target))


def _backup_args(flags: tuple[str, ...]) -> Any:
    """`backup create`'s own parser and checks over the schedule's backup flags."""
    from migrate.cli.backup_cmd import CreateArgs as BackupArgs
    from migrate.cli.backup_cmd import create as backup_create

    argv = ["scheduled", *flags, "--bucket", "file:///unused"]
    try:
        bctx = backup_create.make_context("backup create", argv)
    except click.UsageError as exc:
        raise UsageError(
            f"backup flags: {exc.format_message()}", hint="see `backup create -h`"
        ) from None
    args = bind_params(BackupArgs, dict(bctx.params))
    args.validate()
    return args


def _spec(args: CreateArgs, backup: Any) -> ScheduleSpec:
    secret, _, key = (args.credentials_secret or "").partition(":")
    bucket = {f: getattr(args.bucket, f) for f in BUCKET_ENV}
    env = {BUCKET_ENV[k]: str(v) for k, v in bucket.items() if v and k in BUCKET_ENV}
    annotations = dict(a.split("=", 1) for a in args.sa_annotation if "=" in a)
    if len(annotations) != len(args.sa_annotation):
        raise UsageError("--sa-annotation takes K=V", hint="e.g. eks.amazonaws.com/role-arn=...")
    named = backup.scope.to_scope().explicit_namespaces()  # None: all, or globs
    return ScheduleSpec(
        name=args.name,
        schedule=check_schedule(args.schedule),
        image=args.image,
        ttl=args.ttl,
        namespace=args.namespace,
        time_zone=args.time_zone,
        backup_args=args.backup_flags,
        namespaces=("*",) if named is None else tuple(named),
        volumes=backup.volumes != "none",
        snapshots=backup.snapshot_volumes != "never",
        quiesce=backup.quiesce != "none",
        bucket_env=env,
        credentials_secret=secret or None,
        credentials_key=key or "cloud",
        sa_annotations=annotations,
        pod_overrides=load_pod_overrides(args.pod_overrides),
        starting_deadline=args.starting_deadline,
        history=args.history,
        suspend=args.paused,
        drill=bool(args.drill),
    )  # fmt: skip


def load_pod_overrides(path: str | None) -> tuple[dict[str, Any], ...]:
    if not path:
        return ()
    try:
        ops = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise UsageError(f"--pod-overrides {path}: {exc}".splitlines()[0]) from None
    if not isinstance(ops, list) or not all(isinstance(o, dict) and "op" in o for o in ops):
        raise UsageError(
            f"--pod-overrides {path}: not a JSON patch",
            hint='a list of operations, e.g. [{"op": "add", "path": "/spec/hostNetwork", '
            '"value": true}]',
        )
    return tuple(ops)


def _print(objs: list[dict[str, Any]], fmt: str) -> None:
    if fmt == "json":
        doc = {"apiVersion": "v1", "kind": "List", "items": objs}
        sys.stdout.write(json.dumps(doc, indent=2) + "\n")
    else:
        sys.stdout.write(yaml.safe_dump_all(objs, sort_keys=False))
