"""`restore create --dry-run=server`: the restore as it would run, level by level, with
every write sent to the target with dryRun=All, so the server's admission (webhooks,
ResourceQuota, Pod Security, LimitRanges) and validation accept or reject each object
before anything is written.  Nothing is kept: the server persists no dry-run write, no
journal is opened and no results are written to the bucket.

What the server cannot judge is said per object instead of guessed:

* an object in a namespace that does not exist on the target yet: the Namespace itself
  is dry-run created, but a dry-run Namespace is not kept, so the server would refuse
  its objects (NotFound) whatever they hold.  They are reported created, "not
  validated by the server: namespace N does not exist yet".
* a custom resource whose CustomResourceDefinition this restore would create: the CRD is
  dry-run created, the kind is not served, so its objects are "not validated".
* quotas are checked object by object against the namespace's use now: the server does
  not count dry-run objects, so a quota only their sum exceeds is not seen.

ServiceAccounts that exist are merged (a dry-run patch), and `--existing-resource-policy
update` dry-runs its patches, as the restore would.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections import Counter
from datetime import UTC, datetime
from typing import Any

from migrate.cluster import Cluster
from migrate.errors import NotFound
from migrate.restore import guard
from migrate.restore.execute import Progress, Restorer
from migrate.restore.journal import Journal, ObjectResult
from migrate.restore.plan import Plan, RestoreOptions
from migrate.restore.run import RestoreSummary, plan_restore
from migrate.restore.source import Item
from migrate.store import Store

log = logging.getLogger(__name__)
ACCEPTED = "dry run: accepted by the server"
UNVALIDATED = "dry run: not validated by the server: "
NEW_NAMESPACE = "namespace {ns} does not exist yet (a dry-run Namespace is not kept)"
NEW_CRD = "its CustomResourceDefinition is created by this restore (not served yet)"


class NoJournal(Journal):
    """A dry run has nothing to resume: it keeps no journal."""

    def __init__(self) -> None:  # opens no file
        pass

    def done(self, key: Any) -> ObjectResult | None:
        return None

    def record(self, result: ObjectResult) -> None:
        pass

    def sync(self) -> None:
        pass

    def close(self) -> None:
        pass


class DryRunRestorer(Restorer):
    def __init__(
        self, target: Cluster, plan: Plan, opts: RestoreOptions, progress: Progress | None
    ) -> None:
        opts = dataclasses.replace(opts, wait_ready=False)  # nothing is created to wait for
        super().__init__(target, plan, opts, NoJournal(), progress)
        self._ns_lock = threading.Lock()
        self._namespaces: dict[str, bool] = {}  # namespace -> exists on the target
        self.crd_kinds = {_crd_kind(it.read_desired()) for it in plan.restorable if _is_crd(it)}
        self.unvalidated: Counter[str] = Counter()  # "namespace" / "crd" -> objects

    def _exists(self, ns: str) -> bool:
        with self._ns_lock:
            known = self._namespaces.get(ns)
        if known is None:
            res = self.target.discovery().resolve("namespaces")
            try:
                self.target.get(res, ns)
                known = True
            except NotFound:
                known = False
            with self._ns_lock:
                self._namespaces[ns] = known
        return known

    def _not_validated(self, it: Item) -> tuple[str, str] | None:
        res = self.target.discovery().for_kind(it.api_version, it.kind)
        if res is None:
            if (it.api_version.rpartition("/")[0], it.kind) in self.crd_kinds:
                return "crd", NEW_CRD
            return None  # not served at all: failed, as in the restore
        if res.namespaced and it.target_ns and not self._exists(it.target_ns):
            return "namespace", NEW_NAMESPACE.format(ns=it.target_ns)
        return None

    def _create(self, it: Item) -> None:
        why = self._not_validated(it)
        if why is None:
            super()._create(it)
            return
        with self.lock:
            self.unvalidated[why[0]] += 1
        self._record(it, "created", UNVALIDATED + why[1])

    def _record(self, it: Item, result: str, message: str = "", uid: str = "") -> None:
        """Results carry no uid (a dry-run object's is made up), but its dependents'
        owner references are re-pointed to it as in the restore."""
        self._remember_uid(it, uid)
        message = message or (ACCEPTED if result == "created" else "")
        super()._record(it, result, message)

    def _late(self) -> None:
        """Webhook configurations and APIServices: their backends are not created, so
        nothing is waited for."""
        for it in self.plan.late:
            self._create_or_fail(it)


def _is_crd(it: Item) -> bool:
    return bool(it.kind == "CustomResourceDefinition")


def _crd_kind(crd: dict[str, Any]) -> tuple[str, str]:
    spec = crd.get("spec") or {}
    return str(spec.get("group", "")), str((spec.get("names") or {}).get("kind", ""))


def dry_run_restore(
    target: Cluster, store: Store, opts: RestoreOptions, progress: Progress | None = None
) -> RestoreSummary:
    """Plan, check as the restore does, then dry-run every write; the summary is the
    restore's (phase PartiallyFailed or Failed when the server would reject objects)."""
    loaded, plan = plan_restore(target, store, opts)
    # the restore's checks (all read-only: a review, GETs) but the name's, as nothing of
    # this run is kept under it
    guard.check_access(target, plan)
    guard.check_collisions(target, plan, opts)
    guard.check_same_cluster(target, loaded, plan, opts)
    warnings = guard.check_backup_phase(loaded, opts)
    target.dry_run = True  # from here every create/patch/replace/delete is dryRun=All
    summary = RestoreSummary(opts.name, opts.backup, levels=len(plan.levels), run=opts.run)
    restorer = DryRunRestorer(target, plan, opts, progress)
    summary.results = restorer.run()
    summary.counts = Counter(r.result for r in summary.results)
    summary.warnings = warnings + restorer.warnings + _unvalidated_warnings(restorer.unvalidated)
    failed, done = summary.counts["failed"], summary.counts["created"] + summary.counts["updated"]
    summary.phase = "Completed" if not failed else ("PartiallyFailed" if done else "Failed")
    summary.completed = datetime.now(UTC)
    log.info("restore %s dry run (server) %s: %s", opts.name, summary.phase, dict(summary.counts))
    return summary


def _unvalidated_warnings(counts: Counter[str]) -> list[str]:
    out = []
    if counts["namespace"]:
        out.append(
            f"{counts['namespace']} objects not validated by the server: their namespace "
            "does not exist on the target yet (a dry-run Namespace is not kept)"
        )
    if counts["crd"]:
        out.append(
            f"{counts['crd']} custom resources not validated by the server: their "
            "CustomResourceDefinition is not on the target yet"
        )
    return out
