"""Cluster-scoped objects a namespace-filtered backup must bring along to work on a new
cluster, each with the reason it was included (shown by `backup describe`).

Velero's "auto" only brings PersistentVolumes; a namespace restored without the CRD of
its custom resources, the StorageClass of its claims or the ClusterRole its
RoleBindings point at does not work.  While the namespaced objects stream past,
`Collector.observe` notes what they refer to; `Collector.wanted` then names the
cluster-scoped objects to fetch.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from typing import Any

from migrate.backup.sink import BackupSummary, Sink, note
from migrate.cluster import APIResource, Cluster
from migrate.errors import ClusterError, ClusterUnreachable, NotFound
from migrate.transform.scope import Scope
from migrate.transform.workloads import pod_spec, references

# Reference kind -> (resource.group of the cluster-scoped type, how the reason reads).
CLUSTER_REFS: dict[str, tuple[str, str]] = {
    "PersistentVolume": ("persistentvolumes", "bound to PersistentVolumeClaim {src}"),
    "StorageClass": ("storageclasses.storage.k8s.io", "storage class of {src}"),
    "ClusterRole": ("clusterroles.rbac.authorization.k8s.io", "referenced by {src}"),
    "ClusterRoleBinding": (
        "clusterrolebindings.rbac.authorization.k8s.io",
        "binds ServiceAccount {src} in scope",
    ),
    "PriorityClass": ("priorityclasses.scheduling.k8s.io", "priority class of {src}"),
    "RuntimeClass": ("runtimeclasses.node.k8s.io", "runtime class of {src}"),
    "IngressClass": ("ingressclasses.networking.k8s.io", "ingress class of {src}"),
    "CustomResourceDefinition": (
        "customresourcedefinitions.apiextensions.k8s.io",
        "defines {src} in scope",
    ),
    "Namespace": ("namespaces", "namespace of {src}"),
    "ValidatingWebhookConfiguration": (
        "validatingwebhookconfigurations.admissionregistration.k8s.io",
        "calls Service {src} in scope",
    ),
    "MutatingWebhookConfiguration": (
        "mutatingwebhookconfigurations.admissionregistration.k8s.io",
        "calls Service {src} in scope",
    ),
    "APIService": ("apiservices.apiregistration.k8s.io", "served by Service {src} in scope"),
}


def _ref(obj: dict[str, Any]) -> str:
    meta = obj.get("metadata") or {}
    ns = meta.get("namespace")
    name = f"{ns}/{meta.get('name')}" if ns else str(meta.get("name"))
    return f"{obj.get('kind')} {name}"


class Collector:
    """Thread-safe: workers call observe() on every namespaced object they back up."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        # resource.group -> name -> first reason
        self.wanted: dict[str, dict[str, str]] = defaultdict(dict)
        # (group, resource) of every object seen -> one example (to match CRDs later)
        self.seen: dict[tuple[str, str], str] = {}
        self.namespaces_seen: set[str] = set()
        self.service_accounts: set[tuple[str, str]] = set()  # (namespace, name) backed up

    def _want(self, kind: str, name: str, src: str) -> None:
        gr, fmt = CLUSTER_REFS[kind]
        self.wanted[gr].setdefault(name, fmt.format(src=src))

    def observe(self, obj: dict[str, Any], group: str, resource: str) -> None:
        kind = obj.get("kind", "")
        spec = obj.get("spec") or {}
        src = _ref(obj)
        with self._lock:
            ns = (obj.get("metadata") or {}).get("namespace")
            if ns and ns not in self.namespaces_seen:
                self.namespaces_seen.add(ns)
                self._want("Namespace", ns, src)
            self.seen.setdefault((group, resource), src)
            if kind == "ServiceAccount" and ns:
                self.service_accounts.add((ns, obj["metadata"]["name"]))
            elif kind == "PersistentVolumeClaim":
                if spec.get("volumeName"):
                    self._want("PersistentVolume", spec["volumeName"], src)
                if spec.get("storageClassName"):
                    self._want("StorageClass", spec["storageClassName"], src)
            elif kind == "RoleBinding":
                role = obj.get("roleRef") or {}
                if role.get("kind") == "ClusterRole":
                    self._want("ClusterRole", role["name"], src)
            elif kind == "Ingress" and spec.get("ingressClassName"):
                self._want("IngressClass", spec["ingressClassName"], src)
            pod = pod_spec(obj)
            for ref_kind, name in references(pod) if pod else ():
                if ref_kind in ("PriorityClass", "RuntimeClass"):
                    self._want(ref_kind, name, src)

    def cluster_role_bindings(self, bindings: list[dict[str, Any]]) -> None:
        """Include the ClusterRoleBindings that bind a ServiceAccount this backup holds
        (and their ClusterRoles)."""
        for crb in bindings:
            for subj in crb.get("subjects") or []:
                ns = subj.get("namespace")
                sa = (ns, subj.get("name"))
                if subj.get("kind") == "ServiceAccount" and sa in self.service_accounts:
                    name = crb["metadata"]["name"]
                    self._want("ClusterRoleBinding", name, f"{ns}/{subj.get('name')}")
                    role = crb.get("roleRef") or {}
                    if role.get("kind") == "ClusterRole":
                        self._want("ClusterRole", role["name"], f"ClusterRoleBinding {name}")
                    break

    def crds(self, crds: list[dict[str, Any]]) -> None:
        """Include the CRDs whose custom resources were backed up."""
        for crd in crds:
            spec = crd.get("spec") or {}
            key = (spec.get("group", ""), (spec.get("names") or {}).get("plural", ""))
            if key in self.seen:
                self._want("CustomResourceDefinition", crd["metadata"]["name"], self.seen[key])

    def service_callers(self, kind: str, objs: list[dict[str, Any]], in_scope: Any) -> None:
        """Include webhook configurations and APIServices whose Service is in a namespace
        in scope: without them the restored app loses its admission or API."""
        for obj in objs:
            hooks = obj.get("webhooks") or []
            services = [(obj.get("spec") or {}).get("service")] + [
                (hook.get("clientConfig") or {}).get("service") for hook in hooks
            ]
            name = obj["metadata"]["name"]
            svc = next((s for s in services if s and in_scope(s.get("namespace", ""))), None)
            if svc:
                self._want(kind, name, f"{svc.get('namespace')}/{svc.get('name')}")
                continue
            for hook in hooks:  # a webhook pinned to one namespace in scope comes along too
                labels = (hook.get("namespaceSelector") or {}).get("matchLabels") or {}
                ns = labels.get("kubernetes.io/metadata.name")
                if ns and in_scope(ns):
                    gr, _ = CLUSTER_REFS[kind]
                    self.wanted[gr].setdefault(name, f"applies to namespace {ns} in scope")
                    break


def fetch_dependencies(
    c: Cluster, scope: Scope, sink: Sink, collector: Collector, summary: BackupSummary
) -> None:
    """Fetch what the collector wants (after the listing) into the sink, with reasons;
    refusals are warnings, a missing object a warning, other failures errors."""
    disc = c.discovery()
    crb = disc.get("rbac.authorization.k8s.io", "clusterrolebindings")
    crd = disc.get("apiextensions.k8s.io", "customresourcedefinitions")

    def listed(res: APIResource | None) -> list[dict[str, Any]]:
        """All objects of a cluster-scoped type; a refusal is a warning, not the end."""
        if res is None:
            return []
        try:
            return list(c.list(res))
        except ClusterUnreachable:
            raise
        except ClusterError as exc:
            note(summary.warnings, None, f"cannot list {res.full_name}: {exc.message}")
            return []

    collector.cluster_role_bindings(listed(crb))
    collector.crds(listed(crd))
    for kind, group, resource in (
        (
            "ValidatingWebhookConfiguration",
            "admissionregistration.k8s.io",
            "validatingwebhookconfigurations",
        ),
        (
            "MutatingWebhookConfiguration",
            "admissionregistration.k8s.io",
            "mutatingwebhookconfigurations",
        ),
        ("APIService", "apiregistration.k8s.io", "apiservices"),
    ):
        collector.service_callers(kind, listed(disc.get(group, resource)), scope.namespace_included)
    by_name = {r.full_name: r for r in disc}
    for gr, names in sorted(collector.wanted.items()):
        res = by_name.get(gr)
        if res is None or (scope.cluster_mode == "none" and gr != "namespaces"):
            continue
        for name, reason in sorted(names.items()):
            try:
                obj = c.get(res, name)
            except NotFound:
                note(summary.warnings, None, f"{gr} {name} ({reason}) does not exist")
                continue
            except ClusterUnreachable:
                raise
            except ClusterError as exc:
                note(summary.errors, None, f"get {gr} {name} ({reason}): {exc.message}")
                continue
            obj.setdefault("apiVersion", res.api_version)
            obj.setdefault("kind", res.kind)
            if sink.add(res, obj):
                summary.cluster_included.setdefault(gr, {})[name] = reason
