"""Carry out a restore plan on the target: level by level, each level in parallel;
owner references re-pointed to the owners' new uids; the existing-resource policy on
collisions; CRDs waited for until Established; webhooks and APIServices last, once the
workloads behind them are ready.  A failed object marks its dependents skipped, never
the whole restore.  Every result goes to the journal as it happens, so `--resume`
continues a killed restore without duplicates.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from migrate.cluster import APIResource, Cluster
from migrate.errors import AlreadyExists, ClusterError, ClusterUnreachable, NotFound, WaitTimeout
from migrate.restore.graph import Level
from migrate.restore.journal import Journal, ObjectResult, ResultTable
from migrate.restore.plan import Plan, RestoreOptions
from migrate.restore.ready import (
    WORKLOAD_KINDS,
    backing_workloads,
    wait_crd_established,
    wait_ready,
)
from migrate.restore.source import Item
from migrate.restore.workers import run_all
from migrate.transform.mappings import RESTORE_LABEL
from migrate.transform.sanitize import sanitize

log = logging.getLogger(__name__)
Progress = Callable[[str, int], None]


class Restorer:
    def __init__(
        self,
        target: Cluster,
        plan: Plan,
        opts: RestoreOptions,
        journal: Journal,
        progress: Progress | None = None,
        after_level: Callable[[list[Item], Journal], None] | None = None,
        before_level: Callable[[Iterable[Item]], None] | None = None,
    ) -> None:
        self.target = target
        self.after_level = after_level  # given the claims each level created (data level)
        self.before_level = before_level  # given each level before it is created (clones)
        self.plan = plan
        self.opts = opts
        self.journal = journal
        self.progress: Progress = progress or (lambda _e, _n: None)
        self.lock = threading.Lock()
        self.uids: dict[tuple[str, str, str | None, str], str] = {}
        self.failed: set[Any] = set()  # keys whose creation failed: their dependents skip
        self.results = ResultTable(plan.spool)
        self.warnings: list[str] = []
        self._window = 4 * max(1, opts.parallelism)  # objects submitted ahead of the workers
        self.not_ready: WaitTimeout | None = None  # --wait-ready timed out (results first)

    # -- bookkeeping -----------------------------------------------------------------
    def _record(self, it: Item, result: str, message: str = "", uid: str = "") -> None:
        res = ObjectResult(it.key, it.gr, result, message, uid)
        self.results.put(it.index, res)
        self._remember_uid(it, uid)
        if result == "failed":
            with self.lock:
                self.failed.add(it.key)
        self.journal.record(res)
        self.progress("done", 1)
        if result == "failed":
            log.warning("%s: %s", it.label(), message)
        else:
            log.debug("%s: %s %s", it.label(), result, message)

    def _remember_uid(self, it: Item, uid: str) -> None:
        """Kept for owner re-pointing: only objects that others in the plan depend on
        (each alone in its graph node; a Leaves node's members have no dependents)."""
        if uid and it.node == it.key:
            with self.lock:
                self.uids[it.key] = uid

    def run(self) -> ResultTable:
        self.progress("total", len(self.plan.restorable))
        for it in self.plan.items:
            if it.refused:  # not restorable: counted in no total, journaled nowhere
                self.results.put(it.index, ObjectResult(it.key, it.gr, "failed", it.skip or ""))
                self.failed.add(it.key)
                log.warning("%s: %s", it.label(), it.skip)
            elif it.skip:
                self.results.put(it.index, ObjectResult(it.key, it.gr, "skipped", it.skip))
        with ThreadPoolExecutor(max_workers=max(1, self.opts.parallelism)) as pool:
            for level in self.plan.levels:
                if self.before_level is not None:
                    self.before_level(level)
                run_all(pool, self._restore, level, self._window)
                self.journal.sync()  # the bucket's copy, once a level
                if self.after_level is not None:
                    self.after_level(self._created_claims(level), self.journal)
                if any(it.kind == "CustomResourceDefinition" for it in level):
                    self.target.discovery(refresh=True)
        self._late()
        if self.opts.wait_ready:
            workloads = [
                it for it in self.plan.restorable
                if it.kind in WORKLOAD_KINDS and _created(self.results.get(it.index))
            ]  # fmt: skip
            try:
                wait_ready(self.target, workloads, self.opts.ready_timeout)
            except WaitTimeout as exc:
                self.not_ready = exc
                self.warnings.append(f"workloads not ready: {exc.message}")
        return self.results

    def _created_claims(self, level: Level) -> list[Item]:
        return [
            it for it in level
            if it.kind == "PersistentVolumeClaim" and _created(self.results.get(it.index))
        ]  # fmt: skip

    # -- one object ------------------------------------------------------------------
    def _failed_dependency(self, it: Item) -> str | None:
        if it.node is None or it.node not in self.plan.graph:
            return None
        for dep in self.plan.graph.predecessors(it.node):
            if dep in self.failed:
                return f"{dep[1]} {dep[2] + '/' if dep[2] else ''}{dep[3]}"
        return None

    def _resource(self, it: Item, body: dict[str, Any]) -> APIResource | None:
        api_version = it.api_version
        disc = self.target.discovery()
        res = disc.for_kind(api_version, it.kind)
        if res is None:
            res = self.target.discovery(refresh=True).for_kind(api_version, it.kind)
        if res is not None and res.api_version != api_version:
            self.warnings.append(
                f"{it.label()}: {api_version} not served, restored as {res.api_version}"
            )
            body["apiVersion"] = res.api_version
            self.plan.items.decide(it, body)
        return res

    def _restore(self, it: Item) -> None:
        done = self.journal.done(it.key)
        if done and done.result != "failed":
            self.results.put(it.index, done)
            self._remember_uid(it, done.uid)
            self.progress("done", 1)
            return
        failed_dep = self._failed_dependency(it)
        if failed_dep:
            self._record(it, "skipped", f"dependency {failed_dep} failed")
            return
        self._create_or_fail(it)

    def _create_or_fail(self, it: Item) -> None:
        """Create one object; an API refusal fails that object only (an unreachable
        server ends the restore: the journal lets --resume continue it)."""
        try:
            self._create(it)
        except ClusterUnreachable:
            raise
        except ClusterError as exc:
            self._record(it, "failed", exc.message)

    def _create(self, it: Item) -> None:
        body = it.read_desired()  # owners are re-pointed in this copy
        res = self._resource(it, body)
        if res is None:
            self._record(it, "failed", f"the target does not serve {it.api_version}/{it.kind}")
            return
        self._remap_owners(it, body)
        ns = it.target_ns if res.namespaced else None
        try:
            created = self.target.create(res, body, ns)
        except AlreadyExists:
            self._existing(it, body, res, ns)
            return
        uid = created["metadata"]["uid"]
        status = it.read_obj().get("status") if self.opts.restore_status else None
        if status:
            self._restore_status(it, status, res, ns)
        if it.kind == "CustomResourceDefinition" and not self.target.dry_run:  # dryrun.py
            wait_crd_established(self.target, res, it.key[3])
        self._record(it, "created", uid=uid)

    def _restore_status(
        self, it: Item, status: dict[str, Any], res: APIResource, ns: str | None
    ) -> None:
        try:
            self.target.patch(res, it.key[3], {"status": status}, ns, sub="status")
        except NotFound:
            pass  # no status subresource: the status went in with the object
        except ClusterError as exc:
            self.warnings.append(f"{it.label()}: status not restored: {exc.message}")

    def _existing(self, it: Item, body: dict[str, Any], res: APIResource, ns: str | None) -> None:
        live = self.target.get(res, it.key[3], ns)
        uid = live["metadata"]["uid"]
        labels = live["metadata"].get("labels") or {}
        if labels.get(RESTORE_LABEL) == self.opts.name:
            self._record(it, "created", "created by an earlier attempt of this restore", uid)
        elif (
            it.kind == "Namespace"
        ):  # as Velero: an existing namespace is used, whatever the policy
            self._record(it, "skipped", "already exists on the target; used as it is", uid)
        elif it.kind == "ServiceAccount":  # as Velero: always merged (the SA controller races us)
            self.target.patch(res, it.key[3], _sa_merge(body, live), ns)
            self._record(it, "updated", "merged into the existing ServiceAccount", uid)
        elif self.opts.existing_policy == "update":
            patch = replace_patch(sanitize(live), body)
            try:
                self.target.patch(res, it.key[3], patch, ns)
            except ClusterError as exc:
                why = "immutable field? " if exc.status == 422 else ""
                self._record(it, "failed", f"update refused ({why}{exc.message})", uid)
                return
            self._record(it, "updated", "replaced with the backup's version", uid)
        elif self.opts.existing_policy == "fail":
            self._record(it, "failed", "already exists on the target (policy: fail)", uid)
        else:
            self._record(it, "skipped", "already exists on the target", uid)

    def _remap_owners(self, it: Item, body: dict[str, Any]) -> None:
        meta = body.get("metadata") or {}
        refs = meta.get("ownerReferences")
        if not refs:
            return
        kept = []
        for ref in refs:
            group = str(ref.get("apiVersion", "")).rpartition("/")[0]
            uid = None
            for key in (
                (group, ref["kind"], it.target_ns, ref["name"]),
                (group, ref["kind"], None, ref["name"]),
            ):
                uid = uid or self.uids.get(key)
            uid = uid or self._live_uid(ref, it.target_ns)
            if uid:
                kept.append({**ref, "uid": uid})
            else:
                self.warnings.append(
                    f"{it.label()}: owner {ref['kind']} {ref['name']} is not on the target; "
                    "the reference is dropped"
                )
        if kept:
            meta["ownerReferences"] = kept
        else:
            meta.pop("ownerReferences", None)

    def _live_uid(self, ref: dict[str, Any], ns: str | None) -> str | None:
        res = self.target.discovery().for_kind(str(ref.get("apiVersion", "")), ref["kind"])
        if res is None:
            return None
        try:
            return str(
                self.target.get(res, ref["name"], ns if res.namespaced else None)["metadata"]["uid"]
            )
        except NotFound:
            return None

    # -- webhooks and APIServices: last ----------------------------------------------
    def _late(self) -> None:
        for it in self.plan.late:
            done = self.journal.done(it.key)
            if done and done.result != "failed":
                self.results.put(it.index, done)
                continue
            workloads = backing_workloads(it, self.plan.restorable)
            try:
                wait_ready(self.target, workloads, self.opts.ready_timeout)
            except WaitTimeout as exc:
                self._record(it, "failed", f"not created: its backend is not ready ({exc.message})")
                continue
            self._create_or_fail(it)


def _created(r: ObjectResult | None) -> bool:
    return r is not None and r.result == "created"


def replace_patch(live: Any, desired: Any) -> Any:
    """A JSON merge patch turning `live` (sanitized) into `desired`: keys only the target
    has are deleted (null), as Velero's CreateMergePatch(live, desired) does."""
    if not (isinstance(live, dict) and isinstance(desired, dict)):
        return desired
    patch = {k: None for k in live if k not in desired and k != "status"}
    for key, value in desired.items():
        if key == "status":
            continue
        if key not in live:
            patch[key] = value
        elif live[key] != value:
            patch[key] = replace_patch(live[key], value)
    return patch


def _sa_merge(desired: dict[str, Any], live: dict[str, Any]) -> dict[str, Any]:
    """What Velero does with an existing ServiceAccount: add the backup's pull secrets,
    labels and annotations to it."""
    have = {s.get("name") for s in live.get("imagePullSecrets") or []}
    extra = [s for s in desired.get("imagePullSecrets") or [] if s.get("name") not in have]
    meta = desired.get("metadata") or {}
    patch: dict[str, Any] = {
        "metadata": {
            "labels": meta.get("labels") or {},
            "annotations": meta.get("annotations") or {},
        }
    }
    if extra:
        patch["imagePullSecrets"] = (live.get("imagePullSecrets") or []) + extra
    return patch
