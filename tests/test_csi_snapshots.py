"""Each plane's real node runs a CSI driver with snapshots (hack/devenv/csi.py): a claim of
the `csi-hostpath-sc` class gets a real volume, a VolumeSnapshot of it becomes readyToUse,
and claims restored from the snapshot or cloned from the claim hold the data, each as of
its own moment; deleting the snapshot deletes its VolumeSnapshotContent (class Delete).

Against other clusters these tests run when they have that StorageClass and
VolumeSnapshotClass and a real node as test_real_nodes.py describes; else they skip.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest

from tests.conftest import Env
from tests.test_real_nodes import SIDES, Kube, kube_for, pod

STORAGE_CLASS = "csi-hostpath-sc"
SNAPSHOT_CLASS = "csi-hostpath-snapclass"
DRIVER = "hostpath.csi.k8s.io"
WAIT = 90.0


def claim(name: str, source: dict[str, str] | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "storageClassName": STORAGE_CLASS,
        "accessModes": ["ReadWriteOnce"],
        "resources": {"requests": {"storage": "1Mi"}},
    }
    if source:
        spec["dataSource"] = source
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": name},
        "spec": spec,
    }


def with_claim(name: str, image: str, script: str, claim_name: str) -> dict[str, Any]:
    return pod(
        name,
        image,
        script,
        volumes=[{"name": "d", "persistentVolumeClaim": {"claimName": claim_name}}],
        container={"volumeMounts": [{"name": "d", "mountPath": "/data"}]},
        restartPolicy="Never",
    )


def wait_for(what: str, probe: Any, k: Kube, ns: str) -> Any:
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        got = probe()
        if got:
            return got
        time.sleep(0.3)
    events = k.run("get", "events", "-n", ns, check=False)
    raise AssertionError(f"{what} not there after {WAIT:.0f}s; events:\n{events}")


def run_pods(k: Kube, ns: str, pods: dict[str, dict[str, Any]]) -> dict[str, str]:
    """Create the pods at once, wait until each Succeeded; their logs."""
    for p in pods.values():
        k.create(ns, p)
    for name in pods:
        k.wait_pod(ns, name, ("Succeeded",))
    return {name: k.run("logs", "-n", ns, name).strip() for name in pods}


@SIDES
def test_snapshot_restore_and_clone_on_the_real_node(
    dev_env: Env, side: str, image: str, request: pytest.FixtureRequest
) -> None:
    k = kube_for(dev_env, side)
    if not k.run("get", "storageclass", STORAGE_CLASS, "--ignore-not-found", "-o", "name"):
        pytest.skip(f"no StorageClass {STORAGE_CLASS} on {side}")
    ns = request.getfixturevalue(f"{side}_ns")
    before, after = uuid.uuid4().hex, uuid.uuid4().hex

    k.create(ns, claim("data"))
    run_pods(k, ns, {"writer": with_claim("writer", image, f"echo {before} > /data/f", "data")})
    pvc = k.json("get", "pvc", "-n", ns, "data")
    pv = k.json("get", "pv", pvc["spec"]["volumeName"])
    assert pv["spec"]["csi"]["driver"] == DRIVER, pv["spec"]
    assert pv["spec"]["storageClassName"] == STORAGE_CLASS

    k.create(
        ns,
        {
            "apiVersion": "snapshot.storage.k8s.io/v1",
            "kind": "VolumeSnapshot",
            "metadata": {"name": "snap"},
            "spec": {
                "volumeSnapshotClassName": SNAPSHOT_CLASS,
                "source": {"persistentVolumeClaimName": "data"},
            },
        },
    )

    def ready() -> dict[str, Any] | None:
        snap = k.json("get", "volumesnapshot", "-n", ns, "snap")
        return snap if snap.get("status", {}).get("readyToUse") else None

    snap = wait_for("VolumeSnapshot readyToUse", ready, k, ns)
    content = snap["status"]["boundVolumeSnapshotContentName"]
    vsc = k.json("get", "volumesnapshotcontent", content)
    assert vsc["spec"]["driver"] == DRIVER and vsc["status"]["snapshotHandle"], vsc

    # the claim changes after the snapshot: the restore shows the old content, a clone the new
    run_pods(k, ns, {"change": with_claim("change", image, f"echo {after} > /data/f", "data")})
    snapshot_source = {"apiGroup": "snapshot.storage.k8s.io", "kind": "VolumeSnapshot"}
    k.create(ns, claim("restored", {**snapshot_source, "name": "snap"}))
    k.create(ns, claim("clone", {"kind": "PersistentVolumeClaim", "name": "data"}))
    logs = run_pods(
        k,
        ns,
        {
            "read-restored": with_claim("read-restored", image, "cat /data/f", "restored"),
            "read-clone": with_claim("read-clone", image, "cat /data/f", "clone"),
        },
    )
    assert logs == {"read-restored": before, "read-clone": after}
    claims = ("data", "restored", "clone")
    volumes = [k.json("get", "pvc", "-n", ns, c)["spec"]["volumeName"] for c in claims]
    assert len(set(volumes)) == 3, volumes

    k.run("delete", "pod", "-n", ns, "--all", "--wait=true")
    k.run("delete", "volumesnapshot", "-n", ns, "snap", "--wait=true")
    k.run("delete", "pvc", "-n", ns, *claims, "--wait=true")

    def gone() -> bool:
        left = [("volumesnapshotcontent", content)] + [("pv", v) for v in volumes]
        return not any(k.run("get", *r, "--ignore-not-found", "-o", "name") for r in left)

    wait_for(f"deletion of {content} and the PVs", gone, k, ns)
