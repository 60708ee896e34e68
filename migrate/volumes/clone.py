"""Same-cluster clones: a restored claim made straight from the VolumeSnapshot its backup
kept in the source namespace (--keep-snapshots), so the data never goes through the
bucket and the driver copies it (or shares blocks) in its own time.

A claim may only be made from a snapshot in its own namespace, so the kept snapshot is
bound a second time in the target namespace the way CSI pre-provisioned snapshots are: a
VolumeSnapshotContent naming the same snapshot handle, deletion policy Retain, and a
VolumeSnapshot bound to it, which becomes the new claim's dataSource.  Once the claim
is bound both are deleted; Retain keeps the snapshot itself, which stays the backup's
(removed by `backup delete`).  The names are derived from the restore, so a resumed
restore finds its own.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import time
from dataclasses import dataclass
from typing import Any

from migrate.cluster import Cluster
from migrate.errors import AlreadyExists, NotFound
from migrate.transform.exclusions import EXCLUDE_LABEL
from migrate.transform.snapshot_method import GROUP
from migrate.volumes.mover_pod import MANAGED
from migrate.volumes.records import VolumeCopy
from migrate.volumes.snapshots import SELECTED_NODE

log = logging.getLogger(__name__)
CLONE_OF = "kube-migrate.io/clone-of"  # on the objects made for a clone: the restore's name
BIND_TIMEOUT = 180.0  # seconds a cloned claim has to be bound before its objects are left


@dataclass(frozen=True)
class Clone:
    """One claim restored from a kept snapshot."""

    target_ns: str
    claim: str
    snapshot: str  # the VolumeSnapshot made in the target namespace
    content: str  # the VolumeSnapshotContent behind it
    handle: str
    driver: str
    snapshot_class: str
    restore: str
    node: str = ""  # where the snapshot lives: the clone is provisioned there at once

    def claim_patch(self, desired: dict[str, Any]) -> dict[str, Any]:
        """The restored claim made from the clone's snapshot: its dataSource, no volume
        name, and (what the scheduler would set) the node to provision it on now, so it
        is bound without waiting for its first pod."""
        spec = desired.setdefault("spec", {})
        spec.pop("volumeName", None)
        spec.pop("dataSourceRef", None)
        spec["dataSource"] = self.data_source
        if self.node:
            notes = desired.setdefault("metadata", {}).setdefault("annotations", {})
            notes[SELECTED_NODE] = self.node
        return desired

    @property
    def data_source(self) -> dict[str, str]:
        return {"apiGroup": GROUP, "kind": "VolumeSnapshot", "name": self.snapshot}


def plan_clones(
    copies: list[VolumeCopy], claims: list[tuple[str, str, str]], restore: str
) -> dict[tuple[str, str], Clone]:
    """(target namespace, claim) -> its Clone, for each of `claims` (source namespace,
    claim, target namespace) whose backup kept a snapshot with a known handle."""
    kept = {(v.namespace, v.claim): v for v in copies if v.kept_snapshot and v.snapshot_handle}
    out = {}
    for src_ns, name, dst_ns in claims:
        v = kept.get((src_ns, name))
        if v is None:
            continue
        digest = hashlib.sha256(f"{restore}/{dst_ns}/{name}".encode()).hexdigest()[:8]
        stem = f"km-clone-{name}"[:50].rstrip("-.")
        out[(dst_ns, name)] = Clone(
            dst_ns, name, f"{stem}-{digest}", f"{stem}-{digest}", v.snapshot_handle,
            v.driver, v.snapshot_class, restore, v.node,
        )  # fmt: skip
    return out


def _res(cluster: Cluster, resource: str) -> Any:
    res = cluster.discovery().get(GROUP, resource)
    assert res is not None, f"{resource}.{GROUP} not served"
    return res


def prepare(cluster: Cluster, c: Clone) -> None:
    """Bind the kept snapshot in the target namespace (both objects; existing ones, from
    an interrupted attempt, are kept)."""
    labels = {**MANAGED, CLONE_OF: c.restore, EXCLUDE_LABEL: "true"}
    content = {
        "apiVersion": f"{GROUP}/v1",
        "kind": "VolumeSnapshotContent",
        "metadata": {"name": c.content, "labels": labels},
        "spec": {
            "deletionPolicy": "Retain",  # the snapshot stays the backup's
            "driver": c.driver,
            "source": {"snapshotHandle": c.handle},
            "volumeSnapshotClassName": c.snapshot_class,
            "volumeSnapshotRef": {"namespace": c.target_ns, "name": c.snapshot},
        },
    }
    snapshot = {
        "apiVersion": f"{GROUP}/v1",
        "kind": "VolumeSnapshot",
        "metadata": {"name": c.snapshot, "namespace": c.target_ns, "labels": labels},
        "spec": {
            "volumeSnapshotClassName": c.snapshot_class,
            "source": {"volumeSnapshotContentName": c.content},
        },
    }
    for res, obj, ns in (
        (_res(cluster, "volumesnapshotcontents"), content, None),
        (_res(cluster, "volumesnapshots"), snapshot, c.target_ns),
    ):
        with contextlib.suppress(AlreadyExists):
            cluster.create(res, obj, ns)
    log.info("claim %s/%s: cloned from snapshot %s", c.target_ns, c.claim, c.handle)


def finish(cluster: Cluster, clones: list[Clone], timeout: float = BIND_TIMEOUT) -> list[str]:
    """Once each cloned claim is bound, delete the objects made for it; a warning for
    each claim not bound in time (its objects stay, labelled, until it is)."""
    pvcs = cluster.discovery().get("", "persistentvolumeclaims")
    assert pvcs is not None
    deadline = time.monotonic() + timeout
    todo, warnings = list(clones), []
    while todo:
        left = []
        for c in todo:
            try:
                phase = (cluster.get(pvcs, c.claim, c.target_ns).get("status") or {}).get("phase")
            except NotFound:
                phase = "gone"
            if phase in ("Bound", "gone"):
                cluster.delete(_res(cluster, "volumesnapshots"), c.snapshot, c.target_ns)
                cluster.delete(_res(cluster, "volumesnapshotcontents"), c.content)
            else:
                left.append(c)
        todo = left
        if todo and time.monotonic() > deadline:
            warnings += [
                f"cloned claim {c.target_ns}/{c.claim} not bound after {timeout:.0f}s: "
                f"VolumeSnapshot {c.snapshot} and VolumeSnapshotContent {c.content} stay "
                f"until it is (delete them then: label {CLONE_OF}={c.restore})"
                for c in todo
            ]
            break
        if todo:
            time.sleep(1.0)
    return warnings
