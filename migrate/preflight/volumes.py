"""What happens to each claim's data: re-provisioned empty, kept by reference, shared
with the source, or refused.  Read before anything moves, because a clone bound to the
production disk is the one mistake a migration tool must never make quietly.

The decisions are migrate.transform.volumes' (the restore's own), applied to the claims
of the backup in scope; this module only looks up what the target has (PVs of the same
name, StorageClasses and their provisioners) and words the findings.
"""

from __future__ import annotations

from typing import Any

from migrate.preflight.context import Context
from migrate.preflight.findings import Collect, Finding, obj_ref
from migrate.preflight.references import DEFAULT_CLASS, REF_TYPES
from migrate.transform.claims import Claim, plan_claims
from migrate.transform.volumes import OUTCOMES, PV_POLICIES, REFUSED_HINT, claim_outcome

PVS = "persistentvolumes"
CLASSES = REF_TYPES["StorageClass"][0]

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
        mover = movers.get((it.key[2] or "", it.key[3]))
        if mover is not None and mover.moves and outcome == "reprovisioned-empty":
            severity, fix = _data_finding(mover)
            message = f"--pv-policy {policy}: re-provisioned{where}; " + fix
            c.add(severity, message, "", ref)
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


def _data_finding(c: Claim) -> tuple[str, str]:
    """(severity, sentence) of a re-provisioned claim whose data a mover copies."""
    facts = f"{c.size or '?'}, {'/'.join(c.access_modes) or '?'}, {c.volume_mode}"
    where = f"on node {c.node}, next to pod {c.pod}" if c.node else "placed by the scheduler"
    return "info", f"its data ({facts}) is copied by a mover pod {where}"
