"""Read a backup (ours or Velero's) out of the bucket as restore items, filtered by the
restore's own scope, with the checks that make a bad backup fail before any write:
phase, format version, manifest checksums.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

from migrate.errors import IntegrityError, UsageError
from migrate.store import Store, layout
from migrate.store.archive import read_tarball
from migrate.transform.scope import Scope

SUPPORTED_MAJOR = "1"  # Velero format 1.x


@dataclass
class Item:
    """One object of the backup, as stored, plus what restore decides about it."""

    gr: str  # resource.group, e.g. "deployments.apps"
    namespace: str | None  # in the backup (before mapping)
    name: str
    obj: dict[str, Any]
    desired: dict[str, Any] = field(default_factory=dict)  # what will be created
    skip: str | None = None  # why it is not restored

    @property
    def kind(self) -> str:
        return str(self.obj.get("kind", ""))

    @property
    def group(self) -> str:
        api_version = str(self.obj.get("apiVersion", ""))
        return api_version.rpartition("/")[0]

    @property
    def target_ns(self) -> str | None:
        ns = (self.desired.get("metadata") or {}).get("namespace") if self.desired else None
        return ns or (None if self.desired else self.namespace)

    @property
    def key(self) -> tuple[str, str, str | None, str]:
        """(group, kind, namespace, name) on the target — the graph's node id."""
        meta = (self.desired or self.obj).get("metadata") or {}
        return (self.group, self.kind, meta.get("namespace") or None, meta.get("name", self.name))

    def label(self) -> str:
        ns = self.target_ns
        return f"{self.gr} {ns}/{self.key[3]}" if ns else f"{self.gr} {self.key[3]}"


@dataclass
class LoadedBackup:
    info: layout.BackupInfo
    manifest: layout.Manifest | None
    items: list[Item]


def load_backup(store: Store, name: str, scope: Scope | None = None) -> LoadedBackup:
    """Every object in the backup that the restore scope includes."""
    keys = layout.BackupKeys(layout.check_backup_name(name))
    if not store.exists(keys.metadata):
        raise UsageError(
            f"backup {name!r} not found (or not complete) in {store.url}",
            hint="`kube-migrate backup get --bucket ...` lists the backups",
        )
    info = layout.BackupInfo.parse(store.get(keys.metadata), name)
    if info.phase not in layout.RESTORABLE_PHASES:
        raise UsageError(
            f"backup {name} is {info.phase}; only Completed or PartiallyFailed backups restore",
            hint="run a new backup",
        )
    if info.format_version.split(".")[0] != SUPPORTED_MAJOR:
        raise IntegrityError(
            f"backup {name} has format version {info.format_version}, this kube-migrate reads 1.x",
            hint="upgrade kube-migrate",
        )
    manifest = None
    if store.exists(keys.manifest):
        manifest = layout.Manifest.parse(store.get(keys.manifest), name)
    expect = manifest.files.get(keys.tarball.removeprefix(keys.dir)) if manifest else None
    scope = scope or Scope()
    items = []
    for path, data in read_tarball(store, keys.tarball, expect[1] if expect else None):
        parsed = layout.parse_item_path(path)
        if parsed is None or parsed.version_dir is not None:
            continue  # version copies: the classic path holds the preferred version
        if parsed.namespace and not scope.namespace_included(parsed.namespace):
            continue
        try:
            obj = orjson.loads(data)
        except ValueError as exc:
            raise IntegrityError(f"backup {name}: {path} is not JSON: {exc}") from exc
        labels = (obj.get("metadata") or {}).get("labels")
        if scope.selector and not scope.selector.matches(labels):
            continue
        items.append(Item(parsed.group_resource, parsed.namespace, parsed.name, obj))
    return LoadedBackup(info, manifest, items)
