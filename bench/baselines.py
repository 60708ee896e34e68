"""What our backup, restore and verify are measured against, and the wait-sync delay.

The baselines are the physical limit of each step on the same planes: a raw parallel
LIST of the very tasks backup lists (and verify lists on both clusters), and a raw
parallel POST of the very objects the restore plan holds, level by level, with the same
client and the same parallelism, minus kube-migrate's bookkeeping.  wait-sync is timed
from the upload of the backup's velero-backup.json to its detection by wait_for_sync.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from verify_speed import raw_list  # bench/ is sys.path[0] when run as a script
from workload import PARALLELISM, RESTORE_PARALLELISM, pmap

from migrate.backup.create import BackupOptions, _tasks, create_backup
from migrate.backup.scope import resolve_resources
from migrate.cluster import Cluster
from migrate.errors import AlreadyExists
from migrate.restore.plan import RestoreOptions
from migrate.restore.run import plan_restore
from migrate.store import layout
from migrate.sync.wait import wait_for_sync
from migrate.transform.mappings import Mappings
from migrate.transform.scope import Scope
from migrate.verify.scope import ResourceFilter, VerifyScope, list_tasks, resolve_types


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    t0 = time.monotonic()
    out = fn()
    return time.monotonic() - t0, out


def raw_backup_list(src: Cluster, scope: Scope) -> int:
    """LIST every (resource, namespace) task backup create lists, parsed and dropped."""
    tasks = list(_tasks(src, scope, resolve_resources(src.discovery(), scope)))

    def one(t: Any) -> int:
        return sum(1 for _ in src.list(t[0], t[1], limit=500))

    return sum(pmap(one, tasks))


def raw_restore_post(dst: Cluster, store: Any, opts: RestoreOptions) -> int:
    """POST the plan's sanitized objects, level by level, as run_restore would, minus
    its bookkeeping (journal, owner re-pointing, results)."""
    _, plan = plan_restore(dst, store, opts)
    created = 0
    lock = threading.Lock()

    def post(it: Any) -> None:
        nonlocal created
        if it.skip:
            return
        res = dst.discovery().for_kind(it.api_version, it.kind)
        if res is None:
            return
        try:
            dst.create(res, it.desired, it.target_ns if res.namespaced else None)
        except AlreadyExists:
            return
        with lock:
            created += 1

    with ThreadPoolExecutor(RESTORE_PARALLELISM) as pool:
        for level in plan.levels:
            list(pool.map(post, level))
    return created


def raw_verify_list(src: Cluster, dst: Cluster, scope: Scope, mappings: Mappings) -> int:
    vs = VerifyScope((scope,), mappings)
    sdisc, tdisc = src.discovery(refresh=True), dst.discovery(refresh=True)
    types = resolve_types(sdisc, vs, ResourceFilter.resolve(sdisc, vs, True))
    vers = {r.full_name: r.version for r in sdisc}
    tasks = list_tasks("source", sdisc, types, vs) + list_tasks("target", tdisc, types, vs, vers)
    return raw_list(src, dst, tasks, PARALLELISM)


def measure_wait_sync(
    src: Cluster, store: Any, opts: BackupOptions
) -> tuple[float, float, Any, float]:
    """Backup in-process while wait_for_sync polls (0.2 s) in a thread.  Returns the
    backup's seconds, the seconds from the upload of its velero-backup.json (written
    last) to its detection, the summary, and the poll's own total seconds."""
    detected: dict[str, float] = {}
    marker = layout.BackupKeys(opts.name).metadata
    put = store.put

    def timed_put(key: str, *args: Any, **kw: Any) -> Any:
        out = put(key, *args, **kw)
        if key == marker:
            detected.setdefault("uploaded", time.monotonic())
        return out

    store.put = timed_put  # the instance only: note when velero-backup.json is in

    def watch() -> None:
        wait_for_sync(store, opts.name, timeout=600, interval=0.2)
        detected["at"] = time.monotonic()

    th = threading.Thread(target=watch, daemon=True)
    th.start()
    t0 = time.monotonic()
    try:
        summary = create_backup(src, store, opts)
    finally:
        store.put = put
    done = time.monotonic()
    th.join(600)
    if "at" not in detected or "uploaded" not in detected:
        raise SystemExit("wait-sync did not detect the backup")
    sync = max(detected["at"] - detected["uploaded"], 0.0)
    return done - t0, sync, summary, detected["at"] - t0
