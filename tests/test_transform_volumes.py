"""--pv-policy decisions (migrate.transform.volumes) as pure logic: what a restore does with
each PersistentVolume, what it strips from claims, and the data outcome preflight names."""

from __future__ import annotations

from typing import Any

import pytest

from migrate.transform.sanitize import SanitizeOptions, sanitize
from migrate.transform.volumes import (
    NO_PROVISIONER,
    OUTCOMES,
    claim_outcome,
    pv_decision,
)


def pv(policy: str | None) -> dict[str, Any]:
    spec: dict[str, Any] = {"capacity": {"storage": "1Gi"}, "nfs": {"server": "x", "path": "/"}}
    if policy:
        spec["persistentVolumeReclaimPolicy"] = policy
    return {"apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": "v"}, "spec": spec}


def pvc(volume: str | None = "v") -> dict[str, Any]:
    spec: dict[str, Any] = {"storageClassName": "fast", "resources": {}}
    if volume:
        spec["volumeName"] = volume
    notes = {"pv.kubernetes.io/bind-completed": "yes", "volume.kubernetes.io/selected-node": "n1"}
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": "c", "namespace": "a", "annotations": notes},
        "spec": spec,
    }


@pytest.mark.parametrize(
    ("reclaim", "policy", "skipped", "refused"),
    [
        ("Retain", "reprovision", True, False),
        ("Delete", "reprovision", True, False),
        ("Retain", "retain-as-is", False, False),
        ("Delete", "retain-as-is", False, True),
        ("Recycle", "retain-as-is", False, True),
        (None, "retain-as-is", False, True),  # unset: the API server's default is Delete
    ],
)
def test_pv_decision(reclaim: str | None, policy: str, skipped: bool, refused: bool) -> None:
    d = pv_decision(pv(reclaim), policy)
    assert bool(d.skip) is skipped
    assert bool(d.refused) is refused
    if refused:
        assert "Retain" in (d.refused or "")  # the hint says how to make it restorable


def test_reprovision_unbinds_claims_retain_keeps_them() -> None:
    out = sanitize(pvc(), SanitizeOptions())  # the default policy
    assert "volumeName" not in out["spec"]
    assert "annotations" not in out["metadata"]  # bind annotations go in every mode
    kept = sanitize(pvc(), SanitizeOptions(pv_policy="retain-as-is"))
    assert kept["spec"]["volumeName"] == "v"
    assert "annotations" not in kept["metadata"]


@pytest.mark.parametrize(
    ("claim", "volume", "policy", "on_target", "provisioner", "want"),
    [
        (pvc(), pv("Retain"), "reprovision", False, "csi.x", "reprovisioned-empty"),
        (pvc(), pv("Retain"), "reprovision", False, NO_PROVISIONER, "pending-no-provisioner"),
        (pvc(None), None, "reprovision", False, "csi.x", "unbound"),
        (pvc(), pv("Retain"), "retain-as-is", False, "csi.x", "shared-with-source"),
        (pvc(), pv("Delete"), "retain-as-is", False, "csi.x", "refused"),
        (pvc(), pv("Delete"), "retain-as-is", True, "csi.x", "kept-by-reference"),
        (pvc(), None, "retain-as-is", False, "csi.x", "missing-volume"),
        (pvc(None), None, "retain-as-is", False, "csi.x", "unbound"),
    ],
)
def test_claim_outcome(
    claim: dict[str, Any],
    volume: dict[str, Any] | None,
    policy: str,
    on_target: bool,
    provisioner: str,
    want: str,
) -> None:
    got = claim_outcome(
        claim, volume, policy, pv_on_target=on_target, class_provisioner=provisioner
    )
    assert got == want
    assert got in OUTCOMES
    if want == "refused":
        assert OUTCOMES[got][0] == "error"
