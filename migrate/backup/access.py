"""Refuse, before the first write, a backup whose credentials may list nothing in scope.

Without this, such a backup would run to the end and leave a PartiallyFailed backup of
zero objects in the bucket (one error per resource).  Credentials that may list some
of the resources still make a backup (PartiallyFailed, the refusals in its results), as
Velero does.
"""

from __future__ import annotations

from migrate.backup.scope import ResolvedResources
from migrate.cluster import Cluster
from migrate.cluster.access import allows_any
from migrate.errors import Forbidden
from migrate.transform.scope import Scope


def check_can_list(c: Cluster, scope: Scope, resolved: ResolvedResources) -> None:
    namespaces = scope.explicit_namespaces()
    per_ns: list[str | None] = list(namespaces) if namespaces is not None else [None]
    wanted = [(r.group, r.resource, ns) for r in resolved.namespaced for ns in per_ns]
    wanted += [(r.group, r.resource, None) for r in resolved.cluster]
    if allows_any(c, "list", wanted):
        return
    plural = "s" if namespaces and len(namespaces) > 1 else ""
    where = f"namespace{plural} {', '.join(namespaces)}" if namespaces else "all namespaces"
    count = len(resolved.namespaced) + len(resolved.cluster)
    raise Forbidden(
        f"{c.name}: the kubeconfig's user may not list any of the {count} resources in "
        f"scope ({where}); nothing was backed up",
        hint="grant get/list on them to that user (see examples/rbac/source-readonly.yaml), "
        "or use a kubeconfig with those rights",
    )
