"""Which objects a step works on: namespace and resource filters, label selector, and
the cluster-scoped switch.  Backup, restore, preflight and verify take the same flags.

The filters are stored in the Backup spec (Velero's field names), so a backup
describes itself and the other steps can reuse them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from fnmatch import translate
from functools import cached_property
from typing import Any

from migrate.cluster.selectors import Selector
from migrate.errors import UsageError

CLUSTER_MODES = ("auto", "true", "false")


def split_list(text: str | None) -> tuple[str, ...]:
    return tuple(p.strip() for p in (text or "").split(",") if p.strip())


GLOB_CHARS = "*?["


def is_glob(pattern: str) -> bool:
    return any(ch in pattern for ch in GLOB_CHARS)


class NameMatcher:
    """Shell-style patterns (fnmatch, case-sensitive) compiled once: plain names in a set,
    the globs in one regular expression.  Backup and verify test every object's namespace;
    `--include-namespaces` with 100 names tried each pattern in turn, ~0.1 ms an object."""

    def __init__(self, patterns: tuple[str, ...]) -> None:
        self._names = frozenset(p for p in patterns if not is_glob(p))
        globs = [translate(p) for p in patterns if is_glob(p)]
        self._globs = re.compile("|".join(globs)) if globs else None

    def __call__(self, name: str) -> bool:
        if name in self._names:
            return True
        return self._globs is not None and self._globs.match(name) is not None


@dataclass(frozen=True)
class Scope:
    include_namespaces: tuple[str, ...] = ("*",)
    exclude_namespaces: tuple[str, ...] = ()
    include_resources: tuple[str, ...] = ("*",)
    exclude_resources: tuple[str, ...] = ()
    selector: Selector = field(default_factory=Selector)
    include_cluster_resources: str = "auto"

    def __post_init__(self) -> None:
        if self.include_cluster_resources not in CLUSTER_MODES:
            raise UsageError(
                f"invalid --include-cluster-resources {self.include_cluster_resources!r}",
                hint="use auto, true or false",
            )

    @property
    def all_namespaces(self) -> bool:
        return "*" in self.include_namespaces and not self.exclude_namespaces

    @cached_property
    def _namespace_matchers(self) -> tuple[NameMatcher, NameMatcher]:
        return NameMatcher(self.include_namespaces), NameMatcher(self.exclude_namespaces)

    def namespace_included(self, ns: str) -> bool:
        include, exclude = self._namespace_matchers
        return include(ns) and not exclude(ns)

    def explicit_namespaces(self) -> list[str] | None:
        """The namespaces named one by one (listed namespace by namespace), or None when
        the scope needs cluster-wide lists (all namespaces, or globs)."""
        if any(is_glob(p) for p in self.include_namespaces):
            return None
        return sorted({ns for ns in self.include_namespaces if self.namespace_included(ns)})

    @property
    def cluster_mode(self) -> str:
        """all: every cluster-scoped object; deps: those the namespaced ones need; none."""
        if self.include_cluster_resources == "true":
            return "all"
        if self.include_cluster_resources == "false":
            return "none"
        return "all" if self.all_namespaces and not self.selector else "deps"

    def velero_spec(self, ttl: str) -> dict[str, Any]:
        spec: dict[str, Any] = {
            "includedNamespaces": list(self.include_namespaces),
            "excludedNamespaces": list(self.exclude_namespaces),
            "includedResources": [r for r in self.include_resources if r != "*"],
            "excludedResources": list(self.exclude_resources),
            "ttl": ttl,
            "storageLocation": "default",
            "snapshotVolumes": False,
            "defaultVolumesToFsBackup": False,
            "metadata": {},
            "hooks": {},
        }
        if self.include_cluster_resources != "auto":
            spec["includeClusterResources"] = self.include_cluster_resources == "true"
        selector = self.selector.to_object()
        if selector:
            spec["labelSelector"] = selector
        return spec

    @classmethod
    def from_velero_spec(cls, spec: dict[str, Any]) -> Scope:
        icr = spec.get("includeClusterResources")
        return cls(
            include_namespaces=tuple(spec.get("includedNamespaces") or ["*"]),
            exclude_namespaces=tuple(spec.get("excludedNamespaces") or ()),
            include_resources=tuple(spec.get("includedResources") or ["*"]),
            exclude_resources=tuple(spec.get("excludedResources") or ()),
            selector=Selector.from_object(spec.get("labelSelector")),
            include_cluster_resources="auto" if icr is None else str(bool(icr)).lower(),
        )
