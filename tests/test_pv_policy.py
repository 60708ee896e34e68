"""--pv-policy on the real planes: a restore never binds the target to the source's
storage by accident.  A source namespace holds two claims bound to static PVs, one
`Retain`, one `Delete`; each test backs it up into MinIO and restores or checks it with
the real CLI, then reads what the target's API server holds.
"""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from migrate.cluster import Cluster
from migrate.errors import NotFound

from .conftest import Env
from .helpers import apply, run_cli, wait_for


@dataclass(frozen=True)
class Volumes:
    ns: str
    keep: str  # PV with reclaimPolicy Retain, bound to claim "keep"
    drop: str  # PV with reclaimPolicy Delete, bound to claim "drop"
    backup: str
    bucket: str


def _pv(name: str, policy: str, ns: str, claim: str) -> dict[str, object]:
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": {"name": name},
        "spec": {
            "capacity": {"storage": "1Gi"},
            "accessModes": ["ReadWriteOnce"],
            "persistentVolumeReclaimPolicy": policy,
            "storageClassName": "",
            "hostPath": {"path": f"/tmp/{name}"},
            "claimRef": {"namespace": ns, "name": claim},
        },
    }


def _pvc(name: str, ns: str, volume: str) -> dict[str, object]:
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": name, "namespace": ns},
        "spec": {
            "accessModes": ["ReadWriteOnce"],
            "storageClassName": "",
            "volumeName": volume,
            "resources": {"requests": {"storage": "1Gi"}},
        },
    }


def _delete_pv(c: Cluster, name: str) -> None:
    with contextlib.suppress(NotFound):
        c.delete(c.discovery().resolve("persistentvolumes"), name)


@pytest.fixture
def volumes(
    dev_env: Env, source: Cluster, target: Cluster, source_ns: str, bucket_url: str
) -> Iterator[Volumes]:
    u = uuid.uuid4().hex[:8]
    keep, drop = f"km-keep-{u}", f"km-drop-{u}"
    apply(
        source,
        [
            _pv(keep, "Retain", source_ns, "keep"),
            _pv(drop, "Delete", source_ns, "drop"),
            _pvc("keep", source_ns, keep),
            _pvc("drop", source_ns, drop),
        ],
    )
    pvc_res = source.discovery().resolve("persistentvolumeclaims")
    for claim in ("keep", "drop"):
        wait_for(
            f"claim {claim} bound on the source",
            lambda c=claim: (
                source.get(pvc_res, c, source_ns).get("status", {}).get("phase") == "Bound"
            ),
            60,
        )
    name = f"vol-{u}"
    done = run_cli(
        "backup", "create", name, "--bucket", bucket_url,
        "--kubeconfig", dev_env.source_kubeconfig, "--include-namespaces", source_ns,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    yield Volumes(source_ns, keep, drop, name, bucket_url)
    for c in (source, target):
        for pv in (keep, drop):
            _delete_pv(c, pv)


def _restore(
    v: Volumes, kubeconfig: str, dst: str, *flags: str
) -> tuple[int, dict[tuple[str, str], dict[str, str]], str]:
    """restore create -o json into namespace dst: exit code, results by (kind, name)."""
    done = run_cli(
        "restore", "create", f"r-{dst}", "--from-backup", v.backup, "--bucket", v.bucket,
        "--kubeconfig", kubeconfig, "--namespace-mappings", f"{v.ns}:{dst}", "-o", "json",
        *flags,
    )  # fmt: skip
    rows: dict[tuple[str, str], dict[str, str]] = {}
    if done.stdout.strip():
        for row in json.loads(done.stdout)["objects"]:
            rows[(row["kind"], row["name"])] = row
    return done.returncode, rows, done.stderr


def _exists(c: Cluster, resource: str, name: str, ns: str | None = None) -> bool:
    try:
        c.get(c.discovery().resolve(resource), name, ns)
    except NotFound:
        return False
    return True


@pytest.fixture
def dst(target: Cluster) -> Iterator[str]:
    name = f"km-vol-{uuid.uuid4().hex[:8]}"
    yield name
    with contextlib.suppress(NotFound):
        target.delete(target.discovery().resolve("namespaces"), name)


def test_default_reprovisions_every_claim(
    dev_env: Env, target: Cluster, volumes: Volumes, dst: str
) -> None:
    code, rows, err = _restore(volumes, dev_env.target_kubeconfig, dst)
    assert code == 0, err
    for pv in (volumes.keep, volumes.drop):
        row = rows[("PersistentVolume", pv)]
        assert row["result"] == "skipped"
        assert "--pv-policy reprovision" in row["message"]
        assert not _exists(target, "persistentvolumes", pv)
    pvc_res = target.discovery().resolve("persistentvolumeclaims")
    for claim in ("keep", "drop"):
        assert rows[("PersistentVolumeClaim", claim)]["result"] == "created"
        live = target.get(pvc_res, claim, dst)
        assert "volumeName" not in live["spec"]  # no binding to the source's volume
        notes = live["metadata"].get("annotations") or {}
        assert "pv.kubernetes.io/bind-completed" not in notes
    # verify applies the same policy: the claims are equal, the PVs not expected
    done = run_cli(
        "verify", "--source-kubeconfig", dev_env.source_kubeconfig,
        "--target-kubeconfig", dev_env.target_kubeconfig, "--include-namespaces", volumes.ns,
        "--namespace-mappings", f"{volumes.ns}:{dst}", "-o", "json",
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(done.stdout)
    names = {(o["kind"], o["name"]) for o in report["objects"]}
    assert ("PersistentVolumeClaim", "keep") in names
    assert not any(kind == "PersistentVolume" for kind, _ in names)


def test_retain_as_is_restores_retain_and_refuses_delete(
    dev_env: Env, target: Cluster, volumes: Volumes, dst: str
) -> None:
    code, rows, err = _restore(
        volumes, dev_env.target_kubeconfig, dst, "--pv-policy", "retain-as-is"
    )
    assert code == 5, err  # a partial failure: the refused ones
    keep = rows[("PersistentVolume", volumes.keep)]
    assert keep["result"] == "created"
    live = target.get(target.discovery().resolve("persistentvolumes"), volumes.keep)
    assert live["spec"]["hostPath"]["path"] == f"/tmp/{volumes.keep}"
    assert live["spec"]["claimRef"]["namespace"] == dst
    pvc_res = target.discovery().resolve("persistentvolumeclaims")
    assert target.get(pvc_res, "keep", dst)["spec"]["volumeName"] == volumes.keep

    drop = rows[("PersistentVolume", volumes.drop)]
    assert drop["result"] == "failed"
    assert "reclaimPolicy Delete" in drop["message"]
    claim = rows[("PersistentVolumeClaim", "drop")]
    assert claim["result"] == "failed"
    assert volumes.drop in claim["message"]
    assert not _exists(target, "persistentvolumes", volumes.drop)
    assert not _exists(target, "persistentvolumeclaims", "drop", dst)


def test_retain_as_is_into_its_own_cluster_needs_yes(
    dev_env: Env, source: Cluster, volumes: Volumes
) -> None:
    clone = f"km-clone-{uuid.uuid4().hex[:8]}"
    try:
        code, rows, err = _restore(
            volumes, dev_env.source_kubeconfig, clone, "--pv-policy", "retain-as-is"
        )
        assert code == 2, err
        assert "is the cluster backup" in err and "--yes" in err
        assert not rows
        assert not _exists(source, "namespaces", clone)  # nothing was written
        # the same restore into the same cluster under the default policy is fine
        code, rows, err = _restore(volumes, dev_env.source_kubeconfig, clone)
        assert code == 0, err
        assert rows[("PersistentVolumeClaim", "keep")]["result"] == "created"
    finally:
        with contextlib.suppress(NotFound):
            source.delete(source.discovery().resolve("namespaces"), clone)


def _volume_findings(dev_env: Env, ns: str, *flags: str) -> tuple[int, list[dict[str, str]]]:
    done = run_cli(
        "preflight", "--source-kubeconfig", dev_env.source_kubeconfig,
        "--target-kubeconfig", dev_env.target_kubeconfig, "--include-namespaces", ns,
        "-o", "json", *flags,
    )  # fmt: skip
    assert done.stdout, done.stderr
    doc = json.loads(done.stdout)
    return done.returncode, [f for f in doc["findings"] if f["check"] == "volume"]


def test_preflight_says_what_happens_to_each_claims_data(dev_env: Env, volumes: Volumes) -> None:
    code, found = _volume_findings(dev_env, volumes.ns)
    assert code == 0
    empty = [f for f in found if "starts empty" in f["message"]]
    assert len(empty) == 1 and empty[0]["severity"] == "warning"
    assert "backup.velero.io/backup-volumes" in empty[0]["message"]  # why: no pod lists it
    assert "--volumes all" in empty[0]["fix"]
    assert {o.split()[1] for o in empty[0]["objects"]} == {
        f"{volumes.ns}/keep",
        f"{volumes.ns}/drop",
    }

    code, found = _volume_findings(dev_env, volumes.ns, "--pv-policy", "retain-as-is")
    assert code == 3  # the Delete volume that would be shared is an error
    by_sev = {f["severity"]: f for f in found if f["objects"]}
    assert by_sev["error"]["objects"] == [
        f"PersistentVolumeClaim {volumes.ns}/drop -> PersistentVolume {volumes.drop}"
    ]
    assert "shared with the source" in by_sev["warning"]["message"]
    assert by_sev["warning"]["objects"] == [
        f"PersistentVolumeClaim {volumes.ns}/keep -> PersistentVolume {volumes.keep}"
    ]
