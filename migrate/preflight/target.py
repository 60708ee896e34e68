"""Read-only, cached view of the target cluster for the checks: its version, discovery,
and the objects they ask about (StorageClasses, namespaces, webhooks, names per
namespace...), each listed at most once.

Reads the target's credentials may not do (403) do not abort preflight: they are
remembered in `unreadable` and the checks that needed them report themselves
incomplete through the permission check.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from migrate.cluster import APIResource, Cluster, Discovery, ServerVersion
from migrate.errors import ClusterUnreachable, Forbidden, NotFound

Key = tuple[str, str | None]  # (resource.group, namespace or None for all)


class TargetView:
    def __init__(self, cluster: Cluster, parallelism: int = 8) -> None:
        self.cluster = cluster
        self.version: ServerVersion = cluster.version()
        self.disc: Discovery = cluster.discovery()
        self.by_name = {r.full_name: r for r in self.disc}
        self.parallelism = parallelism
        self.unreadable: dict[str, str] = {}  # "list storageclasses.storage.k8s.io" -> why
        self._lists: dict[Key, list[dict[str, Any]] | None] = {}
        self._lock = threading.Lock()

    @property
    def minor(self) -> tuple[int, int]:
        return self.version.major, self.version.minor

    def resource(self, gr: str) -> APIResource | None:
        return self.by_name.get(gr)

    def objects(self, gr: str, namespace: str | None = None) -> list[dict[str, Any]] | None:
        """Every object of resource `gr` (in `namespace`, or everywhere); None when the
        target does not serve it or refuses to list it."""
        key = (gr, namespace)
        with self._lock:
            if key in self._lists:
                return self._lists[key]
        res = self.by_name.get(gr)
        result: list[dict[str, Any]] | None = None
        if res is not None and res.listable:
            try:
                result = list(self.cluster.list(res, namespace if res.namespaced else None))
            except ClusterUnreachable:
                raise
            except Forbidden as exc:
                where = f" in namespace {namespace}" if namespace else ""
                with self._lock:
                    self.unreadable[f"list {gr}{where}"] = exc.message
            except NotFound:
                result = []
        with self._lock:
            self._lists[key] = result
        return result

    def names(self, gr: str, namespace: str | None = None) -> set[str] | None:
        objs = self.objects(gr, namespace)
        return None if objs is None else {o["metadata"]["name"] for o in objs}

    def get(self, gr: str, namespace: str | None, name: str) -> dict[str, Any] | None:
        for obj in self.objects(gr, namespace) or []:
            if obj["metadata"]["name"] == name:
                return obj
        return None

    def prefetch(self, keys: Iterable[Key]) -> None:
        """List many (resource, namespace) pairs in parallel ahead of the checks."""
        todo = sorted({k for k in keys if k not in self._lists}, key=str)
        with ThreadPoolExecutor(max_workers=self.parallelism) as pool:
            list(pool.map(lambda k: self.objects(*k), todo))

    def namespace_labels(self) -> dict[str, dict[str, str]]:
        return {
            ns["metadata"]["name"]: ns["metadata"].get("labels") or {}
            for ns in self.objects("namespaces") or []
        }
