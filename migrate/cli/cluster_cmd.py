"""`kube-migrate cluster info|hold|release`: what a kubeconfig points at, in one look;
and its workloads held (0 replicas, CronJobs suspended, the real values recorded) or
released again.

`info` is the smallest command that exercises the whole cluster layer (kubeconfig, TLS,
discovery, paginated counting), so it is also the first thing to run when a migration
cannot reach a cluster.  `release` on the source reverses a cut-over's stop of the
source (README, "Live migration"); `hold` stops a cluster's copy of the apps.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import click

from migrate.cli.binding import Command, bind
from migrate.cli.options import ClusterFlags, cluster_options
from migrate.cli.output import emit, output_option
from migrate.errors import UsageError

if TYPE_CHECKING:
    from migrate.cluster import Cluster


@click.group()
def cluster() -> None:
    """Inspect a cluster."""


def cluster_facts(c: Cluster) -> dict[str, Any]:
    version = c.version()
    disc = c.discovery()
    ns = disc.get("", "namespaces")
    nodes = disc.get("", "nodes")
    return {
        "context": c.name,
        "server": c.host,
        "version": str(version),
        "apiGroups": len(disc.group_versions),
        "resources": len(disc.resources),
        "namespaces": c.count(ns) if ns else 0,
        "nodes": c.count(nodes) if nodes else 0,
        "unavailableGroups": sorted(disc.failed_groups),
    }


@dataclass(frozen=True)
class InfoArgs(Command):
    cluster: ClusterFlags
    output: str


@cluster.command("info")
@cluster_options
@output_option()
@bind(InfoArgs)
def info(args: InfoArgs) -> None:
    """Server version, API groups and resources served, namespaces and nodes."""
    facts = cluster_facts(args.cluster.connect())
    columns = ["context", "server", "version", "apiGroups", "resources", "namespaces", "nodes"]
    emit(facts, args.output, columns)


@dataclass(frozen=True)
class HoldArgs(Command):
    cluster: ClusterFlags
    namespace: tuple[str, ...]
    output: str

    def validate(self) -> None:
        if not self.namespace:
            raise UsageError("name the namespaces", hint="pass -n NAMESPACE (repeatable)")


def _held_rows(workloads: list[Any], action: str) -> list[dict[str, Any]]:
    return [
        {"kind": w.kind, "namespace": w.namespace, "name": w.name, "action": action}
        for w in workloads
    ]


_namespaces = click.option(
    "-n", "--namespace", multiple=True, metavar="NAMESPACE", help="A namespace (repeatable)."
)


@cluster.command("hold")
@cluster_options
@_namespaces
@output_option()
@bind(HoldArgs)
def hold(args: HoldArgs) -> None:
    """Stop the workloads of the namespaces: Deployments, StatefulSets and ReplicaSets to 0
    replicas, CronJobs suspended, each value recorded in kube-migrate.io/held."""
    from migrate.restore.held import hold_all

    done = hold_all(args.cluster.connect(), list(args.namespace))
    emit(_held_rows(done, "held"), args.output, ["kind", "namespace", "name", "action"])


@cluster.command("release")
@cluster_options
@_namespaces
@output_option()
@bind(HoldArgs)
def release(args: HoldArgs) -> None:
    """Give the held workloads of the namespaces their recorded replicas (or schedule)
    back: a held restore's start, or a cut-over reversed on the source."""
    from migrate.restore.held import release_all

    done = release_all(args.cluster.connect(), list(args.namespace))
    emit(_held_rows(done, "released"), args.output, ["kind", "namespace", "name", "action"])
