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

from array import array
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from migrate.errors import UsageError
from migrate.restore.source import Item, ItemTable
from migrate.transform.workloads import pod_spec, references, template_claims

if TYPE_CHECKING:  # networkx (~0.1 s) is imported when a plan is made, not at start-up
    import networkx as nx

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
    # a StatefulSet's template claims: created (and their data restored) before it
    for claim in template_claims(obj, limit=1000):
        yield _ref("PersistentVolumeClaim", claim, ns)


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


def _in_graph(it: Item) -> bool:
    return it.skip is None and it.kind not in LATE_KINDS


def _needs(it: Item, crds: dict[tuple[Any, Any], Ref]) -> tuple[Ref, ...]:
    """What an object names that must exist before it (in the restore or not)."""
    group, kind, ns, _ = key = it.key
    desired = it.read_desired()
    deps: list[Ref] = []
    if ns:
        deps.append(("", "Namespace", None, ns))
    if (group, kind) in crds:
        deps.append(crds[(group, kind)])
    fn = REFERENCES.get(kind)
    if fn:
        deps += list(fn(desired, ns))
    deps += list(_owner_refs(desired, ns))
    return tuple(sorted({d for d in deps if d != key}, key=str))


def build_graph(items: ItemTable) -> nx.DiGraph[Any]:
    """Nodes: item keys, or Leaves for a group of them; attribute `items` holds the table
    indices of a node's objects.  Edges: dependencies inside the restore.

    Passes over the table instead of a dict of every object: the CRDs; each object's
    needs (numbered: objects needing the same share one number); which needed objects
    the restore holds; the nodes.  The heap holds ~8 bytes an object meanwhile."""
    import networkx as nx

    g: nx.DiGraph[Any] = nx.DiGraph()
    crds: dict[tuple[Any, Any], Ref] = {}
    for it in items:
        if _in_graph(it) and it.kind == "CustomResourceDefinition":
            spec = it.read_desired().get("spec") or {}
            crds[(spec.get("group"), (spec.get("names") or {}).get("kind"))] = it.key
    numbers: dict[tuple[Ref, ...], int] = {}
    needs_of = array("i")  # table index -> number of its needs (-1: not in the graph)
    for it in items:
        needs_of.append(numbers.setdefault(_needs(it, crds), len(numbers)) if _in_graph(it) else -1)
    referenced = {d for deps in numbers for d in deps}
    present = {it.key for it in items if _in_graph(it) and it.key in referenced}
    kept = [tuple(d for d in deps if d in present) for deps in numbers]
    members: dict[Any, array[int]] = {}  # node -> table indices
    single: dict[Leaves, Ref] = {}  # a Leaves group's first key (a group of one is that key)
    for index, n in enumerate(needs_of):
        if n < 0:
            continue
        key = items[index].key
        node: Any = key
        if key not in present:  # nothing depends on it: grouped
            node = Leaves(key[0], key[1], key[2], kept[n])
            single.setdefault(node, key)
        members.setdefault(node, array("I")).append(index)
    for grouped, indices in members.items():
        deps = grouped.needs if isinstance(grouped, Leaves) else kept[needs_of[indices[0]]]
        node = single[grouped] if isinstance(grouped, Leaves) and len(indices) == 1 else grouped
        g.add_node(node, items=indices)
        for dep in deps:
            g.add_edge(dep, node)
    return g


def _order(node_items: tuple[Any, Any]) -> str:
    """By kind, namespace, name; a Leaves node where its kind's objects would be (the
    namespace's default ServiceAccount after its ConfigMaps: the controller has made it
    by then, so every run merges into it alike)."""
    node = node_items[0]
    return str((node.group, node.kind, node.namespace, "") if isinstance(node, Leaves) else node)


class Level:
    """One topological generation: its nodes in a stable order, each with its objects'
    table indices.  Iterating reads the objects afresh, each with its `node` set."""

    def __init__(self, table: ItemTable, nodes: list[tuple[Any, array[int]]]) -> None:
        self.table, self.nodes = table, nodes

    def __iter__(self) -> Iterator[Item]:
        for node, indices in self.nodes:
            for index in indices:
                yield self.table.read(index, node)

    def __len__(self) -> int:
        return sum(len(indices) for _, indices in self.nodes)


def levels(g: nx.DiGraph[Any], table: ItemTable) -> list[Level]:
    """Topological generations as the objects to create (nodes sorted for a stable plan,
    a node's objects in backup order); a cycle is an error that names its members."""
    import networkx as nx

    try:
        return [
            Level(table, sorted(((n, g.nodes[n]["items"]) for n in gen), key=_order))
            for gen in nx.topological_generations(g)
        ]
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
