"""What a backup leaves out by default, and why.  Data, not code: edit the table."""

from __future__ import annotations

# `resource.group` -> reason.  Follows Velero's non-restorable list and adds resources
# that are node or runtime state the target cluster makes for itself.
DEFAULT_EXCLUDED_RESOURCES: dict[str, str] = {
    "events": "runtime noise, recreated by controllers",
    "events.events.k8s.io": "runtime noise, recreated by controllers",
    "nodes": "machines belong to the cluster, not to the workload",
    "leases.coordination.k8s.io": "leader election and node heartbeats, recreated",
    "leasecandidates.coordination.k8s.io": "leader election candidates, recreated",
    "csinodes.storage.k8s.io": "per-node CSI driver state",
    "volumeattachments.storage.k8s.io": "attach state of volumes on nodes",
    "componentstatuses": "deprecated health probe, not a stored object",
    "ipaddresses.networking.k8s.io": "Service IP allocations made by the API server",
    "backups.velero.io": "Velero's own state (never restored by Velero either)",
    "restores.velero.io": "Velero's own state",
    "resticrepositories.velero.io": "Velero's own state",
    "backuprepositories.velero.io": "Velero's own state",
}

# Label that keeps an object out of any backup (Velero's).
EXCLUDE_LABEL = "velero.io/exclude-from-backup"
