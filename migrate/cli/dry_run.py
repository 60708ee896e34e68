"""`restore create --dry-run[=client|server]`, spelled as kubectl spells it: a bare
`--dry-run` (or `=client`) prints the plan and asks the target nothing; `=server` sends
every write of the restore with dryRun=All (migrate/restore/dryrun.py) and prints the
results as the restore does.  Neither writes anything, to the target or the bucket.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

from migrate.cli.output import emit, emit_with_rows
from migrate.cli.progress import progress_bar
from migrate.cluster import Cluster
from migrate.errors import PartialFailure, UsageError
from migrate.restore.dryrun import dry_run_restore
from migrate.restore.plan import RestoreOptions
from migrate.store import Store

F = TypeVar("F", bound=Callable[..., Any])
MODES = ("client", "server")
COLUMNS = ["name", "backup", "dryRun", "phase", "created", "updated", "skipped", "failed"]


class DryRunCommand(click.Command):
    """Takes `--dry-run`'s value only after '=' (kubectl's spelling): a bare `--dry-run`
    is `--dry-run=client`, and `--dry-run NAME` leaves NAME the command's argument."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        out, options = [], True
        for arg in args:
            options = options and arg != "--"  # after "--" everything is an argument
            out.append("--dry-run=client" if options and arg == "--dry-run" else arg)
        return super().parse_args(ctx, out)


def dry_run_option(f: F) -> F:
    return click.option(
        "--dry-run",
        type=click.Choice(MODES),
        default=None,
        metavar="[=server]",
        help="Write nothing.  Bare (or =client): print the plan.  =server: send every "
        "object with dryRun=All, so the target's admission (webhooks, quotas, Pod "
        "Security) accepts or rejects each one; print the results (exit 5 if any is "
        "rejected).",
    )(f)


def check_server_flags(*, resume: bool, wait_ready: bool) -> None:
    """What a server dry run cannot do (it creates nothing, keeps no journal)."""
    if resume:
        raise UsageError(
            "--resume continues a restore from its journal; a dry run keeps none",
            hint="drop --resume (a dry run can always be run again from the start)",
        )
    if wait_ready:
        raise UsageError(
            "--wait-ready waits for restored workloads; a dry run creates none",
            hint="drop --wait-ready from the dry run",
        )


def server_dry_run(target: Cluster, store: Store, opts: RestoreOptions, output: str) -> None:
    """Run the restore with dryRun=All and print its results (-o table|json|yaml)."""
    check_server_flags(resume=opts.resume, wait_ready=opts.wait_ready)
    with progress_bar(f"restore {opts.name} (dry run)") as progress:
        summary = dry_run_restore(target, store, opts, progress)
    fmt = "json" if output == "dot" else output
    if fmt == "table":
        emit({**summary.as_dict(), "dryRun": "server"}, fmt, [*COLUMNS, "warnings"])
    else:
        rows = (r.as_dict() for r in summary.results)
        head = {**summary.details_head(), "dryRun": "server"}
        emit_with_rows(head, fmt, "objects", rows)
    failed = summary.counts["failed"]
    if failed:
        raise PartialFailure(
            f"dry run of restore {opts.name}: the target would reject {failed} "
            f"object{'s' if failed > 1 else ''}; nothing was written",
            hint="see each object's message (-o json), fix the objects or the target "
            "(quotas, Pod Security, webhooks), and dry-run again",
        )
