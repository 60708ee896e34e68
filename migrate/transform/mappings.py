"""Rewrites for clones and moves: namespace, storage-class, claim-size and image-registry
mappings, replica overrides, suspended CronJobs, and the restore's own labels.

Restore applies them on the way in; verify applies the very same ones to the source
side before comparing, so an intended change is never reported as drift.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import Any

from migrate.errors import UsageError
from migrate.transform.workloads import containers, pod_spec
from migrate.units import quantity

# Kinds whose spec.replicas --replicas overrides.
SCALABLE_KINDS = frozenset({"Deployment", "StatefulSet", "ReplicaSet", "ReplicationController"})
BACKUP_LABEL = "velero.io/backup-name"
RESTORE_LABEL = "velero.io/restore-name"
_NAMESPACE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")  # a DNS-1123 label, <= 63


def check_namespace_mappings(mapping: dict[str, str], flag: str = "--namespace-mappings") -> None:
    """Both sides are namespace names, and no two namespaces go to the same one (their
    objects would collide, and which one wins would depend on the order)."""
    owner: dict[str, str] = {}
    for src, dst in mapping.items():
        for name in (src, dst):
            if len(name) > 63 or not _NAMESPACE.match(name):
                raise UsageError(
                    f"invalid {flag} entry {src + ':' + dst!r}: {name!r} is not a namespace name",
                    hint="namespace names are lower-case letters, digits and '-' (at most 63)",
                )
        if dst in owner:
            raise UsageError(
                f"{flag} maps both {owner[dst]!r} and {src!r} onto {dst!r}",
                hint="map each source namespace to a namespace of its own",
            )
        owner[dst] = src


def check_claim_sizes(mapping: dict[str, str], flag: str = "--pvc-size-mappings") -> None:
    """Keys are [NAMESPACE/]CLAIM patterns (shell globs), values Kubernetes sizes."""
    for pattern, size in mapping.items():
        if pattern.count("/") > 1 or not pattern.strip("/"):
            raise UsageError(
                f"invalid {flag} entry {pattern + ':' + size!r}: {pattern!r} is not a claim",
                hint="name claims as [NAMESPACE/]CLAIM, globs allowed, e.g. shop/data-*:20Gi",
            )
        if quantity(size) <= 0:
            raise UsageError(
                f"invalid {flag} entry {pattern + ':' + size!r}: {size!r} is not a size",
                hint="sizes are Kubernetes quantities, e.g. 500Mi or 20Gi",
            )


def parse_mapping(text: str | None, flag: str, sep: str = ":") -> dict[str, str]:
    """ "a:b,c:d" -> {"a": "b", "c": "d"}; a one-line error names the bad pair."""
    out: dict[str, str] = {}
    for pair in (p.strip() for p in (text or "").split(",")):
        if not pair:
            continue
        old, s, new = pair.partition(sep)
        if not s or not old.strip() or not new.strip():
            raise UsageError(
                f"invalid {flag} entry {pair!r}", hint=f"use old{sep}new[,old{sep}new]"
            )
        if old.strip() in out:
            raise UsageError(f"{flag} maps {old.strip()!r} twice", hint="give each source once")
        out[old.strip()] = new.strip()
    return out


@dataclass(frozen=True)
class Mappings:
    namespaces: dict[str, str] = field(default_factory=dict)
    storage_classes: dict[str, str] = field(default_factory=dict)
    # [source namespace/]claim glob -> the size its restored claim asks for
    claim_sizes: dict[str, str] = field(default_factory=dict)
    registries: dict[str, str] = field(default_factory=dict)  # "old.io/org" -> "new.io/org"
    replicas: int | None = None
    suspend_cronjobs: bool = False

    def __post_init__(self) -> None:
        check_namespace_mappings(self.namespaces)
        check_claim_sizes(self.claim_sizes)

    def claim_size(self, ns: str | None, claim: str) -> str | None:
        """The size a claim of the source namespace ns is restored with, if mapped; the
        first matching entry wins (a namespace-less one matches in every namespace)."""
        for pattern, size in self.claim_sizes.items():
            want_ns, _, want = pattern.rpartition("/")
            if fnmatchcase(claim, want) and (not want_ns or fnmatchcase(ns or "", want_ns)):
                return size
        return None

    def namespace(self, ns: str | None) -> str | None:
        return self.namespaces.get(ns, ns) if ns else ns

    def image(self, image: str) -> str:
        """Longest matching registry prefix wins; matches whole path segments only."""
        for old in sorted(self.registries, key=len, reverse=True):
            prefix = old.rstrip("/")  # "docker.io/" and "docker.io" mean the same
            if image == prefix or image.startswith(prefix + "/"):
                return self.registries[old].rstrip("/") + image[len(prefix) :]
        return image


# Kinds whose content (not just metadata.namespace) a namespace mapping rewrites: the
# references _namespaced_refs finds, a Namespace's own name, and ClusterRoleBindings
# (copied for the mapped namespaces, never rewritten: migrate.transform.bindings).
NAMESPACE_REF_KINDS = frozenset(
    {
        "RoleBinding",
        "ClusterRoleBinding",
        "PersistentVolume",
        "ValidatingWebhookConfiguration",
        "MutatingWebhookConfiguration",
        "APIService",
        "Namespace",
    }
)


def _namespaced_refs(obj: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Dicts holding a `namespace` key that names another object's namespace."""
    kind = obj.get("kind")
    spec = obj.get("spec") or {}
    if kind == "RoleBinding":
        yield from (s for s in obj.get("subjects") or [] if s.get("kind") == "ServiceAccount")
    elif kind == "PersistentVolume" and spec.get("claimRef"):
        yield spec["claimRef"]
    elif kind in ("ValidatingWebhookConfiguration", "MutatingWebhookConfiguration"):
        for hook in obj.get("webhooks") or []:
            svc = (hook.get("clientConfig") or {}).get("service")
            if svc:
                yield svc
    elif kind == "APIService" and spec.get("service"):
        yield spec["service"]


def apply_mappings(obj: dict[str, Any], m: Mappings) -> dict[str, Any]:
    """Rewrite obj in place (and return it)."""
    meta = obj.setdefault("metadata", {})
    kind = obj.get("kind", "")
    if m.claim_sizes:  # before the namespace mapping: patterns name source namespaces
        _resize_claims(obj, m)
    if m.namespaces:
        if meta.get("namespace"):
            meta["namespace"] = m.namespace(meta["namespace"])
        if kind == "Namespace":
            meta["name"] = m.namespace(meta["name"])
        for ref in _namespaced_refs(obj):
            if ref.get("namespace"):
                ref["namespace"] = m.namespace(ref["namespace"])
    spec = obj.get("spec")  # not `or {}`: an empty spec must still receive the overrides
    if not isinstance(spec, dict):
        spec = {}
    if m.storage_classes:
        if kind in ("PersistentVolumeClaim", "PersistentVolume"):
            sc = spec.get("storageClassName")
            if sc in m.storage_classes:
                spec["storageClassName"] = m.storage_classes[sc]
        for tpl in spec.get("volumeClaimTemplates") or []:
            tspec = tpl.get("spec") or {}
            if tspec.get("storageClassName") in m.storage_classes:
                tspec["storageClassName"] = m.storage_classes[tspec["storageClassName"]]
    pod = pod_spec(obj)
    if pod is not None and m.registries:
        for c in containers(pod):
            if c.get("image"):
                c["image"] = m.image(c["image"])
    if m.replicas is not None and kind in SCALABLE_KINDS:
        spec["replicas"] = m.replicas
    if m.suspend_cronjobs and kind == "CronJob":
        spec["suspend"] = True
    return obj


def _resize_claims(obj: dict[str, Any], m: Mappings) -> None:
    """A claim's request, or a StatefulSet's claim template's (matched as the claim of its
    first replica, <template>-<set>-0), as --pvc-size-mappings says."""
    meta, kind = obj.get("metadata") or {}, obj.get("kind")
    if kind not in ("PersistentVolumeClaim", "StatefulSet"):
        return
    if not isinstance(obj.get("spec"), dict):
        obj["spec"] = {}
    spec, ns = obj["spec"], meta.get("namespace")
    if kind == "PersistentVolumeClaim":
        specs = [(spec, str(meta.get("name") or ""))]
    else:
        specs = [
            (
                tpl.setdefault("spec", {}),
                f"{(tpl.get('metadata') or {}).get('name')}-{meta.get('name')}-0",
            )
            for tpl in spec.get("volumeClaimTemplates") or []
        ]
    for claim_spec, name in specs:
        size = m.claim_size(ns, name)
        if size is not None:
            requests = claim_spec.setdefault("resources", {}).setdefault("requests", {})
            requests["storage"] = size


def label_restored(obj: dict[str, Any], backup: str, restore: str) -> dict[str, Any]:
    """Mark obj as restored from `backup` by `restore` (Velero's labels)."""
    labels = obj.setdefault("metadata", {}).setdefault("labels", {})
    labels[BACKUP_LABEL] = backup
    labels[RESTORE_LABEL] = restore
    return obj
