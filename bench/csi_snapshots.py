"""CSI snapshots next to their alternatives (issue 21), on the source plane's real node with
the CSI hostpath driver: 1 GiB of mixed files (15 x 64 MiB random, 16,384 x 4 KiB) in a
claim of class csi-hostpath-sc, its pod carrying Velero pre/post hook annotations.

- how long the hooks hold the app: a copy of the live claim (the hooks span the whole
  copy) next to a copy from a snapshot (they span the snapshot's cut, which is the
  driver's: judged is what the hold adds to it);
- a same-cluster clone of the claim into another namespace from the snapshot a backup
  kept, until a pod reads it, next to a mover restoring the same data from the bucket
  into a fresh claim, until a pod reads it.
Prints a table, writes bench/results/csi_snapshots.json, exits 3 on a missed target.

    .venv/bin/python bench/csi_snapshots.py
"""

from __future__ import annotations

import os
import sys
import time
import uuid
from typing import Any

from targets import SNAPSHOTS, conclude, verdicts  # bench/ is sys.path[0] as a script
from volume_data import FILL, NODE, ROOT, TOLERATE, env_file

from migrate.cluster import Cluster, ClusterRef
from migrate.pipeline.steps_data import mover_settings
from migrate.store import open_store
from migrate.transform.scope import Scope
from migrate.volumes import clone
from migrate.volumes.backup import VolumeBackupOptions, backup_volumes
from migrate.volumes.mover import run_mover
from migrate.volumes.mover_pod import MoverJob
from migrate.volumes.records import VolumeCopy

CLASS = "csi-hostpath-sc"
HOOKS = {
    "pre.hook.backup.velero.io/command": '["/bin/sh", "-c", "sync"]',
    "post.hook.backup.velero.io/command": '["/bin/sh", "-c", "true"]',
}
READ = "test -e /data/small/x16383 && ls /data/big | wc -l"


def claim(name: str, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": name},
            "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": CLASS,
                     "resources": {"requests": {"storage": "2Gi"}}, **(extra or {})}}  # fmt: skip


def pod(name: str, pvc: str, cmd: str, notes: dict[str, str] | None = None) -> dict[str, Any]:
    probe = {"exec": {"command": ["test", "-e", "/tmp/done"]}, "periodSeconds": 1}
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "annotations": notes or {}},
            "spec": {"restartPolicy": "Never", "terminationGracePeriodSeconds": 1,
                     "nodeSelector": NODE, "tolerations": TOLERATE,
                     "containers": [{"name": "app", "image": os.environ["KUBE_MIGRATE_TEST_IMAGE"],
                                     "command": ["sh", "-c", cmd], "readinessProbe": probe,
                                     "volumeMounts": [{"name": "d", "mountPath": "/data"}]}],
                     "volumes": [{"name": "d",
                                  "persistentVolumeClaim": {"claimName": pvc}}]}}  # fmt: skip


def wait_pod(c: Cluster, ns: str, name: str, ready: bool, timeout: float = 900) -> None:
    """Until the pod is Ready (`ready`) or has Succeeded."""
    pods = c.discovery().resolve("pods")
    deadline = time.monotonic() + timeout
    while True:
        status = c.get(pods, name, ns).get("status") or {}
        phase = status.get("phase")
        conds = {x["type"]: x["status"] for x in status.get("conditions") or []}
        if (ready and conds.get("Ready") == "True") or (not ready and phase == "Succeeded"):
            return
        if phase == "Failed" or time.monotonic() > deadline:
            raise SystemExit(f"bench: pod {ns}/{name} {phase}")
        time.sleep(0.2)


def backup(c: Cluster, bucket: str, ns: str, name: str, **opts: Any) -> VolumeCopy:
    store = open_store(bucket)
    settings = lambda: mover_settings(store, None, None, create=True)  # noqa: E731
    s = backup_volumes(c, store, Scope(include_namespaces=(ns,)),
                       VolumeBackupOptions(name, "all", settings, **opts))  # fmt: skip
    (copy,) = s.copies
    if copy.skip:
        raise SystemExit(f"bench: backup {name}: {copy.skip}")
    return copy


def namespace(c: Cluster, name: str) -> None:
    nss = c.discovery().resolve("namespaces")
    c.create(nss, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})


def main() -> None:
    env_file()
    c = Cluster(ClusterRef(os.environ["KUBE_MIGRATE_SOURCE_KUBECONFIG"]), name="source")
    tag = uuid.uuid4().hex[:6]
    ns, via_clone, via_mover = f"cs-{tag}", f"cs-{tag}-clone", f"cs-{tag}-mover"
    bucket = f"{os.environ['KUBE_MIGRATE_BUCKET'].rstrip('/')}/bench-csi-{tag}"
    pvcs, pods = c.discovery().resolve("persistentvolumeclaims"), c.discovery().resolve("pods")
    out: dict[str, Any] = {"namespace": ns}
    for n in (ns, via_clone, via_mover):
        namespace(c, n)
    try:
        c.create(pvcs, claim("data"), ns)
        c.create(pods, pod("app", "data", FILL, HOOKS), ns)
        wait_pod(c, ns, "app", ready=True)
        live = backup(c, bucket, ns, "live", snapshot_volumes="never")
        out["liveFrozenSeconds"], out["liveCopySeconds"] = live.frozen_seconds, live.seconds
        snap = backup(c, bucket, ns, "snap", snapshot_volumes="always")
        out["snapshotFrozenSeconds"] = snap.frozen_seconds
        out["snapshotCutSeconds"] = snap.cut_seconds
        out["snapshotCopySeconds"] = snap.seconds
        kept = backup(c, bucket, ns, "kept", snapshot_volumes="always", move_data=False)
        out["dataBytes"] = kept.total_bytes

        start = time.monotonic()  # the clone: bound in its namespace, made, read
        (one,) = clone.plan_clones([kept], [(ns, "data", via_clone)], f"bench-{tag}").values()
        clone.prepare(c, one)
        c.create(pvcs, one.claim_patch(claim("data")), via_clone)
        c.create(pods, pod("read", "data", READ), via_clone)
        wait_pod(c, via_clone, "read", ready=False)
        out["cloneSeconds"] = time.monotonic() - start
        clone.finish(c, [one])

        start = time.monotonic()  # the mover: a fresh claim filled from the bucket, read
        c.create(pvcs, claim("data"), via_mover)
        settings = mover_settings(open_store(bucket), None, None, create=False)
        job = MoverJob("restore", via_mover, "data", ["--snapshot", snap.snapshot],
                       tolerations=TOLERATE, node_selector=NODE, repository=ns)  # fmt: skip
        out["moverRestoreSeconds"] = float(run_mover(c, job, settings)["seconds"])
        c.create(pods, pod("read", "data", READ), via_mover)
        wait_pod(c, via_mover, "read", ready=False)
        out["moverRestoreWallSeconds"] = time.monotonic() - start
    finally:
        for n in (via_clone, via_mover, ns):
            c.delete(c.discovery().resolve("namespaces"), n)
        open_store(bucket).delete_prefix("kopia/")
    out = {k: round(v, 4) if isinstance(v, float) else v for k, v in out.items()}
    conclude(out, verdicts(out, SNAPSHOTS), str(ROOT / "bench" / "results" / "csi_snapshots.json"))


if __name__ == "__main__":
    sys.exit(main())
