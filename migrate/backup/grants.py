"""The CRDs a namespace-filtered backup brings because RBAC grants them to its
ServiceAccounts (an operator installed but with no custom resources yet), and the record
of it in our manifest (`grants`): what came and why, what was left out and why, what
the source does not have either, and the `*` rules that pulled nothing.  Preflight and
verify read that record; the matching itself is migrate.transform.grants.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

from migrate.backup.policy import EXCLUDE_LABEL
from migrate.backup.sink import BackupSummary, Sink, note
from migrate.cluster import Cluster, Discovery
from migrate.errors import ClusterError, ClusterUnreachable, NotFound
from migrate.transform.grants import Grants, Resolved, grants_of, resolve
from migrate.transform.scope import Scope

CRDS = "customresourcedefinitions.apiextensions.k8s.io"


def granted_crds(
    c: Cluster,
    disc: Discovery,
    role_bindings: list[dict[str, Any]],
    roles: dict[tuple[str, str], list[dict[str, Any]]],
    service_accounts: set[tuple[str, str]],
    crbs: list[dict[str, Any]],
    crds: list[dict[str, Any]],
    pool: ThreadPoolExecutor,
    summary: BackupSummary,
    sink: Sink,
) -> tuple[Grants, Resolved]:
    """The grants of the backed-up ServiceAccounts, resolved against the source's CRDs.
    ClusterRoles are read (GET) only when a binding of such a ServiceAccount names them."""

    def in_scope(ns: str, name: str) -> bool:
        return (ns, name) in service_accounts

    def rules_of(name: str) -> list[dict[str, Any]]:
        res = disc.get("rbac.authorization.k8s.io", "clusterroles")
        if res is None:
            return []
        try:
            return list(c.get(res, name).get("rules") or [])
        except NotFound:
            return []  # a binding to a missing role grants nothing
        except ClusterUnreachable:
            raise
        except ClusterError as exc:
            with sink.lock:
                note(summary.warnings, None, f"cannot read ClusterRole {name}: {exc.message}")
            return []

    def cluster_rules(names: list[str]) -> dict[str, list[dict[str, Any]]]:
        return dict(zip(names, pool.map(rules_of, names), strict=True))

    grants = grants_of([*role_bindings, *crbs], roles, in_scope, cluster_rules)
    return grants, resolve(grants, crds, lambda g, r: disc.get(g, r) is not None)


def record(
    grants: Grants,
    resolved: Resolved,
    summary: BackupSummary,
    sink: Sink,
    scope: Scope,
    crds: list[dict[str, Any]],
) -> None:
    """Our manifest's `grants`: per granted CRD its status (included / leftOut / absent),
    why it is granted and why it was left out; the `*` rules that pulled nothing."""
    labelled = {
        crd["metadata"]["name"]
        for crd in crds
        if ((crd["metadata"].get("labels") or {}).get(EXCLUDE_LABEL)) == "true"
    }
    out: dict[str, dict[str, str]] = {}
    for name, why in sorted(resolved.present.items()):
        if (CRDS, name) in sink.written:
            out[name] = {"status": "included", "grantedBy": why}
        else:
            out[name] = {
                "status": "leftOut",
                "grantedBy": why,
                "leftOut": _why_left(name, summary, scope, labelled),
            }
    for name, why in sorted(resolved.absent.items()):
        out[name] = {"status": "absent", "grantedBy": why}
    if out or grants.wildcards:
        summary.grants = {"crds": out, "wildcards": dict(sorted(grants.wildcards.items()))}


def _why_left(name: str, summary: BackupSummary, scope: Scope, labelled: set[str]) -> str:
    if CRDS in summary.skipped_resources:
        return summary.skipped_resources[CRDS]  # "excluded by --exclude-resources"
    if scope.cluster_mode == "none":
        return "--include-cluster-resources false"
    if name in labelled:
        return f"labelled {EXCLUDE_LABEL}=true"
    return "could not be read (see the backup's warnings)"
