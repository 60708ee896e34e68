"""`kube-migrate run PLAYBOOK`: a whole migration as one resumable command.

Names the run `<playbook>-<timestamp>`, keeps a journal so `--resume RUN` continues
after a crash or a failed gate, runs the steps (migrate.pipeline, its events shown by
render_events.py), and writes the report directory.  `--dry-run` runs preflight and the
restore plan only and writes nothing.  The exit code is the worst step's.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Collection
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click
from click.core import ParameterSource

from migrate.cli import interrupt
from migrate.cli.binding import Command, bind
from migrate.cli.logs import NOTICE
from migrate.cli.options import (
    BucketFlags,
    KeyFlags,
    SourceTargetFlags,
    encryption_key_option,
    optional_bucket_options,
    source_target_options,
)
from migrate.cli.output import emit, output_option
from migrate.cli.render_events import StderrRenderer
from migrate.cli.run_in_cluster import InClusterFlags, in_cluster_options, submit
from migrate.errors import MigrateError, UsageError
from migrate.pipeline.context import Context
from migrate.pipeline.resume import mirror_run, new_run, peek_run, refresh_journal, resume_run
from migrate.pipeline.run import execute, run_document
from migrate.playbook import STEP_NAMES, BucketEndpoint
from migrate.report.write import write_report

log = logging.getLogger(__name__)


class RunFailed(MigrateError):
    """A step failed; carries that step's exit code."""

    def __init__(self, message: str, code: int, hint: str) -> None:
        super().__init__(message, hint)
        self.exit_code = code


@dataclass(frozen=True)
class RunArgs(Command):
    """`run`'s options."""

    playbook: str | None
    overrides: tuple[str, ...]
    resume: str | None
    dry_run: bool
    stop_before: str | None
    report_dir: str | None
    clusters: SourceTargetFlags
    bucket: BucketFlags
    target_bucket: str | None
    key: KeyFlags
    output: str
    remote: InClusterFlags
    artefacts: bool

    def validate(self) -> None:
        self.remote.validate()
        if self.resume:
            given = [
                word
                for word, on in (
                    ("PLAYBOOK", self.playbook),
                    ("--set", self.overrides),
                    ("--dry-run", self.dry_run),
                )
                if on
            ]
            if given:
                words = " and ".join(given)
                raise UsageError(
                    f"--resume {self.resume} continues the run as it was started; {words} "
                    "cannot change it",
                    hint=f"drop {words}, or start a new run: `kube-migrate run PLAYBOOK`",
                )
        elif not self.playbook:
            raise click.UsageError("give a PLAYBOOK file, or --resume RUN")

    def endpoint_flags(self, on_command_line: Collection[str]) -> dict[str, Any]:
        """The endpoint flags for migrate.playbook.resolve_endpoints, by their option
        names: only those in `on_command_line` (a variable does not beat the playbook,
        which beats the variables); --read-only-bucket only when set (None: not given)."""
        source, target = self.clusters.source, self.clusters.target
        values: dict[str, Any] = {
            "source_kubeconfig": source.kubeconfig,
            "source_context": source.context,
            "target_kubeconfig": target.kubeconfig,
            "target_context": target.context,
            **asdict(self.bucket),
            "target_bucket": self.target_bucket,
            "encryption_key_file": self.key.encryption_key_file,
        }
        given = {k: v for k, v in values.items() if k in on_command_line}
        given["read_only_bucket"] = self.bucket.read_only_bucket or None
        return given

    def resume_bucket(self) -> BucketEndpoint | None:
        """Where --resume looks for a run not journaled here: --target-bucket, else
        --bucket (flags or their variables), read-only."""
        b = self.bucket
        url = self.target_bucket or b.bucket
        if not url:
            return None
        return BucketEndpoint(
            url=url,
            endpoint=b.s3_endpoint,
            region=b.s3_region,
            profile=b.s3_profile,
            path_style=b.s3_path_style,
            read_only=True,
            sse=b.s3_sse,
            kms_key_id=b.s3_kms_key_id,
        )


def on_command_line(ctx: click.Context) -> frozenset[str]:
    """The names of `ctx`'s parameters given on the command line (not by a variable or
    a default)."""
    return frozenset(
        p.name
        for p in ctx.command.params
        if p.name and ctx.get_parameter_source(p.name) is ParameterSource.COMMANDLINE
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
@click.option(
    "--stop-before",
    type=click.Choice(STEP_NAMES),
    default=None,
    help="Pause the run before this step (e.g. cutover: pre-copy now, cut over in the "
    "maintenance window with --resume RUN).",
)
@click.option("--dry-run", is_flag=True, help="Preflight and the restore plan only; write nothing.")
@click.option(
    "--report-dir",
    type=click.Path(file_okay=False),
    help="Where to write the report (default: ./kube-migrate-reports/<run>).",
)
@source_target_options
@optional_bucket_options
@click.option(
    "--target-bucket",
    envvar="KUBE_MIGRATE_TARGET_BUCKET",
    metavar="URL",
    help="The target side's view of the bucket (a replica), if different.",
)
@encryption_key_option(writing=True)
@in_cluster_options
@click.option("--report-artefacts", "artefacts", is_flag=True, hidden=True)
@output_option()
@bind(RunArgs)
def run(args: RunArgs) -> None:
    """Run a migration playbook (see playbooks/)."""
    flags = args.endpoint_flags(on_command_line(click.get_current_context()))
    if args.remote.in_cluster:
        _run_in_cluster(args, flags)
        return
    if args.resume:
        state, pb, endpoints = resume_run(args.resume, flags, args.resume_bucket())
    else:
        assert args.playbook  # validate() refused a run without one
        state, pb, endpoints = new_run(args.playbook, args.overrides, flags)
    client = args.clusters.source.client
    ctx = Context(
        state,
        pb,
        endpoints,
        sink=StderrRenderer(),
        dry_run=args.dry_run,
        qps=client.qps,
        burst=client.burst,
        stop_before=args.stop_before,
    )
    started = datetime.now(UTC)
    log.log(NOTICE, "run %s (%s)", state.run, pb.path)
    mirror_run(ctx)  # --resume from anywhere
    interrupt.set_hint(f"continue it with `kube-migrate run --resume {state.run}`")
    code = execute(ctx)
    directory = Path(args.report_dir or pb.report_dir or Path("kube-migrate-reports") / state.run)
    doc = run_document(ctx, started, datetime.now(UTC), code, " ".join(sys.argv))
    paths = write_report(directory, doc, ctx.artefacts.get("graph"), ctx.artefacts.get("junit"))
    if args.artefacts:  # an in-cluster run's pod: the report's other files go back too
        doc = {**doc, "artefacts": {k: ctx.artefacts.get(k) for k in ("graph", "junit")}}
    _print_summary(doc, directory, args.output)
    log.info("report files: %s", ", ".join(str(p) for p in paths))
    if ctx.paused and not code:
        log.log(NOTICE, "run %s paused before %s; continue it with `kube-migrate run --resume "
                "%s`", state.run, ctx.paused, state.run)  # fmt: skip
    if code:
        failed = next((s for s in doc["steps"] if s["status"] == "failed"), {"step": "?"})
        raise RunFailed(
            f"run {state.run} stopped at step {failed['step']} (exit {code})",
            code,
            f"see {directory}/report.md; fix, then `kube-migrate run --resume {state.run}`",
        )


def _run_in_cluster(args: RunArgs, flags: dict[str, Any]) -> None:
    """The run (or its resumption) as a Job (migrate.cli.run_in_cluster); its report
    written here."""
    from migrate.playbook import load_playbook, resolve_endpoints
    from migrate.playbook.endpoints import needs

    if args.key.encryption_key_file:
        raise UsageError(
            "--in-cluster runs without a key file",
            hint="drop --encryption-key-file, or run it here",
        )
    if args.resume:
        pb, endpoints = peek_run(args.resume, flags, args.resume_bucket())
        extra = ["--resume", args.resume]
    else:
        assert args.playbook
        pb = load_playbook(args.playbook, tuple(args.overrides))
        endpoints = resolve_endpoints(pb, flags)
        extra = [a for o in args.overrides for a in ("--set", o)]
    sides = [s for s in ("source", "target") if needs(pb)[s]]
    extra += ["--dry-run"] * args.dry_run + (
        ["--stop-before", args.stop_before] if args.stop_before else []
    )
    code, doc = submit(args.remote, "" if args.resume else str(args.playbook), endpoints, sides,
                       extra)  # fmt: skip
    if args.resume:
        refresh_journal(args.resume, endpoints.target_bucket or endpoints.bucket)
    if doc is None:
        raise RunFailed(f"the run's pod ended (exit {code}) without a report", code or 70,
                        "see the [pod] lines above")  # fmt: skip
    directory = Path(args.report_dir or pb.report_dir or Path("kube-migrate-reports") / doc["run"])
    files = doc.pop("artefacts", None) or {}
    write_report(directory, doc, files.get("graph"), files.get("junit"))
    _print_summary(doc, directory, args.output)
    if code:
        raise RunFailed(
            f"run {doc['run']} (in-cluster) exited {code}",
            code,
            f"see {directory}/report.md; fix, then `kube-migrate run --resume {doc['run']}` "
            "(here, or again with --in-cluster)",
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
