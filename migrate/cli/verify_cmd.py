"""`kube-migrate verify`: diff the source (live, or a backup) against the target after
the restore's transforms; exit 0 when equal, 1 on drift (like `kubectl diff`)."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click

from migrate.cli.options import bucket_options, connect, pop_bucket, source_target_options
from migrate.cli.output import output_option
from migrate.cli.progress import progress_bar
from migrate.cluster.selectors import Selector
from migrate.errors import DriftFound, UsageError
from migrate.transform.mappings import Mappings, parse_mapping
from migrate.transform.modifiers import load_modifiers
from migrate.transform.sanitize import SanitizeOptions
from migrate.transform.scope import Scope, split_list
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
@click.option("--include-namespaces", default="*", show_default=True, metavar="NS,...")
@click.option("--exclude-namespaces", default="", metavar="NS,...")
@click.option("--include-resources", default="*", show_default=True, metavar="RES,...")
@click.option("--exclude-resources", default="", metavar="RES,...")
@click.option("-l", "--selector", default=None, help="Only objects with these labels.")
@click.option(
    "--include-cluster-resources",
    type=click.Choice(["auto", "true", "false"]),
    default="auto",
    show_default=True,
    help="auto: all when no namespace filter, else Namespaces (and --from-backup: "
    "what the backup brought along).",
)
@click.option("--namespace-mappings", default="", metavar="SRC:DST,...")
@click.option("--storage-class-mappings", default="", metavar="OLD:NEW,...")
@click.option("--image-registry-mappings", default="", metavar="OLD=NEW,...")
@click.option(
    "--replicas",
    type=click.IntRange(min=0),
    default=None,
    help="The --replicas the restore was given.",
)
@click.option("--suspend-cronjobs", is_flag=True, help="The restore suspended CronJobs.")
@click.option("--resource-modifiers", metavar="FILE", help="The restore's resource modifiers.")
@click.option("--preserve-node-ports", is_flag=True, help="The restore kept nodePorts.")
@click.option(
    "--ignore-fields",
    metavar="FILE",
    help="More fields to ignore (Argo CD ignoreDifferences format).",
)
@click.option(
    "--show-secrets",
    type=click.BOOL,
    default=False,
    is_flag=False,
    flag_value=True,
    show_default=True,
    metavar="[true|false]",
    help="Print Secret values in the diff (they are always compared by hash).",
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
    if kw["backup"] and not kw["bucket"]:
        raise UsageError("--from-backup needs --bucket", hint="or set KUBE_MIGRATE_BUCKET")
    store = pop_bucket(kw) if kw["backup"] else None
    kw = {k: v for k, v in kw.items() if not k.startswith("s3_") and k != "bucket"}
    scope = Scope(
        include_namespaces=split_list(kw["include_namespaces"]) or ("*",),
        exclude_namespaces=split_list(kw["exclude_namespaces"]),
        include_resources=split_list(kw["include_resources"]) or ("*",),
        exclude_resources=split_list(kw["exclude_resources"]),
        selector=Selector.parse(kw["selector"]),
        include_cluster_resources=kw["include_cluster_resources"],
    )
    transforms = Transforms(
        mappings=Mappings(
            namespaces=parse_mapping(kw["namespace_mappings"], "--namespace-mappings"),
            storage_classes=parse_mapping(kw["storage_class_mappings"], "--storage-class-mappings"),
            registries=parse_mapping(
                kw["image_registry_mappings"], "--image-registry-mappings", "="
            ),
            replicas=kw["replicas"],
            suspend_cronjobs=kw["suspend_cronjobs"],
        ),
        modifiers=load_modifiers(kw["resource_modifiers"]) if kw["resource_modifiers"] else None,
        sanitize=SanitizeOptions(preserve_node_ports=kw["preserve_node_ports"]),
        ignore=tuple(load_ignore_rules(kw["ignore_fields"])) if kw["ignore_fields"] else (),
        show_secrets=bool(kw["show_secrets"]),
    )
    opts = VerifyOptions(scope, transforms, kw["backup"], parallelism=kw["parallelism"])
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
