"""What our backup, restore and verify are measured against, and the wait-sync delay.

The baselines are the physical limit of each step on the same planes: a raw parallel
LIST of the very tasks backup lists (and verify lists on both clusters), and a raw
parallel POST of the very objects the restore plan holds, level by level, with the same
parallelism, minus kube-migrate's bookkeeping.  They go through bench/rawhttp.py, a
plain HTTP client, not our `Cluster`, so that the ratio shows our client's costs too.
What to request (paths, the planned objects) is worked out before the clock starts:
only the requests are timed.  wait-sync is timed from the upload of the backup's
velero-backup.json to its detection by wait_for_sync at the CLI's default interval.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from rawhttp import RawClient  # bench/ is sys.path[0] when run as a script
from workload import PARALLELISM, RESTORE_PARALLELISM, pmap

from migrate.backup.create import BackupOptions, _tasks, create_backup
from migrate.backup.scope import resolve_resources
from migrate.cluster import Cluster
from migrate.restore.plan import RestoreOptions
from migrate.restore.run import plan_restore
from migrate.store import layout
from migrate.sync.wait import wait_for_sync
from migrate.transform.mappings import Mappings
from migrate.transform.scope import Scope
from migrate.verify.scope import ResourceFilter, VerifyScope, list_tasks, resolve_types

Posts = list[list[tuple[str, dict[str, Any]]]]  # per dependency level: (path, object)


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    t0 = time.monotonic()
    out = fn()
    return time.monotonic() - t0, out


def backup_list_paths(src: Cluster, scope: Scope) -> list[str]:
    """The collection path of every (resource, namespace) task backup create lists."""
    resolved = resolve_resources(src.discovery(), scope)
    return [res.path(ns) for res, ns in _tasks(src, scope, resolved)]


def raw_list(raw: RawClient, paths: list[str], parallelism: int = PARALLELISM) -> int:
    """LIST every path (pages of 500), `parallelism` at a time; objects listed."""
    return sum(pmap(raw.list_count, paths, parallelism))


def restore_posts(dst: Cluster, store: Any, opts: RestoreOptions) -> Posts:
    """The restore plan's sanitized objects as POSTs, level by level, as run_restore
    would send them (the late level last), minus its bookkeeping (journal, owner
    re-pointing, the ServiceAccount merge, results)."""
    _, plan = plan_restore(dst, store, opts)
    disc = dst.discovery()
    levels: Posts = []
    for level in [*plan.levels, plan.late]:
        posts = []
        for it in level:
            res = disc.for_kind(it.api_version, it.kind)
            if it.skip is None and res is not None:
                posts.append(
                    (res.path(it.target_ns if res.namespaced else None), it.read_desired())
                )
        levels.append(posts)
    return levels


def raw_restore_post(raw: RawClient, levels: Posts) -> int:
    """POST each level's objects, RESTORE_PARALLELISM at a time (409s dropped); created."""
    created = 0
    lock = threading.Lock()

    def post(call: tuple[str, dict[str, Any]]) -> None:
        nonlocal created
        if raw.create(*call):
            with lock:
                created += 1

    with ThreadPoolExecutor(RESTORE_PARALLELISM) as pool:
        for level in levels:
            list(pool.map(post, level))
    return created


def verify_list_paths(
    src: Cluster, dst: Cluster, scope: Scope, mappings: Mappings
) -> list[tuple[str, str]]:
    """(side, collection path) of every LIST verify makes, on both clusters."""
    vs = VerifyScope((scope,), mappings)
    sdisc, tdisc = src.discovery(refresh=True), dst.discovery(refresh=True)
    types = resolve_types(sdisc, vs, ResourceFilter.resolve(sdisc, vs, True))
    vers = {r.full_name: r.version for r in sdisc}
    tasks = list_tasks("source", sdisc, types, vs) + list_tasks("target", tdisc, types, vs, vers)
    return [(t.side, t.res.path(t.namespace)) for t in tasks]


def raw_verify_list(clients: dict[str, RawClient], calls: list[tuple[str, str]]) -> int:
    """verify's LISTs on both clusters, PARALLELISM at a time; objects listed."""
    return sum(pmap(lambda call: clients[call[0]].list_count(call[1]), calls))


def measure_wait_sync(
    src: Cluster, store: Any, opts: BackupOptions, interval: float
) -> tuple[float, float, Any, float]:
    """Backup in-process while wait_for_sync polls every `interval` seconds in a thread
    (the bench passes the CLI's default: what a user waits).  Returns the
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
        wait_for_sync(store, opts.name, timeout=600, interval=interval)
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
