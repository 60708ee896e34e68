"""Which resource types a backup lists: the scope's filters and the default exclusions,
resolved against what the source cluster serves."""

from __future__ import annotations

from dataclasses import dataclass

from migrate.cluster import APIResource, Discovery
from migrate.transform.exclusions import EXCLUDED_RESOURCES
from migrate.transform.scope import Scope


@dataclass
class ResolvedResources:
    namespaced: list[APIResource]
    cluster: list[APIResource]  # cluster-scoped types listed in full (mode "all")
    skipped: dict[str, str]  # resource.group -> why it is not backed up


def resolve_resources(disc: Discovery, scope: Scope) -> ResolvedResources:
    """The resource types to list, after filters and default exclusions.

    Unknown names in the filters are errors (before anything is written)."""
    included = (
        None
        if "*" in scope.include_resources
        else {disc.resolve(n).full_name for n in scope.include_resources}
    )
    excluded = {disc.resolve(n).full_name for n in scope.exclude_resources}
    namespaced, cluster, skipped = [], [], {}
    for res in sorted(disc, key=lambda r: r.full_name):
        name = res.full_name
        if not res.listable:
            continue
        if included is not None and name not in included:
            continue
        if name in excluded:
            skipped[name] = "excluded by --exclude-resources"
            continue
        if included is None and name in EXCLUDED_RESOURCES:
            skipped[name] = EXCLUDED_RESOURCES[name]
            continue
        if res.namespaced:
            namespaced.append(res)
        elif scope.cluster_mode == "all" or (
            scope.cluster_mode == "deps" and included is not None and name in included
        ):
            cluster.append(res)
    return ResolvedResources(namespaced, cluster, skipped)
