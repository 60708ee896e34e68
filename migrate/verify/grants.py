"""CRDs granted to the ServiceAccounts in scope that the target lacks: listed in verify's
summary as warnings (not drift: the CRD is no object of the compared scope).

A namespace-filtered verify compares no CRD of its own, so an operator whose CRDs were
left out (an exclusion) would pass verify and crash-loop on the target.  From a backup,
the backup's record says which granted CRDs it left out (migrate.backup.grants); from a
live source, the grants are read the way backup reads them (migrate.transform.grants).
"""

from __future__ import annotations

from typing import Any

from migrate.cluster import APIResource, Cluster, Discovery
from migrate.errors import ClusterError, ClusterUnreachable
from migrate.transform.grants import grants_of, resolve
from migrate.transform.scope import Scope

RBAC = "rbac.authorization.k8s.io"


def missing_on_target(grants: dict[str, Any], tdisc: Discovery, left_out_only: bool) -> list[str]:
    """Warnings for the granted CRDs the target does not serve; `grants` as backup
    records it.  left_out_only: those the backup brought are compared (and reported as
    missing) like any object already."""
    out = []
    for name, rec in sorted((grants.get("crds") or {}).items()):
        status = rec.get("status")
        if status == "absent" or (left_out_only and status != "leftOut"):
            continue
        plural, _, group = name.partition(".")
        if tdisc.get(group, plural) is None:
            left = f", left out of the backup ({rec['leftOut']})" if rec.get("leftOut") else ""
            out.append(
                f"CRD {name} ({rec.get('grantedBy', 'granted')}){left} is missing on the target"
            )
    return out


def live_grants(source: Cluster, scope: Scope) -> dict[str, Any]:
    """The granted CRDs of a live source's ServiceAccounts in scope, in the backup's
    record format (status "present"); {} if the source's RBAC cannot be read.  A few
    LISTs, one after the other: RBAC objects are few."""
    disc = source.discovery()

    def listed(group: str, resource: str, ns: str | None = None) -> list[dict[str, Any]]:
        res: APIResource | None = disc.get(group, resource)
        if res is None:
            return []
        try:
            return list(source.list(res, ns if res.namespaced else None))
        except ClusterUnreachable:
            raise
        except ClusterError:
            return []  # not readable with these credentials: nothing to say about it

    named = scope.explicit_namespaces()
    every = [sa for ns in named for sa in listed("", "serviceaccounts", ns)] if named else []
    inside = [
        sa
        for sa in (every if named is not None else listed("", "serviceaccounts"))
        if scope.namespace_included(sa["metadata"]["namespace"])
    ]
    accounts = {(sa["metadata"]["namespace"], sa["metadata"]["name"]) for sa in inside}
    if not accounts:
        return {}
    namespaces = sorted({ns for ns, _ in accounts})
    roles: dict[tuple[str, str], list[dict[str, Any]]] = {}
    bindings = listed(RBAC, "clusterrolebindings")
    for ns in namespaces:
        bindings += listed(RBAC, "rolebindings", ns)
        for role in listed(RBAC, "roles", ns):
            roles[(ns, role["metadata"]["name"])] = role.get("rules") or []
    cluster_roles = {
        r["metadata"]["name"]: r.get("rules") or [] for r in listed(RBAC, "clusterroles")
    }

    def cluster_rules(names: list[str]) -> dict[str, list[dict[str, Any]]]:
        return {n: cluster_roles[n] for n in names if n in cluster_roles}

    grants = grants_of(bindings, roles, lambda ns, n: (ns, n) in accounts, cluster_rules)
    crds = listed("apiextensions.k8s.io", "customresourcedefinitions")
    resolved = resolve(grants, crds, lambda g, r: disc.get(g, r) is not None)
    return {
        "crds": {n: {"status": "present", "grantedBy": why} for n, why in resolved.present.items()}
    }


def grant_warnings(
    source: Cluster | None,
    tdisc: Discovery,
    scope: Scope,
    backup_grants: dict[str, Any] | None,
    deps_mode: bool,
) -> list[str]:
    """The warnings for verify's summary (only a namespace-filtered verify needs them:
    with every cluster-scoped object in scope, a missing CRD is reported as missing)."""
    if backup_grants is not None:
        return missing_on_target(backup_grants, tdisc, left_out_only=True)
    if source is None or not deps_mode:
        return []
    return missing_on_target(live_grants(source, scope), tdisc, left_out_only=False)
