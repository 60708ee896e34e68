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

import logging
from concurrent.futures import ThreadPoolExecutor

from migrate.cluster import Cluster
from migrate.cluster.access import allows_any
from migrate.cluster.identity import ID_NAMESPACE, cluster_id
from migrate.errors import Forbidden, NotFound, PreflightFailed, UsageError
from migrate.restore import results
from migrate.restore.bucket_journal import read_header
from migrate.restore.plan import Plan, RestoreOptions
from migrate.restore.source import Item, LoadedBackup
from migrate.restore.workers import map_all
from migrate.store import Store, layout
from migrate.transform.mappings import RESTORE_LABEL

# Kinds an existing object of which the executor uses or merges whatever the policy.
NEVER_COLLIDE = frozenset({"Namespace", "ServiceAccount"})
SHOWN = 5  # collisions named in the message
log = logging.getLogger(__name__)


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
    """A new restore must not overwrite the results of another one (made elsewhere, or
    Velero's).  One that was interrupted (a journal, no results) is refused by the
    journal, with a hint to resume it."""
    if opts.resume or not results.written(store, opts.name):
        return  # new, or interrupted (Journal says "add --resume"), or a run's state only
    header = read_header(store, opts.name) or {}
    owner = header.get("run")
    by = f" by run {owner}" if owner else ""
    mine = f" (this is run {opts.run})" if opts.run else ""
    raise UsageError(
        f"restore {opts.name!r} already exists in {store.url}, made{by or ' earlier'}{mine}",
        hint="choose another restore name (a playbook: unset spec.restore.name to name it "
        "after the run), or resume that restore with --resume",
    )


def check_backup_phase(loaded: LoadedBackup, opts: RestoreOptions) -> list[str]:
    """A PartiallyFailed backup lacks what it could not read: say so (a warning in the
    log and the results), or refuse it with --fail-on warning.  Incomplete and Failed
    backups never get here (the reader refuses them)."""
    phase = loaded.info.phase
    if phase == "Completed":
        return []
    what = (
        f"backup {opts.backup} is {phase} ({loaded.info.errors} errors, "
        f"{loaded.info.warnings} warnings): objects it could not read are missing from it"
    )
    if opts.fail_on == "warning":
        raise PreflightFailed(
            f"{what}; --fail-on warning (a playbook's gates.restore.failOn: warning) "
            "refuses it; nothing was written",
            hint=f"see `kube-migrate backup describe {opts.backup}`; take a new backup, or "
            "restore it anyway without --fail-on warning",
        )
    log.warning("%s (see `kube-migrate backup describe %s`)", what, opts.backup)
    return [what]


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


def backup_cluster_id(loaded: LoadedBackup) -> str | None:
    """The source cluster's id: our manifest's, else the uid of the backup's own copy of
    the kube-system Namespace (Velero's backups of whole clusters hold it)."""
    if loaded.manifest is not None and loaded.manifest.source.get("clusterId"):
        return str(loaded.manifest.source["clusterId"])
    for it in loaded.items:
        if it.kind == "Namespace" and it.name == ID_NAMESPACE:
            return str((it.read_obj().get("metadata") or {}).get("uid") or "") or None
    return None


def _shares_volumes(plan: Plan) -> list[Item]:
    return [
        it
        for it in plan.restorable
        if it.kind == "PersistentVolume"
        or (
            it.kind == "PersistentVolumeClaim"
            and (it.read_desired().get("spec") or {}).get("volumeName")
        )
    ]


def check_same_cluster(
    target: Cluster, loaded: LoadedBackup, plan: Plan, opts: RestoreOptions
) -> None:
    """retain-as-is back into the backup's own cluster binds a second claim to storage the
    first one still uses: only with --yes."""
    if opts.pv_policy != "retain-as-is" or opts.yes:
        return
    sharing = _shares_volumes(plan)
    if not sharing:
        return
    source_id, target_id = backup_cluster_id(loaded), cluster_id(target)
    if source_id is None or target_id is None:
        log.warning(
            "restore %s: cannot tell whether %s is the cluster backup %s came from "
            "(no cluster id recorded or readable); --pv-policy retain-as-is restores %d "
            "volume objects that reference the source's storage",
            opts.name, target.name, opts.backup, len(sharing),
        )  # fmt: skip
        return
    if source_id == target_id:
        names = ", ".join(f"{it.kind} {it.label().split(' ', 1)[1]}" for it in sharing[:SHOWN])
        raise UsageError(
            f"restore {opts.name}: {target.name} is the cluster backup {opts.backup} came from "
            f"(kube-system uid {target_id}) and --pv-policy retain-as-is would bind its "
            f"volumes a second time ({names}); nothing was written",
            hint="use --pv-policy reprovision for a copy with its own volumes, or add --yes "
            "if the originals are gone and these objects should take their storage back",
        )


def before_writing(target: Cluster, store: Store, plan: Plan, opts: RestoreOptions) -> None:
    """Every check, cheapest first; raises the first problem."""
    check_unused(store, opts)
    check_access(target, plan)
    check_collisions(target, plan, opts)
