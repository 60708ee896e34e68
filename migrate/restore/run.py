"""`restore create` from end to end: load and check the backup, plan, execute, and write
the results in Velero's restore layout (or to a local folder when the bucket is
read-only), then return a summary the CLI and playbooks print."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from migrate.cluster import Cluster
from migrate.errors import WaitTimeout
from migrate.restore import guard
from migrate.restore.delta import apply_deletions, check_parent_restored, delta_of
from migrate.restore.execute import Progress, Restorer
from migrate.restore.journal import Journal, ObjectResult
from migrate.restore.plan import Plan, RestoreOptions, make_plan
from migrate.restore.results import location, write_results
from migrate.restore.source import Item, LoadedBackup, load_backup
from migrate.runlog import captured
from migrate.store import Store, layout

log = logging.getLogger(__name__)


@dataclass
class RestoreSummary:
    name: str
    backup: str
    phase: str = "InProgress"
    started: datetime = field(default_factory=lambda: datetime.now(UTC))
    completed: datetime | None = None
    counts: Counter[str] = field(default_factory=Counter)
    results: Collection[ObjectResult] = ()  # every object's, in the order they happened
    warnings: list[str] = field(default_factory=list)
    levels: int = 0
    results_at: str = ""
    run: str | None = None  # the playbook run it belongs to

    def as_dict(self, details: bool = False) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "name": self.name,
            "backup": self.backup,
            "run": self.run,
            "phase": self.phase,
            "started": layout.rfc3339(self.started),
            "completed": layout.rfc3339(self.completed) if self.completed else None,
            "levels": self.levels,
            "created": self.counts["created"],
            "updated": self.counts["updated"],
            "skipped": self.counts["skipped"],
            "failed": self.counts["failed"],
            **({"deleted": self.counts["deleted"]} if self.counts["deleted"] else {}),
            "warnings": len(self.warnings),
            "results": self.results_at,
        }
        if details:
            return {**self.details_head(), "objects": [r.as_dict() for r in self.results]}
        return doc

    def details_head(self) -> dict[str, Any]:
        """as_dict(details=True) but "objects", for writers that add one row at a time
        (at 100k objects the whole document would cost ~200 MB at once)."""
        return {**self.as_dict(), "warningMessages": self.warnings}


def plan_restore(target: Cluster, store: Store, opts: RestoreOptions) -> tuple[LoadedBackup, Plan]:
    """Read the backup and plan the restore; writes nothing anywhere."""
    guard.check_names(opts)
    loaded = load_backup(store, opts.backup, opts.scope, opts.encryption_key)
    return loaded, make_plan(loaded, opts, target.discovery())


def run_restore(
    target: Cluster,
    store: Store,
    opts: RestoreOptions,
    progress: Progress | None = None,
    planned: tuple[LoadedBackup, Plan] | None = None,
    announce: Callable[[], None] | None = None,
    after_level: Callable[[list[Item], Journal], None] | None = None,
    before_level: Callable[[Iterable[Item]], None] | None = None,
) -> RestoreSummary:
    """Restore; `planned` is plan_restore's result when the caller already has it (the
    backup is then not read from the bucket a second time).  `announce` is called once
    every check has passed, just before the first write (the journal)."""
    loaded, plan = planned or plan_restore(target, store, opts)
    delta = delta_of(store, loaded, opts.scope)
    if delta is not None:  # an increment: its objects replace the parent's restore's
        opts.existing_policy = "update"
        namespaces = {it.target_ns for it in plan.restorable if it.target_ns}
        namespaces |= {opts.mappings.namespace(d.namespace) or "" for d in delta.deleted}
        check_parent_restored(target, delta, sorted(n for n in namespaces if n))
    guard.before_writing(target, store, plan, opts)  # bad input fails here, nothing written
    guard.check_same_cluster(target, loaded, plan, opts)
    if loaded.info.source_version:
        log.info(
            "restoring %s (from %s) into %s", opts.backup, loaded.info.source_version, target.name
        )
    warnings = guard.check_backup_phase(loaded, opts)
    header = {
        "restore": opts.name,
        "backup": opts.backup,
        "run": opts.run,
        "target": {"context": target.context, "server": target.host},
        "started": layout.rfc3339(datetime.now(UTC)),
    }
    journal = Journal(
        opts.name, opts.resume, store=store, header=header, run=opts.run, before_write=announce
    )
    summary = RestoreSummary(opts.name, opts.backup, levels=len(plan.levels), run=opts.run)
    summary.results_at = location(store, opts.name)
    with captured() as capture:
        restorer = Restorer(target, plan, opts, journal, progress, after_level, before_level)
        try:
            results = restorer.run()
            if delta is not None:
                gone = apply_deletions(target, delta, opts.mappings, opts.parallelism)
                for i, r in enumerate(gone):
                    results.put(len(plan.items) + i, r)
        finally:
            journal.close()
        summary.results = results
        summary.counts = Counter(r.result for r in summary.results)
        summary.warnings = warnings + restorer.warnings
        failed, done = (
            summary.counts["failed"],
            summary.counts["created"] + summary.counts["updated"] + summary.counts["deleted"],
        )
        summary.phase = "Completed" if not failed else ("PartiallyFailed" if done else "Failed")
        summary.completed = datetime.now(UTC)
        log.info("restore %s %s: %s", opts.name, summary.phase, dict(summary.counts))
    write_results(
        store,
        summary.details_head(),
        summary.results,
        summary.warnings,
        capture.lines,
    )
    if restorer.not_ready is not None:  # --wait-ready timed out: the results are written
        raise WaitTimeout(
            f"restore {opts.name}: {restorer.not_ready.message}",
            hint=f"the results are in {summary.results_at}; see `kube-migrate restore describe "
            f"{opts.name}`; the objects are created, so wait longer or fix the workloads",
        )
    return summary
