"""Turn a source object into what the restore should have produced, and a target object
into what is comparable with it.

Source side: exactly the restore's transforms (migrate.transform: sanitize, Velero
resource modifiers, mappings), so an intended change is never drift.  Both sides: the
same sanitize (what restore strips, the target never had from us), the normalization
tables of migrate.verify.policy, the user's `--ignore-fields`, and Secret values
replaced by their sha256 (compared by hash; plain values never reach a report).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from migrate.transform.bindings import split_binding
from migrate.transform.hold import as_intended, recorded
from migrate.transform.mappings import Mappings, apply_mappings
from migrate.transform.modifiers import Modifiers
from migrate.transform.sanitize import STRIP_METADATA, SanitizeOptions, sanitize
from migrate.verify import paths
from migrate.verify.ignorefile import UserIgnore
from migrate.verify.policy import (
    ANY,
    DEFAULTED_FIELDS,
    IGNORED_FIELDS,
    SECRET_FIELDS,
    DefaultedField,
)

Key = tuple[str, str, str | None, str]  # (group, kind, namespace, name) on the target


def object_key(obj: dict[str, Any]) -> Key:
    meta = obj.get("metadata") or {}
    group = str(obj.get("apiVersion", "")).rpartition("/")[0]
    return (group, str(obj.get("kind", "")), meta.get("namespace") or None, str(meta.get("name")))


@dataclass(frozen=True)
class Transforms:
    """The restore's transforms (same flags as `restore create`) and verify's own rules."""

    mappings: Mappings = field(default_factory=Mappings)
    modifiers: Modifiers | None = None
    sanitize: SanitizeOptions = field(default_factory=SanitizeOptions)
    ignore: tuple[UserIgnore, ...] = ()
    show_values: bool = False  # print ConfigMap values (never Secret values) in diffs


def _ignored_paths(kind: str) -> list[tuple[str, ...]]:
    return [row.path for row in IGNORED_FIELDS if not row.kinds or kind in row.kinds]


def _defaults_by_kind() -> dict[str, list[DefaultedField]]:
    per: dict[str, list[DefaultedField]] = {}
    for row in DEFAULTED_FIELDS:
        per.setdefault(row.kind, []).append(row)
    return per


def secret_digest(value: Any) -> str:
    return "sha256:" + hashlib.sha256(str(value).encode()).hexdigest()


class Normalizer:
    """Shared by the reading threads: it keeps no per-object state (its per-kind cache of
    ignored paths may be filled twice by a race, with the same value)."""

    def __init__(self, transforms: Transforms) -> None:
        self.t = transforms
        self._ignored: dict[str, list[tuple[str, ...]]] = {}  # kind -> paths (a cache)
        self._defaults = _defaults_by_kind()
        # workloads held or stopped with their replicas recorded: their pods are not counted
        self.held: set[Key] = set()

    def source(self, gr: str, obj: dict[str, Any]) -> dict[str, Any]:
        """The object the restore would create from obj (before its labels), normalized.
        obj is consumed (verify reads each object once)."""
        original_ns = (obj.get("metadata") or {}).get("namespace")
        desired = sanitize(_slim(obj), self.t.sanitize)
        if self.t.modifiers:
            desired = self.t.modifiers.apply(gr, desired, original_ns)
        apply_mappings(desired, self.t.mappings)
        return self._common(desired)

    def sources(self, gr: str, obj: dict[str, Any]) -> list[dict[str, Any]]:
        """Like source(), for a kind restore may turn into several objects: the
        ClusterRoleBinding copies of a namespace-mapped clone (transform.bindings)."""
        if obj.get("kind") != "ClusterRoleBinding" or not self.t.mappings.namespaces:
            return [self.source(gr, obj)]
        original_ns = (obj.get("metadata") or {}).get("namespace")
        desired = sanitize(_slim(obj), self.t.sanitize)
        if self.t.modifiers:
            desired = self.t.modifiers.apply(gr, desired, original_ns)
        apply_mappings(desired, self.t.mappings)
        split = split_binding(desired, self.t.mappings.namespaces)
        if split is None:
            return [self._common(desired)]
        kept = [desired] if split.keep_original else []
        return [self._common(o) for o in [*kept, *split.copies]]

    def target(self, obj: dict[str, Any]) -> dict[str, Any]:
        """obj as comparable with a source object (obj is consumed)."""
        return self._common(sanitize(_slim(obj), self.t.sanitize))

    def _common(self, obj: dict[str, Any]) -> dict[str, Any]:
        paths.drop_nulls(obj)
        if recorded(obj):  # a held or stopped workload: as it is meant to run
            self.held.add(object_key(obj))
            as_intended(obj)
        kind = str(obj.get("kind", ""))
        ignored = self._ignored.get(kind)
        if ignored is None:
            ignored = self._ignored[kind] = _ignored_paths(kind)
        for path in ignored:
            paths.delete_matching(obj, path)
        if self.t.ignore:
            group, _, ns, name = object_key(obj)
            for rule in self.t.ignore:
                if rule.matches(group, kind, ns, name):
                    for path in rule.paths:
                        paths.delete_matching(obj, path)
        if kind == "Secret":  # compared by hash: a Secret's values never reach a result
            _hash_secret(obj)
        return obj

    def materialize(self, obj: dict[str, Any]) -> dict[str, Any]:
        """The normalized form of an object whose normalization was put off (Raw)."""
        if type(obj) is not Raw:
            return obj
        if obj.side == "source":
            return self.source(obj.gr, dict(obj))
        return self.target(dict(obj))

    def drop_target_defaults(self, src: dict[str, Any], tgt: dict[str, Any]) -> None:
        """Remove from tgt the defaulted fields the source does not have (in place)."""
        for row in self._defaults.get(str(tgt.get("kind", "")), []):
            for path in list(paths.expand(tgt, row.path)):
                if paths.has(src, path):
                    continue
                if row.value is ANY or paths.get(tgt, path) == row.value:
                    paths.delete(tgt, path)


class _Owned(dict[str, Any]):
    """An object verify read itself and uses once: sanitize's defensive deep copy (most
    of the CPU time of a verify) is not needed, so deepcopy returns it as it is."""

    def __deepcopy__(self, memo: dict[int, Any]) -> _Owned:
        return self


def _slim(obj: dict[str, Any]) -> dict[str, Any]:
    """obj, to be sanitized in place (no copy), without status (verify never compares
    it) and managedFields (most of a small object's size)."""
    obj.pop("status", None)
    (obj.get("metadata") or {}).pop("managedFields", None)
    return _Owned(obj)


def _hash_secret(obj: dict[str, Any]) -> None:
    for fpath in SECRET_FIELDS:
        holder = paths.get(obj, fpath[:-1], None)
        if not isinstance(holder, dict) or fpath[-1] not in holder:
            continue
        value = holder[fpath[-1]]
        if isinstance(value, dict):
            holder[fpath[-1]] = {k: secret_digest(v) for k, v in value.items()}
        else:
            holder[fpath[-1]] = secret_digest(value)


class Raw(dict[str, Any]):
    """An object kept as read (status and managedFields dropped), its normalization put
    off: if the other side's object is equal to it but for what sanitize strips anyway,
    both would normalize alike and the pair is equal without normalizing either.  Only
    used where the restore's transforms leave the object's content alone (see
    Collector._lazy); Normalizer.materialize normalizes it otherwise."""

    side = ""
    gr = ""

    @classmethod
    def of(cls, obj: dict[str, Any], side: str, gr: str) -> Raw:
        raw = cls(obj)
        raw.pop("status", None)  # verify never compares it
        (raw.get("metadata") or {}).pop("managedFields", None)
        raw.side, raw.gr = side, gr
        return raw


# metadata a restore never carries over: sanitize strips it (and the key holds namespace)
_VOLATILE = frozenset(STRIP_METADATA) | {"namespace"}


def same_but_volatile(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """a == b, but for their metadata's volatile fields and the restore's own labels
    (both objects slimmed).  Runs once per object pair: no copies, early exits."""
    if len(a) != len(b):
        return False
    for k, v in a.items():
        if k != "metadata" and b.get(k, _MISSING) != v:
            return False
    ma, mb = a.get("metadata") or {}, b.get("metadata") or {}
    for k, v in ma.items():
        if k not in _VOLATILE and k != "labels" and mb.get(k, _MISSING) != v:
            return False
    for k in mb:
        if k not in _VOLATILE and k != "labels" and k not in ma:
            return False
    la, lb = ma.get("labels") or {}, mb.get("labels") or {}
    return la == lb or _labels(la) == _labels(lb)


def _labels(labels: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in labels.items() if k not in _IGNORED_LABELS}


# labels verify ignores on every kind (the restore's own: velero.io/backup-name, ...)
_IGNORED_LABELS = frozenset(
    row.path[2]
    for row in IGNORED_FIELDS
    if not row.kinds and row.path[:2] == ("metadata", "labels")
)
_MISSING = object()
