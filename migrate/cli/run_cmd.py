"""`kube-migrate run PLAYBOOK`: a whole migration as one resumable command.

Names the run `<playbook>-<timestamp>`, keeps a journal so `--resume RUN` continues
after a crash or a failed gate, runs the steps (migrate.pipeline, its events shown by
render_events.py), and writes the report directory.  `--dry-run` runs preflight and the
restore plan only and writes nothing.  The exit code is the worst step's.
"""

from __future__ import annotations

import logging
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click
from click.core import ParameterSource

from migrate.cli import interrupt
from migrate.cli.logs import NOTICE
from migrate.cli.options import encryption_key_option, source_target_options, sse_options
from migrate.cli.output import emit, output_option
from migrate.cli.render_events import StderrRenderer
from migrate.errors import MigrateError, UsageError
from migrate.pipeline.context import Context
from migrate.pipeline.resume import mirror_run, new_run, resume_run
from migrate.pipeline.run import execute, run_document
from migrate.playbook import BucketEndpoint
from migrate.report.write import write_report

log = logging.getLogger(__name__)


class RunFailed(MigrateError):
    """A step failed; carries that step's exit code."""

    def __init__(self, message: str, code: int, hint: str) -> None:
        super().__init__(message, hint)
        self.exit_code = code


def _flags(kw: dict[str, Any]) -> dict[str, Any]:
    keys = (
        "source_kubeconfig",
        "source_context",
        "target_kubeconfig",
        "target_context",
        "bucket",
        "s3_endpoint",
        "s3_region",
        "s3_profile",
        "target_bucket",
        "encryption_key_file",
        "s3_sse",
        "s3_kms_key_id",
    )
    ctx = click.get_current_context()
    given = {  # only what the command line says: the playbook beats the environment
        k: kw.get(k) for k in keys if ctx.get_parameter_source(k) is ParameterSource.COMMANDLINE
    }
    given["read_only_bucket"] = kw.get("read_only_bucket") or None
    return given


def _bucket_of_flags(kw: dict[str, Any]) -> BucketEndpoint | None:
    """Where --resume looks for a run not journaled here: --target-bucket, else --bucket
    (flags or their variables), read-only."""
    url = kw.get("target_bucket") or kw.get("bucket")
    if not url:
        return None
    return BucketEndpoint(
        url=url,
        endpoint=kw.get("s3_endpoint"),
        region=kw.get("s3_region"),
        profile=kw.get("s3_profile"),
        read_only=True,
        sse=kw.get("s3_sse"),
        kms_key_id=kw.get("s3_kms_key_id"),
    )


@click.command("run")
@click.argument("playbook", required=False, type=click.Path(dir_okay=False))
@click.option(
    "--set",
    "overrides",
    multiple=True,
    metavar="PATH=VALUE",
    help="Override a playbook value, e.g. --set restore.replicas=1 (repeatable).",
)
@click.option("--resume", "resume", metavar="RUN", help="Continue run RUN where it stopped.")
@click.option("--dry-run", is_flag=True, help="Preflight and the restore plan only; write nothing.")
@click.option(
    "--report-dir",
    type=click.Path(file_okay=False),
    help="Where to write the report (default: ./kube-migrate-reports/<run>).",
)
@source_target_options
@click.option("--bucket", envvar="KUBE_MIGRATE_BUCKET", metavar="URL")
@click.option(
    "--target-bucket",
    envvar="KUBE_MIGRATE_TARGET_BUCKET",
    metavar="URL",
    help="The target side's view of the bucket (a replica), if different.",
)
@click.option("--s3-endpoint", envvar="KUBE_MIGRATE_S3_ENDPOINT", metavar="URL")
@click.option("--s3-region", metavar="REGION")
@click.option("--s3-profile", metavar="NAME")
@click.option("--read-only-bucket", is_flag=True)
@sse_options
@encryption_key_option(writing=True)
@output_option()
def run(
    playbook: str | None,
    overrides: tuple[str, ...],
    resume: str | None,
    dry_run: bool,
    report_dir: str | None,
    output: str,
    **kw: Any,
) -> None:
    """Run a migration playbook (see playbooks/)."""
    if resume:
        given = [
            w
            for w, on in (("PLAYBOOK", playbook), ("--set", overrides), ("--dry-run", dry_run))
            if on
        ]
        if given:
            raise UsageError(
                f"--resume {resume} continues the run as it was started; {' and '.join(given)} "
                "cannot change it",
                hint=f"drop {' and '.join(given)}, or start a new run: `kube-migrate run PLAYBOOK`",
            )
        state, pb, endpoints = resume_run(resume, _flags(kw), _bucket_of_flags(kw))
    else:
        if not playbook:
            raise click.UsageError("give a PLAYBOOK file, or --resume RUN")
        state, pb, endpoints = new_run(playbook, overrides, _flags(kw))
    ctx = Context(
        state,
        pb,
        endpoints,
        sink=StderrRenderer(),
        dry_run=dry_run,
        qps=kw["qps"],
        burst=kw["burst"],
    )
    started = datetime.now(UTC)
    log.log(NOTICE, "run %s (%s)", state.run, pb.path)
    mirror_run(ctx)  # --resume from anywhere
    interrupt.set_hint(f"continue it with `kube-migrate run --resume {state.run}`")
    code = execute(ctx)
    directory = Path(report_dir or pb.report_dir or Path("kube-migrate-reports") / state.run)
    doc = run_document(ctx, started, datetime.now(UTC), code, " ".join(sys.argv))
    paths = write_report(directory, doc, ctx.artefacts.get("graph"), ctx.artefacts.get("junit"))
    _print_summary(doc, directory, output)
    log.info("report files: %s", ", ".join(str(p) for p in paths))
    if code:
        failed = next((s for s in doc["steps"] if s["status"] == "failed"), {"step": "?"})
        raise RunFailed(
            f"run {state.run} stopped at step {failed['step']} (exit {code})",
            code,
            f"see {directory}/report.md; fix, then `kube-migrate run --resume {state.run}`",
        )


def _print_summary(doc: dict[str, Any], directory: Path, fmt: str) -> None:
    """stdout: the steps as a table (run and report on stderr), or the whole report
    document with -o json|yaml."""
    if fmt != "table":
        emit({**doc, "report": str(directory)}, fmt)
        return
    rows = [{k: s[k] for k in ("step", "status", "seconds", "summary")} for s in doc["steps"]]
    emit(rows, fmt, ["step", "status", "seconds", "summary"])
    log.log(NOTICE, "run %s: exit %d; report in %s", doc["run"], doc["exitCode"], directory)
