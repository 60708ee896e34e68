"""`verify --data`: are the restored claims' files the backed-up ones?

At backup time the mover records every file's path, type, size, mode, owner, symlink
target and sha256 (the manifest, a kopia snapshot of its own in the same encrypted
repository).  Here a mover on the target mounts the restored claim read-only, computes the
same manifest and diffs the two in the pod; only the differences (the first N per claim)
come back.  No peer checks the data it moved; a migration that cannot prove its bytes
arrived is not done.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from migrate.cluster import Cluster
from migrate.transform.claims import plan_claims
from migrate.transform.workloads import pod_spec
from migrate.volumes.live import claims_and_pods, workloads
from migrate.volumes.mover import run_mover
from migrate.volumes.mover_pod import MoverJob, MoverSettings
from migrate.volumes.records import VolumeCopy
from migrate.volumes.restore import placements


@dataclass
class ClaimCheck:
    claim: str  # target namespace/name
    files: int = 0
    bytes: int = 0
    differences: int = 0
    diffs: list[dict[str, Any]] = field(default_factory=list)
    error: str = ""

    @property
    def ok(self) -> bool:
        return not self.differences and not self.error

    def as_dict(self) -> dict[str, Any]:
        return {
            "claim": self.claim,
            "files": self.files,
            "bytes": self.bytes,
            "differences": self.differences,
            "diffs": self.diffs,
            **({"error": self.error} if self.error else {}),
        }


def verify_data(
    cluster: Cluster,
    copies: list[VolumeCopy],
    namespace: Callable[[str], str],
    settings: MoverSettings,
    *,
    max_diffs: int = 20,
    parallelism: int = 8,
) -> list[ClaimCheck]:
    """One check per copied claim, in claim order; `namespace` maps a source namespace to
    the target's."""
    todo = [v for v in copies if v.manifest_snapshot and not v.skip]
    claims, pods, simulated = claims_and_pods(
        cluster, sorted({namespace(v.namespace) for v in todo})
    )
    users = {c.key: c for c in plan_claims(claims, pods, "all")}
    spaces = sorted({namespace(v.namespace) for v in todo})
    placed = placements(
        (o["metadata"]["namespace"], o, spec)
        for o in workloads(cluster, spaces)
        if (spec := pod_spec(o)) is not None
    )

    def one(v: VolumeCopy) -> ClaimCheck:
        ns = namespace(v.namespace)
        check = ClaimCheck(f"{ns}/{v.claim}")
        job = MoverJob(
            "verify",
            ns,
            v.claim,
            ["--manifest-snapshot", v.manifest_snapshot, "--max-diffs", str(max_diffs)],
            repository=v.namespace,
            avoid_nodes=simulated,
        )
        user = users.get(check.claim)
        if user is not None and user.node:  # next to the pod that mounts it (ReadWriteOnce)
            job.node, job.tolerations = user.node, user.tolerations
        elif (p := placed.get((ns, v.claim))) is not None:  # where its workload would run
            job.node_selector, job.affinity, job.tolerations = (
                p.node_selector,
                p.affinity,
                p.tolerations,
            )
        result = run_mover(cluster, job, settings)
        check.files = int(result.get("files") or 0)
        check.bytes = int(result.get("bytes") or 0)
        check.differences = int(result.get("differences") or 0)
        check.diffs = list(result.get("diffs") or [])[:max_diffs]
        return check

    with ThreadPoolExecutor(max_workers=max(1, parallelism)) as pool:
        return list(pool.map(one, todo))
