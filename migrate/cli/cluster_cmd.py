"""`kube-migrate cluster info`: what a kubeconfig points at, in one look.

The smallest command that exercises the whole cluster layer (kubeconfig, TLS,
discovery, paginated counting), so it is also the first thing to run when a
migration cannot reach a cluster.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import click

from migrate.cli.binding import Command, bind
from migrate.cli.options import ClusterFlags, cluster_options
from migrate.cli.output import emit, output_option

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
