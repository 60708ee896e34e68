"""Check 4: objects restored objects refer to by name, which must exist on the target
once the restore is done — either already there or created by the restore itself.

A PVC whose StorageClass the target lacks stays Pending forever; a RoleBinding to a
missing ClusterRole grants nothing; a pod with a missing PriorityClass or
ServiceAccount is never created.  Names are checked after the mappings (a
--storage-class-mappings entry is the usual fix).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from migrate.preflight.context import Context
from migrate.preflight.findings import Collect, Finding, obj_ref
from migrate.transform.workloads import pod_spec

# Referenced kind -> (resource.group on the target, namespaced).
REF_TYPES: dict[str, tuple[str, bool]] = {
    "StorageClass": ("storageclasses.storage.k8s.io", False),
    "IngressClass": ("ingressclasses.networking.k8s.io", False),
    "PriorityClass": ("priorityclasses.scheduling.k8s.io", False),
    "RuntimeClass": ("runtimeclasses.node.k8s.io", False),
    "ClusterRole": ("clusterroles.rbac.authorization.k8s.io", False),
    "Role": ("roles.rbac.authorization.k8s.io", True),
    "ServiceAccount": ("serviceaccounts", True),
    "Secret": ("secrets", True),
}
# (kind, name) every namespace or cluster has without a restore creating it.
ALWAYS_THERE = frozenset({("ServiceAccount", "default")})
INCLUDE = "include it in scope"
# Referenced kind -> how to fix a missing one ({name}, {ns}, {have}: the target's names).
FIXES: dict[str, str] = {
    "StorageClass": "map it with --storage-class-mappings {name}:<class> to a class the "
    "target has ({have}), or create it on the target",
    "IngressClass": "create it on the target, or " + INCLUDE + " (--include-cluster-resources)",
    "PriorityClass": "create it on the target, or " + INCLUDE + " (--include-cluster-resources)",
    "RuntimeClass": "create it on the target (its handler must exist on the nodes)",
    "ClusterRole": "create it on the target, or " + INCLUDE + " (--include-cluster-resources)",
    "Role": INCLUDE + ", or create it in namespace {ns} on the target",
    "ServiceAccount": INCLUDE + ", or create it in namespace {ns} on the target",
    "Secret": INCLUDE + " (an image pull secret), or create it in namespace {ns} on the target",
}
DEFAULT_CLASS = "storageclass.kubernetes.io/is-default-class"
Ref = tuple[str, str]  # (kind, name)


def _storage(obj: dict[str, Any]) -> Iterator[Ref]:
    spec = obj.get("spec") or {}
    if spec.get("storageClassName"):
        yield "StorageClass", spec["storageClassName"]
    for tpl in spec.get("volumeClaimTemplates") or []:
        if (tpl.get("spec") or {}).get("storageClassName"):
            yield "StorageClass", tpl["spec"]["storageClassName"]


def _ingress(obj: dict[str, Any]) -> Iterator[Ref]:
    if (obj.get("spec") or {}).get("ingressClassName"):
        yield "IngressClass", obj["spec"]["ingressClassName"]


def _binding(obj: dict[str, Any]) -> Iterator[Ref]:
    role = obj.get("roleRef") or {}
    if role.get("kind") in ("ClusterRole", "Role") and role.get("name"):
        yield role["kind"], role["name"]


# Kind -> what its objects refer to (besides their pod template).
EXTRACTORS: dict[str, Callable[[dict[str, Any]], Iterator[Ref]]] = {
    "PersistentVolumeClaim": _storage,
    "PersistentVolume": _storage,
    "StatefulSet": _storage,
    "Ingress": _ingress,
    "RoleBinding": _binding,
    "ClusterRoleBinding": _binding,
}


def _pod_refs(obj: dict[str, Any]) -> Iterator[Ref]:
    pod = pod_spec(obj)
    if not pod:
        return
    for field, kind in (
        ("priorityClassName", "PriorityClass"),
        ("runtimeClassName", "RuntimeClass"),
        ("serviceAccountName", "ServiceAccount"),
    ):
        if pod.get(field):
            yield kind, pod[field]
    for secret in pod.get("imagePullSecrets") or []:
        if secret.get("name"):
            yield "Secret", secret["name"]


def references(obj: dict[str, Any]) -> Iterator[Ref]:
    extract = EXTRACTORS.get(str(obj.get("kind")))
    if extract:
        yield from extract(obj)
    yield from _pod_refs(obj)


def check_references(ctx: Context) -> list[Finding]:
    c = Collect("reference")
    wanted: dict[tuple[str, str | None, str], list[str]] = {}
    for it in ctx.restorable:
        for kind, name in references(it.read_desired()):
            ns = it.key[2] if REF_TYPES[kind][1] else None
            if (kind, name) not in ALWAYS_THERE:
                wanted.setdefault((kind, ns, name), []).append(ctx.ref(it))
    ctx.target.prefetch({(REF_TYPES[k][0], ns) for k, ns, _ in wanted})
    for (kind, ns, name), users in sorted(wanted.items(), key=str):
        if ctx.in_plan(kind, ns, name):
            continue
        have = ctx.target.names(REF_TYPES[kind][0], ns)
        if have is None or name in have:
            continue  # unreadable (reported by the permission check) or present
        shown = ", ".join(sorted(have)) or "none"
        for user in users:
            c.add(
                "error",
                f"{obj_ref(kind, ns, name)} is referenced but missing on the target and "
                "not in scope",
                FIXES[kind].format(name=name, ns=ns, have=shown),
                user,
            )
    _default_class(ctx, c)
    return c.findings()


def _default_class(ctx: Context, c: Collect) -> None:
    """Claims without a class take the target's default StorageClass: is there one?"""
    claims = [
        it
        for it in ctx.by_kind("PersistentVolumeClaim")
        if "storageClassName" not in (it.read_desired().get("spec") or {})
        and not (it.read_desired().get("spec") or {}).get("volumeName")
    ]
    classes = ctx.target.objects(REF_TYPES["StorageClass"][0])
    if not claims or classes is None:
        return
    if any(
        (sc["metadata"].get("annotations") or {}).get(DEFAULT_CLASS) == "true" for sc in classes
    ):
        return
    for it in claims:
        c.add(
            "warning",
            "the claim names no StorageClass and the target has no default StorageClass: "
            "it stays Pending",
            "set a default StorageClass on the target, or give the claims a class",
            ctx.ref(it),
        )
