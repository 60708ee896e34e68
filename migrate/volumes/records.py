"""The bucket's record of a backup's volume data, in Velero's shape.

`<backup>-podvolumebackups.json.gz` holds one PodVolumeBackup per copied claim with the
fields Velero reads (spec: node, pod, volume, repoIdentifier, uploaderType, tags; status:
phase, snapshotID, path, progress, incrementalBytes), so `velero backup describe
--details` lists our volume copies.  What Velero has no field for (the file manifest's
snapshot, file counts, seconds) rides in annotations.  `<backup>-kube-migrate-volumes
.json.gz` lists every claim in scope with what happened to its data, copied or not and
why: the source of `backup describe`'s volume table and of restore's data level.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from migrate.errors import StoreNotFound
from migrate.store import Store, layout
from migrate.store.mover_access import KOPIA_DIR, MoverAccess
from migrate.transform.claims import Claim

ANNOTATION = "kube-migrate.io/"


@dataclass
class VolumeCopy:
    """One claim's data in the bucket (or why it is not there)."""

    namespace: str
    claim: str
    size: str = ""
    storage_class: str = ""
    access_modes: tuple[str, ...] = ()
    pod: str = ""
    pod_volume: str = ""
    node: str = ""
    skip: str = ""  # the reason its data was not copied ("" = copied)
    snapshot: str = ""  # kopia snapshot id of the data
    manifest_snapshot: str = ""  # kopia snapshot id of its file manifest
    total_bytes: int = 0
    files: int = 0
    dirs: int = 0
    incremental_bytes: int = 0
    seconds: float = 0.0
    started: str = ""
    completed: str = ""
    # Velero's volumeinfo vocabulary: PodVolumeBackup (a file copy of the live claim) or
    # CSISnapshot (a file copy of a VolumeSnapshot of it; snapshotDataMoved)
    method: str = ""
    live_reason: str = ""  # why a copied claim was read live, not from a snapshot
    snapshot_class: str = ""  # the VolumeSnapshotClass of its snapshot
    snapshot_content: str = ""  # its VolumeSnapshotContent
    snapshot_handle: str = ""  # the CSI driver's id of the snapshot
    driver: str = ""  # the CSI driver
    kept_snapshot: str = ""  # the VolumeSnapshot kept in the source (--keep-snapshots)
    # seconds from the pre hook's start to the post hook's end: how long its app was frozen
    # (0 without hooks)
    frozen_seconds: float = 0.0
    # of which the snapshot's cut: from its creation to the driver's reported cut (the
    # driver's own time, plus the snapshot controllers' hand-offs)
    cut_seconds: float = 0.0

    @classmethod
    def of(cls, c: Claim) -> VolumeCopy:
        return cls(
            c.namespace, c.name, c.size, c.storage_class, c.access_modes, c.pod,
            c.pod_volume, c.node, c.reason if c.skip else "",
        )  # fmt: skip

    def record(self, result: dict[str, Any]) -> None:
        """Take a mover's backup result line."""
        self.snapshot = str(result.get("snapshotID", ""))
        self.manifest_snapshot = str(result.get("manifestSnapshotID", ""))
        for name, attr in (("totalBytes", "total_bytes"), ("files", "files"), ("dirs", "dirs")):
            setattr(self, attr, int(result.get(name) or 0))
        self.incremental_bytes = int(result.get("incrementalBytes") or 0)
        self.seconds = round(float(result.get("seconds") or 0.0), 2)


def now() -> str:
    return layout.rfc3339(datetime.now(UTC))


def pod_volume_backup(backup: str, v: VolumeCopy, access: MoverAccess | None) -> dict[str, Any]:
    """Velero's PodVolumeBackup for one copied claim."""
    digest = hashlib.sha256(f"{v.namespace}/{v.claim}".encode()).hexdigest()[:5]
    repo = ""
    if access is not None:
        repo = f"s3:{access.endpoint or 's3.amazonaws.com'}/{access.bucket}/"
        repo += access.repository_prefix(v.namespace).rstrip("/")
    return {
        "apiVersion": "velero.io/v1",
        "kind": "PodVolumeBackup",
        "metadata": {
            "name": f"{backup}-{digest}"[:63],
            "namespace": "velero",
            "labels": {"velero.io/backup-name": backup},
            "annotations": {
                f"{ANNOTATION}claim": v.claim,
                f"{ANNOTATION}manifest-snapshot": v.manifest_snapshot,
                f"{ANNOTATION}files": str(v.files),
                f"{ANNOTATION}seconds": str(v.seconds),
                f"{ANNOTATION}method": v.method,
            },
        },
        "spec": {
            "node": v.node,
            "pod": {"kind": "Pod", "namespace": v.namespace, "name": v.pod},
            "volume": v.pod_volume or v.claim,
            "backupStorageLocation": "default",
            "repoIdentifier": repo,
            "uploaderType": "kopia",
            "tags": {
                "backup": backup,
                "ns": v.namespace,
                "pod": v.pod,
                "pvc": v.claim,
                "volume": v.pod_volume or v.claim,
            },
        },
        "status": {
            "phase": "Completed",
            "path": "/data",
            "snapshotID": v.snapshot,
            "startTimestamp": v.started,
            "completionTimestamp": v.completed,
            "progress": {"totalBytes": v.total_bytes, "bytesDone": v.total_bytes},
            "incrementalBytes": v.incremental_bytes,
        },
    }


def files(backup: str, copies: list[VolumeCopy], access: MoverAccess | None) -> dict[str, bytes]:
    """The backup's volume records, key -> content (the backup writes them with its own)."""
    keys = layout.BackupKeys(backup)
    pvbs = [pod_volume_backup(backup, v, access) for v in copies if v.snapshot]
    return {
        keys.pod_volume_backups: layout.gzip_json(pvbs),
        keys.volumes: layout.gzip_json([asdict(v) for v in copies]),
    }


def repository_blobs(store: Store, namespaces: set[str]) -> dict[str, int]:
    """key -> size of every blob of the namespaces' repositories now: what a restore of
    this backup needs (kopia never rewrites a blob), for the wait for sync to look for."""
    return {o.key: o.size for ns in sorted(namespaces) for o in store.list(f"{KOPIA_DIR}/{ns}/")}


def read(store: Store, backup: str) -> list[VolumeCopy]:
    """Every claim of the backup and its data (empty for a backup without volume data,
    e.g. one Velero or an older kube-migrate wrote)."""
    keys = layout.BackupKeys(backup)
    if not store.exists(keys.volumes):  # a HEAD: most backups have no volume data
        return []
    try:
        data = store.get(keys.volumes)
    except StoreNotFound:
        return []
    docs = layout.gunzip_json(data, keys.volumes)
    out = []
    for d in docs if isinstance(docs, list) else []:
        d["access_modes"] = tuple(d.get("access_modes") or ())
        out.append(VolumeCopy(**{k: v for k, v in d.items() if k in VolumeCopy.__annotations__}))
    return out


def velero_only(store: Store, backup: str) -> str | None:
    """A warning when the backup's volume data is Velero's (PodVolumeBackups, none of ours):
    kube-migrate cannot read that repository (Velero's own password) and does not restore
    it, so its claims arrive empty; None otherwise."""
    keys = layout.BackupKeys(backup)
    if store.exists(keys.volumes) or not store.exists(keys.pod_volume_backups):
        return None
    return (
        f"backup {backup}: its volume data was copied by Velero (PodVolumeBackups); "
        "kube-migrate restores the objects only, the claims arrive empty "
        "(restore the data with `velero restore create --from-backup`)"
    )
