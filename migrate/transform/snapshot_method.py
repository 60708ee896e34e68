"""Which claims are copied from a CSI snapshot and which are copied live, and why.

A copy read from a VolumeSnapshot is one point in time: the app is frozen by its hooks
for the snapshot's cut, not for the whole copy.  That needs the cluster to serve the
VolumeSnapshot API (the snapshot.storage.k8s.io CRDs and a snapshot-controller) and a
VolumeSnapshotClass for the CSI driver that provisioned the claim's StorageClass.  Pure
logic over plain objects, shared by backup (what it does), preflight (what it will do)
and the reports; a claim not snapshotted always gets a reason from LIVE.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

MODES = ("always", "auto", "never")  # --snapshot-volumes
GROUP = "snapshot.storage.k8s.io"
# The annotation marking a driver's default VolumeSnapshotClass (external-snapshotter's).
DEFAULT_CLASS = "snapshot.storage.kubernetes.io/is-default-class"

# Why a claim is copied live (not from a snapshot).  Key -> the sentence reports print;
# {driver} and {sc} are filled in.
LIVE: dict[str, str] = {
    # --snapshot-volumes never: by request
    "never": "--snapshot-volumes never",
    # the snapshot CRDs (and so the snapshot-controller) are not installed
    "no-api": f"the cluster serves no VolumeSnapshot API ({GROUP}/v1 not installed)",
    # the claim names no StorageClass, or one the cluster does not have
    "no-class": "its StorageClass {sc!r} is not in the cluster: no CSI driver known",
    # the class's provisioner has no VolumeSnapshotClass (an in-tree or non-CSI
    # provisioner such as local-path, or a CSI driver without snapshots)
    "no-snapshot-class": "no VolumeSnapshotClass for its provisioner {driver!r}",
}


@dataclass(frozen=True)
class SnapshotSupport:
    """What a cluster offers for snapshots: plain data, read once per backup."""

    served: bool = False  # snapshot.storage.k8s.io/v1 VolumeSnapshots are served
    classes: dict[str, str] = field(default_factory=dict)  # CSI driver -> VolumeSnapshotClass
    provisioners: dict[str, str] = field(default_factory=dict)  # StorageClass -> provisioner

    @classmethod
    def of(
        cls,
        served: bool,
        snapshot_classes: Iterable[dict[str, Any]],
        storage_classes: Iterable[dict[str, Any]],
    ) -> SnapshotSupport:
        """From the cluster's VolumeSnapshotClasses and StorageClasses: a driver's class
        is the one marked default, else the first by name (deterministic)."""
        classes: dict[str, str] = {}
        marked: set[str] = set()
        for vsc in sorted(snapshot_classes, key=lambda o: o["metadata"]["name"]):
            driver, name = str(vsc.get("driver") or ""), vsc["metadata"]["name"]
            default = (vsc["metadata"].get("annotations") or {}).get(DEFAULT_CLASS) == "true"
            if driver and (driver not in classes or (default and driver not in marked)):
                classes[driver] = name
                if default:
                    marked.add(driver)
        provisioners = {
            sc["metadata"]["name"]: str(sc.get("provisioner") or "") for sc in storage_classes
        }
        return cls(served, classes, provisioners)


@dataclass(frozen=True)
class Method:
    """How one claim's data is read: from a snapshot of `snapshot_class`, or live."""

    snapshot_class: str = ""  # "" = live
    live: str = ""  # a LIVE key when live
    driver: str = ""
    storage_class: str = ""

    @property
    def snapshot(self) -> bool:
        return bool(self.snapshot_class)

    @property
    def reason(self) -> str:
        text = LIVE.get(self.live, self.live)
        return text.format(driver=self.driver, sc=self.storage_class) if self.live else ""


def method(storage_class: str, support: SnapshotSupport, mode: str) -> Method:
    """The method for a claim of `storage_class` under --snapshot-volumes `mode`
    (always and auto decide alike; always then refuses a live copy: the caller's part)."""
    driver = support.provisioners.get(storage_class, "")
    if mode == "never":
        return Method(live="never", driver=driver, storage_class=storage_class)
    if not support.served:
        return Method(live="no-api", driver=driver, storage_class=storage_class)
    if storage_class not in support.provisioners:
        return Method(live="no-class", storage_class=storage_class)
    vsclass = support.classes.get(driver, "")
    if not vsclass:
        return Method(live="no-snapshot-class", driver=driver, storage_class=storage_class)
    return Method(snapshot_class=vsclass, driver=driver, storage_class=storage_class)
