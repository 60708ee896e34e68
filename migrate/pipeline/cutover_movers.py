"""The cut-over's movers, started before its downtime begins (volumes/standby.py): on the
source one per claim whose data moves (it will read what changed once the app is held), on
the target one per claim an earlier increment restored (it will write that change).

Both sides' pods start at once, while the source still serves; the cut-over waits for
them before it holds anything, so their start-up is outside the downtime.  They are
deleted, gracefully, as soon as the final increment is in, before the target's workloads
are released: a standby ends on SIGTERM at once, so an app pod placed on another node
(a network volume) waits for its detach only briefly, while on the same node the
terminating pod keeps the node authorized to read the claim until the app's pod is
there.  ReadWriteOncePod claims get none (volumes/standby.py).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from migrate.errors import MigrateError
from migrate.pipeline.context import Context
from migrate.pipeline.increments import chain_of, last_restored
from migrate.pipeline.steps_data import source_settings, target_settings
from migrate.pipeline.volume_deltas import claim_placements
from migrate.transform.mappings import BACKUP_LABEL, RESTORE_LABEL
from migrate.volumes import standby
from migrate.volumes.backup import source_claims
from migrate.volumes.mover_pod import MoverJob
from migrate.volumes.restore import Placement

log = logging.getLogger(__name__)
RWOP = "ReadWriteOncePod"  # a second pod may not mount it: no standby


def source_jobs(ctx: Context) -> list[MoverJob]:
    """A backup mover for each claim whose data moves: beside the pod that mounts it, or
    placed as its workload would run (a resumed cut-over finds the source held)."""
    claims, _warnings, simulated, _pods = source_claims(
        ctx.cluster("source"), ctx.pb.scope(), ctx.pb.volumes.mode
    )
    return [
        MoverJob("backup", c.namespace, c.name, ["--user", c.name, "--host", c.namespace],
                 node=c.node, tolerations=c.tolerations, node_selector=c.node_selector,
                 affinity=c.affinity, avoid_nodes=simulated)
        for c in claims if c.moves and RWOP not in c.access_modes
    ]  # fmt: skip


def target_jobs(ctx: Context, pairs: list[tuple[str, str]]) -> list[MoverJob]:
    """A restore mover for each claim of the target's namespaces that a restore of this
    run's chain made (the increment writes no other), placed as its (held) workload would
    run; `pairs`: (source, target) namespaces."""
    target = ctx.cluster("target")
    chain = set(chain_of(ctx.store("target"), last_restored(ctx)))
    pvc = target.discovery().get("", "persistentvolumeclaims")
    assert pvc is not None
    where = claim_placements(target, {t for _s, t in pairs})
    jobs = []
    for src, tgt in pairs:
        for obj in target.list(pvc, tgt):
            meta, spec = obj["metadata"], obj.get("spec") or {}
            labels = meta.get("labels") or {}
            if labels.get(BACKUP_LABEL) not in chain or not labels.get(RESTORE_LABEL):
                continue
            if meta.get("deletionTimestamp"):
                continue
            if RWOP in (spec.get("accessModes") or ()) or not spec.get("volumeName"):
                continue
            p = where.get((tgt, meta["name"]), Placement())
            jobs.append(MoverJob("restore", tgt, meta["name"], [], tolerations=p.tolerations,
                                 node_selector=p.node_selector, affinity=p.affinity,
                                 repository=src))  # fmt: skip
    return jobs


@contextmanager
def movers_standing_by(
    ctx: Context, src_ns: list[str], tgt_ns: list[str]
) -> Iterator[dict[str, Any]]:
    """Both sides' standby movers for the final increment, while the block runs; the
    dict yielded says, once it ends, how many were ready and used on each side."""
    out: dict[str, Any] = {}
    if ctx.pb.volumes.mode == "none":
        yield out
        return
    source, target = ctx.cluster("source"), ctx.cluster("target")
    try:
        for side, c, namespaces in (("source", source, src_ns), ("target", target, tgt_ns)):
            n = standby.leftovers(c, namespaces, ctx.run)
            if n:
                log.info("%s: deleted %d standby mover(s) of an interrupted cut-over", side, n)
        sides = [
            (source, source_settings(ctx)(), source_jobs(ctx)),
            (
                target,
                target_settings(ctx)(),
                target_jobs(ctx, list(zip(src_ns, tgt_ns, strict=True))),
            ),
        ]
    except MigrateError as exc:  # the copies run without; the increment reports the cause
        log.warning("no standby movers: %s", exc.message)
        yield out
        return
    with standby.standing_by([s for s in sides if s[2]], ctx.run) as sets:
        try:
            yield out
        finally:
            out.update({s.cluster.name: {"ready": s.ready, "used": s.used} for s in sets})
