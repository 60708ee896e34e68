"""What verify compares, and what it does not.  Data, not code: each row says why.

In the spirit of Argo CD's diff normalization.  Verify compares an object *after* the
restore's own transforms (migrate.transform: sanitize, modifiers, mappings), so what the
restore strips or rewrites on purpose is never drift.  These tables cover the rest: what
the target cluster itself sets, allocates or defaults differently, and what its
controllers recreate (migrate.transform.skip_policy says which objects those are).
The resource types verify does not list at all are backup's too: one table,
migrate.transform.exclusions.

A path is a tuple of keys; "*" matches every key of a map or every item of a list.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

ANY = object()  # DefaultedField.value: any value is the target's own (allocated)


@dataclass(frozen=True)
class IgnoredField:
    """A field removed from both sides before comparing."""

    kinds: frozenset[str]  # empty = every kind
    path: tuple[str, ...]
    why: str


@dataclass(frozen=True)
class DefaultedField:
    """A field that may exist only on the target: ignored there when the source does not
    have it and the target's value is the API default (a source value must still match)."""

    kind: str
    path: tuple[str, ...]
    value: Any
    why: str


def _k(*kinds: str) -> frozenset[str]:
    return frozenset(kinds)


# Removed from both sides (after sanitize, which already drops uid, resourceVersion,
# creationTimestamp, generation, managedFields, status, allocated clusterIPs/nodePorts...).
IGNORED_FIELDS: tuple[IgnoredField, ...] = (
    IgnoredField(_k(), ("metadata", "labels", "velero.io/backup-name"),
                 "restore's own label: which backup the object came from"),
    IgnoredField(_k(), ("metadata", "labels", "velero.io/restore-name"),
                 "restore's own label: which restore created the object"),
    IgnoredField(_k(), ("metadata", "ownerReferences", "*", "uid"),
                 "uids differ per cluster: owners are compared by kind and name"),
    IgnoredField(_k("Namespace"), ("metadata", "labels", "kubernetes.io/metadata.name"),
                 "the API server sets it to the namespace's (possibly mapped) name"),
    IgnoredField(_k("Endpoints"),
                 ("metadata", "annotations", "endpoints.kubernetes.io/last-change-trigger-time"),
                 "time the target's endpoints controller last wrote the object"),
)  # fmt: skip

# Fields a newer API server defaults that an older one did not write.  Target-only and
# equal to the default: not drift.  (Null values are dropped on both sides: older
# servers print `creationTimestamp: null` in pod templates, v1.31+ omit it.)
DEFAULTED_FIELDS: tuple[DefaultedField, ...] = (
    DefaultedField("StatefulSet", ("spec", "updateStrategy", "rollingUpdate", "maxUnavailable"),
                   1, "MaxUnavailableStatefulSet defaults it (seen on v1.37, not on v1.30)"),
    DefaultedField("StatefulSet", ("spec", "persistentVolumeClaimRetentionPolicy"),
                   {"whenDeleted": "Retain", "whenScaled": "Retain"}, "defaulted since v1.27"),
    DefaultedField("Job", ("spec", "podReplacementPolicy"), ANY,
                   "defaulted since v1.29 (TerminatingOrFailed; Failed with a podFailurePolicy)"),
    DefaultedField("Job", ("spec", "suspend"), False, "defaulted since v1.21"),
    DefaultedField("Job", ("spec", "completionMode"), "NonIndexed", "defaulted since v1.21"),
    DefaultedField("Service", ("spec", "internalTrafficPolicy"), "Cluster",
                   "defaulted since v1.22"),
    DefaultedField("Service", ("spec", "ipFamilyPolicy"), "SingleStack", "defaulted since v1.20"),
    DefaultedField("Service", ("spec", "ipFamilies"), ANY,
                   "allocated by the target's API server (dual-stack, v1.20+)"),
    DefaultedField("PersistentVolumeClaim", ("spec", "volumeMode"), "Filesystem",
                   "defaulted since v1.13"),
    DefaultedField("PersistentVolumeClaim", ("spec", "dataSource"), ANY,
                   "a same-cluster clone is made from the backup's kept VolumeSnapshot "
                   "(volumes/clone.py): where its data came from is not drift"),
    DefaultedField("PersistentVolumeClaim", ("spec", "dataSourceRef"), ANY,
                   "the API server mirrors dataSource into it (AnyVolumeDataSource)"),
)  # fmt: skip

# Objects the target's controllers recreate (restore skips them): compared as counts per
# root owner (Pods of a Deployment are counted through its ReplicaSets), not one by one.
# kind -> which of them count, and why that subset.
COUNTED_KINDS: dict[str, str] = {
    "Pod": "not finished and not terminating: the owner's running set",
    "ReplicaSet": "spec.replicas > 0: old, scaled-down ReplicaSets are rollout history",
    "EndpointSlice": "every slice the endpoint controllers keep for a Service",
}
# Root owners whose recreated objects are not counted: their number is the cluster's.
UNCOUNTED_ROOTS: dict[str, str] = {
    "DaemonSet": "one Pod per matching node, and node counts differ between clusters",
    "CronJob": "Jobs and Pods come and go on the schedule (and may be suspended)",
    "Node": "static (mirror) Pods belong to the source's nodes",
}

# Objects the target makes by itself in any namespace in scope, beyond those in the skip
# table: never reported as `extra` (still compared when the source has them too: restore
# merges the source's labels and pull secrets into them).  (kind, name) -> why.
TARGET_OWN: dict[tuple[str, str], str] = {
    ("ServiceAccount", "default"): "created in every namespace by the ServiceAccount controller",
}
# Objects each cluster's control plane writes for itself, whose content is that
# cluster's own (restore finds them existing): never compared.  (kind, "ns/name") -> why.
CLUSTER_OWN: dict[tuple[str, str], str] = {
    ("ConfigMap", "kube-system/extension-apiserver-authentication"):
        "the API server's own client CA bundles",
    ("ConfigMap", "kube-system/kube-apiserver-legacy-service-account-token-tracking"):
        "when this API server started tracking legacy tokens",
}  # fmt: skip

# How values are shown in reports (never how they are compared).
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
# Secret fields: compared by sha256, printed as <redacted> (the last-applied annotation
# of a Secret holds its data too).
SECRET_FIELDS: tuple[tuple[str, ...], ...] = (
    ("data",),
    ("stringData",),
    ("metadata", "annotations", LAST_APPLIED),
)
REDACTED = "<redacted>"
# ConfigMap values often hold configuration nobody should paste into a CI log (database
# URLs, tokens put in the wrong kind): printed as their sha256 and size, their text only
# with --show-values.  (Secret values are never printed, not even with --show-values.)
HIDDEN_FIELDS: dict[str, tuple[tuple[str, ...], ...]] = {
    "ConfigMap": (("data",), ("binaryData",), ("metadata", "annotations", LAST_APPLIED)),
}
OTHER_VALUE_CHARS = 200  # any other long string (annotations, scripts in args...), cut
