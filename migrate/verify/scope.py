"""Which objects verify looks at on each side: the same scope flags as backup and restore
(migrate.transform.scope), resolved against what each cluster serves, with namespaces
seen through the namespace mappings on the target side.

In `--from-backup` mode the backup's own scope (from its velero-backup.json) applies
too, so a backup of two namespaces is never compared with a whole target cluster.
Cluster-scoped objects follow the backup's rule: every one with `all`; in `deps` mode
(a namespace filter) only Namespaces, the types named in --include-resources, and
whatever the backup brought along — and those are looked up on the target, never
reported as extra, since the target's other cluster-scoped objects are not in scope.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from migrate.cluster import APIResource, Discovery
from migrate.cluster.selectors import Selector
from migrate.errors import UsageError
from migrate.transform.exclusions import EXCLUDED_RESOURCES
from migrate.transform.mappings import Mappings
from migrate.transform.scope import Scope, is_glob

MODES = ("none", "deps", "all")  # most restrictive first


@dataclass(frozen=True)
class ListTask:
    side: str  # "source" or "target"
    res: APIResource
    namespace: str | None  # None: all namespaces (or a cluster-scoped type)
    extras: bool  # target objects of this task not in the source are reported


@dataclass(frozen=True)
class VerifyScope:
    scopes: tuple[Scope, ...]  # the flags' scope, and the backup's own one
    mappings: Mappings

    @cached_property
    def selector(self) -> Selector:
        return Selector(tuple(r for s in self.scopes for r in s.selector.requirements))

    @property
    def cluster_mode(self) -> str:
        return min((s.cluster_mode for s in self.scopes), key=MODES.index)

    def source_ns_included(self, ns: str) -> bool:
        known = self._ns_cache.get(ns)
        if known is None:
            known = self._ns_cache[ns] = all(s.namespace_included(ns) for s in self.scopes)
        return known

    @cached_property
    def _ns_cache(self) -> dict[str, bool]:
        return {}  # namespace -> included (glob matching once per namespace, not per object)

    def source_namespace(self, target_ns: str) -> str | None:
        """The source namespace restored as target_ns (None: no source namespace is)."""
        src = self._sources.get(target_ns)
        if src is not None:
            return src
        return None if target_ns in self.mappings.namespaces else target_ns

    @cached_property
    def _sources(self) -> dict[str, str]:
        """Target namespace -> the (first) source namespace mapped onto it."""
        out: dict[str, str] = {}
        for src, dst in self.mappings.namespaces.items():
            out.setdefault(dst, src)
        return out

    def target_ns_included(self, ns: str) -> bool:
        src = self.source_namespace(ns)
        return src is not None and self.source_ns_included(src)

    def explicit_namespaces(self) -> list[str] | None:
        """Source namespaces to list one by one, when every one is named (no globs)."""
        named = [
            s.include_namespaces
            for s in self.scopes
            if not any(is_glob(p) for p in s.include_namespaces)
        ]
        if not named:
            return None
        return sorted({ns for ns in named[0] if self.source_ns_included(ns)})

    def included(self, side: str, obj: dict[str, Any]) -> bool:
        """Namespace and label filters on one object, in its side's coordinates."""
        meta = obj.get("metadata") or {}
        ns = meta.get("namespace") or (meta.get("name") if obj.get("kind") == "Namespace" else None)
        if ns:
            inside = self.source_ns_included if side == "source" else self.target_ns_included
            if not inside(str(ns)):
                return False
        return self.selector.matches(meta.get("labels"))


def _names(disc: Discovery, values: Iterable[str], strict: bool) -> set[str]:
    out = set()
    for value in values:
        if value == "*":
            continue
        try:
            out.add(disc.resolve(value).full_name)
        except UsageError:
            if strict:
                raise
            out.add(value)  # a type the cluster does not serve: keep the spelling
    return out


@dataclass(frozen=True)
class ResourceFilter:
    """--include-resources / --exclude-resources of every scope, by resource.group."""

    filters: tuple[tuple[frozenset[str] | None, frozenset[str]], ...]

    @classmethod
    def resolve(cls, disc: Discovery, vs: VerifyScope, strict: bool) -> ResourceFilter:
        """strict: unknown names in the first scope (the flags) are errors."""
        out = []
        for n, scope in enumerate(vs.scopes):
            check = strict and n == 0
            inc = None
            if "*" not in scope.include_resources:
                inc = frozenset(_names(disc, scope.include_resources, check))
            out.append((inc, frozenset(_names(disc, scope.exclude_resources, check))))
        return cls(tuple(out))

    @property
    def explicit(self) -> bool:
        return any(inc is not None for inc, _ in self.filters)

    def passes(self, gr: str) -> bool:
        plural = gr.split(".", 1)[0]
        if gr in EXCLUDED_RESOURCES and not any(
            inc is not None and (gr in inc or plural in inc) for inc, _ in self.filters
        ):
            return False  # left out by default, as by backup: unless a scope names it
        return all(
            (inc is None or gr in inc or plural in inc) and gr not in exc and plural not in exc
            for inc, exc in self.filters
        )


def resolve_types(disc: Discovery, vs: VerifyScope, rf: ResourceFilter) -> dict[str, bool]:
    """resource.group of every type to list -> whether it is fully in scope (a target
    object of it with no source counterpart is `extra`)."""
    out: dict[str, bool] = {}
    mode = vs.cluster_mode
    for res in disc:
        name = res.full_name
        if not res.listable or not rf.passes(name):
            continue
        if (
            res.namespaced
            or name == "namespaces"
            or mode == "all"
            or (mode == "deps" and rf.explicit)
        ):
            out[name] = True
    return out


def list_tasks(
    side: str,
    disc: Discovery,
    types: dict[str, bool],
    vs: VerifyScope,
    versions: dict[str, str] | None = None,
) -> list[ListTask]:
    """What to LIST on one side.  versions: resource.group -> the version to read it in
    (the source's), when this cluster serves it."""
    by_name = {r.full_name: r for r in disc}
    per_ns = vs.explicit_namespaces()
    if per_ns is not None and side == "target":
        per_ns = [vs.mappings.namespace(ns) or ns for ns in per_ns]
    tasks = []
    for name, extras in sorted(types.items()):
        res = by_name.get(name)
        if res is None:
            continue  # not served here: every source object of it is missing
        want = (versions or {}).get(name)
        if want and want != res.version and want in res.versions:
            res = res.at_version(want)
        if res.namespaced and per_ns is not None:
            tasks += [ListTask(side, res, ns, extras) for ns in per_ns]
        else:
            tasks.append(ListTask(side, res, None, extras))
    return tasks
