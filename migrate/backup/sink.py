"""What a backup run accumulates while objects stream past: the tarball writer with its
tallies and resource list (Sink), the summary, and the run's own log lines."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson

from migrate.backup.policy import EXCLUDE_LABEL
from migrate.cluster import APIResource
from migrate.store import layout
from migrate.store.archive import TarballWriter
from migrate.store.gzlists import GzipLists
from migrate.store.positions import Positions

Progress = Callable[[str, int], None]  # (event, amount): "total", "listed", "items"


@dataclass
class BackupSummary:
    name: str
    phase: str = "InProgress"
    items: int = 0
    started: datetime = field(default_factory=lambda: datetime.now(UTC))
    completed: datetime | None = None
    expiration: datetime | None = None
    tarball_bytes: int = 0
    by_resource: Counter[str] = field(default_factory=Counter)
    by_namespace: Counter[str] = field(default_factory=Counter)
    cluster_included: dict[str, dict[str, str]] = field(default_factory=dict)
    skipped_resources: dict[str, str] = field(default_factory=dict)
    # CRDs granted to the ServiceAccounts in scope (migrate.backup.grants.record)
    grants: dict[str, Any] = field(default_factory=dict)
    errors: dict[str, Any] = field(default_factory=layout.empty_result)
    warnings: dict[str, Any] = field(default_factory=layout.empty_result)
    source_version: str = ""
    # resource.group -> {"modified"|"created"|"deleted": n}: changed while the backup ran
    changed: dict[str, dict[str, int]] = field(default_factory=dict)
    parent: str | None = None  # an incremental backup's parent
    incremental: dict[str, Any] = field(default_factory=dict)  # how its delta was read

    def error_count(self, which: str = "errors") -> int:
        res = getattr(self, which)
        return len(res["velero"]) + len(res["cluster"]) + sum(map(len, res["namespaces"].values()))

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "phase": self.phase,
            "items": self.items,
            "started": layout.rfc3339(self.started),
            "completed": layout.rfc3339(self.completed) if self.completed else None,
            "expiration": layout.rfc3339(self.expiration) if self.expiration else None,
            "tarballBytes": self.tarball_bytes,
            "sourceVersion": self.source_version,
            "errors": self.error_count("errors"),
            "warnings": self.error_count("warnings"),
            "byResource": dict(sorted(self.by_resource.items())),
            "byNamespace": dict(sorted(self.by_namespace.items())),
            "changed": sum(sum(c.values()) for c in self.changed.values()),
            "changedByResource": dict(sorted(self.changed.items())),
            **({"parent": self.parent, "incremental": self.incremental} if self.parent else {}),
        }


def note(result: dict[str, Any], namespace: str | None, msg: str) -> None:
    if namespace:
        result["namespaces"].setdefault(namespace, []).append(msg)
    else:
        result["cluster"].append(msg)


class Sink:
    """Writes objects into the tarball (both Velero paths) and keeps the tallies."""

    def __init__(self, tw: TarballWriter, summary: BackupSummary, progress: Progress) -> None:
        self.tw = tw
        self.summary = summary
        self.progress = progress
        self.lock = threading.Lock()
        # Velero's resource list: names gzipped as they come (a part per listed namespace)
        self.resource_list = GzipLists(sort_keys=True)
        # cluster-scoped objects written, as the dependency pass may meet them again (a
        # namespaced object is listed exactly once, so it needs no memory here: flat RSS)
        self.written: set[tuple[str, str]] = set()
        self._names: dict[str, tuple[str, str]] = {}  # by full_name: see _names_of
        self.positions: Positions | None = None  # each object's resourceVersion, recorded

    def add(self, res: APIResource, obj: dict[str, Any], part: str | None = None) -> bool:
        """Write one object (unless excluded or already written); `part`: the namespace
        its LIST covered (None: all), grouping the resource list's names."""
        return bool(self.add_page(res, [obj], part))

    def add_page(
        self, res: APIResource, objs: list[dict[str, Any]], part: str | None = None
    ) -> list[dict[str, Any]]:
        """Write a LIST page's objects (but the excluded, and those already written);
        return those written.  Called for every object of a backup, so kept to a few dict
        reads and one serialization an object, and one lock a page."""
        rows = []
        for obj in objs:
            meta = obj.get("metadata") or {}
            labels = meta.get("labels")
            if labels and labels.get(EXCLUDE_LABEL) == "true":
                continue
            rows.append((obj, meta.get("namespace") or None, meta["name"], meta))
        if self.positions is not None and rows:
            fresh = self.positions.written_many(
                res.full_name,
                [(ns, name, str(meta.get("resourceVersion") or "")) for _, ns, name, meta in rows],
            )
            rows = [row for row, new in zip(rows, fresh, strict=True) if new]
        gr, key = self._names.get(res.full_name) or self._names_of(res)
        made = []  # (object, namespace, name, tar entries, resource list key)
        for obj, ns, name, _ in rows:
            data = orjson.dumps(obj, option=orjson.OPT_SORT_KEYS)  # compact, keys sorted: as Go
            k = key
            api_version, kind = obj.get("apiVersion"), obj.get("kind")
            if api_version != res.api_version or kind != res.kind:  # (served otherwise: rare)
                k = layout.resource_list_key(api_version or res.api_version, kind or res.kind)
            paths = layout.item_paths(gr, res.version, ns, name)
            made.append((obj, ns, name, self.tw.entries_of(paths, data), k))
        with self.lock:
            kept = []
            for m in made:
                if m[1] is not None:
                    self.summary.by_namespace[m[1]] += 1
                elif (gr, m[2]) in self.written:  # the dependency pass may meet it again
                    continue
                else:
                    self.written.add((gr, m[2]))
                kept.append(m)
            made = kept
            if not made:
                return []
            self.tw.append(b"".join(m[3] for m in made), 2 * len(made))
            names: dict[str, list[str]] = {}
            for _, ns, name, _, k in made:
                names.setdefault(k, []).append(f"{ns}/{name}" if ns else name)
            for k, values in names.items():
                self.resource_list.extend(k, values, part)
            self.summary.items += len(made)
            self.summary.by_resource[res.full_name] += len(made)
        self.progress("items", len(made))
        return [m[0] for m in made]

    def _names_of(self, res: APIResource) -> tuple[str, str]:
        """A resource's group-resource (Velero's directory) and resource-list key."""
        names = (
            layout.group_resource(res.resource, res.group),
            layout.resource_list_key(res.api_version, res.kind),
        )
        self._names[res.full_name] = names
        return names
