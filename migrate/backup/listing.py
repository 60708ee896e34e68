"""A full backup's objects: every (resource, namespace) task listed in parallel, page by
page, into the tarball (its sink), each LIST's revision recorded for later increments
and watched for changes meanwhile (changes.py); delta.py is the incremental counterpart.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from migrate.backup.changes import ChangeTracker
from migrate.backup.deps import Collector
from migrate.backup.sink import BackupSummary, Progress, Sink, note
from migrate.cluster import APIResource, Cluster
from migrate.errors import ClusterError, ClusterUnreachable, NotFound
from migrate.transform.scope import Scope

log = logging.getLogger(__name__)


def lister(
    c: Cluster,
    scope: Scope,
    page_size: int,
    sink: Sink,
    collector: Collector,
    summary: BackupSummary,
    emit: Progress,
    tracker: ChangeTracker | None,
) -> Callable[[tuple[APIResource, str | None]], None]:
    """The full LIST of one (resource, namespace) into the backup."""
    selector = str(scope.selector) or None

    def run(task: tuple[APIResource, str | None]) -> None:
        res, ns = task
        snapshot: dict[str, Any] = {}
        # a namespace listed on its own is in scope (explicit_namespaces): its objects are
        # too; a cluster-wide LIST of a namespaced type is filtered object by object
        check = (res.namespaced and ns is None) or res.full_name == "namespaces"
        try:
            for page in c.list_pages(
                res, ns, label_selector=selector, limit=page_size, snapshot=snapshot
            ):
                objs = page
                if check:
                    objs = [obj for obj in page if scope.namespace_included(_namespace(res, obj))]
                written = sink.add_page(res, objs, ns)
                if tracker is not None and not tracker.paged(snapshot):
                    tracker.seen_page(task, written)
                if res.namespaced:
                    collector.observe_page(written, res.group, res.resource)
        except ClusterUnreachable:
            raise
        except NotFound:  # the resource type went away meanwhile (a CRD deleted)
            with sink.lock:
                note(summary.warnings, ns, f"{res.full_name} is no longer served; skipped")
        except ClusterError as exc:
            log.warning("listing %s failed: %s", res.full_name, exc.message)
            with sink.lock:
                note(summary.errors, ns, f"list {res.full_name}: {exc.message}")
        else:
            if tracker is not None:
                tracker.listed(task, snapshot)
            if sink.positions is not None:
                sink.positions.listed(res.full_name, ns, str(snapshot.get("resourceVersion", "")))
        sink.resource_list.end_part(ns)
        emit("listed", 1)

    return run


def _namespace(res: APIResource, obj: dict[str, Any]) -> str:
    """The namespace an object is in scope by: its own, or a Namespace's name."""
    meta = obj.get("metadata") or {}
    return str((meta.get("namespace") if res.namespaced else meta.get("name")) or "")


def list_all(
    run: Callable[[tuple[APIResource, str | None]], None],
    tasks: list[tuple[APIResource, str | None]],
    parallelism: int,
) -> None:
    with ThreadPoolExecutor(max_workers=max(1, parallelism)) as pool:
        futures = [pool.submit(run, t) for t in tasks]
        try:
            for fut in futures:
                fut.result()
        except BaseException:  # a failure, Ctrl-C or SIGTERM: start no other listing
            for fut in futures:
                fut.cancel()
            raise
