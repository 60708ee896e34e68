"""What a restore does with PersistentVolumes, so a clone never shares the source's disks.

A bound PV names real storage: a cloud disk, an NFS export, a CSI volume handle.  Restored
as it is, it makes the target use the *same* storage as the source, and deleting the
target's claim under `reclaimPolicy: Delete` lets the driver delete the source's data.
So the default policy restores no PV at all: each claim loses its binding and the target
provisions a fresh volume from its (mapped) StorageClass.  `retain-as-is` is for moves
where sharing is the point (the source is retired, the storage is reachable from both):
only `Retain` volumes are restored, anything the driver may delete is refused.

Restore (plan), verify (sanitize, what is compared) and preflight (what happens to each
claim's data) read these tables, so all three tell the same story.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# --pv-policy -> what it does (the help text and the preflight report say this).
PV_POLICIES: dict[str, str] = {
    "reprovision": "no PersistentVolume is restored; every claim loses its binding and gets "
    "a fresh, empty volume from its (mapped) StorageClass on the target",
    "retain-as-is": "PersistentVolumes with reclaimPolicy Retain are restored unchanged (the "
    "target uses the same storage as the source); any other policy is refused",
}
DEFAULT_PV_POLICY = "reprovision"

# Under retain-as-is, a PV's reclaim policy -> None (restored) or why it is refused.
RETAIN_AS_IS: dict[str, str | None] = {
    "Retain": None,
    "Delete": "reclaimPolicy Delete: deleting the target's claim would let the driver delete "
    "the source's data",
    "Recycle": "reclaimPolicy Recycle: releasing the target's claim would wipe the source's data",
}
REFUSED_HINT = (
    "set persistentVolumeReclaimPolicy: Retain on the source PV, or use --pv-policy reprovision"
)

# Claim fields that bind it to one PV; under reprovision the target binds it afresh (the
# bind annotations go in every mode: transform.sanitize.STRIP_ANNOTATIONS).
PVC_BINDING_FIELDS: tuple[str, ...] = ("volumeName",)

# The outcomes preflight reports per claim, with their severity.
OUTCOMES: dict[str, tuple[str, str]] = {
    # outcome: (severity, what happens to the data)
    "reprovisioned-empty": (
        "warning",
        "re-provisioned empty: a new volume from its StorageClass; the source's data follows "
        "only if the backup copies it (--volumes, README 'Volume data')",
    ),
    "pending-no-provisioner": (
        "warning",
        "re-provisioned, but its StorageClass has no provisioner on the target: the claim "
        "stays Pending until an administrator creates a PV for it",
    ),
    "kept-by-reference": (
        "info",
        "kept by reference: binds the target's existing PersistentVolume of that name",
    ),
    "shared-with-source": (
        "warning",
        "shared with the source: the target's PV names the same storage (Retain), writes on "
        "either cluster land in the same data",
    ),
    "missing-volume": (
        "warning",
        "names a PersistentVolume that neither the backup nor the target holds: the claim "
        "stays Pending",
    ),
    "refused": ("error", "refused: sharing it would risk the source's data"),
    "unbound": ("info", "not bound on the source: the target provisions it as usual"),
}
NO_PROVISIONER = "kubernetes.io/no-provisioner"


def reclaim_policy(pv: dict[str, Any]) -> str:
    return str((pv.get("spec") or {}).get("persistentVolumeReclaimPolicy") or "Delete")


@dataclass(frozen=True)
class PVDecision:
    skip: str | None = None  # not restored, on purpose
    refused: str | None = None  # not restored, and the restore says it failed


def pv_decision(pv: dict[str, Any], policy: str) -> PVDecision:
    """What a restore under `policy` does with this PersistentVolume."""
    if policy == "reprovision":
        return PVDecision(skip="--pv-policy reprovision: its claim gets a new volume")
    reason = RETAIN_AS_IS.get(reclaim_policy(pv), "an unknown reclaim policy")
    return PVDecision(refused=f"{reason}; {REFUSED_HINT}" if reason else None)


def unbind_claim(pvc: dict[str, Any], policy: str) -> None:
    """A claim to create under `policy`, in place: under reprovision it names no PV."""
    if policy == "reprovision":
        spec = pvc.get("spec") or {}
        for key in PVC_BINDING_FIELDS:
            spec.pop(key, None)


def claim_outcome(
    pvc: dict[str, Any],
    pv: dict[str, Any] | None,
    policy: str,
    *,
    pv_on_target: bool,
    class_provisioner: str | None,
) -> str:
    """The OUTCOMES key for a claim of the backup.  `pv`: its bound PV as backed up (None
    when the backup does not hold it); `pv_on_target`: a PV of that name exists on the
    target already; `class_provisioner`: of the claim's (mapped) class on the target or in
    the restore (None: unknown)."""
    volume = (pvc.get("spec") or {}).get("volumeName")
    if policy == "reprovision" or not volume:
        if class_provisioner == NO_PROVISIONER:
            return "pending-no-provisioner"
        return "reprovisioned-empty" if volume else "unbound"
    if pv_on_target:
        return "kept-by-reference"
    if pv is None:
        return "missing-volume"
    return "refused" if pv_decision(pv, policy).refused else "shared-with-source"
