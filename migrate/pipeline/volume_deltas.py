"""An increment's volume data on the target: each claim an earlier restore of the chain
filled (and that is held, so nothing writes to it) is brought to the increment's copy by
writing only what differs from it (kmmover restore --delta: the copy's file manifest
against the claim as it is, by size and mtime).  A claim the increment's own restore
created is filled by its data level.

Only claims a restore of this chain created are written: one labelled otherwise (or not
at all) is someone else's, and is reported, never written over.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

from migrate.cluster import Cluster
from migrate.errors import NotFound
from migrate.store import Store
from migrate.transform.mappings import BACKUP_LABEL, RESTORE_LABEL, Mappings
from migrate.transform.workloads import pod_spec
from migrate.volumes import records
from migrate.volumes.mover_pod import MoverSettings
from migrate.volumes.restore import DataLevel, PlannedClaim, placements

log = logging.getLogger(__name__)
WORKLOADS = (("apps", "deployments"), ("apps", "statefulsets"), ("apps", "replicasets"))


def claim_placements(target: Cluster, namespaces: set[str]) -> Any:
    """Where the claims' workloads run (held, they run nothing: their spec still says)."""
    workloads = []
    for group, resource in WORKLOADS:
        res = target.discovery().get(group, resource)
        for ns in sorted(namespaces) if res is not None else []:
            assert res is not None
            for obj in target.list(res, ns):
                spec = pod_spec(obj)
                if spec is not None:
                    workloads.append((ns, obj, spec))
    return placements(workloads)


def apply_volume_deltas(
    target: Cluster,
    store: Store,
    backup: str,
    chain: list[str],
    mappings: Mappings,
    created: set[tuple[str, str]],
    settings: Callable[[], MoverSettings],
    open_task: Callable[[str], AbstractContextManager[Callable[[str, int], None]]] | None,
    verify: bool = False,
) -> dict[str, Any]:
    """Bring every claim of the increment `backup` (chain: its full backup ... itself) that
    the target holds to this copy, but those its restore `created` ((namespace, claim) on
    the target); with `verify` each mover then checks its claim against the copy.
    Returns the rows and the claims left alone."""
    new = {(v.namespace, v.claim): v for v in records.read(store, backup) if v.snapshot}
    if not new:
        return {}
    pvc = target.discovery().get("", "persistentvolumeclaims")
    assert pvc is not None
    todo: list[PlannedClaim] = []
    left: list[str] = []
    for ns, claim in sorted(new):
        tns = mappings.namespace(ns) or ns
        if (tns, claim) in created:
            continue  # filled by the increment's data level
        try:
            labels = target.get(pvc, claim, tns)["metadata"].get("labels") or {}
        except NotFound:
            left.append(f"{tns}/{claim}: not on the target")
            continue
        if labels.get(BACKUP_LABEL) not in chain or not labels.get(RESTORE_LABEL):
            left.append(f"{tns}/{claim}: not restored by kube-migrate from {chain[0]}")
            continue
        todo.append(PlannedClaim(ns, claim, tns, ""))
    for why in left:
        log.warning("increment %s: claim %s; its data is not written", backup, why)
    out: dict[str, Any] = {"notWritten": left}
    if todo:
        where = claim_placements(target, {c.target_ns for c in todo})
        delta = {(c.source_ns, c.name) for c in todo}
        level = DataLevel(
            target, new, where, settings(), open_task=open_task, delta=delta, verify=verify
        )
        level(todo)
        out["claims"] = level.results
    return out
