"""`kube-migrate verify`: diff the source (live, or a backup) against the target after
the restore's transforms; exit 0 when equal, 1 on drift (like `kubectl diff`)."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click

from migrate.cli.options import (
    bucket_options,
    cluster_resources_option,
    connect,
    encryption_key_option,
    key_from,
    mapping_options,
    mappings_from,
    pop_bucket,
    pv_policy_option,
    scope_from,
    scope_options,
    source_target_options,
)
from migrate.cli.output import output_option
from migrate.cli.progress import progress_bar
from migrate.errors import DriftFound, UsageError
from migrate.transform.modifiers import load_modifiers
from migrate.transform.sanitize import SanitizeOptions
from migrate.verify import Transforms, VerifyOptions, VerifyReport, run_verify
from migrate.verify.ignorefile import load_ignore_rules
from migrate.verify.junit import write_junit
from migrate.verify.render import html_page, markdown, table

F = TypeVar("F", bound=Callable[..., Any])

RENDER: dict[str, Callable[[VerifyReport], str]] = {
    "table": table,
    "json": lambda report: json.dumps(report.as_dict(), indent=2, default=str),
    "markdown": markdown,
    "html": html_page,
}


def _bucket_optional(f: F) -> F:
    """The shared bucket flags, with --bucket needed only for --from-backup."""
    f = bucket_options(f)
    for param in getattr(f, "__click_params__", []):
        if param.name == "bucket":
            param.required = False
    return f


@click.command("verify")
@source_target_options
@click.option(
    "--from-backup",
    "backup",
    metavar="NAME",
    help="Compare the target with this backup instead of the live source.",
)
@_bucket_optional
@encryption_key_option()
@scope_options
@cluster_resources_option(
    "auto: all when no namespace filter, else Namespaces (and --from-backup: "
    "what the backup brought along)."
)
@mapping_options
@click.option("--resource-modifiers", metavar="FILE", help="The restore's resource modifiers.")
@click.option("--preserve-node-ports", is_flag=True, help="The restore kept nodePorts.")
@pv_policy_option
@click.option(
    "--ignore-fields",
    metavar="FILE",
    help="More fields to ignore (Argo CD ignoreDifferences format).",
)
@click.option(
    "--show-values",
    is_flag=True,
    help="Print ConfigMap values in the diff (default: their sha256 and size).  Secret "
    "values are never printed: they are compared by hash and shown as <redacted>.",
)
@click.option(
    "--show-secrets",
    hidden=True,
    is_flag=False,
    flag_value="true",
    default=None,
    expose_value=True,
)
@click.option(
    "--junit", metavar="FILE", help="Also write a JUnit XML report (one case per object)."
)
@click.option(
    "--parallelism",
    type=click.IntRange(min=1),
    default=8,
    show_default=True,
    help="LIST requests in flight (both clusters together).",
)
@output_option("table", "json", "markdown", "html")
def verify(**kw: Any) -> None:
    """Diff the source (or --from-backup) against the target, after the restore's
    transforms.  Exit 0: equal; 1: drift; >= 2: errors."""
    if str(kw.pop("show_secrets")).lower() not in ("none", "false", "0", "no"):
        raise UsageError(
            "verify never prints Secret values (--show-secrets was removed)",
            hint="Secrets are compared by hash: a changed one is listed, its values shown "
            "as <redacted>; --show-values prints ConfigMap values",
        )
    if kw["backup"] and not kw["bucket"]:
        raise UsageError("--from-backup needs --bucket", hint="or set KUBE_MIGRATE_BUCKET")
    if kw["encryption_key_file"] and not kw["backup"]:
        raise UsageError(
            "--encryption-key-file applies to --from-backup only",
            hint="a live source is read from the cluster, not from a backup",
        )
    key = key_from(kw)
    store = pop_bucket(kw) if kw["backup"] else None
    kw = {k: v for k, v in kw.items() if not k.startswith("s3_") and k != "bucket"}
    scope = scope_from(kw)
    transforms = Transforms(
        mappings=mappings_from(kw),
        modifiers=load_modifiers(kw["resource_modifiers"]) if kw["resource_modifiers"] else None,
        sanitize=SanitizeOptions(
            preserve_node_ports=kw["preserve_node_ports"], pv_policy=kw["pv_policy"]
        ),
        ignore=tuple(load_ignore_rules(kw["ignore_fields"])) if kw["ignore_fields"] else (),
        show_values=bool(kw["show_values"]),
    )
    opts = VerifyOptions(
        scope, transforms, kw["backup"], parallelism=kw["parallelism"], encryption_key=key
    )
    pool = kw["parallelism"] + 4
    target = connect(
        kw["target_kubeconfig"],
        kw["target_context"],
        qps=kw["qps"],
        burst=kw["burst"],
        pool_size=pool,
    )
    source = None
    if not kw["backup"]:
        source = connect(
            kw["source_kubeconfig"],
            kw["source_context"],
            qps=kw["qps"],
            burst=kw["burst"],
            pool_size=pool,
        )
    with progress_bar("verify") as progress:
        report = run_verify(source, target, opts, store, progress)
    sys.stdout.write(RENDER[kw["output"]](report) + "\n")
    sys.stdout.flush()
    if kw["junit"]:
        write_junit(report, kw["junit"])
    if report.drift:
        raise DriftFound(
            f"drift between source and target: {report.summary_line()}",
            hint="read the diff; intended changes: pass the restore's mappings, or "
            "--ignore-fields FILE",
        )
