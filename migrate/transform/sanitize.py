"""What restore strips from an object before creating it on another cluster.

The backup keeps objects exactly as the source API returned them; here they lose what
the source cluster owned (identity, versions, status, allocated IPs and ports, node
bindings).  Velero's sanitizers (velero-format.md section 2.4) are the baseline.  The
tables are data; each kind that needs more has one small function, registered in
KIND_SANITIZERS.  Verify applies the same function, so a stripped field is never drift.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from migrate.transform.volumes import DEFAULT_PV_POLICY, unbind_claim

# metadata fields the API server sets; never sent on create.
STRIP_METADATA: dict[str, str] = {
    "uid": "identity on the source cluster",
    "resourceVersion": "etcd revision on the source cluster",
    "creationTimestamp": "set by the target API server",
    "generation": "set by the target API server",
    "managedFields": "field ownership of source-side clients",
    "selfLink": "deprecated, server-generated",
    "deletionTimestamp": "a deleting object is restored alive",
    "deletionGracePeriodSeconds": "goes with deletionTimestamp",
}
# Annotations that record source-side controller state.
STRIP_ANNOTATIONS: dict[str, str] = {
    "deployment.kubernetes.io/revision": "rollout counter of the source Deployment controller",
    "pv.kubernetes.io/bind-completed": "PVC binding state (the target binds again)",
    "pv.kubernetes.io/bound-by-controller": "PVC/PV binding state",
    "volume.beta.kubernetes.io/storage-provisioner": "set by the target's PV controller",
    "volume.kubernetes.io/storage-provisioner": "set by the target's PV controller",
    "volume.kubernetes.io/selected-node": "a node of the source cluster",
    "kubernetes.io/service-account.uid": "uid of the source ServiceAccount",
}
# Labels a controller derives from a source-side uid.
STRIP_LABELS: dict[str, str] = {
    "controller-uid": "Job controller uid (source)",
    "batch.kubernetes.io/controller-uid": "Job controller uid (source)",
}


@dataclass(frozen=True)
class SanitizeOptions:
    preserve_node_ports: bool = False
    keep_status: bool = False  # --restore-status for this kind
    pv_policy: str = DEFAULT_PV_POLICY  # --pv-policy (migrate.transform.volumes)


def _service(obj: dict[str, Any], opts: SanitizeOptions) -> None:
    spec = obj.get("spec") or {}
    if spec.get("clusterIP") != "None":  # only a headless Service keeps its clusterIPs
        spec.pop("clusterIP", None)
        spec.pop("clusterIPs", None)
    spec.pop("healthCheckNodePort", None)
    if opts.preserve_node_ports:
        return
    explicit = _explicit_node_ports(obj)
    for port in spec.get("ports") or []:
        if "nodePort" in port and port["nodePort"] not in explicit:
            port.pop("nodePort")


def _explicit_node_ports(obj: dict[str, Any]) -> set[int]:
    """nodePorts the user set (per last-applied-configuration), kept as Velero does."""
    raw = (obj.get("metadata", {}).get("annotations") or {}).get(
        "kubectl.kubernetes.io/last-applied-configuration"
    )
    try:
        applied = json.loads(raw) if raw else {}
    except ValueError:
        return set()
    if not isinstance(applied, dict):
        return set()
    ports = (applied.get("spec") or {}).get("ports") or []
    return {p["nodePort"] for p in ports if isinstance(p, dict) and "nodePort" in p}


def _pod(obj: dict[str, Any], _: SanitizeOptions) -> None:
    spec = obj.get("spec") or {}
    spec.pop("nodeName", None)
    spec.pop("priority", None)  # admission derives it from priorityClassName


def _persistent_volume(obj: dict[str, Any], _: SanitizeOptions) -> None:
    claim = (obj.get("spec") or {}).get("claimRef")
    if claim:
        for key in ("uid", "resourceVersion"):
            claim.pop(key, None)


def _claim(obj: dict[str, Any], opts: SanitizeOptions) -> None:
    unbind_claim(obj, opts.pv_policy)


def _job(obj: dict[str, Any], _: SanitizeOptions) -> None:
    spec = obj.get("spec") or {}
    if not spec.get("manualSelector"):
        spec.pop("selector", None)  # generated again from the new uid
    labels = ((spec.get("template") or {}).get("metadata") or {}).get("labels") or {}
    for key in STRIP_LABELS:
        labels.pop(key, None)


def _token_secret(obj: dict[str, Any], _: SanitizeOptions) -> None:
    if obj.get("type") == "kubernetes.io/service-account-token":
        for key in ("token", "ca.crt", "namespace"):
            (obj.get("data") or {}).pop(key, None)


# kind -> the function that removes what the source cluster owned in that kind.
KIND_SANITIZERS: dict[str, Callable[[dict[str, Any], SanitizeOptions], None]] = {
    "Service": _service,
    "Pod": _pod,
    "PersistentVolume": _persistent_volume,
    "PersistentVolumeClaim": _claim,
    "Job": _job,
    "Secret": _token_secret,
}


def sanitize(
    obj: dict[str, Any], opts: SanitizeOptions | None = None, *, in_place: bool = False
) -> dict[str, Any]:
    """A copy of obj ready to create on another cluster (ownerReferences untouched: the
    restore re-points them to the new owners' uids); `in_place`: obj itself, changed
    (for a caller whose obj is already its own copy: deepcopy is most of the cost)."""
    opts = opts or SanitizeOptions()
    out = obj if in_place else copy.deepcopy(obj)
    meta = out.setdefault("metadata", {})
    for key in STRIP_METADATA:
        meta.pop(key, None)
    for field, table in (("annotations", STRIP_ANNOTATIONS), ("labels", STRIP_LABELS)):
        values = meta.get(field)
        if values:
            for key in table:
                values.pop(key, None)
            if not values:
                meta.pop(field)
    if not opts.keep_status:
        out.pop("status", None)
    fix = KIND_SANITIZERS.get(out.get("kind", ""))
    if fix:
        fix(out, opts)
    return out
