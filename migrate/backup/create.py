"""`backup create`: list the source in parallel and stream a Velero-format backup into
the bucket, completing it atomically.

Order of writes: the tarball (streamed), the resource list, results, logs, our
manifest (sha256 + size of every file, velero-backup.json included), and last
velero-backup.json with its terminal phase.  A reader that sees a terminal phase
therefore sees every other file complete; a backup killed midway leaves no marker.
With an encryption key the tarball, the only file holding object content (the others
hold names, counts and messages), is encrypted on its way out; the manifest says so.
"""

from __future__ import annotations

import gzip
import json
import logging
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from migrate import __version__
from migrate.backup import listing
from migrate.backup.access import check_can_list
from migrate.backup.changes import ChangeTracker, included_in, record_changes
from migrate.backup.delta import WATCH_MIN_OBJECTS, list_delta, start_from
from migrate.backup.deps import Collector, fetch_dependencies
from migrate.backup.scope import ResolvedResources, resolve_resources
from migrate.backup.sink import BackupSummary, Progress, Sink
from migrate.cluster import APIResource, Cluster
from migrate.cluster.identity import cluster_id
from migrate.errors import UsageError
from migrate.runlog import LogCapture, captured
from migrate.store import Store, layout
from migrate.store.archive import TarballWriter
from migrate.store.crypto import Encryption, EncryptionKey
from migrate.store.gzlists import GzipLists
from migrate.store.positions import Positions
from migrate.transform.scope import Scope
from migrate.units import format_duration

log = logging.getLogger(__name__)

PLAINTEXT_SECRETS = (
    "backup %s holds %d Secrets, stored unencrypted in %s (readable by anyone who can read "
    "the bucket); to encrypt backups, create a key (`head -c32 /dev/urandom > backup.key "
    "&& chmod 600 backup.key`) and pass --encryption-key-file backup.key "
    "(spec.bucket.encryptionKeyFile in a playbook)"
)


@dataclass
class BackupOptions:
    name: str
    scope: Scope = field(default_factory=Scope)
    ttl: timedelta = timedelta(hours=720)
    labels: dict[str, str] = field(default_factory=dict)
    parallelism: int = 8
    page_size: int = 500
    encryption_key: EncryptionKey | None = None  # encrypt the tarball (--encryption-key-file)
    detect_changes: bool = True  # re-list (metadata only) at the end; report what changed
    warn_plaintext_secrets: bool = True  # say once that Secrets go to the bucket unencrypted
    run: str | None = None  # the playbook run making it (label and manifest: layout.RUN_LABEL)
    parent: str | None = None  # incremental: only what changed since this backup (delta.py)
    watch_min_objects: int = WATCH_MIN_OBJECTS  # an increment watches types this large
    # called once the objects are in, before the files that make the backup visible (the
    # volume data: pipeline/steps_data.py); notes its errors on the summary and returns
    # what it adds to the backup
    add: Callable[[BackupSummary], Addition] | None = None


@dataclass
class Addition:
    """What another step adds to a backup before it becomes visible."""

    files: dict[str, bytes] = field(default_factory=dict)  # key -> content, in the manifest
    manifest: dict[str, Any] = field(default_factory=dict)  # extra fields of the manifest


def _tasks(
    c: Cluster, scope: Scope, resolved: ResolvedResources
) -> Iterator[tuple[APIResource, str | None]]:
    """(resource, namespace or None for all) pairs to list."""
    per_namespace = scope.explicit_namespaces()
    for res in resolved.namespaced:
        if per_namespace is None:
            yield res, None
        else:
            for ns in per_namespace:
                yield res, ns
    for res in resolved.cluster:
        yield res, None


def create_backup(
    c: Cluster, store: Store, opts: BackupOptions, progress: Progress | None = None
) -> BackupSummary:
    """Run a backup and return its summary (phase PartiallyFailed when some resources
    could not be listed; their errors are in the results)."""
    emit: Progress = progress or (lambda _e, _n: None)
    keys = _new_keys(store, opts.name)
    version = c.version()
    disc = c.discovery(refresh=True)  # what is served now (CRDs come and go)
    resolved = resolve_resources(disc, opts.scope)  # bad filters fail here, nothing written
    check_can_list(c, opts.scope, resolved)  # credentials that may list nothing: stop
    spec = opts.scope.velero_spec(format_duration(opts.ttl))
    positions = (
        start_from(store, opts.parent, opts.name, c, spec)
        if opts.parent
        else Positions(chain=[opts.name])
    )
    summary = BackupSummary(opts.name, source_version=str(version), parent=opts.parent)
    summary.skipped_resources = resolved.skipped
    summary.expiration = summary.started + opts.ttl
    with captured() as capture:
        log.info("backup %s of %s (%s) started", opts.name, c.name, version)
        tasks = list(_tasks(c, opts.scope, resolved))
        emit("total", len(tasks))
        tracker = None
        if opts.detect_changes and not opts.parent:  # an increment's LIST is its own check
            selector = str(opts.scope.selector) or None
            tracker = ChangeTracker(c, selector, included_in(opts.scope), tasks)
        addition = _start_addition(opts, summary)
        try:
            with TarballWriter(store, keys.tarball, opts.encryption_key) as tw:
                tw.add(layout.VERSION_FILE, f"{layout.FORMAT_VERSION}\n".encode())
                sink = Sink(tw, summary, emit)
                sink.positions = positions
                _objects(c, opts, tasks, sink, summary, emit, tracker)
        except BaseException:
            if tracker is not None:
                tracker.close()  # no watch outlives a failed backup
            raise
        summary.tarball_bytes = tw.size
        secrets = summary.by_resource.get("secrets", 0)
        if secrets and opts.encryption_key is None and opts.warn_plaintext_secrets:
            log.warning(PLAINTEXT_SECRETS, opts.name, secrets, store.url)
        if tracker is not None:
            record_changes(tracker, opts.parallelism, summary)
        files = {keys.tarball: (tw.size, tw.sha256)}
        added = addition()
        added.files[keys.positions] = positions.to_bytes()
        if opts.parent:
            added.manifest["incremental"] = {"chain": positions.chain, **summary.incremental}
        _finish(c, store, keys, opts, summary, sink.resource_list, capture, files, version, added)
    return summary


def _start_addition(opts: BackupOptions, summary: BackupSummary) -> Callable[[], Addition]:
    """What another step adds (the volume data): for an increment started now, beside its
    objects (neither needs the other, and a cut-over waits for both); for a full backup
    once its objects are in.  Returns the call that gives the addition."""
    add = opts.add
    if add is None:
        return Addition
    if not opts.parent:
        return lambda: add(summary)
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="km-addition")
    future = pool.submit(add, summary)
    pool.shutdown(wait=False)
    return future.result


def _new_keys(store: Store, name: str) -> layout.BackupKeys:
    """The keys of a backup about to be written: the name is free and the store writable."""
    keys = layout.BackupKeys(layout.check_backup_name(name))
    if store.read_only:
        store.put(keys.metadata, b"")  # raises StoreReadOnly before anything is written
    if next(iter(store.list(keys.dir)), None) is not None:
        raise UsageError(
            f"backup {name!r} already exists in {store.url}",
            hint=f"choose another name, or `kube-migrate backup delete {name}` first",
        )
    return keys


def _objects(
    c: Cluster,
    opts: BackupOptions,
    tasks: list[tuple[APIResource, str | None]],
    sink: Sink,
    summary: BackupSummary,
    emit: Progress,
    tracker: ChangeTracker | None,
) -> None:
    """Every object in scope (or, incremental, what changed since the parent) into the
    sink, then the cluster-scoped objects they need."""
    collector = Collector()
    lister = listing.lister(c, opts.scope, opts.page_size, sink, collector, summary, emit, tracker)
    if opts.parent:
        selector = str(opts.scope.selector) or None
        stats = list_delta(
            c, selector, opts.scope, tasks, sink, collector, summary, emit, lister,
            opts.parallelism, opts.watch_min_objects,
        )  # fmt: skip
        summary.incremental = stats.as_dict()
    else:
        listing.list_all(lister, tasks, opts.parallelism)
    if tracker is not None:
        tracker.all_listed()
    if opts.scope.cluster_mode != "all":
        fetch_dependencies(c, opts.scope, sink, collector, summary, opts.parallelism)


def _finish(
    c: Cluster,
    store: Store,
    keys: layout.BackupKeys,
    opts: BackupOptions,
    summary: BackupSummary,
    resource_list: GzipLists,
    capture: LogCapture,
    files: dict[str, tuple[int, str]],
    version: Any,
    added: Addition,
) -> None:
    summary.phase = "PartiallyFailed" if summary.error_count() else "Completed"
    summary.completed = datetime.now(UTC)
    log.info("backup %s %s: %d items", opts.name, summary.phase, summary.items)
    blobs = {
        keys.resource_list: resource_list.gzipped(),
        keys.results: layout.gzip_json({"errors": summary.errors, "warnings": summary.warnings}),
        keys.logs: gzip.compress(("\n".join(capture.lines) + "\n").encode(), mtime=0),
        **added.files,
    }
    metadata = json.dumps(
        layout.backup_object(
            opts.name,
            spec=opts.scope.velero_spec(format_duration(opts.ttl)),
            phase=summary.phase,
            started=summary.started,
            completed=summary.completed,
            expiration=summary.expiration,
            total=summary.items,
            backed_up=summary.items,
            errors=summary.error_count(),
            warnings=summary.error_count("warnings"),
            git_version=str(version),
            major=version.major,
            minor=version.minor,
            labels=_labels(opts),
        ),
        indent=2,
    ).encode()
    for key, blob in blobs.items():
        files[key] = (len(blob), layout.sha256(blob))
    files[keys.metadata] = (len(metadata), layout.sha256(metadata))
    extra: dict[str, Any] = {
        "scope": opts.scope.velero_spec(format_duration(opts.ttl)),
        "counts": summary.as_dict(),
        "clusterIncluded": summary.cluster_included,
        "skippedResources": summary.skipped_resources,
    }
    if summary.grants:
        extra["grants"] = summary.grants
    extra.update(added.manifest)
    if opts.run:
        extra["run"] = opts.run
    if opts.encryption_key is not None:
        tarball = keys.tarball.removeprefix(keys.dir)
        extra["encryption"] = Encryption.for_key(opts.encryption_key, (tarball,)).as_dict()
    blobs[keys.manifest] = layout.manifest(
        opts.name, files, keys.dir, _source_facts(c, version), extra, opts.encryption_key
    )
    store.put_all(blobs)
    store.put(keys.metadata, metadata)  # last, once the others are in: the completion marker


def _labels(opts: BackupOptions) -> dict[str, str]:
    labels = dict(opts.labels)
    if opts.run:
        labels[layout.RUN_LABEL] = opts.run
    if opts.parent:
        labels[layout.PARENT_LABEL] = opts.parent
    return labels


def _source_facts(c: Cluster, version: Any) -> dict[str, Any]:
    disc = c.discovery()
    return {
        "server": c.host,
        "clusterId": cluster_id(c),  # kube-system's uid (a restore back into it is told)
        "gitVersion": str(version),
        "major": version.major,
        "minor": version.minor,
        "groupVersions": {g or "core": list(v) for g, v in sorted(disc.group_versions.items())},
        "resources": [
            {
                "group": r.group,
                "resource": r.resource,
                "kind": r.kind,
                "version": r.version,
                "versions": list(r.versions),
                "namespaced": r.namespaced,
            }
            for r in sorted(disc, key=lambda r: r.full_name)
        ],
        "createdBy": f"kube-migrate {__version__}",
    }
