"""`backup get|describe|logs|delete|gc|wait-sync`: the commands that read and tidy the
backups already in the bucket, ours and Velero's.

They are plain click commands; migrate.cli.backup_cmd registers them in the `backup`
group.  Each takes the bucket flags and only calls migrate.backup.catalog or
migrate.sync.wait, so what they print is what those modules decide.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import click

from migrate.backup import catalog
from migrate.backup import describe as describing
from migrate.cli.binding import Command, bind
from migrate.cli.options import (
    BucketFlags,
    ClusterFlags,
    KeyFlags,
    bucket_options,
    cluster_options,
    encryption_key_option,
    mover_image_option,
)
from migrate.cli.output import emit, output_option
from migrate.errors import UsageError
from migrate.store import layout
from migrate.sync.wait import SyncState, wait_for_sync, wait_for_velero_sync
from migrate.units import human_bytes, parse_duration

log = logging.getLogger(__name__)

GET_COLUMNS = ["name", "phase", "created", "expires", "items", "size", "source", "made-by"]
COMMANDS: list[click.Command] = []


def _register(cmd: click.Command) -> click.Command:
    COMMANDS.append(cmd)
    return cmd


def _expires_in(row: catalog.BackupRow, now: datetime) -> str:
    """Velero's EXPIRES column: "29d", "5h", "12m", or "expired"."""
    if row.expires is None:
        return "n/a"
    left = (row.expires - now).total_seconds()
    if left <= 0:
        return "expired"
    for unit, seconds in (("d", 86400), ("h", 3600), ("m", 60)):
        if left >= seconds:
            return f"{int(left // seconds)}{unit}"
    return f"{int(left)}s"


def _table_row(row: catalog.BackupRow, now: datetime) -> dict[str, Any]:
    return {
        "name": row.name,
        "phase": row.phase,
        "created": layout.rfc3339(row.created) if row.created else "",
        "expires": _expires_in(row, now),
        "items": row.items,
        "size": human_bytes(row.size),
        "source": row.source_version or "",
        "made-by": row.made_by,
    }


@dataclass(frozen=True)
class GetArgs(Command):
    name: str | None
    bucket: BucketFlags
    output: str


@_register
@click.command("get")
@click.argument("name", required=False)
@bucket_options
@output_option()
@bind(GetArgs)
def get(args: GetArgs) -> None:
    """List the backups in the bucket (ours and Velero's), newest first, or only NAME."""
    name, output = args.name, args.output
    store = args.bucket.open(read_only=True)
    now = datetime.now(UTC)
    rows = catalog.list_backups(store, now)
    if name is not None:
        rows = [r for r in rows if r.name == name]
        if not rows:
            raise UsageError(
                f"backup {name!r} not found in {store.url}",
                hint="`kube-migrate backup get --bucket ...` lists the backups",
            )
    if output == "table":
        emit([_table_row(r, now) for r in rows], output, GET_COLUMNS)
    else:
        data = [r.as_dict() for r in rows]
        emit(data[0] if name is not None else data, output)


@dataclass(frozen=True)
class DescribeArgs(Command):
    name: str
    details: bool
    bucket: BucketFlags
    key: KeyFlags
    output: str


@_register
@click.command("describe")
@click.argument("name")
@click.option("--details", is_flag=True, help="Every error/warning message and every item.")
@bucket_options
@encryption_key_option()
@output_option("yaml", "json")
@bind(DescribeArgs)
def describe(args: DescribeArgs) -> None:
    """Phase, times, filters, counts, errors and warnings of backup NAME (and whether it
    is encrypted; with --encryption-key-file, whether that is its key)."""
    key = args.key.load()
    store = args.bucket.open(read_only=True)
    emit(describing.describe(store, args.name, args.details, key), args.output)


@dataclass(frozen=True)
class NameArgs(Command):
    """A backup NAME and the bucket: `logs`."""

    name: str
    bucket: BucketFlags


@_register
@click.command("logs")
@click.argument("name")
@bucket_options
@bind(NameArgs)
def logs(args: NameArgs) -> None:
    """Print the log of backup NAME."""
    store = args.bucket.open(read_only=True)
    text = describing.logs(store, args.name)
    sys.stdout.write(text if text.endswith("\n") or not text else text + "\n")


@dataclass(frozen=True)
class DeleteArgs(Command):
    name: str
    confirm: bool
    bucket: BucketFlags
    cluster: ClusterFlags
    mover_image: str | None
    key: KeyFlags

    def validate(self) -> None:
        if not self.confirm:
            raise UsageError(
                f"refusing to delete backup {self.name!r} without --confirm",
                hint="pass --confirm to delete it; there is no undo",
            )


@_register
@click.command("delete")
@click.argument("name")
@click.option("--confirm", is_flag=True, help="Really delete (there is no undo).")
@bucket_options
@cluster_options
@mover_image_option
@encryption_key_option()
@bind(DeleteArgs)
def delete(args: DeleteArgs) -> None:
    """Delete backup NAME (its whole folder) from the bucket, and the VolumeSnapshots it
    kept in its source cluster (--kubeconfig/--context: that cluster; needed only then).
    With --kubeconfig/--context, also its volume data: a mover pod there deletes its
    kopia snapshots (--mover-image; --encryption-key-file if the backup had a key)."""
    from migrate.pipeline.backup_delete import delete_backup

    store = args.bucket.open()
    done = delete_backup(
        store, args.name, args.cluster.connect, args.cluster.given, _settings(store, args)
    )
    for snap in done.snapshots:
        log.info("deleted VolumeSnapshot %s kept by backup %s", snap, args.name)
    click.echo(f'backup "{args.name}" deleted ({done.objects} objects)')


@dataclass(frozen=True)
class GcArgs(Command):
    bucket: BucketFlags
    cluster: ClusterFlags
    keep: tuple[str, ...]
    mover_image: str | None
    key: KeyFlags


def _settings(store: Any, args: DeleteArgs | GcArgs) -> Callable[[], Any]:
    """The movers' settings, made when a backup's volume data is to go."""

    def make() -> Any:
        from migrate.pipeline.steps_data import mover_settings

        return mover_settings(store, args.key.load(), args.mover_image, create=False)

    return make


@_register
@click.command("gc")
@bucket_options
@cluster_options
@click.option("--keep", multiple=True, hidden=True, help="A backup left even if expired.")
@mover_image_option
@encryption_key_option()
@bind(GcArgs)
def gc(args: GcArgs) -> None:
    """Delete every backup whose expiration has passed, with the VolumeSnapshots it kept;
    print their names.  With --kubeconfig/--context (the source cluster), also their
    volume data (see `backup delete`) and the temporary snapshots and claims interrupted
    backups left there."""
    from migrate.pipeline.backup_delete import gc as collect

    store = args.bucket.open()
    done = collect(
        store, args.cluster.connect, args.cluster.given, keep=frozenset(args.keep),
        settings=_settings(store, args),
    )  # fmt: skip
    if done.leftovers:
        log.info("deleted %d temporary snapshots and claims of interrupted backups", done.leftovers)
    if not done.backups:
        log.info("no expired backups in %s", store.url)
    for name in done.backups:
        click.echo(name)


def _progress(state: SyncState) -> None:
    log.info(
        "wait-sync %s: poll %d, %.0fs: %s",
        state.name,
        state.polls,
        state.elapsed,
        "done" if state.done else state.message,
    )


@dataclass(frozen=True)
class WaitSyncArgs(Command):
    name: str
    timeout: str
    interval: str
    velero_namespace: str | None
    cluster: ClusterFlags
    bucket: BucketFlags
    output: str

    def validate(self) -> None:
        parse_duration(self.timeout, "--timeout")
        parse_duration(self.interval, "--interval")


@_register
@click.command("wait-sync")
@click.argument("name")
@click.option("--timeout", default="10m", show_default=True, help="Give up after this long.")
@click.option("--interval", default="1s", show_default=True, help="Time between polls.")
@click.option(
    "--velero-namespace",
    metavar="NS",
    default=None,
    help="Also wait until Velero on the target has synced the Backup into NS.",
)
@cluster_options
@bucket_options
@output_option()
@bind(WaitSyncArgs)
def wait_sync(args: WaitSyncArgs) -> None:
    """Wait until the bucket (as the target sees it) holds backup NAME complete and intact.

    Pass the target's view of the bucket (its --bucket/--s3-endpoint); with
    --velero-namespace also --kubeconfig/--context of the target cluster.
    """
    name, namespace = args.name, args.velero_namespace
    store = args.bucket.open(read_only=True)
    timeout = parse_duration(args.timeout, "--timeout").total_seconds()
    interval = parse_duration(args.interval, "--interval").total_seconds()
    state = wait_for_sync(store, name, timeout, interval, on_poll=_progress)
    result = state.as_dict()
    if namespace:
        cluster = args.cluster.connect()
        left = max(1.0, timeout - state.elapsed)
        obj = wait_for_velero_sync(cluster, namespace, name, left, interval)
        result["velero"] = {
            "namespace": namespace,
            "phase": (obj.get("status") or {}).get("phase", ""),
        }
    emit(result, args.output, ["name", "done", "phase", "polls", "elapsedSeconds", "message"])
