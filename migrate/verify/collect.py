"""Read both sides — the target live, the source live or from the backup — in parallel,
page by page, and sort every object as it arrives: compared (normalized now, while other
lists are still in flight), left to a controller (counted per root owner), or not
compared at all (what restore skips, what the target makes by itself).

The skip table (migrate.transform.skip_policy) is the restore's: what restore leaves to
the target's controllers is exactly what verify counts instead of comparing.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from migrate.cluster import Cluster
from migrate.errors import NotFound
from migrate.transform.mappings import NAMESPACE_REF_KINDS
from migrate.transform.skip_policy import SKIP_RULES, SkipRule, skip_reason
from migrate.verify.normalize import Key, Normalizer, Raw, object_key
from migrate.verify.policy import CLUSTER_OWN, COUNTED_KINDS, TARGET_OWN, UNCOUNTED_ROOTS
from migrate.verify.scope import ListTask, VerifyScope

Progress = Callable[[str, int], None]
log = logging.getLogger(__name__)


def _active_pod(obj: dict[str, Any]) -> bool:
    finished = (obj.get("status") or {}).get("phase") in ("Succeeded", "Failed")
    return not finished and not (obj.get("metadata") or {}).get("deletionTimestamp")


def _scaled_up(obj: dict[str, Any]) -> bool:
    return int((obj.get("spec") or {}).get("replicas") or 0) > 0


# COUNTED_KINDS (policy) as predicates: which recreated objects of each kind count.
COUNTS: dict[str, Callable[[dict[str, Any]], bool]] = {
    "Pod": _active_pod,
    "ReplicaSet": _scaled_up,
    "EndpointSlice": lambda _obj: True,
}
assert set(COUNTS) == set(COUNTED_KINDS)


# The skip table's rules by kind, so each object is matched against its kind's few rules
# (same rules, same order as skip_reason; Endpoints need skip_reason's Service check).
_EVERY_KIND = [r for r in SKIP_RULES if not r.kinds]
_RULES: dict[str, list[SkipRule]] = {}
for _rule in SKIP_RULES:
    for _kind in _rule.kinds:
        _RULES[_kind] = [r for r in SKIP_RULES if not r.kinds or _kind in r.kinds]


def _skipped(obj: dict[str, Any], kind: str, selector_services: set[str]) -> bool:
    """Whether restore leaves obj alone (migrate.transform.skip_policy)."""
    if kind == "Endpoints":
        return skip_reason(obj, frozenset(selector_services)) is not None
    return any(rule.matches(obj) for rule in _RULES.get(kind, _EVERY_KIND))


def _controller(obj: dict[str, Any]) -> dict[str, Any] | None:
    refs = (obj.get("metadata") or {}).get("ownerReferences") or []
    return next((r for r in refs if r.get("controller")), None)


def _group(api_version: str) -> str:
    return api_version.rpartition("/")[0]


@dataclass
class Side:
    """One cluster's objects in scope, keyed in target coordinates."""

    name: str
    objects: dict[Key, dict[str, Any]] = field(default_factory=dict)  # normalized
    resources: dict[Key, str] = field(default_factory=dict)  # key -> resource.group
    origin: dict[Key, tuple[str | None, str]] = field(default_factory=dict)  # source ns/name
    ignored: set[Key] = field(default_factory=set)  # not compared, never extra
    lookup_only: set[Key] = field(default_factory=set)  # compared if the source has it
    counts: Counter[tuple[Key, str]] = field(default_factory=Counter)
    # uid -> (key, controller reference) of every object read, to find root owners
    index: dict[str, tuple[Key, dict[str, Any] | None]] = field(default_factory=dict)
    pending_counts: list[tuple[Key, dict[str, Any]]] = field(default_factory=list)
    pending_endpoints: list[tuple[str, dict[str, Any], bool]] = field(default_factory=list)
    selector_services: set[str] = field(default_factory=set)  # "ns/name", as read
    listed: int = 0


class Collector:
    """Sorts objects into a Side; shared by the reading threads (it keeps no state of its
    own: each task fills its own Side, merged afterwards)."""

    def __init__(self, vs: VerifyScope, norm: Normalizer) -> None:
        self.vs = vs
        self.norm = norm
        t, m = norm.t, norm.t.mappings
        # normalization put off (Raw) only where the source side's transforms can change
        # nothing but metadata.namespace: no modifiers, no mapping but of namespaces
        self._lazy_any = not t.modifiers and not (
            m.storage_classes
            or m.claim_sizes
            or m.registries
            or m.replicas is not None
            or m.suspend_cronjobs
        )
        self._lazy_ns = not m.namespaces  # else: kinds whose references get mapped too
        self._volumes_restored = t.sanitize.pv_policy != "reprovision"

    def _lazy(self, kind: str) -> bool:
        return self._lazy_any and (self._lazy_ns or kind not in NAMESPACE_REF_KINDS)

    def _key(self, side: str, obj: dict[str, Any]) -> Key:
        group, kind, ns, name = object_key(obj)
        if side == "source":
            ns = self.vs.mappings.namespace(ns)
            if kind == "Namespace":
                name = self.vs.mappings.namespace(name) or name
        return (group, kind, ns, name)

    def add(
        self, out: Side, gr: str, obj: dict[str, Any], extras: bool, filtered: bool = False
    ) -> None:
        """Sort one object read from a cluster or the backup into out.  filtered: the
        LIST was already limited to one namespace in scope and the label selector."""
        out.listed += 1
        if not filtered and not self.vs.included(out.name, obj):
            return
        meta = obj.get("metadata") or {}
        key = self._key(out.name, obj)
        ctrl = _controller(obj)
        if meta.get("uid"):
            out.index[meta["uid"]] = (key, ctrl)
        kind = key[1]
        if kind == "Service" and (obj.get("spec") or {}).get("selector"):
            out.selector_services.add(f"{meta.get('namespace')}/{meta.get('name')}")
        if kind == "Endpoints":  # needs every Service of the side: sorted at the end
            out.pending_endpoints.append((gr, obj, extras))
            return
        self._sort(out, gr, obj, key, extras)

    def _sort(self, out: Side, gr: str, obj: dict[str, Any], key: Key, extras: bool) -> None:
        kind = key[1]
        meta = obj.get("metadata") or {}
        if (kind, f"{meta.get('namespace')}/{meta.get('name')}") in CLUSTER_OWN:
            out.ignored.add(key)
            return
        if kind == "StorageClass" and self._class_mapped(out.name, key[3]):
            out.ignored.add(key)
            if out.name == "source":
                return
        if kind == "PersistentVolume" and not self._volumes_restored:
            out.ignored.add(key)  # --pv-policy reprovision: the target's are its own
            return
        if _skipped(obj, kind, out.selector_services):
            out.ignored.add(key)
            ctrl = _controller(obj)
            if ctrl and kind in COUNTS and COUNTS[kind](obj):
                out.pending_counts.append((key, ctrl))
            if out.name == "source" or ctrl:
                return  # restore does not create it / the target's controller made it
        lazy = self._lazy(kind)  # normalization put off: see normalize.Raw
        normalized: dict[str, Any]
        if out.name == "source":
            origin = (meta.get("namespace"), str(meta.get("name")))
            if lazy:
                normalized = Raw.of(obj, out.name, gr)
            else:
                *more, normalized = self.norm.sources(gr, obj)  # consumes obj
                key = object_key(normalized)  # modifiers and mappings may rename
                for extra in more:  # a clone's copies of a ClusterRoleBinding
                    out.origin[object_key(extra)] = origin
                    out.objects[object_key(extra)] = extra
                    out.resources[object_key(extra)] = gr
            out.origin[key] = origin
        else:
            normalized = Raw.of(obj, out.name, gr) if lazy else self.norm.target(obj)
            if (kind, key[3]) in TARGET_OWN:
                out.ignored.add(key)
            if not extras:
                out.lookup_only.add(key)
        out.objects[key] = normalized
        out.resources[key] = gr

    def _class_mapped(self, side: str, name: str) -> bool:
        """Restore does not create a StorageClass that --storage-class-mappings maps to
        another one: the target's class of the new name is used (and is its own)."""
        classes = self.vs.mappings.storage_classes
        return name in classes if side == "source" else name in classes.values()

    def finish(self, out: Side) -> None:
        """Sort the deferred Endpoints and count recreated objects per root owner."""
        for gr, obj, extras in out.pending_endpoints:
            self._sort(out, gr, obj, self._key(out.name, obj), extras)
        out.pending_endpoints.clear()
        for key, ctrl in out.pending_counts:
            root = self._root(out, key, ctrl)
            if root is not None and root[1] not in UNCOUNTED_ROOTS:
                out.counts[(root, key[1])] += 1
        out.pending_counts.clear()

    def _root(self, out: Side, key: Key, ctrl: dict[str, Any]) -> Key | None:
        """The outermost controller of a recreated object (Pod -> ReplicaSet ->
        Deployment), by kind and name: uids differ between the clusters."""
        ns = key[2]
        ref: dict[str, Any] | None = ctrl
        root: Key | None = None
        for _ in range(8):  # owner chains are short; a cycle must not hang us
            if ref is None:
                break
            known = out.index.get(str(ref.get("uid", "")))
            if known is None:  # an owner verify did not read: its reference says enough
                group = _group(str(ref.get("apiVersion", "")))
                return (group, str(ref.get("kind")), ns, str(ref.get("name")))
            root, ref = known
        return root


def read_all(
    source: Cluster | None,
    target: Cluster,
    tasks: list[ListTask],
    collector: Collector,
    backup_items: Callable[[], Iterable[tuple[str, dict[str, Any]]]] | None = None,
    parallelism: int = 8,
    page_size: int = 500,
    progress: Progress | None = None,
) -> tuple[Side, Side]:
    """LIST every task (both sides interleaved, in parallel) and sort what arrives."""
    emit: Progress = progress or (lambda _e, _n: None)
    sides = {"source": Side("source"), "target": Side("target")}
    selector = str(collector.vs.selector) or None
    clusters = {"source": source, "target": target}

    def list_one(task: ListTask) -> Side:
        part = Side(task.side)
        c = clusters[task.side]
        assert c is not None
        filtered = task.namespace is not None  # and the selector went with the LIST
        try:
            for obj in c.list(task.res, task.namespace, label_selector=selector, limit=page_size):
                collector.add(part, task.res.full_name, obj, task.extras, filtered)
        except NotFound:  # the type went away since discovery (a CRD deleted): no objects
            log.warning("%s: %s is no longer served", c.name, task.res.full_name)
        emit("listed", 1)
        emit("items", part.listed)
        return part

    def read_backup() -> Side:
        part = Side("source")
        for gr, obj in backup_items() if backup_items else ():
            collector.add(part, gr, obj, True)
        emit("listed", 1)
        emit("items", part.listed)
        return part

    emit("total", len(tasks) + (1 if backup_items else 0))
    with ThreadPoolExecutor(max_workers=max(1, parallelism)) as pool:
        futures = [pool.submit(read_backup)] if backup_items else []
        futures += [pool.submit(list_one, t) for t in tasks]
        for fut in futures:
            _merge(sides[fut.result().name], fut.result())
    for side in sides.values():
        collector.finish(side)
    return sides["source"], sides["target"]


def _merge(into: Side, part: Side) -> None:
    into.objects.update(part.objects)
    into.resources.update(part.resources)
    into.origin.update(part.origin)
    into.ignored |= part.ignored
    into.lookup_only |= part.lookup_only
    into.index.update(part.index)
    into.pending_counts += part.pending_counts
    into.pending_endpoints += part.pending_endpoints
    into.selector_services |= part.selector_services
    into.listed += part.listed
