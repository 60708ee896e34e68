"""`run PLAYBOOK --in-cluster`: the flags that send a run to a cluster as a Job, and the
hand-over (migrate.pipeline.in_cluster does the work): this machine resolves everything
the run would use, the pod runs it, its log lines come back on stderr and its report is
written here, as a local run's."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from migrate.cli.binding import F, Flags, apply_options
from migrate.cli.flags_cluster import connect
from migrate.cli.logs import NOTICE
from migrate.cluster import ClusterRef
from migrate.errors import UsageError

log = logging.getLogger(__name__)
LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "notice": NOTICE,
    "warning": logging.WARNING,
    "error": logging.ERROR,
    "critical": logging.CRITICAL,
}


def in_cluster_options(f: F) -> F:
    return apply_options(
        f,
        [
            click.option(
                "--in-cluster",
                is_flag=True,
                help="Run as a Job in a cluster (--kubeconfig/--context; default: the "
                "target's), following its log; the report is written here.",
            ),
            click.option("--kubeconfig", metavar="FILE", help="With --in-cluster: where it runs."),
            click.option("--context", metavar="NAME", help="With --in-cluster: its context."),
            click.option(
                "--in-cluster-namespace",
                default="kube-migrate",
                show_default=True,
                help="With --in-cluster: the Job's namespace (created if missing).",
            ),
            click.option(
                "--image",
                envvar="KUBE_MIGRATE_IMAGE",
                help="With --in-cluster: the kube-migrate image [env KUBE_MIGRATE_IMAGE].",
            ),
            click.option(
                "--pod-overrides",
                metavar="FILE",
                help="With --in-cluster: a JSON patch for the Job's pod template.",
            ),
        ],
    )


@dataclass(frozen=True)
class InClusterFlags(Flags):
    in_cluster: bool = False
    kubeconfig: str | None = None
    context: str | None = None
    in_cluster_namespace: str = "kube-migrate"
    image: str | None = None
    pod_overrides: str | None = None

    def validate(self) -> None:
        given = [f for f in ("kubeconfig", "context", "pod_overrides") if getattr(self, f)]
        if given and not self.in_cluster:
            flags = ", ".join("--" + g.replace("_", "-") for g in given)
            raise UsageError(f"{flags} apply only with --in-cluster", hint="add --in-cluster")
        if self.in_cluster and not self.image:
            raise UsageError(
                "--in-cluster needs the kube-migrate image",
                hint="pass --image (or set KUBE_MIGRATE_IMAGE); `make image` builds it",
            )


def submit(
    flags: InClusterFlags, pb_path: str, endpoints: Any, sides: list[str], run_args: list[str]
) -> tuple[int, dict[str, Any] | None]:
    """Run the playbook (`pb_path`; "": a --resume in `run_args`) as a Job; the pod's exit
    code and its report document (or None). `sides`: the clusters the playbook's steps
    need (their kubeconfigs go along)."""
    from migrate.cli.schedule_cmd import load_pod_overrides
    from migrate.cluster.config import flatten
    from migrate.pipeline.in_cluster import Submission, run_in_cluster
    from migrate.store import open_bucket
    from migrate.store.base import StoreOptions

    kubeconfigs = {}
    for side in sides:
        ep = getattr(endpoints, side)
        kubeconfigs[side] = flatten(ClusterRef(ep.kubeconfig, ep.context))
    bucket = endpoints.bucket
    env = {}
    if bucket is not None:  # as this machine resolves them (flags, playbook, AWS_* variables)
        opts = StoreOptions(endpoint_url=bucket.endpoint, region=bucket.region)
        env = {"KUBE_MIGRATE_BUCKET": bucket.url, "AWS_REGION": opts.resolved_region()}
        if opts.resolved_endpoint():
            env["KUBE_MIGRATE_S3_ENDPOINT"] = str(opts.resolved_endpoint())
        other = endpoints.target_bucket
        if other is not None and other.url != bucket.url:  # where the run's state is kept
            env["KUBE_MIGRATE_TARGET_BUCKET"] = other.url
    sub = Submission(
        namespace=flags.in_cluster_namespace,
        image=str(flags.image),
        playbook=Path(pb_path).read_text() if pb_path else "",
        kubeconfigs=kubeconfigs,
        args=tuple(run_args),
        bucket_env=env,
        pod_overrides=load_pod_overrides(flags.pod_overrides),
    )
    runner = ClusterRef(flags.kubeconfig, flags.context)
    if not (flags.kubeconfig or flags.context):
        runner = ClusterRef(endpoints.target.kubeconfig, endpoints.target.context)
    cluster = connect(runner.kubeconfig, runner.context, name="runner")
    store = open_bucket(**bucket.open_kwargs()) if bucket is not None else None
    what = pb_path or " ".join(run_args[:2])
    log.log(NOTICE, "running %s as a Job in namespace %s", what, sub.namespace)

    def show(line: dict[str, Any]) -> None:
        level = LEVELS.get(str(line.get("level")), logging.INFO)
        log.log(level, "[pod] %s", line.get("msg", ""))

    return run_in_cluster(cluster, sub, store, show)
