"""Read a backup (ours or Velero's) out of the bucket as restore items, filtered by the
restore's own scope.  The checks that make a bad backup fail before any write (phase,
format version, manifest checksums) are migrate.store.reader's, shared with verify.
"""

from __future__ import annotations

import sys
from array import array
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import orjson

from migrate.restore.spool import Spool, shared
from migrate.store import Store, layout
from migrate.store.encryption_key import EncryptionKey
from migrate.store.reader import open_backup
from migrate.transform.scope import Scope

Key = tuple[str, str, str | None, str]  # (group, kind, namespace, name) on the target


def _intern(s: str | None) -> Any:
    """One string object for the few values that repeat across 100k objects (kinds,
    groups, namespaces), not one per object."""
    return sys.intern(s) if s else s


class Item:
    """One object of the backup, as stored, plus what restore decides about it.

    Both the stored object and the object to create are kept as compact JSON in a spool
    file and decoded on each read (pread + orjson: microseconds), and a restore keeps its
    Items themselves there too (ItemTable): a restore's memory does not grow with the
    backup.  Reading `obj` or `desired` gives a fresh dict; a change to it counts only
    once assigned back.
    """

    __slots__ = (
        "_desired", "_obj", "_spool", "api_version", "gr", "group", "index", "key", "kind",
        "name", "namespace", "node", "refused", "skip", "target_ns",
    )  # fmt: skip

    def __init__(
        self,
        gr: str,  # resource.group, e.g. "deployments.apps"
        namespace: str | None,  # in the backup (before mapping)
        name: str,
        obj: dict[str, Any],
        desired: dict[str, Any] | None = None,  # what will be created
        skip: str | None = None,  # why it is not restored
        spool: Spool | None = None,  # where its JSON is kept; the process's own if None
    ) -> None:
        self.gr, self.namespace, self.name, self.skip = _intern(gr), _intern(namespace), name, skip
        self.refused = False  # `skip` says why restoring it is refused: its result is failed
        self._spool = spool or shared()
        self._obj = self._spool.put(orjson.dumps(obj))
        self.node: Any = None  # its node in the restore graph (set when a level yields it)
        self.index = -1  # its place in an ItemTable (-1: in none)
        self.kind = _intern(str(obj.get("kind", "")))
        self.group = _intern(str(obj.get("apiVersion", "")).rpartition("/")[0])
        self._set_desired(desired or {}, obj)

    @property
    def obj(self) -> dict[str, Any]:
        out: dict[str, Any] = orjson.loads(self._spool.get(self._obj))
        return out

    @obj.setter
    def obj(self, obj: dict[str, Any]) -> None:
        self._obj = self._spool.put(orjson.dumps(obj))

    @property
    def desired(self) -> dict[str, Any]:
        """What will be created; {} until planned."""
        ref = self._desired
        out: dict[str, Any] = orjson.loads(self._spool.get(ref)) if ref is not None else {}
        return out

    @desired.setter
    def desired(self, desired: dict[str, Any]) -> None:
        self._set_desired(desired, None)

    def _set_desired(self, desired: dict[str, Any], obj: dict[str, Any] | None) -> None:
        self._desired = self._spool.put(orjson.dumps(desired)) if desired else None
        shown = desired or (self.obj if obj is None else obj)
        self.api_version = _intern(str(shown.get("apiVersion", "")))
        meta = shown.get("metadata") or {}
        ns = _intern(meta.get("namespace") or None)
        self.target_ns: str | None = ns if desired else self.namespace
        name = meta.get("name", self.name)
        self.key: Key = (self.group, self.kind, ns, self.name if name == self.name else name)

    def label(self) -> str:
        ns = self.target_ns
        return f"{self.gr} {ns}/{self.key[3]}" if ns else f"{self.gr} {self.key[3]}"

    def record(self) -> bytes:
        """Everything but the node, for ItemTable (the JSON stays where it is)."""
        return orjson.dumps(
            (self.gr, self.namespace, self.name, self.kind, self.group, self.api_version,
             self.target_ns, self.key, self._obj, self._desired, self.skip, self.refused)
        )  # fmt: skip

    @classmethod
    def from_record(cls, data: bytes, spool: Spool, index: int) -> Item:
        it = cls.__new__(cls)
        (gr, ns, it.name, kind, group, api_version, target_ns, key, it._obj, it._desired, it.skip,
         it.refused) = orjson.loads(data)  # fmt: skip
        it.gr, it.namespace, it.kind, it.group = (
            _intern(gr),
            _intern(ns),
            _intern(kind),
            _intern(group),
        )
        it.api_version, it.target_ns = _intern(api_version), _intern(target_ns)
        name = it.name if key[3] == it.name else key[3]
        it.key = (it.group, it.kind, _intern(key[2]), name)
        it._spool, it.node, it.index = spool, None, index
        return it


class ItemTable:
    """The restore's objects in order, each kept as one record in the spool: the heap
    holds 8 bytes an object (its record's ref), so a restore's memory stays flat in the
    size of the backup.  Reading gives a fresh Item (a few microseconds); a change to it
    counts once saved back (`save`)."""

    def __init__(self, spool: Spool, items: Iterable[Item] = ()) -> None:
        self.spool = spool
        self._refs = array("Q")
        for it in items:
            self.append(it)

    def append(self, it: Item) -> None:
        if it._spool is not self.spool:  # made elsewhere (tests, hand-built): copy its JSON
            it._obj = self.spool.put(it._spool.get(it._obj))
            if it._desired is not None:
                it._desired = self.spool.put(it._spool.get(it._desired))
            it._spool = self.spool
        it.index = len(self._refs)
        self._refs.append(self.spool.put(it.record()))

    def save(self, it: Item) -> None:
        """Keep the changes made to an item read from this table."""
        self._refs[it.index] = self.spool.put(it.record())

    def __getitem__(self, index: int) -> Item:
        return Item.from_record(self.spool.get(self._refs[index]), self.spool, index)

    def __len__(self) -> int:
        return len(self._refs)

    def __iter__(self) -> Iterator[Item]:
        for index in range(len(self._refs)):
            yield self[index]

    def where(self, keep: Callable[[Item], bool]) -> Selection:
        return Selection(self, keep)


class Selection:
    """The items of a table that `keep` accepts, read afresh on each iteration (their
    number counted once)."""

    def __init__(self, table: ItemTable, keep: Callable[[Item], bool]) -> None:
        self._table, self._keep = table, keep
        self._len: int | None = None

    def __iter__(self) -> Iterator[Item]:
        return (it for it in self._table if self._keep(it))

    def __len__(self) -> int:
        if self._len is None:
            self._len = sum(1 for _ in self)
        return self._len


@dataclass
class LoadedBackup:
    info: layout.BackupInfo
    manifest: layout.Manifest | None
    items: ItemTable
    spool: Spool  # where the items' JSON is kept


def load_backup(
    store: Store, name: str, scope: Scope | None = None, key: EncryptionKey | None = None
) -> LoadedBackup:
    """Every object in the backup that the restore scope includes.  All of it is read
    (and, encrypted, authenticated to its last segment) before the restore writes."""
    backup = open_backup(store, name, key)
    scope = scope or Scope()
    spool = Spool()
    items = ItemTable(spool)
    for parsed, obj in backup.items():
        if parsed.namespace and not scope.namespace_included(parsed.namespace):
            continue
        labels = (obj.get("metadata") or {}).get("labels")
        if scope.selector and not scope.selector.matches(labels):
            continue
        items.append(Item(parsed.group_resource, parsed.namespace, parsed.name, obj, spool=spool))
    return LoadedBackup(backup.info, backup.manifest, items, spool)
