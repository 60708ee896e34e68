"""Read a backup (ours or Velero's) out of the bucket as restore items, filtered by the
restore's own scope.  The checks that make a bad backup fail before any write (phase,
format version, manifest checksums) are migrate.store.reader's, shared with verify.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from migrate.store import Store, layout
from migrate.store.crypto import EncryptionKey
from migrate.store.reader import open_backup
from migrate.transform.scope import Scope


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


def load_backup(
    store: Store, name: str, scope: Scope | None = None, key: EncryptionKey | None = None
) -> LoadedBackup:
    """Every object in the backup that the restore scope includes.  All of it is read
    (and, encrypted, authenticated to its last segment) before the restore writes."""
    backup = open_backup(store, name, key)
    scope = scope or Scope()
    items = []
    for parsed, obj in backup.items():
        if parsed.namespace and not scope.namespace_included(parsed.namespace):
            continue
        labels = (obj.get("metadata") or {}).get("labels")
        if scope.selector and not scope.selector.matches(labels):
            continue
        items.append(Item(parsed.group_resource, parsed.namespace, parsed.name, obj))
    return LoadedBackup(backup.info, backup.manifest, items)
