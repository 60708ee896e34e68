"""What a scheduled backup's ServiceAccount may do: exactly what `backup create` needs.

A scheduled backup runs unattended with its own identity, so its grants are the product's
promise of least privilege: read-only on the objects it backs up, and writes only where a
volume copy asks for them, bound only in the namespaces the schedule backs up. The tables
are the policy; `rules_for` picks the rows the schedule's flags turn on.
"""

from __future__ import annotations

from typing import Any

Rule = dict[str, list[str]]

# Reading the objects: the LISTs (secrets too: a backup holds them), GETs, the watches of
# an incremental backup. Cluster-wide, since cluster-scoped objects (CRDs, the PVs of the
# claims, ClusterRoles the namespaces' ServiceAccounts are bound to) come along. Granted
# per resource the cluster serves, never as resources "*": that would match subresources
# too, and `get` on pods/exec, pods/attach, pods/portforward or nodes/proxy runs commands
# in pods (a websocket upgrade is a GET). A CRD installed later needs `schedule create`
# again (it refreshes the rules).
READ_VERBS = ["get", "list", "watch"]

# Copying claims' data (--volumes all|annotated), in the backed-up namespaces only.
VOLUMES: list[Rule] = [
    # a mover pod per claim, started and removed by the backup
    {"apiGroups": [""], "resources": ["pods"], "verbs": ["create", "delete"]},
    # Velero's backup hooks (pre/post commands in the app's containers) and the mover's log
    {"apiGroups": [""], "resources": ["pods/exec"], "verbs": ["create"]},
    {"apiGroups": [""], "resources": ["pods/log"], "verbs": ["get"]},
    # each mover's repository password, owned by its pod
    {"apiGroups": [""], "resources": ["secrets"], "verbs": ["create", "delete", "patch"]},
]

# Reading a claim from a CSI snapshot (--snapshot-volumes auto|always): the snapshot and
# the temporary claim made from it, in the backed-up namespaces.
SNAPSHOTS: list[Rule] = [
    {"apiGroups": [""], "resources": ["persistentvolumeclaims"], "verbs": ["create", "delete"]},
    {
        "apiGroups": ["snapshot.storage.k8s.io"],
        "resources": ["volumesnapshots"],
        "verbs": ["create", "delete", "patch"],
    },
]

# ...and the one cluster-scoped write: a kept snapshot's content is switched to
# deletionPolicy Delete before its snapshot is removed.
SNAPSHOT_CONTENTS: list[Rule] = [
    {
        "apiGroups": ["snapshot.storage.k8s.io"],
        "resources": ["volumesnapshotcontents"],
        "verbs": ["patch"],
    },
]

# --quiesce scale-down: scale the claims' workloads to 0 for the copy, and the annotation
# recording their replicas (an interrupted backup's next run heals them).
QUIESCE: list[Rule] = [
    {
        "apiGroups": ["apps"],
        "resources": ["deployments", "statefulsets", "deployments/scale", "statefulsets/scale"],
        "verbs": ["patch"],
    },
]


def read_rules(resources: list[tuple[str, str]]) -> list[Rule]:
    """get/list/watch on each (group, resource) given (no subresources), one rule per group."""
    groups: dict[str, set[str]] = {}
    for group, resource in resources:
        if "/" not in resource:
            groups.setdefault(group, set()).add(resource)
    return [
        {"apiGroups": [g], "resources": sorted(groups[g]), "verbs": list(READ_VERBS)}
        for g in sorted(groups)
    ]


def namespaced_rules(volumes: bool, snapshots: bool, quiesce: bool) -> list[Rule]:
    """The write rules bound in each backed-up namespace (none for an objects-only backup)."""
    rows = [(volumes, VOLUMES), (volumes and snapshots, SNAPSHOTS), (volumes and quiesce, QUIESCE)]
    return [rule for on, rules in rows if on for rule in rules]


def cluster_write_rules(volumes: bool, snapshots: bool) -> list[Rule]:
    return list(SNAPSHOT_CONTENTS) if volumes and snapshots else []


def describe_rules(rules: list[dict[str, Any]]) -> list[str]:
    """One line per rule, for `schedule describe` and the closing report."""
    out = []
    for r in rules:
        groups = ",".join(g or "core" for g in r.get("apiGroups", []))
        out.append(f"{'/'.join(r.get('verbs', []))} {','.join(r.get('resources', []))} ({groups})")
    return out
