"""Which backed-up objects restore leaves alone, and why.  Data, not code: each rule is
a row; the first row that matches gives the reason shown in the results.

Objects a controller recreates (Pods of ReplicaSets, ReplicaSets of Deployments, Jobs
of CronJobs, controller-managed EndpointSlices...) are skipped: restoring them would
fight the controller and duplicate its work.  Objects every cluster already has
(bootstrap RBAC, system priority classes, the `kubernetes` Service) are skipped so an
`update` policy never overwrites the target's own versions with the source's.

Lives in migrate.transform (not in restore) because verify reads the same table: what
restore leaves to the target's controllers is compared as counts per owner, what every
cluster has already is not compared at all.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class SkipRule:
    reason: str
    kinds: frozenset[str] = frozenset()  # empty = any kind
    owner_kinds: frozenset[str] = frozenset()  # skipped when a controller owner is one of these
    label: tuple[str, str] | None = None  # (key, value); value "" = any value
    annotation: tuple[str, str] | None = None
    names: frozenset[str] = frozenset()  # "ns/name" or "name"
    names_any_namespace: frozenset[str] = frozenset()
    name_regex: str = ""  # re.search on the name
    type_: str = ""  # Secret type
    phases: frozenset[str] = frozenset()  # status.phase
    completed_job: bool = False

    def matches(self, obj: dict[str, Any]) -> bool:
        meta = obj.get("metadata") or {}
        if self.kinds and obj.get("kind") not in self.kinds:
            return False
        if self.owner_kinds and not any(
            r.get("controller") and r.get("kind") in self.owner_kinds
            for r in meta.get("ownerReferences") or []
        ):
            return False
        for (key, val), values in (
            (self.label or ("", ""), meta.get("labels") or {}),
            (self.annotation or ("", ""), meta.get("annotations") or {}),
        ):
            if key and (key not in values or (val and values[key] != val)):
                return False
        if self.names:
            ns = meta.get("namespace")
            full = f"{ns}/{meta.get('name')}" if ns else str(meta.get("name"))
            if full not in self.names:
                return False
        if self.names_any_namespace and meta.get("name") not in self.names_any_namespace:
            return False
        if self.name_regex and not re.search(self.name_regex, str(meta.get("name", ""))):
            return False
        if self.type_ and obj.get("type") != self.type_:
            return False
        if self.phases and (obj.get("status") or {}).get("phase") not in self.phases:
            return False
        return not (self.completed_job and not (obj.get("status") or {}).get("completionTime"))


def _k(*kinds: str) -> frozenset[str]:
    return frozenset(kinds)


SKIP_RULES: tuple[SkipRule, ...] = (
    # -- recreated by a controller from its owner --------------------------------------
    SkipRule("created by its ReplicaSet/Job/DaemonSet/StatefulSet controller", _k("Pod"),
             owner_kinds=_k("ReplicaSet", "Job", "DaemonSet", "StatefulSet",
                            "ReplicationController")),
    SkipRule("created by its Deployment controller", _k("ReplicaSet"),
             owner_kinds=_k("Deployment")),
    SkipRule("created by its CronJob controller", _k("Job"), owner_kinds=_k("CronJob")),
    SkipRule("revision history of its StatefulSet/DaemonSet controller", _k("ControllerRevision"),
             owner_kinds=_k("StatefulSet", "DaemonSet")),
    SkipRule("managed by the EndpointSlice controller", _k("EndpointSlice"),
             label=("endpointslice.kubernetes.io/managed-by", "endpointslice-controller.k8s.io")),
    SkipRule("managed by the EndpointSlice mirroring controller", _k("EndpointSlice"),
             label=("endpointslice.kubernetes.io/managed-by",
                    "endpointslicemirroring-controller.k8s.io")),
    SkipRule("published in every namespace by the root-CA controller", _k("ConfigMap"),
             names_any_namespace=frozenset({"kube-root-ca.crt"})),
    SkipRule("token the source cluster generated for a ServiceAccount (<sa>-token-*)",
             _k("Secret"), type_="kubernetes.io/service-account-token", name_regex=r"-token-"),
    # -- finished work ----------------------------------------------------------------
    SkipRule("finished on the source", _k("Pod"), phases=_k("Succeeded", "Failed")),
    SkipRule("completed on the source", _k("Job"), completed_job=True),
    # -- present on every cluster, owned by the target's control plane ------------------
    SkipRule("bootstrap RBAC of the target API server",
             _k("ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"),
             label=("kubernetes.io/bootstrapping", "rbac-defaults")),
    SkipRule("registered automatically by the target API server", _k("APIService"),
             label=("kube-aggregator.kubernetes.io/automanaged", "")),
    SkipRule("flow-control defaults maintained by the target API server",
             _k("FlowSchema", "PriorityLevelConfiguration"),
             annotation=("apf.kubernetes.io/autoupdate-spec", "true")),
    SkipRule("system priority class of every cluster", _k("PriorityClass"),
             names=frozenset({"system-node-critical", "system-cluster-critical"})),
    SkipRule("the API server's own Service", _k("Service", "Endpoints", "EndpointSlice"),
             names=frozenset({"default/kubernetes"})),
    SkipRule("the target API server's own client-CA bundle and token tracking", _k("ConfigMap"),
             names=frozenset({"kube-system/extension-apiserver-authentication",
                              "kube-system/kube-apiserver-legacy-service-account-token-tracking"})),
    SkipRule("namespace every cluster has", _k("Namespace"),
             names=frozenset({"default", "kube-system", "kube-public", "kube-node-lease"})),
    SkipRule("the API server's own service CIDR", _k("ServiceCIDR"),
             names=frozenset({"kubernetes"})),
    # -- node and runtime state (Velero never restores these either) ----------------------
    SkipRule("node state belongs to the source cluster",
             _k("Node", "CSINode", "VolumeAttachment", "Lease", "Event")),
)  # fmt: skip


def _by_kind(rules: tuple[SkipRule, ...]) -> dict[str | None, tuple[SkipRule, ...]]:
    """The rules that can match each kind, in the table's order (None: a kind no rule
    names): skip_reason runs for every object of a restore and of a verify."""
    kinds = {k for rule in rules for k in rule.kinds}
    out: dict[str | None, tuple[SkipRule, ...]] = {
        k: tuple(r for r in rules if not r.kinds or k in r.kinds) for k in kinds
    }
    out[None] = tuple(r for r in rules if not r.kinds)
    return out


_RULES_BY_KIND = _by_kind(SKIP_RULES)


def skip_reason(obj: dict[str, Any], selector_services: frozenset[str]) -> str | None:
    """Why obj is not restored, or None.  selector_services: "ns/name" of Services with a
    selector in the backup, whose Endpoints the endpoints controller recreates."""
    meta = obj.get("metadata") or {}
    if obj.get("kind") == "Endpoints" and (
        f"{meta.get('namespace')}/{meta.get('name')}" in selector_services
    ):
        return "maintained by the endpoints controller for its Service"
    kind = obj.get("kind")
    rules = _RULES_BY_KIND.get(kind) if isinstance(kind, str) else None
    return next((r.reason for r in rules or _RULES_BY_KIND[None] if r.matches(obj)), None)
