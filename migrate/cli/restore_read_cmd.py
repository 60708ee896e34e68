"""`restore get|describe|logs`: the commands that read the restores recorded in the
bucket (and, for read-only buckets, on this machine).

They are plain click commands; migrate.cli.restore_cmd registers them in the `restore`
group.  Each only calls migrate.restore.results, so what they print is what it decides.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

import click

from migrate.cli.binding import Command, bind
from migrate.cli.options import BucketFlags, bucket_options
from migrate.cli.output import emit, output_option
from migrate.restore import results

COMMANDS: list[click.Command] = []


def _register(cmd: click.Command) -> click.Command:
    COMMANDS.append(cmd)
    return cmd


@dataclass(frozen=True)
class GetArgs(Command):
    bucket: BucketFlags
    output: str


@_register
@click.command("get")
@bucket_options
@output_option()
@bind(GetArgs)
def get(args: GetArgs) -> None:
    """List restores recorded in the bucket (and locally, for read-only buckets)."""
    store = args.bucket.open(read_only=True)
    emit(
        results.list_restores(store),
        args.output,
        ["name", "backup", "phase", "created", "updated", "skipped", "failed", "completed"],
    )


@dataclass(frozen=True)
class DescribeArgs(Command):
    name: str
    details: bool
    bucket: BucketFlags
    output: str


@_register
@click.command("describe")
@click.argument("name")
@click.option("--details", is_flag=True, help="Include every object's result.")
@bucket_options
@output_option("yaml", "json")
@bind(DescribeArgs)
def describe(args: DescribeArgs) -> None:
    """Show a restore's summary (and per-object results with --details)."""
    store = args.bucket.open(read_only=True)
    emit(results.describe(store, args.name, args.details), args.output)


@dataclass(frozen=True)
class LogsArgs(Command):
    name: str
    bucket: BucketFlags


@_register
@click.command("logs")
@click.argument("name")
@bucket_options
@bind(LogsArgs)
def logs(args: LogsArgs) -> None:
    """Print a restore's log."""
    sys.stdout.write(results.logs(args.bucket.open(read_only=True), args.name))
