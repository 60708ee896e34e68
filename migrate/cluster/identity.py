"""Which cluster a kubeconfig reaches, as an id that outlives server addresses and
contexts: the uid of its `kube-system` namespace (the convention Velero and Kasten use).
A backup records its source's id so a restore can tell it is writing back into the
cluster it came from, where sharing a PersistentVolume means two claims on one disk."""

from __future__ import annotations

from migrate.cluster.client import Cluster
from migrate.errors import ClusterError, ClusterUnreachable

ID_NAMESPACE = "kube-system"


def cluster_id(c: Cluster) -> str | None:
    """The id, or None when the credentials may not read that namespace."""
    try:
        res = c.discovery().resolve("namespaces")
        uid = (c.get(res, ID_NAMESPACE).get("metadata") or {}).get("uid")
    except ClusterUnreachable:
        raise
    except ClusterError:  # forbidden, not found: unknown, never guessed
        return None
    return str(uid) if uid else None
