"""Deleting a backup's volume data from the bucket's kopia repositories.

A backup's copies are kopia snapshots (the data, and its file manifest) in the repository
of each source namespace; deleting the backup's folder alone leaves them there for good.
Here, before the folder goes, one short-lived mover pod per repository (`kmmover forget`,
no claim mounted, no capability) deletes the snapshots the backup's records name, but any
that another backup in the bucket also names, and runs kopia's full maintenance: it
reclaims the contents no snapshot references once they are older than its safety margin
(a day), so a backup writing into the repository meanwhile never loses a chunk.  The
mover deletes only what the repository still holds: a second run after a failure finishes
the job and reports the rest as already gone.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from migrate.cluster import Cluster
from migrate.errors import NotFound, UsageError
from migrate.store import Store
from migrate.volumes import records
from migrate.volumes.live import simulated_nodes
from migrate.volumes.mover import run_mover
from migrate.volumes.mover_pod import MoverJob, MoverSettings

log = logging.getLogger(__name__)

EVERYWHERE = [{"operator": "Exists"}]  # a tiny pod without a claim: any real node will do


@dataclass
class Forgotten:
    """What a backup's volume data deletion did."""

    deleted: list[str] = field(default_factory=list)  # kopia snapshot ids deleted now
    missing: list[str] = field(default_factory=list)  # named, already gone
    shared: list[str] = field(default_factory=list)  # named by another backup too: kept
    repositories: list[str] = field(default_factory=list)  # kopia/<namespace>/ touched


def snapshot_ids(store: Store, backup: str) -> dict[str, set[str]]:
    """The kopia snapshots of a backup's copies, by the namespace of their repository."""
    return ids_of(records.read(store, backup))


def ids_of(copies: list[records.VolumeCopy]) -> dict[str, set[str]]:
    """snapshot_ids of copies already read."""
    out: dict[str, set[str]] = {}
    for v in copies:
        ids = {i for i in (v.snapshot, v.manifest_snapshot) if i}
        if ids:
            out.setdefault(v.namespace, set()).update(ids)
    return out


def forget(
    cluster: Cluster,
    backup: str,
    ids_by_namespace: dict[str, set[str]],
    cfg: MoverSettings,
    others: set[str],
) -> Forgotten:
    """Delete the backup's kopia snapshots (snapshot_ids) but those in `others` (the ids
    the bucket's other backups name), one mover per repository, in its namespace on
    `cluster` (which must hold it)."""
    out = Forgotten()
    avoid: list[str] | None = None
    namespaces = cluster.discovery().get("", "namespaces")
    assert namespaces is not None
    for ns, ids in sorted(ids_by_namespace.items()):
        out.shared += sorted(ids & others)
        wanted = sorted(ids - others)
        if not wanted:
            continue
        try:
            cluster.get(namespaces, ns)
        except NotFound:
            raise UsageError(
                f"backup {backup}: the mover deleting its volume data runs in namespace "
                f"{ns}, which {cluster.name} does not have",
                hint=f"pass the --kubeconfig/--context of a cluster with namespace {ns} "
                "(the backup's source), or create it there",
            ) from None
        if avoid is None:
            avoid = simulated_nodes(cluster)
        job = MoverJob(
            "forget", ns, "", ["--snapshots", ",".join(wanted)],
            tolerations=EVERYWHERE, avoid_nodes=avoid, repository=ns,
        )  # fmt: skip
        result = run_mover(cluster, job, cfg, attempts=2)
        out.deleted += [str(i) for i in result.get("deleted") or []]
        out.missing += [str(i) for i in result.get("missing") or []]
        out.repositories.append(f"kopia/{ns}/")
        maintenance = str(result.get("maintenance") or "")
        if maintenance.startswith("failed"):
            log.warning("kopia/%s/: snapshots deleted, maintenance %s (the next run reclaims "
                        "their contents)", ns, maintenance)  # fmt: skip
    return out
