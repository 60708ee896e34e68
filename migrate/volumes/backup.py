"""Back up the data of the claims in a backup's scope: one mover pod per claim, on the
node of the pod that uses it, the claim (or a temporary claim made from its CSI
snapshot) mounted read-only, kopia writing straight into the bucket's per-namespace
repository.

Which claims are read from a snapshot is transform.snapshot_method's decision, how the
copies run is copies.py's.  Each claim's snapshots form one incremental chain (source
`<claim>@<namespace>`, whatever pod or node ran the mover), so a second backup of
unchanged data uploads almost nothing.  A mover that ends without a result (killed,
evicted) is run once more; kopia writes a snapshot's manifest only after its content, so
a killed copy never counts.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from migrate.cluster import Cluster
from migrate.store import Store
from migrate.transform.claims import Claim, host_path_volumes, plan_claims
from migrate.transform.exclusions import EXCLUDE_LABEL
from migrate.transform.scope import Scope
from migrate.transform.snapshot_method import Method, SnapshotSupport, method
from migrate.transform.workloads import pod_spec
from migrate.volumes import records, snapshots
from migrate.volumes.copies import Copies
from migrate.volumes.live import claims_and_pods, workloads
from migrate.volumes.mover_pod import MoverSettings
from migrate.volumes.password import repository_exists
from migrate.volumes.quiesce import Record
from migrate.volumes.records import VolumeCopy
from migrate.volumes.restore import placements

log = logging.getLogger(__name__)
Progress = Callable[[str, int], None]


@dataclass
class VolumeBackupOptions:
    backup: str
    mode: str  # all | annotated | none (claims.MODES)
    settings: Callable[[], MoverSettings]  # called only when some claim's data moves
    parallelism: int = 8  # movers at once
    per_node: int = 2  # movers at once on one node
    attempts: int = 2  # a mover that ends without a result is run again once
    quiesce: str = "none"  # none | scale-down (quiesce.py)
    record: Record | None = None  # where scale-downs are journaled (the run's state)
    snapshot_volumes: str = "auto"  # always | auto | never (snapshot_method.MODES)
    keep_snapshots: bool = False  # keep each VolumeSnapshot in the source as a restore point
    # False: a snapshotted claim's data is not copied into the bucket: the kept snapshot
    # is its copy (a same-cluster clone's source; Velero's --snapshot-move-data=false)
    move_data: bool = True


@dataclass
class VolumeBackupSummary:
    copies: list[VolumeCopy]
    warnings: list[str]
    seconds: float
    failures: list[tuple[str, str]] = field(default_factory=list)  # (namespace, message)
    files: dict[str, bytes] = field(default_factory=dict)  # the records, key -> content
    blobs: dict[str, int] = field(default_factory=dict)  # repository blob key -> size

    def as_dict(self) -> dict[str, Any]:
        moved = [v for v in self.copies if v.snapshot]
        return {
            "claims": len(self.copies),
            "copied": len(moved),
            "keptOnly": sum(1 for v in self.copies if v.kept_snapshot and not v.snapshot),
            "notCopied": [
                {"claim": f"{v.namespace}/{v.claim}", "reason": v.skip}
                for v in self.copies
                if v.skip
            ],
            "bytes": sum(v.total_bytes for v in moved),
            "uploadedBytes": sum(v.incremental_bytes for v in moved),
            "files": sum(v.files for v in moved),
            "seconds": round(self.seconds, 2),
            "fromSnapshots": sum(1 for v in moved if v.method == "CSISnapshot"),
            "frozenSeconds": max((v.frozen_seconds for v in self.copies), default=0.0),
            "snapshotCutSeconds": max((v.cut_seconds for v in self.copies), default=0.0),
            "warnings": self.warnings,
        }


def source_claims(
    cluster: Cluster, scope: Scope, mode: str
) -> tuple[list[Claim], list[str], list[str], dict[tuple[str, str], dict[str, Any]]]:
    """The claims in scope with their movers' placement, warnings about data that cannot
    move (hostPath volumes), the simulated nodes no mover may use, and the live pods."""
    claims, live, simulated = claims_and_pods(cluster, scope.explicit_namespaces())

    def wanted(o: dict[str, Any]) -> bool:
        meta = o.get("metadata") or {}
        return scope.namespace_included(meta.get("namespace", ""))

    claims = [
        c
        for c in claims
        if wanted(c)
        and scope.selector.matches(c["metadata"].get("labels"))
        and (c["metadata"].get("labels") or {}).get(EXCLUDE_LABEL) != "true"
    ]
    live = [p for p in live if wanted(p)]
    warnings = [
        f"pod {where} mounts hostPath {path} (volume {vol}): its data stays on the node"
        for where, vol, path in host_path_volumes(live)
    ]
    pods = {(p["metadata"]["namespace"], p["metadata"]["name"]): p for p in live}
    planned = plan_claims(claims, live, mode, set(simulated))
    if any(c.moves and not c.node for c in planned):
        place_by_workload(planned, workloads(cluster, scope.explicit_namespaces()))
    return planned, warnings, simulated, pods


def place_by_workload(claims: list[Claim], objs: list[dict[str, Any]]) -> None:
    """Claims no running pod mounts get their workload's constraints (else a mover could
    wait for a node it does not tolerate, or land where the workload never runs)."""
    found = placements(
        (o["metadata"]["namespace"], o, spec) for o in objs if (spec := pod_spec(o)) is not None
    )
    for c in claims:
        p = found.get((c.namespace, c.name))
        if c.moves and not c.node and p is not None:
            c.node_selector, c.affinity, c.tolerations = p.node_selector, p.affinity, p.tolerations


def backup_volumes(
    cluster: Cluster,
    store: Store,
    scope: Scope,
    opts: VolumeBackupOptions,
    progress: Progress | None = None,
) -> VolumeBackupSummary:
    """Copy every moving claim's data, a pod's claims between its pre and post hooks
    (or with its workload scaled down).  A failed copy does not stop the others: it is
    listed as not copied and in `failures`; the records are returned, not written."""
    started = time.monotonic()
    claims, warnings, simulated, pods = source_claims(cluster, scope, opts.mode)
    methods = _methods(cluster, claims, opts.snapshot_volumes)
    for c in claims:
        if c.skip and c.skip not in ("none", "not-annotated", "excluded", "unbound"):
            warnings.append(f"claim {c.key}: data not copied: {c.reason}")
    copies = [VolumeCopy.of(c) for c in claims]
    run = Copies(cluster, opts, progress or (lambda _e, _n: None), simulated, pods, warnings)
    run.has_repository = lambda ns: repository_exists(store, ns)
    for c, v in zip(claims, copies, strict=True):
        m = methods[c.key]
        if c.moves and opts.snapshot_volumes == "always" and not m.snapshot:
            v.skip = f"--snapshot-volumes always, and {m.reason}"
            run.failures.append((c.namespace, f"data of claim {c.name} not copied: {v.skip}"))
        elif c.moves:  # a pod's claims together (its hooks), a claim without a pod alone
            run.groups.setdefault((c.namespace, c.pod or f"claim/{c.name}"), []).append((c, v, m))
    settings = run.start()
    for w in warnings:
        log.warning("%s", w)
    copied = {v.namespace for v in copies if v.snapshot or v.manifest_snapshot}
    kept = any(v.kept_snapshot for v in copies)
    return VolumeBackupSummary(
        copies,
        warnings,
        time.monotonic() - started,
        run.failures,
        # the records: when data was copied, or every claim's fate was asked for (all)
        records.files(opts.backup, copies, settings.access if settings else None)
        if copied or kept or (opts.mode == "all" and copies)
        else {},
        records.repository_blobs(store, copied) if copied else {},
    )


def _methods(cluster: Cluster, claims: list[Claim], mode: str) -> dict[str, Method]:
    """claim key -> how its data is read.  A ReadWriteOncePod claim in use moves when it
    is snapshotted: the mover mounts the snapshot's temporary claim, not the claim."""
    wanted = mode != "never" and any(c.moves or c.skip == "rwop-in-use" for c in claims)
    support = snapshots.support(cluster) if wanted else SnapshotSupport()
    out = {c.key: method(c.storage_class, support, mode) for c in claims}
    for c in claims:
        if c.skip == "rwop-in-use" and out[c.key].snapshot:
            c.skip = ""
    return out
