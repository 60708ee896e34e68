"""Which objects a step works on: namespace and resource filters, label selector, and
the cluster-scoped switch.  Backup, restore, preflight and verify take the same flags.

The filters are stored in the Backup spec (Velero's field names), so a backup
describes itself and the other steps can reuse them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import Any

from migrate.cluster.selectors import Selector
from migrate.errors import UsageError

CLUSTER_MODES = ("auto", "true", "false")


def split_list(text: str | None) -> tuple[str, ...]:
    return tuple(p.strip() for p in (text or "").split(",") if p.strip())


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

    def namespace_included(self, ns: str) -> bool:
        inc = any(fnmatchcase(ns, pat) for pat in self.include_namespaces)
        return inc and not any(fnmatchcase(ns, pat) for pat in self.exclude_namespaces)

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
