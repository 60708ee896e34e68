"""What a cluster serves: every resource with its group, versions, kind, scope and verbs.

Backup needs it to list everything, preflight to compare two clusters, restore to
find where to POST each object.  One request each to /api and /apis with aggregated
discovery (apidiscovery.k8s.io/v2, GA since 1.30); older servers fall back to one
request per group/version, in parallel.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from migrate.errors import ClusterError, UsageError

log = logging.getLogger(__name__)

AGGREGATED_ACCEPT = (
    "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json"
)

# A function that GETs a path and returns the decoded JSON (Cluster.get_path).
Getter = Callable[..., Any]


@dataclass(frozen=True)
class APIResource:
    """One served resource, at the version we talk to it in (the group's preferred one)."""

    group: str  # "" for the core group
    version: str
    resource: str  # plural, e.g. "deployments"
    kind: str
    namespaced: bool
    verbs: frozenset[str] = frozenset()
    short_names: tuple[str, ...] = ()
    singular: str = ""
    versions: tuple[str, ...] = ()  # every served version of this resource, preferred first
    categories: tuple[str, ...] = ()

    # cached (read for every object a backup lists): kept in the instance's __dict__,
    # outside the dataclass fields, so equality and hashing are unchanged
    @functools.cached_property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @functools.cached_property
    def full_name(self) -> str:
        """`resource.group` as Velero and kubectl print it: "deployments.apps", "configmaps"."""
        return f"{self.resource}.{self.group}" if self.group else self.resource

    @property
    def listable(self) -> bool:
        return {"list", "get"} <= self.verbs

    def path(self, namespace: str | None = None, name: str | None = None, sub: str = "") -> str:
        """The REST path of the collection, or of one object (and one subresource)."""
        base = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        if self.namespaced and namespace:
            base += f"/namespaces/{namespace}"
        base += f"/{self.resource}"
        if name:
            base += f"/{name}"
            if sub:
                base += f"/{sub}"
        return base

    def at_version(self, version: str) -> APIResource:
        return APIResource(
            self.group,
            version,
            self.resource,
            self.kind,
            self.namespaced,
            self.verbs,
            self.short_names,
            self.singular,
            self.versions,
            self.categories,
        )


@dataclass
class Discovery:
    """All resources of one cluster, with lookups by name, kind and group/version."""

    resources: list[APIResource]
    # group -> served versions, preferred first
    group_versions: dict[str, tuple[str, ...]] = field(default_factory=dict)
    # groups whose discovery failed (an unavailable aggregated APIService, say)
    failed_groups: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._by_gr = {(r.group, r.resource): r for r in self.resources}
        self._by_gk: dict[tuple[str, str], APIResource] = {}
        for r in self.resources:
            self._by_gk.setdefault((r.group, r.kind), r)

    def __iter__(self) -> Iterator[APIResource]:
        return iter(self.resources)

    def get(self, group: str, resource: str) -> APIResource | None:
        return self._by_gr.get((group, resource))

    def for_kind(self, api_version: str, kind: str) -> APIResource | None:
        """The resource serving objects of apiVersion/kind, at that version if served."""
        group = api_version.rpartition("/")[0]
        version = api_version.rpartition("/")[2]
        res = self._by_gk.get((group, kind))
        if res is None:
            return None
        return res.at_version(version) if version in res.versions else res

    def serves(self, group: str, version: str, kind: str) -> bool:
        res = self._by_gk.get((group, kind))
        return res is not None and version in res.versions

    def resolve(self, name: str) -> APIResource:
        """Find a resource the way kubectl does: plural, singular, short name or Kind,
        optionally qualified by group ("deployments.apps") or version+group."""
        lowered = name.lower()
        candidates = []
        for r in self.resources:
            names = {r.resource, r.singular, r.kind.lower(), *r.short_names}
            qualified = {f"{n}.{r.group}" for n in names} | {
                f"{n}.{v}.{r.group}" for n in names for v in r.versions
            }
            if (r.group and lowered in qualified) or lowered in names:
                candidates.append(r)
        if not candidates:
            raise UsageError(
                f"unknown resource {name!r}: the cluster does not serve it",
                hint="use a name from `kubectl api-resources`, e.g. deployments.apps",
            )
        # Prefer the core group, then the shortest group (kubectl's priority is similar).
        candidates.sort(key=lambda r: (r.group != "", len(r.group), r.group))
        return candidates[0]


def _verbs(raw: Iterable[str] | None) -> frozenset[str]:
    return frozenset(raw or ())


def _from_aggregated(docs: list[dict[str, Any]]) -> Discovery:
    by_gr: dict[tuple[str, str], dict[str, Any]] = {}
    order: dict[tuple[str, str], list[str]] = {}
    group_versions: dict[str, tuple[str, ...]] = {}
    failed: dict[str, str] = {}
    for doc in docs:
        for item in doc.get("items") or []:
            group = item.get("metadata", {}).get("name", "")
            versions = []
            for ver in item.get("versions") or []:
                if ver.get("freshness") == "Stale":
                    failed[group] = f"discovery of {group}/{ver['version']} is stale"
                    continue
                versions.append(ver["version"])
                for res in ver.get("resources") or []:
                    key = (group, res["resource"])
                    order.setdefault(key, []).append(ver["version"])
                    # the first (preferred) version of a resource wins
                    by_gr.setdefault(key, {"version": ver["version"], **res})
            group_versions[group] = tuple(versions)
    resources = []
    for (group, name), res in by_gr.items():
        kind = (res.get("responseKind") or {}).get("kind", "")
        resources.append(
            APIResource(
                group=group,
                version=res["version"],
                resource=name,
                kind=kind,
                namespaced=res.get("scope") == "Namespaced",
                verbs=_verbs(res.get("verbs")),
                short_names=tuple(res.get("shortNames") or ()),
                singular=res.get("singularResource") or kind.lower(),
                versions=tuple(order[(group, name)]),
                categories=tuple(res.get("categories") or ()),
            )
        )
    return Discovery(resources, group_versions, failed)


def _legacy(get: Getter, parallelism: int) -> Discovery:
    groups: list[tuple[str, list[str]]] = [("", get("/api").get("versions", ["v1"]))]
    for g in get("/apis").get("groups") or []:
        pref = (g.get("preferredVersion") or {}).get("version")
        vers = [v["version"] for v in g.get("versions") or []]
        vers.sort(key=lambda v: v != pref)
        groups.append((g["name"], vers))
    paths = [
        (grp, ver, f"/apis/{grp}/{ver}" if grp else f"/api/{ver}")
        for grp, vers in groups
        for ver in vers
    ]
    failed: dict[str, str] = {}

    def fetch(item: tuple[str, str, str]) -> tuple[str, str, dict[str, Any]]:
        grp, ver, path = item
        try:
            return grp, ver, get(path)
        except ClusterError as exc:
            failed[grp] = str(exc)
            return grp, ver, {}

    with ThreadPoolExecutor(max_workers=parallelism) as pool:
        fetched = list(pool.map(fetch, paths))
    items: dict[str, dict[str, Any]] = {}
    for grp, ver, doc in fetched:
        entry = items.setdefault(grp, {"metadata": {"name": grp}, "versions": []})
        resources = [
            {
                "resource": r["name"],
                "responseKind": {"kind": r["kind"]},
                "scope": "Namespaced" if r.get("namespaced") else "Cluster",
                "verbs": r.get("verbs"),
                "shortNames": r.get("shortNames"),
                "singularResource": r.get("singularName"),
                "categories": r.get("categories"),
            }
            for r in doc.get("resources") or []
            if "/" not in r["name"]
        ]
        if doc:
            entry["versions"].append({"version": ver, "resources": resources})
    result = _from_aggregated([{"items": list(items.values())}])
    result.failed_groups.update(failed)
    return result


def discover(get: Getter, parallelism: int = 8) -> Discovery:
    """Discover everything the cluster serves."""
    try:
        docs = [get(p, accept=AGGREGATED_ACCEPT) for p in ("/api", "/apis")]
    except ClusterError as exc:
        log.debug("aggregated discovery failed (%s); using per-group discovery", exc)
        return _legacy(get, parallelism)
    if all(d.get("kind") == "APIGroupDiscoveryList" for d in docs):
        return _from_aggregated(docs)
    return _legacy(get, parallelism)
