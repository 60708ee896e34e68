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


def _read_only(name: str) -> AttributeError:
    return AttributeError(
        f"Item.{name} is read-only (an Item is a copy of what its spool holds): "
        "ItemTable.decide records what restore does with it"
    )


class Item:
    """One object of the backup, as stored, plus what restore decides about it: a
    read-only value.

    Both the stored object and the object to create are kept as compact JSON in a spool
    file and decoded on each read (pread + orjson: microseconds), and a restore keeps its
    Items themselves there too (ItemTable): a restore's memory does not grow with the
    backup.  So nothing about an Item is changed in place, where the change could be
    lost: `read_obj()`/`read_desired()` decode a fresh dict each call, assigning an
    attribute raises, and what restore decides is written with `ItemTable.decide`.
    """

    __slots__ = (
        "_desired", "_obj", "_ref", "_spool", "api_version", "gr", "group", "index", "key",
        "kind", "name", "namespace", "node", "refused", "skip", "target_ns",
    )  # fmt: skip
    gr: str  # resource.group, e.g. "deployments.apps"
    namespace: str | None  # in the backup (before mapping)
    name: str  # in the backup
    kind: str
    group: str
    api_version: str  # of the object to create (as stored until planned)
    target_ns: str | None  # where it is created
    key: Key
    skip: str | None  # why it is not restored
    refused: bool  # `skip` says why restoring it is refused: its result is failed
    index: int  # its place in an ItemTable (-1: in none)
    node: Any  # its node in the restore graph (when read from a Level)
    _spool: Spool  # where its JSON is kept
    _obj: int  # spool refs of the stored object and of the object to create (None: unplanned)
    _desired: int | None
    _ref: int  # the table record it was read from (0: none)

    def __new__(
        cls,
        gr: str,
        namespace: str | None,
        name: str,
        obj: dict[str, Any],
        desired: dict[str, Any] | None = None,  # what will be created
        skip: str | None = None,
        refused: bool = False,
        spool: Spool | None = None,  # where its JSON is kept; the process's own if None
    ) -> Item:
        """A new object, in no table yet (ItemTable.append copies it in)."""
        new = object.__new__(_Draft)
        new.gr, new.namespace, new.name = _intern(gr), _intern(namespace), name
        new.kind = _intern(str(obj.get("kind", "")))
        new.group = _intern(str(obj.get("apiVersion", "")).rpartition("/")[0])
        new._spool = spool or shared()
        new._obj, new.index, new.node, new._ref = new._spool.put(orjson.dumps(obj)), -1, None, 0
        new.decided(desired or {}, obj, skip, refused)
        return new.frozen()

    def __setattr__(self, name: str, value: Any) -> None:
        raise _read_only(name)

    def __delattr__(self, name: str) -> None:
        raise _read_only(name)

    def read_obj(self) -> dict[str, Any]:
        """The object as stored in the backup: a fresh dict each call, the caller's to
        change (it changes nothing else)."""
        out: dict[str, Any] = orjson.loads(self._spool.get(self._obj))
        return out

    def read_desired(self) -> dict[str, Any]:
        """The object to create ({} until planned): a fresh dict each call, the caller's
        to change (it changes nothing else; ItemTable.decide records a new one)."""
        ref = self._desired
        out: dict[str, Any] = orjson.loads(self._spool.get(ref)) if ref is not None else {}
        return out

    def label(self) -> str:
        ns = self.target_ns
        return f"{self.gr} {ns}/{self.key[3]}" if ns else f"{self.gr} {self.key[3]}"

    def _record(self, obj: int, desired: int | None) -> bytes:
        """Everything but the node and the table place, for ItemTable (its JSON as the
        refs given: the table's own spool)."""
        return orjson.dumps(
            (self.gr, self.namespace, self.name, self.kind, self.group, self.api_version,
             self.target_ns, self.key, obj, desired, self.skip, self.refused)
        )  # fmt: skip


class _Draft(Item):
    """An Item while its fields are filled in, by plain slot writes (a table read stays
    a few microseconds: the 100k objects of a restore are each read several times); made
    a read-only Item (`frozen`) before anyone else sees it."""

    __slots__ = ()
    __setattr__ = object.__setattr__  # type: ignore[assignment]
    __delattr__ = object.__delattr__

    def decided(
        self, desired: dict[str, Any], obj: dict[str, Any] | None, skip: str | None, refused: bool
    ) -> None:
        """Set the decision and what it implies: apiVersion, namespace and key on the
        target (from `desired`; from the stored object, `obj` or read, while unplanned)."""
        self._desired = self._spool.put(orjson.dumps(desired)) if desired else None
        self.skip, self.refused = skip, refused
        shown = desired or (self.read_obj() if obj is None else obj)
        self.api_version = _intern(str(shown.get("apiVersion", "")))
        meta = shown.get("metadata") or {}
        ns = _intern(meta.get("namespace") or None)
        self.target_ns = ns if desired else self.namespace
        name = meta.get("name", self.name)
        self.key = (self.group, self.kind, ns, self.name if name == self.name else name)

    def frozen(self) -> Item:
        done: Item = self
        done.__class__ = Item  # same slots: only the class changes
        return done


class ItemTable:
    """The restore's objects in order, each kept as one record in the spool: the heap
    holds 8 bytes an object (its record's ref), so a restore's memory stays flat in the
    size of the backup.  Reading gives a fresh read-only Item (a few microseconds);
    `decide` is the one way to change a record."""

    def __init__(self, spool: Spool, items: Iterable[Item] = ()) -> None:
        self.spool = spool
        self._refs = array("Q")
        for it in items:
            self.append(it)

    def append(self, it: Item) -> None:
        """Add `it` last (made elsewhere, e.g. by hand in tests: its JSON is copied in)."""
        obj, desired = it._obj, it._desired
        if it._spool is not self.spool:
            obj = self.spool.put(it._spool.get(obj))
            desired = None if desired is None else self.spool.put(it._spool.get(desired))
        self._refs.append(self.spool.put(it._record(obj, desired)))

    def decide(
        self, it: Item, desired: dict[str, Any], skip: str | None = None, refused: bool = False
    ) -> Item:
        """Record what restore does with `it`, read from this table: the object to create
        (for one skipped, its name and namespace on the target), why it is skipped, if
        so, and whether that is a refusal.  Returns the item as now recorded; `it` is out
        of date, and deciding on it again raises (the newer decision would be lost)."""
        index = it.index
        if it._spool is not self.spool or index < 0 or self._refs[index] != it._ref:
            raise ValueError(f"{it.label()}: not the current record of this table: read it again")
        new = object.__new__(_Draft)
        new.gr, new.namespace, new.name, new.kind, new.group = (
            it.gr, it.namespace, it.name, it.kind, it.group
        )  # fmt: skip
        new._spool, new._obj, new.index, new.node = self.spool, it._obj, index, it.node
        new.decided(desired, None, skip, refused)
        new._ref = self._refs[index] = self.spool.put(new._record(new._obj, new._desired))
        return new.frozen()

    def read(self, index: int, node: Any = None) -> Item:
        """The object at `index`, decoded afresh; `node`: its restore-graph node, if known."""
        ref = self._refs[index]
        new = object.__new__(_Draft)
        (gr, ns, new.name, kind, group, api_version, target_ns, key, new._obj, new._desired,
         new.skip, new.refused) = orjson.loads(self.spool.get(ref))  # fmt: skip
        # not interned: an Item read is short-lived (interning costs a third of a read)
        new.gr, new.namespace, new.kind, new.group = gr, ns, kind, group
        new.api_version, new.target_ns = api_version, target_ns
        new.key = (group, kind, key[2], key[3])
        new._spool, new.node, new.index, new._ref = self.spool, node, index, ref
        return new.frozen()

    def __getitem__(self, index: int) -> Item:
        return self.read(index)

    def __len__(self) -> int:
        return len(self._refs)

    def __iter__(self) -> Iterator[Item]:
        for index in range(len(self._refs)):
            yield self.read(index)

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
    resources: frozenset[str] = frozenset()  # the group-resources of the items


def load_backup(
    store: Store, name: str, scope: Scope | None = None, key: EncryptionKey | None = None
) -> LoadedBackup:
    """Every object in the backup that the restore scope includes.  All of it is read
    (and, encrypted, authenticated to its last segment) before the restore writes."""
    backup = open_backup(store, name, key)
    scope = scope or Scope()
    spool = Spool()
    items = ItemTable(spool)
    resources: set[str] = set()
    for parsed, obj in backup.items():
        if parsed.namespace and not scope.namespace_included(parsed.namespace):
            continue
        labels = (obj.get("metadata") or {}).get("labels")
        if scope.selector and not scope.selector.matches(labels):
            continue
        items.append(Item(parsed.group_resource, parsed.namespace, parsed.name, obj, spool=spool))
        resources.add(parsed.group_resource)
    return LoadedBackup(backup.info, backup.manifest, items, spool, frozenset(resources))
