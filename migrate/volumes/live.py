"""The claims, pods and nodes a cluster has now, for placing movers next to the pods that
use the claims (backup: the source; verify: the target) and away from simulated nodes.

A node a simulator manages (kwok: scale tests, the local planes) reports its pods Running
but runs nothing, so a mover there would never finish.  SIMULATED says how to recognise
one; such nodes are excluded from every mover's placement, and a claim only they use is
reported as not copied."""

from __future__ import annotations

from typing import Any

from migrate.cluster import Cluster
from migrate.errors import Forbidden

# Node annotation -> value marking a node whose pods never really run.
SIMULATED: dict[str, str] = {
    "kwok.x-k8s.io/node": "fake",  # kwok's managed nodes (its default selector)
}


def simulated_nodes(cluster: Cluster) -> list[str]:
    """Names of the simulated nodes (none when nodes may not be listed)."""
    nodes = cluster.discovery().get("", "nodes")
    assert nodes is not None
    try:
        return sorted(
            n["metadata"]["name"]
            for n in cluster.list(nodes)
            if any(
                (n["metadata"].get("annotations") or {}).get(k) == v for k, v in SIMULATED.items()
            )
        )
    except Forbidden:
        return []


def workloads(cluster: Cluster, namespaces: list[str] | None) -> list[dict[str, Any]]:
    """The Deployments and StatefulSets of the namespaces (their pod templates say where a
    claim's pods run when none runs now: scaled down, or not started yet)."""
    out: list[dict[str, Any]] = []
    for resource in ("deployments", "statefulsets"):
        res = cluster.discovery().get("apps", resource)
        if res is None:
            continue
        for ns in namespaces if namespaces is not None else [None]:
            out += cluster.list(res, ns)
    return out


def claims_and_pods(
    cluster: Cluster, namespaces: list[str] | None
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[str]]:
    """Every PVC and pod of the namespaces (None: of all namespaces), and the simulated
    nodes."""
    disc = cluster.discovery()
    pvcs, pods = disc.get("", "persistentvolumeclaims"), disc.get("", "pods")
    assert pvcs is not None and pods is not None
    claims: list[dict[str, Any]] = []
    live: list[dict[str, Any]] = []
    for ns in namespaces if namespaces is not None else [None]:
        claims += cluster.list(pvcs, ns)
        live += cluster.list(pods, ns)
    return claims, live, simulated_nodes(cluster)
