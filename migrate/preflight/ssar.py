"""SelfSubjectAccessReviews: "may these credentials do this?" asked of the target's API
server, which answers with its own authorizers and stores nothing.  The questions of the
permission checks (access.py, escalation.py), asked in parallel.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any, NamedTuple

from migrate.errors import ClusterError, ClusterUnreachable
from migrate.preflight.context import Context

SSAR = ("authorization.k8s.io", "selfsubjectaccessreviews")


class Ask(NamedTuple):
    """One SelfSubjectAccessReview question."""

    verb: str
    group: str = ""
    resource: str = ""
    namespace: str | None = None  # None: in every namespace (or cluster-scoped)
    name: str = ""
    subresource: str = ""
    path: str = ""  # a non-resource URL ("/healthz"); group and resource unused then


def _allowed(ctx: Context, ask: Ask) -> bool | None:
    res = ctx.target.disc.get(*SSAR)
    if res is None:
        return None
    spec: dict[str, Any]
    if ask.path:
        spec = {"nonResourceAttributes": {"verb": ask.verb, "path": ask.path}}
    else:
        attrs = {
            "verb": ask.verb,
            "group": ask.group,
            "resource": ask.resource,
            "namespace": ask.namespace,
            "name": ask.name,
            "subresource": ask.subresource,
        }
        spec = {"resourceAttributes": {k: v for k, v in attrs.items() if v or k == "group"}}
    review = {"apiVersion": res.api_version, "kind": "SelfSubjectAccessReview", "spec": spec}
    try:
        answer = ctx.target.cluster.create(res, review)
    except ClusterUnreachable:
        raise
    except ClusterError:
        return None
    return bool((answer.get("status") or {}).get("allowed"))


def ask_all(ctx: Context, asks: set[Ask]) -> dict[Ask, bool | None]:
    """Ask every question in parallel: True, False, or None (could not ask)."""
    with ThreadPoolExecutor(max_workers=ctx.options.parallelism) as pool:
        todo = sorted(asks, key=str)
        return dict(zip(todo, pool.map(lambda a: _allowed(ctx, a), todo), strict=True))
