"""Resource types a migration leaves out by default, and why.  Data, not code: edit the table.

One table for every step, so that what backup leaves out is exactly what verify does not
compare: a type backed up but never verified, or verified but never backed up (reported
`missing` on every run), would be a silent gap.  Backup reads it to decide what to list,
verify to decide what to list on both sides.  Naming a type in `--include-resources`
(backup's own, or the backup's spec that verify reads) brings it back in both.

Lives in migrate.transform, below both steps, like the skip table (skip_policy.py), which
says the same per object: which objects restore leaves alone.  What only one step knows
stays in that step's own policy module (verify/policy.py: fields to normalize).
"""

from __future__ import annotations

# Label that keeps an object out of any backup (Velero's), and its data too: the volume
# step copies no claim carrying it.  kube-migrate puts it on what it makes itself in a
# cluster (snapshots and temporary claims of a copy, kept snapshots, clones' bindings).
EXCLUDE_LABEL = "velero.io/exclude-from-backup"

# `resource.group` -> reason.  Follows Velero's non-restorable list and adds resources
# that are node, network or runtime state the target cluster makes for itself.
EXCLUDED_RESOURCES: dict[str, str] = {
    "events": "runtime noise, recreated by controllers",
    "events.events.k8s.io": "runtime noise, recreated by controllers",
    "nodes": "machines belong to the cluster, not to the workload",
    "leases.coordination.k8s.io": "leader election and node heartbeats, recreated",
    "leasecandidates.coordination.k8s.io": "leader election candidates, recreated",
    "csinodes.storage.k8s.io": "per-node CSI driver state",
    "volumeattachments.storage.k8s.io": "attach state of volumes on nodes",
    "componentstatuses": "deprecated health probe, not a stored object",
    # The two below are each cluster's own Service network: the source's ranges and
    # allocations, restored, would add the source's network to the target's (and may
    # overlap its Pod or node networks).  The default ServiceCIDR `kubernetes` is also in
    # the skip table, for a backup that names servicecidrs explicitly.
    "ipaddresses.networking.k8s.io": "Service IP allocations made by each API server",
    "servicecidrs.networking.k8s.io": "each cluster's own Service IP ranges",
    "backups.velero.io": "Velero's own state (never restored by Velero either)",
    "restores.velero.io": "Velero's own state",
    "resticrepositories.velero.io": "Velero's own state",
    "backuprepositories.velero.io": "Velero's own state",
}
