"""The checks a restore makes after planning and before its first write, so that input
it cannot carry out fails with one error and leaves the target and the bucket as they
were: the restore's name (valid, and not used before in this bucket), credentials that
may create nothing at all, and collisions under `--existing-resource-policy fail`.

`fail` means "restore nothing over existing objects": every object the plan would
create is looked up first (GET, in parallel), and any that exists already (other than
namespaces, used as they are, and ServiceAccounts, merged, as Velero does; or objects
an earlier attempt of this very restore made) stops the restore before it starts.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from migrate.cluster import Cluster
from migrate.cluster.access import allows_any
from migrate.errors import Forbidden, NotFound, PreflightFailed, UsageError
from migrate.restore import results
from migrate.restore.plan import Plan, RestoreOptions
from migrate.restore.source import Item
from migrate.restore.workers import map_all
from migrate.store import Store, layout
from migrate.transform.mappings import RESTORE_LABEL

# Kinds an existing object of which the executor uses or merges whatever the policy.
NEVER_COLLIDE = frozenset({"Namespace", "ServiceAccount"})
SHOWN = 5  # collisions named in the message


def check_names(opts: RestoreOptions) -> None:
    """Restore names become label values and bucket folders: Kubernetes object names
    (the backup's first: the default restore name is made from it)."""
    layout.check_backup_name(opts.backup)
    name = opts.name
    try:
        layout.check_backup_name(name)
    except UsageError:
        raise UsageError(
            f"invalid restore name {name!r}",
            hint="use lower-case letters, digits, '-' and '.', at most 63 characters",
        ) from None


def check_unused(store: Store, opts: RestoreOptions) -> None:
    """A new restore must not overwrite the results of another one (made elsewhere)."""
    if not opts.resume and results.exists(store, opts.name):
        raise UsageError(
            f"restore {opts.name!r} already exists in {store.url}",
            hint="choose another restore name (or --resume it on the machine that ran it)",
        )


def check_access(target: Cluster, plan: Plan) -> None:
    wanted = set()
    for it in plan.restorable:
        res = target.discovery().for_kind(it.api_version, it.kind)
        if res is not None:
            wanted.add((res.group, res.resource, it.target_ns if res.namespaced else None))
    if wanted and not allows_any(target, "create", wanted):
        raise Forbidden(
            f"{target.name}: the kubeconfig's user may not create any of the "
            f"{len(plan.restorable)} objects of the restore; nothing was written",
            hint="grant create (and get, patch) on them to that user "
            "(see examples/rbac/target-restore.yaml), or use a kubeconfig with those rights",
        )


def _collides(target: Cluster, it: Item, restore: str) -> bool:
    res = target.discovery().for_kind(it.api_version, it.kind)
    if res is None:
        return False  # not served: the executor reports it
    try:
        live = target.get(res, it.key[3], it.target_ns if res.namespaced else None)
    except NotFound:
        return False
    labels = (live.get("metadata") or {}).get("labels") or {}
    return labels.get(RESTORE_LABEL) != restore  # else made by an earlier attempt


def check_collisions(target: Cluster, plan: Plan, opts: RestoreOptions) -> None:
    if opts.existing_policy != "fail":
        return
    items = [it for it in plan.restorable if it.kind not in NEVER_COLLIDE]
    workers = max(1, opts.parallelism)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        found = map_all(pool, lambda it: _collides(target, it, opts.name), items, 4 * workers)
    hits = [it for it, hit in zip(items, found, strict=True) if hit]
    if hits:
        names = ", ".join(f"{it.kind} {it.label().split(' ', 1)[1]}" for it in hits[:SHOWN])
        more = f" and {len(hits) - SHOWN} more" if len(hits) > SHOWN else ""
        raise PreflightFailed(
            f"restore {opts.name}: {len(hits)} object{'s' if len(hits) > 1 else ''} already "
            "on the target and "
            f"--existing-resource-policy is fail: {names}{more}; nothing was written",
            hint="delete them, restore into other namespaces (--namespace-mappings), or use "
            "--existing-resource-policy none (skip them) or update (replace them)",
        )


def before_writing(target: Cluster, store: Store, plan: Plan, opts: RestoreOptions) -> None:
    """Every check, cheapest first; raises the first problem."""
    check_unused(store, opts)
    check_access(target, plan)
    check_collisions(target, plan, opts)
