"""Read and tidy the backups already in the bucket: list, describe, logs, delete, gc.

A shared bucket holds our backups and Velero's side by side, plus folders that a killed
backup left without its completion marker.  Every command that shows or removes backups
must see them all the same way, so the rules live here once: a folder without
``velero-backup.json`` is "Incomplete", an unreadable one is "Corrupt" (listed, never a
crash), and a deletion removes the completion marker first so that a half-deleted
backup never looks complete to a reader (or to Velero's sync) on the other side.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from migrate.errors import IntegrityError, StoreNotFound, StoreReadOnly, UsageError
from migrate.store import ObjectInfo, Store, layout

log = logging.getLogger(__name__)

INCOMPLETE = "Incomplete"  # files, but no velero-backup.json: interrupted or still writing
CORRUPT = "Corrupt"  # velero-backup.json does not parse
MADE_BY_US = "kube-migrate"
MADE_BY_VELERO = "velero"
# The Backup spec fields that choose what is backed up.
_SPEC_FILTERS = (
    "includedNamespaces",
    "excludedNamespaces",
    "includedResources",
    "excludedResources",
    "includeClusterResources",
    "labelSelector",
    "orLabelSelectors",
)


@dataclass
class BackupRow:
    """One backup folder as `backup get` shows it."""

    name: str
    phase: str
    created: datetime | None
    expires: datetime | None
    items: int
    size: int  # tarball bytes, 0 if there is no tarball
    source_version: str
    made_by: str
    expired: bool
    run: str | None = None  # the playbook run that made it (layout.RUN_LABEL), if any
    schedule: str | None = None  # the schedule that made it (Velero's label), if any

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "phase": self.phase,
            "created": _ts(self.created),
            "expires": _ts(self.expires),
            "expired": self.expired,
            "items": self.items,
            "sizeBytes": self.size,
            "sourceVersion": self.source_version,
            "madeBy": self.made_by,
            "run": self.run,
            "schedule": self.schedule,
        }


@dataclass
class _Folder:
    """What one listing of ``backups/<name>/`` plus velero-backup.json tell."""

    name: str
    keys: layout.BackupKeys
    files: dict[str, ObjectInfo]  # full key -> info
    info: layout.BackupInfo | None
    problem: str = ""

    @property
    def phase(self) -> str:
        if self.info is not None:
            return self.info.phase
        return CORRUPT if self.problem else INCOMPLETE

    @property
    def ours(self) -> bool:
        return self.keys.manifest in self.files


def _ts(value: datetime | None) -> str | None:
    return layout.rfc3339(value) if value else None


def _check_name(name: str) -> layout.BackupKeys:
    # Lenient on purpose (Velero allows names up to 253 characters), strict on paths.
    if not name or "/" in name or name in (".", ".."):
        raise UsageError(f"invalid backup name {name!r}", hint="pass a name from `backup get`")
    return layout.BackupKeys(name)


def _not_found(store: Store, name: str) -> UsageError:
    return UsageError(
        f"backup {name!r} not found in {store.url}",
        hint="`kube-migrate backup get --bucket ...` lists the backups",
    )


def _read_folder(store: Store, name: str) -> _Folder | None:
    keys = _check_name(name)
    files = {o.key: o for o in store.list(keys.dir)}
    if not files:
        return None
    folder = _Folder(name, keys, files, None)
    if keys.metadata in files:
        try:
            folder.info = layout.BackupInfo.parse(store.get(keys.metadata), name)
        except IntegrityError as exc:
            folder.problem = exc.message
        except StoreNotFound:
            folder.files.pop(keys.metadata)  # deleted between list and get
    return folder


def _row(folder: _Folder, now: datetime) -> BackupRow:
    info = folder.info
    tarball = folder.files.get(folder.keys.tarball)
    created = None
    if info is not None:
        created = info.started or layout.parse_time(
            (info.raw.get("metadata") or {}).get("creationTimestamp")
        )
    if created is None:  # incomplete or corrupt: when its first file was written
        created = min(o.last_modified for o in folder.files.values())
    return BackupRow(
        name=folder.name,
        phase=folder.phase,
        created=created,
        expires=info.expiration if info else None,
        items=info.items if info else 0,
        size=tarball.size if tarball else 0,
        source_version=info.source_version if info else "",
        made_by=MADE_BY_US if folder.ours else MADE_BY_VELERO,
        expired=info.expired(now) if info else False,
        run=info.labels.get(layout.RUN_LABEL) if info else None,
        schedule=info.labels.get(layout.SCHEDULE_LABEL) if info else None,
    )


def _listed_folder(store: Store, name: str) -> _Folder | None:
    try:
        return _read_folder(store, name)
    except UsageError as exc:  # a folder name no key can spell (a backslash, say)
        log.warning("skipping backups/%s/: %s", name, exc.message)
        return None


def find(store: Store, name: str, now: datetime | None = None) -> BackupRow | None:
    """Backup `name` as `backup get` would list it, or None when its folder is empty."""
    folder = _read_folder(store, name)
    return _row(folder, now or datetime.now(UTC)) if folder is not None else None


def list_backups(store: Store, now: datetime | None = None) -> list[BackupRow]:
    """Every backup folder under ``backups/`` (ours and Velero's), newest first."""
    now = now or datetime.now(UTC)
    names = store.list_prefixes("backups/")
    with ThreadPoolExecutor(max_workers=min(16, max(1, len(names)))) as pool:
        folders = list(pool.map(lambda n: _listed_folder(store, n), names))
    rows = [_row(f, now) for f in folders if f is not None]
    oldest = datetime.min.replace(tzinfo=UTC)
    rows.sort(key=lambda r: (r.created or oldest, r.name), reverse=True)
    return rows


def delete(store: Store, name: str) -> int:
    """Delete the folder ``backups/<name>/``; return how many objects were removed.

    velero-backup.json goes first, so a deletion that stops midway leaves a folder that
    lists as Incomplete, never a backup that looks complete but misses files.
    """
    keys = _check_name(name)
    if next(iter(store.list(keys.dir)), None) is None:
        raise _not_found(store, name)
    # On a read-only store this raises StoreReadOnly before anything is deleted.
    had_marker = store.exists(keys.metadata)
    store.delete(keys.metadata)
    count = int(had_marker) + store.delete_prefix(keys.dir)
    log.info("deleted backup %s (%d objects) from %s", name, count, store.url)
    return count


def expired(store: Store, now: datetime | None = None) -> list[BackupRow]:
    """The backups whose expiration has passed and that may be deleted.

    Like Velero's deletion controller, a backup still being written (a non-terminal
    phase) is left alone even when expired.
    """
    if store.read_only:
        raise StoreReadOnly(f"cannot garbage-collect {store.url}: the store is read-only")
    now = now or datetime.now(UTC)
    out = []
    for row in list_backups(store, now):
        if not row.expired:
            continue
        if row.phase not in layout.TERMINAL_PHASES:
            log.warning("backup %s expired but is %s; not deleting it", row.name, row.phase)
            continue
        out.append(row)
    return out


def gc(store: Store, now: datetime | None = None) -> list[str]:
    """Delete every expired backup (`expired`); return their names."""
    deleted = []
    for row in expired(store, now):
        delete(store, row.name)
        deleted.append(row.name)
    return sorted(deleted)
