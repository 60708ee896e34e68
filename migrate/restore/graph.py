"""The restore plan as a dependency graph (networkx): an edge A -> B means A must exist on
the target before B is created.  Levels are topological generations; each level is
created in parallel.

Edges come from the reference table REFERENCES (kind -> function naming what an object
of that kind refers to), plus three general rules: the namespace before everything in
it, the CRD before its custom resources, the owner before its dependents.  Webhook
configurations and APIServices are held back (LATE_KINDS): they are created after
everything else, once the workloads behind their Services are ready.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import networkx as nx

from migrate.errors import UsageError
from migrate.restore.source import Item
from migrate.transform.workloads import pod_spec, references

Ref = tuple[str, str, str | None, str]  # (group, kind, namespace or None, name)

# Kinds created last, after the workloads that serve them are ready (velero#2443).
LATE_KINDS = frozenset(
    {"ValidatingWebhookConfiguration", "MutatingWebhookConfiguration", "APIService"}
)
# Referenced kind -> its API group, for references that carry only a kind.
KIND_GROUPS: dict[str, str] = {
    "ServiceAccount": "",
    "Secret": "",
    "ConfigMap": "",
    "PersistentVolumeClaim": "",
    "PersistentVolume": "",
    "Service": "",
    "Namespace": "",
    "PriorityClass": "scheduling.k8s.io",
    "RuntimeClass": "node.k8s.io",
    "StorageClass": "storage.k8s.io",
    "IngressClass": "networking.k8s.io",
    "Role": "rbac.authorization.k8s.io",
    "ClusterRole": "rbac.authorization.k8s.io",
}
CLUSTER_SCOPED_REFS = frozenset(
    {"PriorityClass", "RuntimeClass", "StorageClass", "IngressClass", "ClusterRole",
     "PersistentVolume", "Namespace"}
)  # fmt: skip


def _ref(kind: str, name: str, ns: str | None) -> Ref:
    return (KIND_GROUPS[kind], kind, None if kind in CLUSTER_SCOPED_REFS else ns, name)


def _workload(obj: dict[str, Any], ns: str | None) -> Iterator[Ref]:
    spec = pod_spec(obj)
    for kind, name in references(spec) if spec else ():
        yield _ref(kind, name, ns)
    if obj.get("kind") == "StatefulSet" and (obj.get("spec") or {}).get("serviceName"):
        yield _ref("Service", obj["spec"]["serviceName"], ns)


def _pvc(obj: dict[str, Any], ns: str | None) -> Iterator[Ref]:
    spec = obj.get("spec") or {}
    if spec.get("storageClassName"):
        yield _ref("StorageClass", spec["storageClassName"], ns)
    if spec.get("volumeName"):
        yield _ref("PersistentVolume", spec["volumeName"], ns)


def _pv(obj: dict[str, Any], ns: str | None) -> Iterator[Ref]:
    sc = (obj.get("spec") or {}).get("storageClassName")
    if sc:
        yield _ref("StorageClass", sc, ns)


def _binding(obj: dict[str, Any], ns: str | None) -> Iterator[Ref]:
    role = obj.get("roleRef") or {}
    if role.get("kind") in ("Role", "ClusterRole") and role.get("name"):
        yield _ref(role["kind"], role["name"], ns)
    for subj in obj.get("subjects") or []:
        if subj.get("kind") == "ServiceAccount" and subj.get("name"):
            yield _ref("ServiceAccount", subj["name"], subj.get("namespace") or ns)


def _ingress(obj: dict[str, Any], ns: str | None) -> Iterator[Ref]:
    cls = (obj.get("spec") or {}).get("ingressClassName")
    if cls:
        yield _ref("IngressClass", cls, ns)


def _hpa(obj: dict[str, Any], ns: str | None) -> Iterator[Ref]:
    target = (obj.get("spec") or {}).get("scaleTargetRef") or {}
    if target.get("kind") and target.get("name"):
        group = str(target.get("apiVersion", "")).rpartition("/")[0]
        yield (group, target["kind"], ns, target["name"])


# kind -> what an object of that kind needs on the target before it is created.
REFERENCES: dict[str, Callable[[dict[str, Any], str | None], Iterator[Ref]]] = {
    **{k: _workload for k in ("Pod", "Deployment", "ReplicaSet", "StatefulSet", "DaemonSet",
                              "Job", "CronJob", "ReplicationController", "PodTemplate")},
    "PersistentVolumeClaim": _pvc,
    "PersistentVolume": _pv,
    "RoleBinding": _binding,
    "ClusterRoleBinding": _binding,
    "Ingress": _ingress,
    "HorizontalPodAutoscaler": _hpa,
}  # fmt: skip


def _owner_refs(obj: dict[str, Any], ns: str | None) -> Iterator[Ref]:
    for ref in (obj.get("metadata") or {}).get("ownerReferences") or []:
        group = str(ref.get("apiVersion", "")).rpartition("/")[0]
        yield (group, ref.get("kind", ""), ns, ref.get("name", ""))
        yield (group, ref.get("kind", ""), None, ref.get("name", ""))  # cluster-scoped owner


def build_graph(items: list[Item]) -> nx.DiGraph[Any]:
    """Nodes: item keys (with attribute `item`); edges: dependencies inside the restore."""
    g: nx.DiGraph[Any] = nx.DiGraph()
    nodes = {it.key: it for it in items if it.skip is None and it.kind not in LATE_KINDS}
    for key, it in nodes.items():
        g.add_node(key, item=it)
    crds = {}
    for k, it in nodes.items():
        if it.kind == "CustomResourceDefinition":
            spec = it.desired.get("spec") or {}
            crds[(spec.get("group"), (spec.get("names") or {}).get("kind"))] = k
    for key, it in nodes.items():
        group, kind, ns, _ = key
        desired = it.desired
        deps: list[Ref] = []
        if ns:
            deps.append(("", "Namespace", None, ns))
        if (group, kind) in crds:
            deps.append(crds[(group, kind)])
        fn = REFERENCES.get(kind)
        if fn:
            deps += list(fn(desired, ns))
        deps += list(_owner_refs(desired, ns))
        for dep in deps:
            if dep in nodes and dep != key:
                g.add_edge(dep, key)
    return g


def levels(g: nx.DiGraph[Any]) -> list[list[Any]]:
    """Topological generations, each sorted for a stable plan; a cycle is an error that
    names its members."""
    try:
        return [sorted(gen, key=str) for gen in nx.topological_generations(g)]
    except nx.NetworkXUnfeasible:
        cycle = nx.find_cycle(g)
        members = " -> ".join(f"{k[1]} {k[2] + '/' if k[2] else ''}{k[3]}" for k, _ in cycle)
        raise UsageError(
            f"the restore plan has a dependency cycle: {members}",
            hint="break the cycle (e.g. exclude one of these objects) and retry",
        ) from None


def to_dot(g: nx.DiGraph[Any], late: list[Item]) -> str:
    """Graphviz DOT of the plan (late objects drawn after everything)."""

    def label(k: Any) -> str:
        return f"{k[1]}\\n{k[2] + '/' if k[2] else ''}{k[3]}"

    ids = {k: f"n{i}" for i, k in enumerate(g.nodes)}
    lines = ["digraph restore {", "  rankdir=LR;", "  node [shape=box, fontsize=10];"]
    lines += [f'  {ids[k]} [label="{label(k)}"];' for k in g.nodes]
    lines += [f"  {ids[a]} -> {ids[b]};" for a, b in g.edges]
    for i, it in enumerate(late):
        lines.append(f'  late{i} [label="{label(it.key)}", style=dashed];')
    lines.append("}")
    return "\n".join(lines)
