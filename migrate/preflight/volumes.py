"""What happens to each claim's data: re-provisioned empty, kept by reference, shared
with the source, or refused.  Read before anything moves, because a clone bound to the
production disk is the one mistake a migration tool must never make quietly.

The decisions are migrate.transform.volumes' (the restore's own), applied to the claims
of the backup in scope; this module only looks up what the target has (PVs of the same
name, StorageClasses and their provisioners, CSIStorageCapacity where a driver publishes
it) and words the findings.  A re-provisioned claim's finding says whether its data
moves: from a backup, by its recorded copy (and whether the target claim, after
--pvc-size-mappings, holds it: the restore refuses one that does not); from a live
source, by what the backup's movers would do (transform.claims, --volumes).
"""

from __future__ import annotations

import math
from typing import Any

from migrate.preflight.context import Context
from migrate.preflight.findings import Collect, Finding, obj_ref
from migrate.preflight.references import DEFAULT_CLASS, REF_TYPES
from migrate.transform.claims import NOT_MOVED, Claim, plan_claims
from migrate.transform.snapshot_method import LIVE, method
from migrate.transform.volumes import OUTCOMES, PV_POLICIES, REFUSED_HINT, claim_outcome
from migrate.units import human_bytes, quantity

PVS = "persistentvolumes"
CLASSES = REF_TYPES["StorageClass"][0]
CAPACITIES = "csistoragecapacities.storage.k8s.io"

# outcome -> how to change it (empty: nothing to do)
FIXES: dict[str, str] = {
    "reprovisioned-empty": "copy the data with the backup (--volumes all, or annotate the pods: "
    "README 'Volume data'), or --pv-policy retain-as-is for storage both clusters reach "
    "(Retain volumes only)",
    "pending-no-provisioner": "create a PersistentVolume for the claim on the target, or map "
    "the class to a provisioned one (--storage-class-mappings)",
    "kept-by-reference": "",
    "shared-with-source": "use --pv-policy reprovision for a copy with its own volumes; keep "
    "retain-as-is only when the source stops using this storage",
    "missing-volume": "create that PersistentVolume on the target, or use --pv-policy reprovision",
    "refused": REFUSED_HINT,
    "unbound": "",
}
assert set(FIXES) == set(OUTCOMES)

# A re-provisioned claim whose data the backup would not copy: NOT_MOVED key ->
# (severity, how to make it move; "" when nothing should)
NOT_MOVED_FIXES: dict[str, tuple[str, str]] = {
    "none": ("warning", "copy the data: --volumes all (or annotated)"),
    "not-annotated": (
        "warning",
        "list the volume in the pod's backup.velero.io/backup-volumes, or --volumes all",
    ),
    "excluded": ("info", ""),  # the user's own choice
    "unbound": ("info", ""),
    "block": ("warning", "copy it with the application's own tools (or a CSI snapshot)"),
    "rwop-in-use": (
        "warning",
        "stop its pod during the backup (scale its workload to 0), so a mover may mount the claim",
    ),
    "terminating": ("info", ""),
    "simulated-node": ("info", ""),
}
assert set(NOT_MOVED_FIXES) == set(NOT_MOVED)

# A claim copied live although snapshots were asked for: LIVE key -> how to snapshot it
LIVE_FIXES: dict[str, str] = {
    "never": "",  # the user's own choice
    "no-api": "install the snapshot CRDs and snapshot-controller (external-snapshotter) for "
    "point-in-time copies; the live copy is as consistent as the pod's hooks",
    "no-class": "",
    "no-snapshot-class": "create a VolumeSnapshotClass for the driver if it supports snapshots; "
    "the live copy is as consistent as the pod's hooks",
}
assert set(LIVE_FIXES) == set(LIVE)


def _provisioners(ctx: Context) -> tuple[dict[str, str], str | None]:
    """StorageClass name -> provisioner (the restore's classes over the target's), and the
    target's default class."""
    out: dict[str, str] = {}
    default = None
    for sc in ctx.target.objects(CLASSES) or []:
        meta = sc.get("metadata") or {}
        out[meta.get("name", "")] = str(sc.get("provisioner", ""))
        if (meta.get("annotations") or {}).get(DEFAULT_CLASS) == "true":
            default = meta.get("name")
    for it in ctx.by_kind("StorageClass"):
        out[it.key[3]] = str(it.read_desired().get("provisioner", ""))
    return out, default


def _claim_class(desired: dict[str, Any], default: str | None) -> str | None:
    spec = desired.get("spec") or {}
    return str(spec["storageClassName"]) if "storageClassName" in spec else default


def check_volumes(ctx: Context) -> list[Finding]:
    c = Collect("volume")
    policy = ctx.options.pv_policy
    claims = [it for it in ctx.items if it.kind == "PersistentVolumeClaim"]
    if not claims:
        return []
    pvs = {it.key[3]: it.read_obj() for it in ctx.items if it.kind == "PersistentVolume"}
    on_target = ctx.target.names(PVS) or set()
    provisioners, default = _provisioners(ctx)
    movers = _movers(ctx, claims)
    free = _largest_free(ctx)
    for it in claims:
        # the claim as the restore would create it; a refused one was never made desired
        stored, desired = it.read_obj(), it.read_desired()
        if it.skip is not None:
            desired = {**stored, "metadata": desired["metadata"]}
        volume = (stored.get("spec") or {}).get("volumeName")
        cls = _claim_class(desired, default)
        outcome = claim_outcome(
            stored,
            pvs.get(volume) if volume else None,
            policy,
            pv_on_target=bool(volume) and volume in on_target,
            class_provisioner=provisioners.get(cls) if cls else None,
        )
        severity, what = OUTCOMES[outcome]
        where = f" (StorageClass {cls})" if cls and "provision" in outcome else ""
        message = f"--pv-policy {policy}: {what}{where}"
        ref = obj_ref(it.kind, it.target_ns, it.key[3])
        request = str(((desired.get("spec") or {}).get("resources") or {})
                      .get("requests", {}).get("storage") or "")  # fmt: skip
        room = free.get(cls or "")
        if outcome == "reprovisioned-empty" and room is not None and quantity(request) > room:
            c.add("warning", f"asks {request}, more than any topology segment of StorageClass "
                  f"{cls} has free ({human_bytes(room)}, CSIStorageCapacity)",
                  "free capacity, or map the class", ref)  # fmt: skip
        data = _data(ctx, (it.namespace or "", it.name), movers, request)
        if data is not None and outcome == "reprovisioned-empty":
            severity, sentence, fix = data
            asks = f", asking {request}" if request else ""
            message = f"--pv-policy {policy}: re-provisioned{where}{asks}; {sentence}"
            c.add(severity, message, fix, ref)
            continue
        if volume and outcome in ("shared-with-source", "refused", "kept-by-reference"):
            ref += f" -> PersistentVolume {volume}"
        c.add(severity, message, FIXES[outcome], ref)
    found = c.findings()
    if found:
        found.append(Finding("info", "volume", f"--pv-policy {policy}: {PV_POLICIES[policy]}"))
    return found


def _movers(ctx: Context, claims: list[Any]) -> dict[tuple[str, str], Claim]:
    """(namespace, claim) -> what the backup does with its data (with --volumes)."""
    if ctx.options.volumes == "none":
        return {}
    pods = [it.read_obj() for it in ctx.items if it.kind == "Pod"]
    planned = plan_claims([it.read_obj() for it in claims], pods, ctx.options.volumes)
    return {(c.namespace, c.name): c for c in planned}


def _data(
    ctx: Context, key: tuple[str, str], movers: dict[tuple[str, str], Claim], request: str
) -> tuple[str, str, str] | None:
    """(severity, sentence, fix) about a re-provisioned claim's data; None: nothing is
    known of it (no copy recorded or planned: the outcome's own finding stands)."""
    recorded = ctx.options.data_bytes
    if recorded is not None:  # a backup: what it holds
        snap = ctx.options.kept.get(key)
        if key not in recorded and snap and ctx.options.same_cluster:
            return "info", f"made from the backup's kept VolumeSnapshot {snap} (a clone)", ""
        if key not in recorded and snap:
            sentence = (f"it starts empty: its data is only in the VolumeSnapshot {snap} the "
                        "backup kept in its source cluster, which is not this one")  # fmt: skip
            return "warning", sentence, "restore into that cluster, or back up moving the data"
        if key not in recorded:
            return None
        size = recorded[key]
        if request and quantity(request) < size:
            fit = f"{math.ceil(size * 1.1 / 2**20)}Mi"
            return ("error", f"too small: its data is {human_bytes(size)}; the restore refuses "
                    "it before writing anything",
                    f"--pvc-size-mappings {key[0]}/{key[1]}:{fit} (or larger)")  # fmt: skip
        return "info", f"its data ({human_bytes(size)}) is restored by a mover pod first", ""
    c = movers.get(key)
    if c is None:
        return None
    if not c.moves:
        severity, fix = NOT_MOVED_FIXES[c.skip]
        return severity, f"it starts empty, its data does not move: {c.reason}", fix
    facts = f"{c.size or '?'}, {'/'.join(c.access_modes) or '?'}, {c.volume_mode}"
    where = f"on node {c.node}, next to pod {c.pod}" if c.node else "placed by the scheduler"
    return _how(ctx, c, f"its data ({facts}) is copied by a mover pod {where}")


def _how(ctx: Context, c: Claim, copied: str) -> tuple[str, str, str]:
    """A moving claim's finding with how its data is read (from a CSI snapshot or live)."""
    support, mode = ctx.options.snapshot_support, ctx.options.snapshot_volumes
    if support is None:
        return "info", copied, ""
    m = method(c.storage_class, support, mode)
    if m.snapshot and ctx.options.same_cluster:
        return ("info", f"made from a CSI snapshot of the source claim (VolumeSnapshotClass "
                f"{m.snapshot_class}), a clone in this same cluster: no data through the bucket",
                "")  # fmt: skip
    if m.snapshot:
        return "info", f"{copied} from a CSI snapshot (VolumeSnapshotClass {m.snapshot_class})", ""
    if mode == "always":
        return ("error", f"its data cannot be copied: --snapshot-volumes always, and {m.reason}",
                LIVE_FIXES[m.live] or "--snapshot-volumes auto copies it live")  # fmt: skip
    return "info", f"{copied} live (not from a snapshot: {m.reason})", LIVE_FIXES[m.live]


def _largest_free(ctx: Context) -> dict[str, float]:
    """StorageClass -> the most any one topology segment has free, for the classes whose
    CSI driver publishes CSIStorageCapacity (most do not: then nothing is known)."""
    out: dict[str, float] = {}
    for cap in ctx.target.objects(CAPACITIES) or []:
        cls = str(cap.get("storageClassName") or "")
        free = quantity(cap.get("maximumVolumeSize") or cap.get("capacity") or 0)
        if cls:
            out[cls] = max(out.get(cls, 0.0), free)
    return out
