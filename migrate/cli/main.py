"""The root command group and the one error handler every command goes through.

Errors become `kube-migrate: error: <message>` and a `hint:` line on stderr, and the
exit code of their class (migrate.errors.EXIT_CODES); `--debug` adds the traceback.
SIGTERM is handled as Ctrl-C is, so that every `finally` runs (temporary copies of a
backup are removed) before the process exits 130.
Installed twice, as `kube-migrate` and as `kubectl-migrate` (so `kubectl migrate ...`
works as a kubectl plugin); both are this group.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import traceback
from typing import Any

import click

from migrate import __version__
from migrate.cli import interrupt, logs
from migrate.cli.backup_cmd import backup
from migrate.cli.cluster_cmd import cluster
from migrate.cli.preflight_cmd import preflight
from migrate.cli.restore_cmd import restore
from migrate.cli.run_cmd import run as run_command
from migrate.cli.verify_cmd import verify
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


@click.group(context_settings={"help_option_names": ["-h", "--help"]}, epilog=EPILOG)
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


cli.add_command(cluster)
cli.add_command(backup)
cli.add_command(restore)
cli.add_command(run_command)
cli.add_command(verify)
cli.add_command(preflight)


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
