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
from dataclasses import dataclass
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


@dataclass(frozen=True)
class Leaves:
    """Graph node standing for many objects of one kind and namespace that nothing in the
    restore depends on and that depend on the same objects (typically: every ConfigMap of
    a namespace, needing only the namespace).  Their topological generation is the same,
    so one node gives the same levels as one node each, at a fraction of the memory
    (networkx spends ~0.6 KiB per node and edge: 60 MB at 100k objects)."""

    group: str
    kind: str
    namespace: str | None
    needs: tuple[Ref, ...]


def _needs(
    nodes: dict[Ref, Item], crds: dict[tuple[Any, Any], Ref]
) -> Iterator[tuple[Ref, tuple[Ref, ...]]]:
    """(key, the keys in this restore it needs created before it) for every node."""
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
        yield key, tuple(sorted({d for d in deps if d in nodes and d != key}, key=str))


def build_graph(items: list[Item]) -> nx.DiGraph[Any]:
    """Nodes: item keys, or Leaves for a group of them; attribute `items` lists the
    objects of a node (and each item's `node` names its node).  Edges: dependencies
    inside the restore."""
    g: nx.DiGraph[Any] = nx.DiGraph()
    nodes = {it.key: it for it in items if it.skip is None and it.kind not in LATE_KINDS}
    crds: dict[tuple[Any, Any], Ref] = {}
    for k, it in nodes.items():
        if it.kind == "CustomResourceDefinition":
            spec = it.desired.get("spec") or {}
            crds[(spec.get("group"), (spec.get("names") or {}).get("kind"))] = k
    shared: dict[tuple[Ref, ...], tuple[Ref, ...]] = {}  # one tuple per distinct set of needs
    needs = {key: shared.setdefault(d, d) for key, d in _needs(nodes, crds)}
    needed = {d for deps in shared for d in deps}
    groups: dict[Leaves, list[Item]] = {}
    for key, it in nodes.items():
        deps = needs[key]
        if key in needed:
            _add(g, key, [it], deps)
        else:
            groups.setdefault(Leaves(key[0], key[1], key[2], deps), []).append(it)
    for leaves, members in groups.items():
        node = leaves if len(members) > 1 else members[0].key
        _add(g, node, members, leaves.needs)
    return g


def _add(g: nx.DiGraph[Any], node: Any, members: list[Item], deps: tuple[Ref, ...]) -> None:
    g.add_node(node, items=members)
    for it in members:
        it.node = node
    for dep in deps:
        g.add_edge(dep, node)


def levels(g: nx.DiGraph[Any]) -> list[list[Item]]:
    """Topological generations as the objects to create, each sorted for a stable plan;
    a cycle is an error that names its members."""
    try:
        return [
            sorted((it for node in gen for it in g.nodes[node]["items"]), key=_order)
            for gen in nx.topological_generations(g)
        ]
    except nx.NetworkXUnfeasible:
        cycle = nx.find_cycle(g)
        members = " -> ".join(f"{k[1]} {k[2] + '/' if k[2] else ''}{k[3]}" for k, _ in cycle)
        raise UsageError(
            f"the restore plan has a dependency cycle: {members}",
            hint="break the cycle (e.g. exclude one of these objects) and retry",
        ) from None


def _order(it: Item) -> str:
    return str(it.key)


def to_dot(g: nx.DiGraph[Any], late: list[Item]) -> str:
    """Graphviz DOT of the plan (late objects drawn after everything)."""

    def label(k: Any) -> str:
        if isinstance(k, Leaves):
            n = len(g.nodes[k]["items"])
            return f"{k.kind} x{n}\\n{k.namespace + '/' if k.namespace else ''}*"
        return f"{k[1]}\\n{k[2] + '/' if k[2] else ''}{k[3]}"

    ids = {k: f"n{i}" for i, k in enumerate(g.nodes)}
    lines = ["digraph restore {", "  rankdir=LR;", "  node [shape=box, fontsize=10];"]
    lines += [f'  {ids[k]} [label="{label(k)}"];' for k in g.nodes]
    lines += [f"  {ids[a]} -> {ids[b]};" for a, b in g.edges]
    for i, it in enumerate(late):
        lines.append(f'  late{i} [label="{label(it.key)}", style=dashed];')
    lines.append("}")
    return "\n".join(lines)
