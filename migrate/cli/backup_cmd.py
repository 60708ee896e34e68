"""`kube-migrate backup ...`: create a Velero-format backup, and (backup_read_cmd) get,
describe, logs, delete, gc and wait-sync."""

from __future__ import annotations

from dataclasses import dataclass

import click

from migrate.cli import backup_read_cmd, interrupt
from migrate.cli.binding import Command, bind
from migrate.cli.options import (
    BucketFlags,
    ClusterFlags,
    KeyFlags,
    ScopeFlags,
    bucket_options,
    cluster_options,
    cluster_resources_option,
    encryption_key_option,
    mover_image_option,
    scope_options,
)
from migrate.cli.output import emit, output_option
from migrate.cli.progress import progress_bar
from migrate.errors import PartialFailure, UsageError
from migrate.transform.scope import split_list
from migrate.units import parse_duration


@click.group()
def backup() -> None:
    """Back up a cluster into the bucket, in Velero's format."""


for _cmd in backup_read_cmd.COMMANDS:
    backup.add_command(_cmd)


def parse_labels(text: str | None) -> dict[str, str]:
    out = {}
    for part in split_list(text):
        key, sep, val = part.partition("=")
        if not sep or not key:
            raise UsageError(f"invalid label {part!r} in --labels", hint="use k=v,k2=v2")
        out[key] = val
    return out


@dataclass(frozen=True)
class CreateArgs(Command):
    """`backup create`'s options."""

    name: str
    cluster: ClusterFlags
    bucket: BucketFlags
    scope: ScopeFlags
    ttl: str
    labels: str | None
    parallelism: int
    detect_changes: bool
    volumes: str
    quiesce: str
    snapshot_volumes: str
    keep_snapshots: bool
    snapshot_move_data: bool
    mover_image: str | None
    incremental_from: str | None
    key: KeyFlags
    output: str

    def validate(self) -> None:
        self.scope.validate()
        parse_duration(self.ttl, "--ttl")
        parse_labels(self.labels)
        if self.quiesce != "none" and self.volumes == "none":
            raise UsageError(
                "--quiesce scale-down stops workloads for their data's copy, and --volumes "
                "none copies none",
                hint="drop --quiesce, or copy data: --volumes all",
            )
        if (
            self.keep_snapshots or not self.snapshot_move_data
        ) and self.snapshot_volumes == "never":
            raise UsageError(
                "--keep-snapshots and --no-snapshot-move-data keep the claims' VolumeSnapshots, "
                "and --snapshot-volumes never takes none",
                hint="drop them, or --snapshot-volumes auto",
            )


@backup.command("create")
@click.argument("name")
@cluster_options
@bucket_options
@scope_options
@cluster_resources_option("auto: all when no namespace filter, else those the namespaces need.")
@click.option("--ttl", default="720h0m0s", show_default=True, help="How long to keep the backup.")
@click.option("--labels", default=None, metavar="K=V,...", help="Labels on the Backup object.")
@click.option(
    "--parallelism",
    type=click.IntRange(min=1),
    default=8,
    show_default=True,
    help="Resources listed at once.",
)
@click.option(
    "--detect-changes/--no-detect-changes",
    default=True,
    show_default=True,
    help="Re-list (metadata only) at the end and report objects changed meanwhile.",
)
@click.option(
    "--volumes",
    type=click.Choice(["all", "annotated", "none"]),
    default="annotated",
    show_default=True,
    help="Whose PersistentVolumeClaim data to copy: every bound claim, those a pod lists "
    "in backup.velero.io/backup-volumes (Velero's opt-in), or none.",
)
@click.option(
    "--quiesce",
    type=click.Choice(["none", "scale-down"]),
    default="none",
    show_default=True,
    help="scale-down: scale the Deployments/StatefulSets whose claims are copied to 0 for "
    "the copy, then back (recorded on them: an interrupted backup's next run heals them).",
)
@click.option(
    "--snapshot-volumes",
    type=click.Choice(["always", "auto", "never"]),
    default="auto",
    show_default=True,
    help="Copy each claim from a CSI VolumeSnapshot (hooks hold the app for the snapshot's "
    "cut only): auto where its driver has a VolumeSnapshotClass, always (a claim without "
    "one fails), or never (copy the live claim).",
)
@click.option(
    "--keep-snapshots",
    is_flag=True,
    help="Keep each claim's VolumeSnapshot in the source cluster as a fast local restore "
    "point (removed by `backup delete --kubeconfig`).",
)
@click.option(
    "--snapshot-move-data/--no-snapshot-move-data",
    default=True,
    show_default=True,
    help="Copy snapshotted claims' data into the bucket.  --no-snapshot-move-data keeps "
    "the VolumeSnapshots instead (implies --keep-snapshots): a restore into this same "
    "cluster clones them; into another cluster their claims start empty.",
)
@mover_image_option
@click.option(
    "--incremental-from",
    metavar="PARENT",
    default=None,
    help="Hold only the objects created or changed since backup PARENT (of the same "
    "cluster and scope) and the list of those deleted; `restore create` applies it to a "
    "target already holding PARENT.",
)
@encryption_key_option(writing=True)
@output_option()
@bind(CreateArgs)
def create(args: CreateArgs) -> None:
    """Back up the cluster into the bucket as backup NAME."""
    # the backup itself, imported when it runs: `backup get|describe|...` need none of it
    from migrate.backup.create import BackupOptions, create_backup

    name = args.name
    store = args.bucket.open()
    opts = BackupOptions(
        name=name,
        scope=args.scope.to_scope(),
        ttl=parse_duration(args.ttl, "--ttl"),
        labels=parse_labels(args.labels),
        parallelism=args.parallelism,
        detect_changes=args.detect_changes,
        encryption_key=args.key.load(),
        parent=args.incremental_from,
    )
    cluster = args.cluster.connect(pool_size=opts.parallelism + 4)
    interrupt.set_hint(
        f"a backup cannot be resumed: rerun the command; the interrupted backup {name} is "
        f"Incomplete: `kube-migrate backup delete {name}` first, or choose another name"
    )
    volumes = None
    if args.volumes != "none":
        from migrate.pipeline.steps_data import VolumeStep, annotation_record, mover_settings

        key, image = opts.encryption_key, args.mover_image
        volumes = VolumeStep(
            cluster, store, opts.scope, name, args.volumes,
            lambda: mover_settings(store, key, image, create=True),
            open_task=progress_bar, quiesce=args.quiesce,
            snapshot_volumes=args.snapshot_volumes,
            keep_snapshots=args.keep_snapshots or not args.snapshot_move_data,
            move_data=args.snapshot_move_data,
            record=annotation_record(cluster, opts.scope) if args.quiesce != "none" else None,
        )  # fmt: skip
        opts.add = volumes
    with progress_bar(f"backup {name}") as progress:
        summary = create_backup(cluster, store, opts, progress)
    doc = summary.as_dict()
    if volumes is not None and volumes.summary is not None:
        doc["volumes"] = volumes.summary.as_dict()
    emit(
        doc,
        args.output,
        [
            "name",
            "phase",
            "items",
            "changed",
            "tarballBytes",
            "errors",
            "warnings",
            "sourceVersion",
        ],
    )
    if summary.phase != "Completed":
        raise PartialFailure(
            f"backup {name} is {summary.phase}: {summary.error_count()} errors",
            hint=f"see `kube-migrate backup describe {name} --details`",
        )
