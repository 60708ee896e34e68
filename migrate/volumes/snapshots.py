"""CSI snapshots of a backup's claims: a VolumeSnapshot per claim, a temporary claim made
from it for the mover to read, both removed afterwards.

Why: a copy of a volume an app keeps writing is only as consistent as its hooks, and the
hooks would hold the app frozen for the whole copy.  A snapshot is cut in the driver in
one step; the app is frozen until the cut (`status.creationTime`, the CSI spec's point
in time: a driver may still be uploading when it reports the cut, so post hooks do not
wait for `readyToUse`), and the copy reads the snapshot at leisure.

Everything made here is labelled with the backup and `kube-migrate.io/temporary`, so an
interrupted backup's leftovers (a crash, SIGKILL) are found by label and removed by the
next attempt, `--resume` and `backup gc`.  A snapshot kept as a restore point
(--keep-snapshots) loses the temporary label and keeps the backup's, so `backup delete`
finds it.
"""

from __future__ import annotations

import contextlib
import logging
import secrets
import time
from typing import Any

from migrate.cluster import APIResource, Cluster
from migrate.errors import ClusterError, Forbidden, NotFound, PartialFailure, WaitTimeout
from migrate.transform.claims import Claim
from migrate.transform.exclusions import EXCLUDE_LABEL
from migrate.transform.snapshot_method import GROUP, SnapshotSupport
from migrate.units import quantity
from migrate.volumes.mover_pod import BACKUP_LABEL, MANAGED

log = logging.getLogger(__name__)
TEMPORARY = "kube-migrate.io/temporary"  # made for one copy, removed after it
KEPT = "kube-migrate.io/kept-snapshot"  # a snapshot kept as a restore point
SNAPSHOT_OF = "kube-migrate.io/snapshot-of"  # the claim a snapshot or temporary claim copies
SELECTED_NODE = "volume.kubernetes.io/selected-node"  # what the scheduler sets on a claim
CUT_TIMEOUT = 300.0  # a snapshot not cut after this fails its claim's copy
READY_TIMEOUT = 3600.0  # a cut snapshot not usable after this fails its claim's copy
GONE_SECONDS = 60.0  # a deleted temporary claim or snapshot should be gone by then
NUDGE = "kube-migrate.io/deleting"  # touched on a snapshot whose deletion waits on the controller
FAST_POLL_SECONDS = 60.0  # a snapshot's status is read every 50 ms this long, then every 1 s


def support(cluster: Cluster) -> SnapshotSupport:
    """The cluster's VolumeSnapshotClasses and StorageClasses (nothing when the snapshot
    API is not served or may not be read: then every claim is copied live, and says so)."""
    disc = cluster.discovery()
    vsc, sc = disc.get(GROUP, "volumesnapshotclasses"), disc.get("storage.k8s.io", "storageclasses")
    if disc.get(GROUP, "volumesnapshots") is None or vsc is None or sc is None:
        return SnapshotSupport()
    try:
        return SnapshotSupport.of(True, cluster.list(vsc), cluster.list(sc))
    except Forbidden:
        log.warning("VolumeSnapshotClasses or StorageClasses may not be listed: copying live")
        return SnapshotSupport()


def _res(cluster: Cluster, group: str, resource: str) -> Any:
    res = cluster.discovery().get(group, resource)
    if res is None:
        raise PartialFailure(f"the cluster does not serve {resource}.{group or 'core'}")
    return res


def _labels(backup: str, claim: str) -> dict[str, str]:
    """Ours, and out of every backup (ours and Velero's): a leftover of a crash must not
    be copied as if it were the user's."""
    return {**MANAGED, BACKUP_LABEL: backup, TEMPORARY: "true", SNAPSHOT_OF: claim,
            EXCLUDE_LABEL: "true"}  # fmt: skip


def take(cluster: Cluster, c: Claim, vsclass: str, backup: str) -> str:
    """Create a VolumeSnapshot of the claim; returns its name."""
    name = f"km-{c.name}"[:55].rstrip("-.") + f"-{secrets.token_hex(3)}"
    obj = {
        "apiVersion": f"{GROUP}/v1",
        "kind": "VolumeSnapshot",
        "metadata": {"name": name, "namespace": c.namespace, "labels": _labels(backup, c.name)},
        "spec": {
            "volumeSnapshotClassName": vsclass,
            "source": {"persistentVolumeClaimName": c.name},
        },
    }
    cluster.create(_res(cluster, GROUP, "volumesnapshots"), obj, c.namespace)
    return name


def wait(cluster: Cluster, namespace: str, name: str, ready: bool) -> dict[str, Any]:
    """The snapshot's status once it is cut (`ready`: once usable); PartialFailure with the
    driver's message when it reports an error, WaitTimeout when it takes too long."""
    res = _res(cluster, GROUP, "volumesnapshots")
    start = time.monotonic()
    deadline = start + (READY_TIMEOUT if ready else CUT_TIMEOUT)
    while True:
        status = cluster.get(res, name, namespace).get("status") or {}
        error = (status.get("error") or {}).get("message")
        if error:
            raise PartialFailure(f"VolumeSnapshot {namespace}/{name}: {error}")
        if status.get("readyToUse") or (not ready and status.get("creationTime")):
            return dict(status)
        if time.monotonic() > deadline:
            what = "usable" if ready else "cut"
            raise WaitTimeout(f"VolumeSnapshot {namespace}/{name} not {what} in time",
                              hint="see `kubectl describe volumesnapshot` and the CSI "
                              "driver's csi-snapshotter log")  # fmt: skip
        # the app is held until the cut is seen: look often while that is likely soon
        time.sleep(0.05 if time.monotonic() - start < FAST_POLL_SECONDS else 1.0)


def content(cluster: Cluster, status: dict[str, Any]) -> tuple[str, str, str]:
    """(VolumeSnapshotContent, the driver's snapshot handle, driver) of a snapshot's
    status; empty strings for what cannot be read."""
    name = str(status.get("boundVolumeSnapshotContentName") or "")
    if not name:
        return "", "", ""
    try:
        vsc = cluster.get(_res(cluster, GROUP, "volumesnapshotcontents"), name)
    except (NotFound, Forbidden):
        return name, "", ""
    handle = str((vsc.get("status") or {}).get("snapshotHandle") or "")
    return name, handle, str((vsc.get("spec") or {}).get("driver") or "")


def node_of(cluster: Cluster, c: Claim) -> str:
    """The node the claim's volume lives on when its PV is pinned to one (node-local
    drivers: hostpath, local; their topology keys differ): the first node whose labels
    satisfy the PV's node affinity, when exactly one does; "" otherwise."""
    if c.node:
        return c.node
    try:
        pv = cluster.get(_res(cluster, "", "persistentvolumes"), c.volume)
        required = ((pv.get("spec") or {}).get("nodeAffinity") or {}).get("required") or {}
        terms = required.get("nodeSelectorTerms") or []
        nodes = list(cluster.list(_res(cluster, "", "nodes"))) if terms else []
    except (NotFound, Forbidden):
        return ""
    fits = [
        n["metadata"]["name"]
        for n in nodes
        if any(_matches(n["metadata"].get("labels") or {}, t) for t in terms)
    ]
    return fits[0] if len(fits) == 1 else ""


def _matches(labels: dict[str, str], term: dict[str, Any]) -> bool:
    """A node selector term's matchExpressions (In, NotIn, Exists, DoesNotExist)."""
    for e in term.get("matchExpressions") or []:
        key, op, values = e.get("key", ""), e.get("operator"), e.get("values") or []
        ok = {
            "In": key in labels and labels[key] in values,
            "NotIn": labels.get(key) not in values,
            "Exists": key in labels,
            "DoesNotExist": key not in labels,
        }.get(str(op), False)
        if not ok:
            return False
    return bool(term.get("matchExpressions"))


def temporary_claim(
    cluster: Cluster, c: Claim, snapshot: str, status: dict[str, Any], backup: str
) -> str:
    """A claim made from the snapshot for the mover to read (ReadWriteOnce, the source's
    class, at least the snapshot's restore size); returns its name."""
    size = c.size or "1Gi"
    restore = status.get("restoreSize")
    if restore and quantity(restore) > quantity(size):
        size = str(restore)
    name = f"km-snap-{c.name}"[:55].rstrip("-.") + f"-{secrets.token_hex(3)}"
    meta: dict[str, Any] = {
        "name": name,
        "namespace": c.namespace,
        "labels": _labels(backup, c.name),
    }
    node = node_of(cluster, c)
    if node:  # what the scheduler would set: binds a WaitForFirstConsumer class there
        meta["annotations"] = {SELECTED_NODE: node}
    obj = {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": meta,
        "spec": {
            "accessModes": ["ReadWriteOnce"],
            "storageClassName": c.storage_class,
            "resources": {"requests": {"storage": size}},
            "dataSource": {"apiGroup": GROUP, "kind": "VolumeSnapshot", "name": snapshot},
        },
    }
    cluster.create(_res(cluster, "", "persistentvolumeclaims"), obj, c.namespace)
    return name


def remove(cluster: Cluster, namespace: str, snapshot: str = "", claim: str = "") -> None:
    """Delete a temporary claim and snapshot (their volume and content go with them, the
    class's deletion policy permitting: a Retain content is switched to Delete first).

    The claim goes first, and the snapshot only once it is gone: the snapshot-controller
    keeps a snapshot a pending claim is being made from, and does not look again when
    that claim goes (external-snapshotter v8), so the snapshot is nudged (an annotation:
    an update it handles) until it is gone too."""
    if claim:
        pvcs = _res(cluster, "", "persistentvolumeclaims")
        cluster.delete(pvcs, claim, namespace)
        _gone(cluster, pvcs, claim, namespace)
    if snapshot:
        vs_res = _res(cluster, GROUP, "volumesnapshots")
        try:
            vs = cluster.get(vs_res, snapshot, namespace)
        except NotFound:
            return
        content = (vs.get("status") or {}).get("boundVolumeSnapshotContentName")
        if content:
            _delete_policy(cluster, content)
        cluster.delete(vs_res, snapshot, namespace)
        _gone(cluster, vs_res, snapshot, namespace, nudge=True)


def _gone(
    cluster: Cluster, res: APIResource, name: str, namespace: str, nudge: bool = False
) -> None:
    """Wait (up to GONE_SECONDS) until the object is deleted; a warning if it is not."""
    deadline = time.monotonic() + GONE_SECONDS
    nudged = time.monotonic()
    while time.monotonic() < deadline:
        try:
            cluster.get(res, name, namespace)
        except NotFound:
            return
        if nudge and time.monotonic() - nudged > 2.0:
            nudged = time.monotonic()
            with contextlib.suppress(NotFound):
                patch = {"metadata": {"annotations": {NUDGE: str(int(time.time()))}}}
                cluster.patch(res, name, patch, namespace)
        time.sleep(0.2)
    log.warning("%s %s/%s still being deleted after %.0fs (its label lets `backup gc` "
                "find it)", res.kind, namespace, name, GONE_SECONDS)  # fmt: skip


def _delete_policy(cluster: Cluster, content: str) -> None:
    res = _res(cluster, GROUP, "volumesnapshotcontents")
    try:
        vsc = cluster.get(res, content)
        if (vsc.get("spec") or {}).get("deletionPolicy") != "Delete":
            cluster.patch(res, content, {"spec": {"deletionPolicy": "Delete"}})
    except (NotFound, Forbidden):
        pass


def keep(cluster: Cluster, namespace: str, snapshot: str) -> None:
    """Make a snapshot a kept restore point: no longer temporary."""
    patch = {"metadata": {"labels": {TEMPORARY: None, KEPT: "true"}}}
    cluster.patch(_res(cluster, GROUP, "volumesnapshots"), snapshot, patch, namespace)


def leftovers(cluster: Cluster, backup: str | None, namespaces: list[str] | None = None) -> int:
    """Delete the temporary snapshots and claims of `backup` (None: of every backup) that
    an interrupted attempt left; returns how many were deleted."""
    selector = f"{TEMPORARY}=true" + (f",{BACKUP_LABEL}={backup}" if backup else "")
    count = 0
    disc = cluster.discovery()
    for group, resource in (("", "persistentvolumeclaims"), (GROUP, "volumesnapshots")):
        res = disc.get(group, resource)
        if res is None:
            continue
        for ns in namespaces if namespaces is not None else [None]:
            try:
                found = list(cluster.list(res, ns, label_selector=selector))
            except (Forbidden, ClusterError) as exc:
                log.warning("temporary %s not listed: %s", resource, exc)
                continue
            for o in found:
                meta = o["metadata"]
                log.info("deleting temporary %s %s/%s of an interrupted backup",
                         resource, meta["namespace"], meta["name"])  # fmt: skip
                if resource == "volumesnapshots":
                    remove(cluster, meta["namespace"], snapshot=meta["name"])
                else:
                    remove(cluster, meta["namespace"], claim=meta["name"])
                count += 1
    return count


def delete_kept(cluster: Cluster, backup: str) -> list[str]:
    """Delete the snapshots kept for `backup` (backup delete); returns namespace/name each."""
    res = cluster.discovery().get(GROUP, "volumesnapshots")
    if res is None:
        return []
    out = []
    for o in cluster.list(res, None, label_selector=f"{KEPT}=true,{BACKUP_LABEL}={backup}"):
        meta = o["metadata"]
        remove(cluster, meta["namespace"], snapshot=meta["name"])
        out.append(f"{meta['namespace']}/{meta['name']}")
    return out
