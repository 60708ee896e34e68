"""Where each workload kind keeps its pod template, and what a pod spec refers to.

Backup follows these references to bring cluster-scoped dependencies along; restore
uses them to order creation (a ServiceAccount before the Deployment that runs as it).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

# kind -> path of the pod spec inside the object (Pod: the object's own spec).
POD_SPEC_PATHS: dict[str, tuple[str, ...]] = {
    "Pod": ("spec",),
    "Deployment": ("spec", "template", "spec"),
    "ReplicaSet": ("spec", "template", "spec"),
    "StatefulSet": ("spec", "template", "spec"),
    "DaemonSet": ("spec", "template", "spec"),
    "Job": ("spec", "template", "spec"),
    "ReplicationController": ("spec", "template", "spec"),
    "PodTemplate": ("template", "spec"),
    "CronJob": ("spec", "jobTemplate", "spec", "template", "spec"),
}


def pod_spec(obj: dict[str, Any]) -> dict[str, Any] | None:
    """The pod spec of a workload object (or of a Pod), or None for other kinds."""
    path = POD_SPEC_PATHS.get(obj.get("kind", ""))
    node: Any = obj
    for key in path or ():
        node = node.get(key) if isinstance(node, dict) else None
    return node if path and isinstance(node, dict) else None


def containers(spec: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for key in ("initContainers", "containers", "ephemeralContainers"):
        yield from spec.get(key) or []


def references(spec: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """(kind, name) of every object a pod spec needs in its namespace or cluster-wide:
    ServiceAccount, Secret, ConfigMap, PersistentVolumeClaim, PriorityClass, RuntimeClass."""
    if spec.get("serviceAccountName"):
        yield "ServiceAccount", spec["serviceAccountName"]
    if spec.get("priorityClassName"):
        yield "PriorityClass", spec["priorityClassName"]
    if spec.get("runtimeClassName"):
        yield "RuntimeClass", spec["runtimeClassName"]
    for ips in spec.get("imagePullSecrets") or []:
        if ips.get("name"):
            yield "Secret", ips["name"]
    for vol in spec.get("volumes") or []:
        if (vol.get("secret") or {}).get("secretName"):
            yield "Secret", vol["secret"]["secretName"]
        if (vol.get("configMap") or {}).get("name"):
            yield "ConfigMap", vol["configMap"]["name"]
        if (vol.get("persistentVolumeClaim") or {}).get("claimName"):
            yield "PersistentVolumeClaim", vol["persistentVolumeClaim"]["claimName"]
        for src in (vol.get("projected") or {}).get("sources") or []:
            if (src.get("secret") or {}).get("name"):
                yield "Secret", src["secret"]["name"]
            if (src.get("configMap") or {}).get("name"):
                yield "ConfigMap", src["configMap"]["name"]
    for c in containers(spec):
        for env in c.get("env") or []:
            ref = env.get("valueFrom") or {}
            if (ref.get("secretKeyRef") or {}).get("name"):
                yield "Secret", ref["secretKeyRef"]["name"]
            if (ref.get("configMapKeyRef") or {}).get("name"):
                yield "ConfigMap", ref["configMapKeyRef"]["name"]
        for src in c.get("envFrom") or []:
            if (src.get("secretRef") or {}).get("name"):
                yield "Secret", src["secretRef"]["name"]
            if (src.get("configMapRef") or {}).get("name"):
                yield "ConfigMap", src["configMapRef"]["name"]


def template_claims(obj: dict[str, Any], limit: int | None = None) -> Iterator[str]:
    """The claims a StatefulSet's pods get from its templates, `<template>-<set>-<ordinal>`
    for each ordinal below its replicas (at most `limit` a template); none for other kinds."""
    if obj.get("kind") != "StatefulSet":
        return
    spec = obj.get("spec") or {}
    name = (obj.get("metadata") or {}).get("name", "")
    replicas = int(spec.get("replicas", 1) or 0)
    for tpl in spec.get("volumeClaimTemplates") or []:
        tname = (tpl.get("metadata") or {}).get("name", "")
        for i in range(replicas if limit is None else min(replicas, limit)):
            yield f"{tname}-{name}-{i}"
