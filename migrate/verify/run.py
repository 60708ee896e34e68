"""`verify` from end to end: resolve the scope on each side, read both (the source live
or from the backup) in parallel, compare in one pass, and return the report the CLI
prints and playbooks check.  Read-only on both clusters and on the bucket.
"""

from __future__ import annotations

import gc
import logging
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from itertools import zip_longest
from typing import Any

from migrate.cluster import Cluster, Discovery
from migrate.errors import ClusterError, UsageError
from migrate.store import Store, layout
from migrate.store.encryption_key import EncryptionKey
from migrate.store.reader import BackupSource, open_backup
from migrate.transform.scope import Scope
from migrate.verify.collect import Collector, Progress, read_all
from migrate.verify.compare import compare
from migrate.verify.grants import grant_warnings
from migrate.verify.normalize import Normalizer, Transforms
from migrate.verify.results import VerifyReport
from migrate.verify.scope import ListTask, ResourceFilter, VerifyScope, list_tasks, resolve_types

log = logging.getLogger(__name__)


@dataclass
class VerifyOptions:
    scope: Scope = field(default_factory=Scope)
    transforms: Transforms = field(default_factory=Transforms)
    backup: str | None = None  # compare the target with this backup instead of the source
    parallelism: int = 8  # LISTs in flight, both sides together
    page_size: int = 500
    encryption_key: EncryptionKey | None = None  # of an encrypted --from-backup


def _facts(c: Cluster) -> dict[str, Any]:
    try:
        version = str(c.version())
    except ClusterError:
        version = ""
    return {"cluster": c.name, "server": c.host, "version": version}


def _interleave(a: list[ListTask], b: list[ListTask]) -> list[ListTask]:
    """Source and target tasks alternate, so both sides are read at the same time."""
    return [t for pair in zip_longest(a, b) for t in pair if t is not None]


def _backup_types(bs: BackupSource, disc: Discovery) -> tuple[dict[str, str], set[str]]:
    """From the backup's resource list: the version each resource was backed up in
    (to read the target in the same one) and its cluster-scoped types (to look up)."""
    keys = layout.BackupKeys(bs.info.name)
    if not bs.store.exists(keys.resource_list):
        return {}, {r.full_name for r in disc if not r.namespaced and r.listable}
    listed = layout.gunzip_json(bs.store.get(keys.resource_list), "backup resource list")
    versions: dict[str, str] = {}
    cluster_types = set()
    for gvk, names in (listed or {}).items():
        api_version, _, kind = str(gvk).rpartition("/")
        res = disc.for_kind(api_version, kind)
        if res is None:
            continue
        versions[res.full_name] = api_version.rpartition("/")[2]
        if not res.namespaced and names:
            cluster_types.add(res.full_name)
    return versions, cluster_types


@contextmanager
def _no_cyclic_gc() -> Iterator[None]:
    """Pause the cyclic garbage collector while tens of thousands of freshly decoded
    objects (which hold no cycles) are kept: its full passes over them cost a verify of
    10k objects a third of its time.  Reference counting still frees everything."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


@dataclass
class _Plan:
    vs: VerifyScope
    rf: ResourceFilter
    tasks: list[ListTask]
    source_facts: dict[str, Any]
    backup: BackupSource | None = None
    warnings: list[str] = field(default_factory=list)  # for the summary (verify.grants)


def _plan(
    source: Cluster | None, target: Cluster, opts: VerifyOptions, store: Store | None
) -> _Plan:
    """What to read on each side; both clusters are asked at once."""
    mappings = opts.transforms.mappings
    with ThreadPoolExecutor(max_workers=4) as pool:
        # CRDs come and go: read what is served now, not what a cached discovery says
        tdisc_f = pool.submit(target.discovery, True)
        sdisc_f = pool.submit(source.discovery, True) if source and not opts.backup else None
        facts_f = pool.submit(_facts, source) if source and not opts.backup else None
        tdisc = tdisc_f.result()
        if opts.backup:
            if store is None:
                raise UsageError("--from-backup needs --bucket")
            backup = open_backup(store, opts.backup, opts.encryption_key)
            vs = VerifyScope((opts.scope, Scope.from_velero_spec(backup.info.spec)), mappings)
            rf = ResourceFilter.resolve(tdisc, vs, strict=True)
            types = resolve_types(tdisc, vs, rf)
            versions, cluster_types = _backup_types(backup, tdisc)
            for name in cluster_types:
                types.setdefault(name, False)  # brought along by the backup: looked up only
            facts = {
                "backup": backup.info.name,
                "bucket": store.url,
                "version": backup.server_version,
            }
            recorded = (backup.manifest.raw.get("grants") or {}) if backup.manifest else {}
            warnings = grant_warnings(None, tdisc, opts.scope, recorded, True)
            tasks = list_tasks("target", tdisc, types, vs, versions)
            return _Plan(vs, rf, tasks, facts, backup, warnings)
        if sdisc_f is None or facts_f is None:
            raise UsageError("verify needs --source-kubeconfig, or --from-backup and --bucket")
        sdisc = sdisc_f.result()
        vs = VerifyScope((opts.scope,), mappings)
        if vs.cluster_mode == "deps":
            log.info(
                "cluster-scoped objects: only Namespaces (and types named in "
                "--include-resources) are compared; --from-backup also compares the ones "
                "the backup brought along"
            )
        rf = ResourceFilter.resolve(sdisc, vs, strict=True)
        types = resolve_types(sdisc, vs, rf)
        versions = {r.full_name: r.version for r in sdisc}
        tasks = _interleave(
            list_tasks("source", sdisc, types, vs), list_tasks("target", tdisc, types, vs, versions)
        )
        warnings = grant_warnings(source, tdisc, opts.scope, None, vs.cluster_mode == "deps")
        return _Plan(vs, rf, tasks, facts_f.result(), warnings=warnings)


def run_verify(
    source: Cluster | None,
    target: Cluster,
    opts: VerifyOptions,
    store: Store | None = None,
    progress: Progress | None = None,
) -> VerifyReport:
    started = time.monotonic()
    plan = _plan(source, target, opts, store)
    vs, rf, backup = plan.vs, plan.rf, plan.backup
    norm = Normalizer(opts.transforms)
    collector = Collector(vs, norm)

    def backup_items() -> Iterator[tuple[str, dict[str, Any]]]:
        assert backup is not None
        for parsed, obj in backup.items():
            gr = parsed.group_resource
            namespaced = bool((obj.get("metadata") or {}).get("namespace"))
            if not rf.passes(gr):
                continue
            if not namespaced and gr != "namespaces" and vs.cluster_mode == "none":
                continue
            yield gr, obj

    with ThreadPoolExecutor(max_workers=1) as side_pool, _no_cyclic_gc():
        target_facts = side_pool.submit(_facts, target)
        src, tgt = read_all(
            source if backup is None else None,
            target,
            plan.tasks,
            collector,
            backup_items if backup is not None else None,
            parallelism=opts.parallelism,
            page_size=opts.page_size,
            progress=progress,
        )
        results = compare(src, tgt, norm, opts.transforms.show_values)
        report = VerifyReport(plan.source_facts, target_facts.result(), results, len(src.ignored))
        report.warnings = plan.warnings
        for warning in plan.warnings:
            log.warning("verify: %s", warning)
        listed = (src.listed, tgt.listed)
        del src, tgt  # freed now, by reference counts: no collector pass over them later
    report.seconds = time.monotonic() - started
    log.info(
        "verify: %s (read %d source and %d target objects in %.1fs)",
        report.summary_line(),
        *listed,
        report.seconds,
    )
    return report
