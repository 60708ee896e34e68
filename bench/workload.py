"""The benchmark's workload: N objects over K namespaces on the source, made by raw
parallel creates, and their removal from both planes.

Kept apart from the measurements so that what is measured (bench/baselines.py, run.py)
and what it is measured on can be read separately.  The mix: ConfigMaps, Secrets,
Services, Deployments (kwok runs their pods, so each also brings a ReplicaSet and a Pod),
custom resources of a CRD made for the run, RoleBindings.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from pathlib import Path
from typing import Any

from migrate.cluster import Cluster
from migrate.errors import AlreadyExists, NotFound

PARALLELISM = 8  # the default of backup and verify; their baselines use the same
RESTORE_PARALLELISM = 16  # the default of restore; the raw POST uses the same
GROUP = "bench.kube-migrate.io"
# share of the N objects per kind (Deployments also bring a ReplicaSet and a Pod each)
MIX = {"configmaps": 40, "secrets": 20, "services": 10, "deployments": 5, "crs": 15, "rb": 10}


def pmap(fn: Callable[[Any], Any], items: list[Any], workers: int = PARALLELISM) -> list[Any]:
    with ThreadPoolExecutor(max(1, workers)) as pool:
        return list(pool.map(fn, items))


def crd(prefix: str) -> dict[str, Any]:
    plural = f"{prefix.replace('-', '')}widgets"
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{GROUP}"},
        "spec": {
            "group": GROUP,
            "scope": "Namespaced",
            "names": {"plural": plural, "singular": plural[:-1], "kind": plural.capitalize()[:-1]},
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "x-kubernetes-preserve-unknown-fields": True,
                        }
                    },
                }
            ],
        },
    }


def ensure_crd(c: Cluster, doc: dict[str, Any]) -> None:
    res = c.discovery().resolve("customresourcedefinitions.apiextensions.k8s.io")
    with suppress(AlreadyExists):
        c.create(res, doc)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        conds = (c.get(res, doc["metadata"]["name"]).get("status") or {}).get("conditions") or []
        if any(x["type"] == "Established" and x["status"] == "True" for x in conds):
            c.discovery(refresh=True)
            return
        time.sleep(0.2)
    raise SystemExit(f"CRD {doc['metadata']['name']} not Established")


def plan_objects(n: int, namespaces: list[str], kind: str) -> list[tuple[str, str, dict[str, Any]]]:
    """(resource, namespace, body) for n objects of the MIX, round-robin over namespaces."""
    total = sum(MIX.values())
    out: list[tuple[str, str, dict[str, Any]]] = []
    for what, share in MIX.items():
        count = max(1, n * share // total)
        for i in range(count):
            ns = namespaces[i % len(namespaces)]
            name = f"{what}-{i:06d}"
            labels = {"app": f"bench-{i % 50}", "bench": "kube-migrate"}
            meta = {"name": name, "labels": labels}
            if what == "configmaps":
                out.append(("configmaps", ns, {"metadata": meta, "data": {"k": "v" * 64}}))
            elif what == "secrets":
                value = base64.b64encode(f"secret-{i}".encode()).decode()
                body = {"metadata": meta, "type": "Opaque", "data": {"v": value}}
                out.append(("secrets", ns, body))
            elif what == "services":
                spec = {"selector": {"app": labels["app"]}, "ports": [{"port": 80}]}
                out.append(("services", ns, {"metadata": meta, "spec": spec}))
            elif what == "deployments":
                pod = {"metadata": {"labels": {"app": name}}, "spec": _pod_spec()}
                spec = {"replicas": 1, "selector": {"matchLabels": {"app": name}}, "template": pod}
                out.append(("deployments.apps", ns, {"metadata": meta, "spec": spec}))
            elif what == "crs":
                body = {"apiVersion": f"{GROUP}/v1", "kind": kind, "metadata": meta}
                body["spec"] = {"size": i, "color": "blue"}
                out.append(("cr", ns, body))
            else:
                body = {
                    "metadata": meta,
                    "roleRef": {
                        "apiGroup": "rbac.authorization.k8s.io",
                        "kind": "ClusterRole",
                        "name": "view",
                    },
                    "subjects": [{"kind": "ServiceAccount", "name": "default", "namespace": ns}],
                }
                out.append(("rolebindings.rbac.authorization.k8s.io", ns, body))
    return out


def _pod_spec() -> dict[str, Any]:
    return {
        "containers": [{"name": "app", "image": "registry.example/app:1.0"}],
        "tolerations": [
            {"key": "kwok.x-k8s.io/node", "operator": "Exists", "effect": "NoSchedule"}
        ],
    }


def generate(
    src: Cluster, namespaces: list[str], n: int, crd_doc: dict[str, Any], workers: int
) -> int:
    disc = src.discovery()
    nsres = disc.resolve("namespaces")
    pmap(lambda ns: src.create(nsres, {"metadata": {"name": ns}}), namespaces, workers)
    ensure_crd(src, crd_doc)
    disc = src.discovery()
    kind = crd_doc["spec"]["names"]["kind"]
    cr = disc.for_kind(f"{GROUP}/v1", kind)
    assert cr is not None
    objs = plan_objects(n, namespaces, kind)

    def make(o: tuple[str, str, dict[str, Any]]) -> None:
        res = cr if o[0] == "cr" else disc.resolve(o[0])
        src.create(res, o[2], o[1])

    pmap(make, objs, workers)
    return len(objs)


def wait_pods_running(c: Cluster, namespaces: list[str], want: int, timeout: float) -> int:
    pods = c.discovery().resolve("pods")
    deadline = time.monotonic() + timeout
    running = 0
    while time.monotonic() < deadline:
        running = sum(
            1
            for ns in namespaces
            for p in c.list(pods, ns)
            if (p.get("status") or {}).get("phase") == "Running"
        )
        if running >= want:
            break
        time.sleep(1)
    return running


def _cpu_busy(interval: float) -> float:
    """Fraction of the machine's CPU time spent busy over `interval` seconds."""

    def sample() -> tuple[int, int]:
        fields = [int(v) for v in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
        idle = fields[3] + fields[4]  # idle + iowait
        return sum(fields) - idle, sum(fields)

    busy0, total0 = sample()
    time.sleep(interval)
    busy1, total1 = sample()
    return (busy1 - busy0) / max(1, total1 - total0)


def wait_quiet(clusters: list[Cluster], timeout: float = 300, busy_below: float = 0.35) -> float:
    """Wait until no namespace is being deleted on any plane (the namespace controller
    deleting an earlier run's objects competes with a measurement for the same 2 cores)
    and the machine is mostly idle (controllers done reacting to the last step: 500
    restored Deployments are 500 ReplicaSets and Pods to make).  Returns the seconds
    waited; gives up quietly at `timeout` (the measurement is then noisier, not wrong)."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        terminating = any(
            (ns.get("status") or {}).get("phase") == "Terminating"
            for c in clusters
            for ns in c.list(c.discovery().resolve("namespaces"))
        )
        if not terminating and _cpu_busy(1.0) < busy_below:
            break
        time.sleep(1)
    return time.monotonic() - t0


def cleanup(
    src: Cluster, dst: Cluster, namespaces: list[str], crd_doc: dict[str, Any], tags: list[str]
) -> None:
    for c, names in (
        (src, namespaces),
        (dst, namespaces + [f"{ns}-{t}" for ns in namespaces for t in tags]),
    ):
        nsres = c.discovery().resolve("namespaces")
        crdres = c.discovery().resolve("customresourcedefinitions.apiextensions.k8s.io")

        def drop(name: str, c: Cluster = c, nsres: Any = nsres) -> None:
            with suppress(NotFound):
                c.delete(nsres, name)

        pmap(drop, names)
        with suppress(NotFound):
            c.delete(crdres, crd_doc["metadata"]["name"])
