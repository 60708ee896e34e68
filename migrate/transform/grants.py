"""Which custom resource types RBAC grants to the ServiceAccounts of a backup's scope.

A freshly installed operator has no custom resources yet: its CRDs are named only in
the rules of the roles bound to its ServiceAccount.  A namespace-filtered backup that
brought CRDs only for the custom resources it found would leave them behind, and the
operator would crash-loop on the target.  Backup reads the grants with these functions
(pure logic, no cluster access) to bring those CRDs along; preflight and verify read
what backup recorded.

Rules decide by exact names only: a rule whose apiGroups or resources hold `*` (a
GitOps controller that may touch every kind) pulls nothing, it is only noted.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

WILDCARD = "*"


def sa_subjects(binding: dict[str, Any], in_scope: Callable[[str, str], bool]) -> list[str]:
    """ "ns/name" of the binding's ServiceAccount subjects that `in_scope(ns, name)`; a
    RoleBinding's subject without a namespace is in the binding's own namespace."""
    own_ns = (binding.get("metadata") or {}).get("namespace") or ""
    out = []
    for subj in binding.get("subjects") or []:
        if subj.get("kind") != "ServiceAccount" or not subj.get("name"):
            continue
        ns = subj.get("namespace") or own_ns
        if ns and in_scope(ns, subj["name"]):
            out.append(f"{ns}/{subj['name']}")
    return out


def role_ref(binding: dict[str, Any]) -> tuple[str, str | None, str] | None:
    """(kind, namespace or None, name) of the role a binding grants; None if unusable."""
    ref = binding.get("roleRef") or {}
    kind, name = ref.get("kind"), ref.get("name")
    if not name or kind not in ("Role", "ClusterRole"):
        return None
    ns = (binding.get("metadata") or {}).get("namespace") if kind == "Role" else None
    return str(kind), ns, str(name)


def role_label(kind: str, ns: str | None, name: str) -> str:
    return f"{kind} {ns}/{name}" if ns else f"{kind} {name}"


@dataclass
class Grants:
    """What the roles of in-scope ServiceAccounts name: (group, resource) -> why (the
    first grant found), and the roles with a `*` rule -> why they were looked at."""

    explicit: dict[tuple[str, str], str] = field(default_factory=dict)
    wildcards: dict[str, str] = field(default_factory=dict)

    def add_rules(self, rules: Iterable[dict[str, Any]], role: str, subjects: list[str]) -> None:
        """Note the rules of `role`, granted to `subjects` ("ns/name" ServiceAccounts)."""
        if not subjects:
            return
        why = f"granted to ServiceAccount {subjects[0]} by {role}"
        for rule in rules:
            groups = [str(g) for g in rule.get("apiGroups") or []]
            resources = [str(r) for r in rule.get("resources") or []]
            if WILDCARD in groups or any(r == WILDCARD or r.startswith("*/") for r in resources):
                self.wildcards.setdefault(role, f"{role} (bound to ServiceAccount {subjects[0]})")
                continue
            for group in groups:
                for resource in resources:
                    plural = resource.split("/", 1)[0]  # "widgets/status" -> widgets
                    self.explicit.setdefault((group, plural), why)


def grants_of(
    bindings: Iterable[dict[str, Any]],
    roles: dict[tuple[str, str], list[dict[str, Any]]],
    in_scope: Callable[[str, str], bool],
    cluster_rules: Callable[[list[str]], dict[str, list[dict[str, Any]]]],
) -> Grants:
    """The grants of the ServiceAccounts `in_scope(ns, name)` through `bindings`
    (RoleBindings and ClusterRoleBindings); `roles`: (namespace, name) -> rules of the
    Roles; `cluster_rules(names)` reads the rules of the ClusterRoles the bindings name
    (only those: a cluster has hundreds)."""
    bound: list[tuple[tuple[str, str | None, str], list[str]]] = []
    for binding in bindings:
        ref, subjects = role_ref(binding), sa_subjects(binding, in_scope)
        if ref is not None and subjects:
            bound.append((ref, subjects))
    named = cluster_rules(sorted({name for (kind, _, name), _ in bound if kind == "ClusterRole"}))
    grants = Grants()
    done: set[tuple[str, str | None, str]] = set()  # a role's rules add nothing the 2nd time
    for ref, subjects in bound:
        if ref in done:
            continue
        done.add(ref)
        kind, ns, name = ref
        rules = named.get(name) if kind == "ClusterRole" else roles.get((ns or "", name))
        grants.add_rules(rules or [], role_label(kind, ns, name), subjects)
    return grants


def could_be_crd(group: str) -> bool:
    """CRD groups hold a dot (`example.com`); the core group and `apps`, `batch`... never
    come from a CRD."""
    return "." in group


@dataclass
class Resolved:
    present: dict[str, str]  # CRD name on the source -> why it is granted
    absent: dict[str, str]  # "resource.group" granted but served by nothing -> why


def resolve(
    grants: Grants,
    crds: Iterable[dict[str, Any]],
    served: Callable[[str, str], bool],
) -> Resolved:
    """Match the explicit grants with the source's CRDs (by spec.group and plural);
    a granted type that no CRD defines and the source does not serve otherwise (an
    optional integration not installed) is `absent`."""
    by_gr = {}
    for crd in crds:
        spec = crd.get("spec") or {}
        plural = (spec.get("names") or {}).get("plural", "")
        by_gr[(spec.get("group", ""), plural)] = crd["metadata"]["name"]
    present: dict[str, str] = {}
    absent: dict[str, str] = {}
    for (group, plural), why in sorted(grants.explicit.items()):
        if (group, plural) in by_gr:
            present.setdefault(by_gr[(group, plural)], why)
        elif could_be_crd(group) and not served(group, plural):
            absent.setdefault(f"{plural}.{group}", why)
    return Resolved(present, absent)
