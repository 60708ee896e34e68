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
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from migrate.backup.grants import CRDS, granted_crds, record
from migrate.backup.sink import BackupSummary, Sink, note
from migrate.cluster import APIResource, Cluster
from migrate.errors import ClusterError, ClusterUnreachable, NotFound
from migrate.transform.scope import Scope
from migrate.transform.workloads import POD_SPEC_PATHS, pod_spec, references

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
# Kinds whose objects observe() reads beyond their namespace and type: any other object
# (ConfigMaps, Secrets... most of a backup) teaches nothing new once both were seen.
OBSERVED_KINDS = frozenset(
    {"ServiceAccount", "PersistentVolumeClaim", "Role", "RoleBinding", "Ingress", *POD_SPEC_PATHS}
)


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
        # RBAC of the namespaces, to find the CRDs granted to their ServiceAccounts
        self.roles: dict[tuple[str, str], list[dict[str, Any]]] = {}
        self.role_bindings: list[dict[str, Any]] = []

    def _want(self, kind: str, name: str, src: str) -> None:
        gr, fmt = CLUSTER_REFS[kind]
        self.wanted[gr].setdefault(name, fmt.format(src=src))

    def observe_page(self, objs: list[dict[str, Any]], group: str, resource: str) -> None:
        for obj in objs:
            self.observe(obj, group, resource)

    def observe(self, obj: dict[str, Any], group: str, resource: str) -> None:
        kind = obj.get("kind", "")
        if kind not in OBSERVED_KINDS and (group, resource) in self.seen:
            ns = (obj.get("metadata") or {}).get("namespace")
            if not ns or ns in self.namespaces_seen:  # (read unlocked: a miss just locks)
                return
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
            elif kind == "Role" and ns:
                self.roles[(ns, obj["metadata"]["name"])] = obj.get("rules") or []
            elif kind == "RoleBinding":
                self.role_bindings.append(
                    {k: obj.get(k) for k in ("metadata", "roleRef", "subjects")}
                )
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


SCANNED = (  # cluster-scoped types read whole to find what the backup needs of them
    ("rbac.authorization.k8s.io", "clusterrolebindings", "ClusterRoleBinding"),
    ("apiextensions.k8s.io", "customresourcedefinitions", "CustomResourceDefinition"),
    ("admissionregistration.k8s.io", "validatingwebhookconfigurations",
     "ValidatingWebhookConfiguration"),
    ("admissionregistration.k8s.io", "mutatingwebhookconfigurations",
     "MutatingWebhookConfiguration"),
    ("apiregistration.k8s.io", "apiservices", "APIService"),
)  # fmt: skip
LIST_OVER = 5  # more names of one type than this: one LIST instead of a GET each


def fetch_dependencies(
    c: Cluster,
    scope: Scope,
    sink: Sink,
    collector: Collector,
    summary: BackupSummary,
    parallelism: int,
) -> None:
    """Fetch what the collector wants (after the listing) into the sink, with reasons;
    refusals are warnings, a missing object a warning, other failures errors.  The
    requests run in parallel; objects go into the sink in a stable order."""
    with ThreadPoolExecutor(max_workers=max(1, parallelism)) as pool:
        _fetch_all(c, scope, sink, collector, summary, pool)


def _fetch_all(
    c: Cluster,
    scope: Scope,
    sink: Sink,
    collector: Collector,
    summary: BackupSummary,
    pool: ThreadPoolExecutor,
) -> None:
    disc = c.discovery()

    def listed(res: APIResource | None) -> list[dict[str, Any]]:
        """All objects of a cluster-scoped type; a refusal is a warning, not the end."""
        if res is None:
            return []
        try:
            return list(c.list(res))
        except ClusterUnreachable:
            raise
        except ClusterError as exc:
            with sink.lock:
                note(summary.warnings, None, f"cannot list {res.full_name}: {exc.message}")
            return []

    scanned = dict(
        zip(
            [kind for _, _, kind in SCANNED],
            pool.map(lambda t: listed(disc.get(t[0], t[1])), SCANNED),
            strict=True,
        )
    )
    collector.cluster_role_bindings(scanned["ClusterRoleBinding"])
    collector.crds(scanned["CustomResourceDefinition"])
    grants, granted = granted_crds(
        c,
        disc,
        collector.role_bindings,
        collector.roles,
        collector.service_accounts,
        scanned["ClusterRoleBinding"],
        scanned["CustomResourceDefinition"],
        pool,
        summary,
        sink,
    )
    for name, why in granted.present.items():
        collector.wanted[CRDS].setdefault(name, why)
    for kind in ("ValidatingWebhookConfiguration", "MutatingWebhookConfiguration", "APIService"):
        collector.service_callers(kind, scanned[kind], scope.namespace_included)
    by_name = {r.full_name: r for r in disc}
    wanted = [
        (by_name[gr], names)
        for gr, names in sorted(collector.wanted.items())
        if gr in by_name
        and (scope.cluster_mode != "none" or gr == "namespaces")
        and gr not in summary.skipped_resources  # --exclude-resources holds for these too
    ]
    fetched = list(pool.map(lambda w: _fetch(c, w[0], w[1], summary, sink), wanted))
    for (res, names), objs in zip(wanted, fetched, strict=True):
        for name, reason in sorted(names.items()):
            obj = objs.get(name)
            if obj is None:
                continue
            obj.setdefault("apiVersion", res.api_version)
            obj.setdefault("kind", res.kind)
            if sink.add(res, obj):
                summary.cluster_included.setdefault(res.full_name, {})[name] = reason
    record(grants, granted, summary, sink, scope, scanned["CustomResourceDefinition"])


def _fetch(
    c: Cluster, res: APIResource, names: dict[str, str], summary: BackupSummary, sink: Sink
) -> dict[str, dict[str, Any]]:
    """name -> object, for the wanted names of one type: one LIST when many are wanted
    (falling back to GETs if listing is refused), else a GET each."""
    out: dict[str, dict[str, Any]] = {}
    if len(names) > LIST_OVER:
        try:
            out = {o["metadata"]["name"]: o for o in c.list(res) if o["metadata"]["name"] in names}
        except ClusterUnreachable:
            raise
        except ClusterError:
            out = {}  # may get but not list: one by one
        else:
            for name, reason in sorted(names.items()):
                if name not in out:
                    _missing(summary, sink, res, name, reason)
            return out
    for name, reason in sorted(names.items()):
        try:
            out[name] = c.get(res, name)
        except NotFound:
            _missing(summary, sink, res, name, reason)
        except ClusterUnreachable:
            raise
        except ClusterError as exc:
            with sink.lock:
                note(summary.errors, None, f"get {res.full_name} {name} ({reason}): {exc.message}")
    return out


def _missing(summary: BackupSummary, sink: Sink, res: APIResource, name: str, reason: str) -> None:
    with sink.lock:
        note(summary.warnings, None, f"{res.full_name} {name} ({reason}) does not exist")
