"""The root command group and the one error handler every command goes through.

Errors become `kube-migrate: error: <message>` and a `hint:` line on stderr, and the
exit code of their class (migrate.errors.EXIT_CODES); `--debug` adds the traceback.
SIGTERM is handled as Ctrl-C is, so that every `finally` runs (temporary copies of a
backup are removed) before the process exits 130.
Installed twice, as `kube-migrate` and as `kubectl-migrate` (so `kubectl migrate ...`
works as a kubectl plugin); both are this group.
"""

from __future__ import annotations

import importlib
import logging
import os
import signal
import sys
import traceback
from typing import Any

import click

from migrate import __version__
from migrate.cli import interrupt, logs
from migrate.errors import (
    EXIT_CODES,
    EXIT_INTERNAL,
    EXIT_INTERRUPTED,
    EXIT_USAGE,
    MigrateError,
)

log = logging.getLogger("migrate")


def _prog_name() -> str:
    base = os.path.basename(sys.argv[0]) if sys.argv else "kube-migrate"
    return "kubectl migrate" if base.startswith("kubectl-") else "kube-migrate"


# "\b" keeps click from rewrapping the table into one paragraph (a line per code)
EPILOG = "Exit codes:\n\n\b\n" + "\n".join(f"{k:>3}  {v}" for k, v in EXIT_CODES.items())


# Each command: where it is defined, imported only when it runs or shows its own help
# (the kubernetes client, boto3, networkx and rich took ~0.6 s of every start-up), and
# the first paragraph of its docstring, which the root `--help` lists without importing
# it (tests/test_startup.py checks that the two agree).
COMMANDS: dict[str, tuple[str, str]] = {
    "backup": (
        "migrate.cli.backup_cmd:backup",
        "Back up a cluster into the bucket, in Velero's format.",
    ),
    "cluster": ("migrate.cli.cluster_cmd:cluster", "Inspect a cluster."),
    "preflight": (
        "migrate.cli.preflight_cmd:preflight",
        "Check that the source (a live cluster, or --from-backup) can be restored into the "
        "target, before anything is written.",
    ),
    "restore": ("migrate.cli.restore_cmd:restore", "Restore a backup into a cluster."),
    "run": ("migrate.cli.run_cmd:run", "Run a migration playbook (see playbooks/)."),
    "schedule": (
        "migrate.cli.schedule_cmd:schedule",
        "Scheduled backups, run in the source cluster by a CronJob.",
    ),
    "verify": (
        "migrate.cli.verify_cmd:verify",
        "Diff the source (or --from-backup) against the target, after the restore's transforms.",
    ),
}


class LazyGroup(click.Group):
    """click's lazy-loading group: a command's module is imported when it is invoked."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMANDS:
            return None
        module, _, attr = COMMANDS[cmd_name][0].partition(":")
        cmd = getattr(importlib.import_module(module), attr)
        assert isinstance(cmd, click.Command), COMMANDS[cmd_name][0]
        return cmd

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The listing of click.Group, from COMMANDS' short helps (nothing imported)."""
        stubs = {name: click.Command(name, help=text) for name, (_, text) in COMMANDS.items()}
        limit = formatter.width - 6 - max(map(len, stubs))
        rows = [(name, stubs[name].get_short_help_str(limit)) for name in sorted(stubs)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(
    cls=LazyGroup,
    context_settings={"help_option_names": ["-h", "--help"]},
    epilog=EPILOG,
)
@click.version_option(__version__, "--version", prog_name="kube-migrate")
@click.option("-v", "--verbose", count=True, help="More logging on stderr (-vv for debug).")
@click.option("--debug", is_flag=True, help="Debug logging and tracebacks on errors.")
@click.option(
    "--log-format",
    type=click.Choice(["plain", "json"]),
    default="plain",
    show_default=True,
    help="Format of the log lines on stderr.",
)
@click.pass_context
def cli(ctx: click.Context, verbose: int, debug: bool, log_format: str) -> None:
    """Migrate Kubernetes clusters: preflight, backup, sync, restore, verify."""
    ctx.obj = {"debug": debug}
    logs.setup(verbose, debug, log_format)


def _fail(message: str, hint: str, code: int) -> int:
    prog = _prog_name()
    click.echo(f"{prog}: error: {message}", err=True)
    if hint:
        click.echo(f"hint: {hint}", err=True)
    return code


def _on_sigterm(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # unwinds like Ctrl-C: temporary copies removed, journals kept


def run(argv: list[str] | None = None) -> int:
    """Run the CLI and return its exit code (the console scripts call main())."""
    debug = "--debug" in (argv if argv is not None else sys.argv[1:])
    try:
        cli.main(args=argv, prog_name=_prog_name(), standalone_mode=False)
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.exceptions.UsageError as exc:
        cmd = exc.ctx.command_path if exc.ctx else _prog_name()
        return _fail(exc.format_message(), f"see '{cmd} --help'", EXIT_USAGE)
    except click.exceptions.ClickException as exc:
        return _fail(exc.format_message(), "see --help", EXIT_USAGE)
    except (KeyboardInterrupt, click.exceptions.Abort):
        return _fail("interrupted", interrupt.hint(), EXIT_INTERRUPTED)
    except MigrateError as exc:
        if debug:
            traceback.print_exc()
        return _fail(exc.message, exc.hint, exc.exit_code)
    except Exception as exc:  # the last resort: a bug
        if debug:
            traceback.print_exc()
        return _fail(f"internal error: {exc!r}", "rerun with --debug and report it", EXIT_INTERNAL)
    return 0


def main() -> Any:
    signal.signal(signal.SIGTERM, _on_sigterm)  # `kill`, a pod's or CI's stop
    sys.exit(run())
