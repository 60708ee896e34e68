"""The `cleanup` step: a drill's last, removing what its restore made on the target.

A disaster-recovery drill restores a schedule's newest backup into scratch namespaces of
a test cluster, verifies, reports, and must then leave that cluster as it found it. What
goes is decided by the label every restored object carries (velero.io/restore-name): the
namespaces this run's restore created, nothing it found there, whatever their names. Their
pods are copies that serve nothing, so they stop at once (grace 0) instead of after their
termination grace period, and their claims are deleted with them (a claim still protected
when the namespace controller looks costs it a second look, seconds later). Cluster-scoped
objects the restore created are listed in the result and left: another namespace may use
them. The volumes its claims were bound to are waited for as their reclaim policy removes
them; one the policy keeps (Retain) is listed in the result and warned about, not
deleted: its disk would be orphaned.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from migrate.pipeline.context import Context
from migrate.playbook import Step
from migrate.transform.mappings import RESTORE_LABEL

log = logging.getLogger(__name__)
TIMEOUT = 300.0  # seconds for the namespaces to be gone (their finalizers run first)


def cleanup_step(ctx: Context, step: Step, attempts: int) -> tuple[int, dict[str, Any]]:
    target = ctx.cluster("target")
    restore = ctx.restore_options(resume=False).name
    selector = f"{RESTORE_LABEL}={restore}"
    disc = target.discovery()
    namespaces, pods = disc.get("", "namespaces"), disc.get("", "pods")
    claims, volumes = disc.get("", "persistentvolumeclaims"), disc.get("", "persistentvolumes")
    assert namespaces and pods and claims and volumes  # every cluster serves them
    start = time.monotonic()
    names = [n["metadata"]["name"] for n in target.list(namespaces, label_selector=selector)]
    bound = sorted(
        c["spec"]["volumeName"]
        for ns in names
        for c in target.list(claims, ns)
        if c["spec"].get("volumeName")
    )
    for ns in names:  # the namespace first, so that no controller makes a pod in it any
        target.delete(namespaces, ns)  # more; then its pods at once, and its claims (their
        for pod in target.list(pods, ns):  # protection goes with the pods): one sweep
            target.delete(pods, pod["metadata"]["name"], ns, grace_seconds=0)
        for claim in target.list(claims, ns):
            target.delete(claims, claim["metadata"]["name"], ns)
    left = set(names)
    while left and time.monotonic() - start < TIMEOUT:
        time.sleep(0.5)
        left = {n["metadata"]["name"] for n in target.list(namespaces)} & left
    kept_pvs = set(bound)
    while kept_pvs and time.monotonic() - start < TIMEOUT:
        live = {v["metadata"]["name"]: v for v in target.list(volumes)}
        kept_pvs &= set(live)
        if all(live[v]["spec"].get("persistentVolumeReclaimPolicy") != "Delete" for v in kept_pvs):
            break  # what is left, its policy keeps
        time.sleep(0.5)
    if kept_pvs:
        log.warning("cleanup: %d volume(s) of the drill's claims are kept by their reclaim "
                    "policy: %s", len(kept_pvs), ", ".join(sorted(kept_pvs)))  # fmt: skip
    kept = [
        f"{r.resource}/{o['metadata']['name']}"
        for r in disc
        if not r.namespaced and r.listable and r.resource != "namespaces"
        for o in target.list(r, label_selector=selector)
    ]  # fmt: skip
    message = (
        f"removed {len(names) - len(left)} namespace(s), {len(bound) - len(kept_pvs)} volume(s)"
    )
    for what, items in (("still terminating", left), ("volumes kept", kept_pvs)):
        message += f"; {what}: {', '.join(sorted(items))}" if items else ""
    result = {
        "message": message,
        "restore": restore,
        "namespaces": sorted(names),
        "stillTerminating": sorted(left),
        "volumes": bound,
        "volumesKept": sorted(kept_pvs),
        "clusterScopedKept": kept,
        "seconds": round(time.monotonic() - start, 1),
    }
    return 0, result
