"""Check 5: objects the restore would create that already exist on the target (names
after --namespace-mappings), and what --existing-resource-policy will then do to them.

The consequences mirror restore's executor (restore/execute.py: _existing): a table
keyed by (policy, kind), "*" for any kind.
"""

from __future__ import annotations

from migrate.preflight.context import Context
from migrate.preflight.findings import Collect, Finding

RESTORE_LABEL = "velero.io/restore-name"

# (policy, kind) -> (severity, what happens to an existing object, how to change it).
CONSEQUENCES: dict[tuple[str, str], tuple[str, str, str]] = {
    ("none", "*"): (
        "warning",
        "restore keeps the target's version and skips the backup's",
        "use --existing-resource-policy update to overwrite them, delete them on the "
        "target, or restore into new namespaces with --namespace-mappings",
    ),
    ("none", "*cluster-scoped"): (
        "warning",
        "restore keeps the target's version and skips the backup's",
        "use --existing-resource-policy update to overwrite them (they are shared by the "
        "whole target cluster: check who else uses them), or delete them on the target",
    ),
    ("none", "Namespace"): (
        "info",
        "the namespace exists: the objects are restored into it, its labels stay",
        "use --namespace-mappings to restore into a new namespace instead",
    ),
    ("none", "ServiceAccount"): (
        "info",
        "restore merges the backup's labels, annotations and image pull secrets into it",
        "",
    ),
    ("update", "*"): (
        "warning",
        "restore patches them with the backup's version (fails where a field is immutable)",
        "make sure the target's versions may be overwritten, or use the policy none",
    ),
    ("fail", "*"): (
        "error",
        "restore fails on each of them (policy fail)",
        "delete them on the target, or choose --existing-resource-policy none or update",
    ),
}


def consequence(policy: str, kind: str, namespaced: bool) -> tuple[str, str, str]:
    for key in ((policy, kind), (policy, "*" if namespaced else "*cluster-scoped")):
        if key in CONSEQUENCES:
            return CONSEQUENCES[key]
    return CONSEQUENCES[(policy, "*")]


def check_collisions(ctx: Context) -> list[Finding]:
    c = Collect("collision")
    disc = ctx.target.disc
    located = []
    for it in ctx.restorable:
        res = disc.for_kind(str(it.read_desired().get("apiVersion", "")), it.kind)
        if res is None:
            continue  # not served: the api check reports it
        located.append((it, res.full_name, it.key[2] if res.namespaced else None))
    ctx.target.prefetch({(gr, ns) for _, gr, ns in located})
    policy = ctx.options.existing_policy
    for it, gr, ns in located:
        live = ctx.target.get(gr, ns, it.key[3])
        if live is None:
            continue
        severity, what, fix = consequence(policy, it.kind, ns is not None)
        earlier = RESTORE_LABEL in (live["metadata"].get("labels") or {})
        note = ", put there by an earlier restore" if earlier else ""
        c.add(
            severity,
            f"already on the target{note}: {what}",
            fix,
            ctx.ref(it),
        )
    return c.findings()
