"""`kube-migrate backup ...`: create a Velero-format backup, and (backup_read_cmd) get,
describe, logs, delete, gc and wait-sync."""

from __future__ import annotations

from typing import Any

import click

from migrate.backup.create import BackupOptions, create_backup
from migrate.cli import backup_read_cmd, interrupt
from migrate.cli.options import (
    bucket_options,
    cluster_options,
    cluster_resources_option,
    connect,
    encryption_key_option,
    key_from,
    pop_bucket,
    scope_from,
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
@encryption_key_option(writing=True)
@output_option()
def create(name: str, **kw: Any) -> None:
    """Back up the cluster into the bucket as backup NAME."""
    store = pop_bucket(kw)
    scope = scope_from(kw)
    opts = BackupOptions(
        name=name,
        scope=scope,
        ttl=parse_duration(kw["ttl"], "--ttl"),
        labels=parse_labels(kw["labels"]),
        parallelism=kw["parallelism"],
        detect_changes=kw["detect_changes"],
        encryption_key=key_from(kw),
    )
    cluster = connect(
        kw["kubeconfig"],
        kw["context"],
        qps=kw["qps"],
        burst=kw["burst"],
        pool_size=opts.parallelism + 4,
    )
    interrupt.set_hint(
        f"a backup cannot be resumed: rerun the command; the interrupted backup {name} is "
        f"Incomplete: `kube-migrate backup delete {name}` first, or choose another name"
    )
    with progress_bar(f"backup {name}") as progress:
        summary = create_backup(cluster, store, opts, progress)
    emit(
        summary.as_dict(),
        kw["output"],
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
