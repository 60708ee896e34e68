"""What a client's credentials may do, from one SelfSubjectRulesReview per namespace.

Backup and restore ask it once before their first write: credentials that may not list
(backup) or create (restore) any of the resources in scope would only produce a backup
or restore in which every object failed, so they stop with one Forbidden error instead,
having written nothing.  The review is an answer, not a guess: when the server cannot
enumerate the rules (another authorizer, `incomplete: true`) or refuses the question,
`self_rules` returns None and the caller goes ahead as before.  Exact per-object
permission checks are preflight's (SelfSubjectAccessReviews).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from migrate.cluster.client import Cluster
from migrate.errors import ClusterError, ClusterUnreachable

SSRR = ("authorization.k8s.io", "selfsubjectrulesreviews")


def _hit(value: str, allowed: Iterable[str] | None) -> bool:
    allowed = list(allowed or ())
    return "*" in allowed or value in allowed


@dataclass(frozen=True)
class Rules:
    """The resource rules of the client's user in one namespace (cluster-wide ones
    included)."""

    rules: tuple[dict[str, Any], ...]

    def allows(self, verb: str, group: str, resource: str) -> bool:
        """Whether some rule grants `verb` on every object of group/resource."""
        return any(
            not r.get("resourceNames")  # a rule limited to names grants no list/create
            and _hit(verb, r.get("verbs"))
            and _hit(group, r.get("apiGroups"))
            and _hit(resource, r.get("resources"))
            for r in self.rules
        )


def self_rules(cluster: Cluster, namespace: str) -> Rules | None:
    """The rules in `namespace`, or None when the server cannot say for sure."""
    res = cluster.discovery().get(*SSRR)
    if res is None:
        return None
    review = {
        "apiVersion": res.api_version,
        "kind": "SelfSubjectRulesReview",
        "spec": {"namespace": namespace},
    }
    try:
        answer = cluster.create(res, review)
    except ClusterUnreachable:
        raise
    except ClusterError:
        return None
    status = answer.get("status") or {}
    if status.get("incomplete"):
        return None
    return Rules(tuple(status.get("resourceRules") or ()))


def allows_any(cluster: Cluster, verb: str, wanted: Iterable[tuple[str, str, str | None]]) -> bool:
    """Whether `verb` is granted on at least one (group, resource, namespace or None for
    cluster-scoped) of `wanted`; True when the server cannot tell.  One review per
    namespace, asked only until the first grant."""
    by_ns: dict[str, list[tuple[str, str]]] = {}
    for group, resource, ns in wanted:
        by_ns.setdefault(ns or "default", []).append((group, resource))
    for ns, resources in sorted(by_ns.items()):
        rules = self_rules(cluster, ns)
        if rules is None or any(rules.allows(verb, g, r) for g, r in resources):
            return True
    return not by_ns
