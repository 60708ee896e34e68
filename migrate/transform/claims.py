"""Which PersistentVolumeClaims have their data moved, by whom, and why not when not.

Pure logic over plain objects (the claims and pods of the source), shared by backup
(what to copy and on which node), preflight (what will happen to each volume) and the
reports.  A claim whose data does not move is never dropped silently: it gets a reason
from NOT_MOVED, which every report prints.

Velero's conventions hold: a pod's `backup.velero.io/backup-volumes` (opt-in, with
`--volumes annotated`) and `backup.velero.io/backup-volumes-excludes` (opt-out, always)
name the pod's *volumes*, not the claims.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from typing import Any

OPT_IN = "backup.velero.io/backup-volumes"
OPT_OUT = "backup.velero.io/backup-volumes-excludes"
MODES = ("all", "annotated", "none")

# Why a claim's data does not move.  Key -> the sentence every report prints.
NOT_MOVED: dict[str, str] = {
    # --volumes none: objects only, by request
    "none": "--volumes none: objects only",
    # --volumes annotated and no pod lists the volume in backup.velero.io/backup-volumes
    "not-annotated": f"not listed in any pod's {OPT_IN} (--volumes annotated)",
    # a pod lists it in backup.velero.io/backup-volumes-excludes
    "excluded": f"excluded by a pod's {OPT_OUT}",
    # no volume behind the claim yet: nothing was ever written
    "unbound": "not bound to a volume: holds no data yet",
    # a raw block device: a file-level mover cannot read it (CSI snapshots can)
    "block": "volumeMode Block: a file-level copy cannot read it",
    # ReadWriteOncePod in use: a second pod (the mover) may not mount it
    "rwop-in-use": "ReadWriteOncePod and in use: the mover cannot mount it beside its pod "
    "(use --quiesce scale-down)",
    # the claim is being deleted
    "terminating": "being deleted",
    # its pod runs on a simulated node (kwok): nothing runs there, nor would a mover
    "simulated-node": "used by a pod on a simulated node (kwok): no kubelet to run a mover",
}


@dataclass
class Claim:
    """One claim and what happens to its data."""

    namespace: str
    name: str
    size: str  # the claim's request, e.g. "1Gi"
    access_modes: tuple[str, ...]
    volume_mode: str
    storage_class: str
    volume: str  # the bound PV's name, "" when unbound
    pod: str = ""  # a running pod that mounts it ("" when none)
    pod_volume: str = ""  # that pod's volume name for the claim
    node: str = ""  # where that pod runs: the mover runs there too
    tolerations: list[dict[str, Any]] = field(default_factory=list)  # the pod's
    # with no running pod: the scheduling constraints of the workload that mounts it
    node_selector: dict[str, str] = field(default_factory=dict)
    affinity: dict[str, Any] = field(default_factory=dict)
    skip: str = ""  # a NOT_MOVED key, "" when the data moves

    @property
    def moves(self) -> bool:
        return not self.skip

    @property
    def reason(self) -> str:
        return NOT_MOVED.get(self.skip, self.skip)

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclass
class _Use:
    pod: dict[str, Any]
    volume: str
    opted_in: bool
    opted_out: bool


def _csv(text: str | None) -> set[str]:
    return {p.strip() for p in (text or "").split(",") if p.strip()}


def _uses(pods: Iterable[dict[str, Any]]) -> dict[tuple[str, str], list[_Use]]:
    """(namespace, claim) -> the live pods mounting it, running ones first."""
    out: dict[tuple[str, str], list[_Use]] = {}
    for pod in pods:
        meta, spec = pod.get("metadata") or {}, pod.get("spec") or {}
        if (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
            continue
        notes = meta.get("annotations") or {}
        opt_in, opt_out = _csv(notes.get(OPT_IN)), _csv(notes.get(OPT_OUT))
        for vol in spec.get("volumes") or []:
            claim = (vol.get("persistentVolumeClaim") or {}).get("claimName")
            if claim:
                use = _Use(pod, vol["name"], vol["name"] in opt_in, vol["name"] in opt_out)
                out.setdefault((meta.get("namespace", ""), claim), []).append(use)
    for uses in out.values():
        uses.sort(key=lambda u: (u.pod.get("status") or {}).get("phase") != "Running")
    return out


def plan_claims(
    claims: Iterable[dict[str, Any]],
    pods: Iterable[dict[str, Any]],
    mode: str,
    simulated: Collection[str] = (),
) -> list[Claim]:
    """Every claim, in namespace/name order, with its mover's placement or its skip."""
    uses = _uses(pods)
    out = []
    for pvc in claims:
        meta, spec = pvc.get("metadata") or {}, pvc.get("spec") or {}
        ns, name = meta.get("namespace", ""), meta.get("name", "")
        c = Claim(
            namespace=ns,
            name=name,
            size=str(((spec.get("resources") or {}).get("requests") or {}).get("storage", "")),
            access_modes=tuple(spec.get("accessModes") or ()),
            volume_mode=spec.get("volumeMode") or "Filesystem",
            storage_class=spec.get("storageClassName") or "",
            volume=spec.get("volumeName") or "",
        )
        users = uses.get((ns, name), [])
        if users:
            first = users[0]
            c.pod, c.pod_volume = first.pod["metadata"]["name"], first.volume
            c.node = (first.pod.get("spec") or {}).get("nodeName") or ""
            c.tolerations = list((first.pod.get("spec") or {}).get("tolerations") or [])
        c.skip = _skip(pvc, c, users, mode) or ("simulated-node" if c.node in simulated else "")
        out.append(c)
    out.sort(key=lambda c: (c.namespace, c.name))
    return out


def _skip(pvc: dict[str, Any], c: Claim, users: list[_Use], mode: str) -> str:
    """The first NOT_MOVED key that applies, in the table's order of precedence."""
    phase = (pvc.get("status") or {}).get("phase")
    checks = (
        ("none", mode == "none"),
        ("excluded", any(u.opted_out for u in users)),
        ("not-annotated", mode == "annotated" and not any(u.opted_in for u in users)),
        ("terminating", bool((pvc.get("metadata") or {}).get("deletionTimestamp"))),
        ("unbound", not c.volume or phase not in (None, "Bound")),
        ("block", c.volume_mode == "Block"),
        ("rwop-in-use", "ReadWriteOncePod" in c.access_modes and bool(c.pod)),
    )
    return next((key for key, hit in checks if hit), "")


def host_path_volumes(pods: Iterable[dict[str, Any]]) -> list[tuple[str, str, str]]:
    """(namespace/pod, volume, host path) of every hostPath volume: their data never
    moves (it belongs to a node, not to the app) and the reports say so."""
    out = []
    for pod in pods:
        meta = pod.get("metadata") or {}
        for vol in (pod.get("spec") or {}).get("volumes") or []:
            if "hostPath" in vol:
                where = f"{meta.get('namespace', '')}/{meta.get('name', '')}"
                out.append((where, vol["name"], (vol["hostPath"] or {}).get("path", "")))
    return out
