"""Check 7: permissions.  The target's credentials must be allowed to create every kind
the restore creates, where it creates it (and patch, under policy update); asked with
SelfSubjectAccessReviews, which the API server answers without storing anything.  Reads
preflight itself could not do on the target, and what the source side could not list
(recorded in the backup's results), are reported here too.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

from migrate.errors import ClusterError, ClusterUnreachable
from migrate.preflight.context import Context
from migrate.preflight.findings import Collect, Finding

SSAR = ("authorization.k8s.io", "selfsubjectaccessreviews")
Ask = tuple[str, str, str, str | None]  # (verb, group, resource, namespace or None = all)


def _allowed(ctx: Context, ask: Ask) -> bool | None:
    res = ctx.target.disc.get(*SSAR)
    if res is None:
        return None
    verb, group, resource, ns = ask
    attrs: dict[str, Any] = {"verb": verb, "group": group, "resource": resource}
    if ns:
        attrs["namespace"] = ns
    review = {
        "apiVersion": res.api_version,
        "kind": "SelfSubjectAccessReview",
        "spec": {"resourceAttributes": attrs},
    }
    try:
        answer = ctx.target.cluster.create(res, review)
    except ClusterUnreachable:
        raise
    except ClusterError:
        return None
    return bool((answer.get("status") or {}).get("allowed"))


def _ask_all(ctx: Context, asks: set[Ask]) -> dict[Ask, bool | None]:
    with ThreadPoolExecutor(max_workers=ctx.options.parallelism) as pool:
        todo = sorted(asks, key=str)
        return dict(zip(todo, pool.map(lambda a: _allowed(ctx, a), todo), strict=True))


def check_permissions(ctx: Context) -> list[Finding]:
    c = Collect("permission")
    verbs = ["create"] + (["patch"] if ctx.options.existing_policy == "update" else [])
    needs: dict[tuple[str, str, str, str | None], list[str]] = {}
    for it in ctx.restorable:
        res = ctx.target.disc.for_kind(str(it.desired.get("apiVersion", "")), it.kind)
        if res is None:
            continue
        ns = it.key[2] if res.namespaced else None
        for verb in verbs:
            needs.setdefault((verb, res.group, res.resource, ns), []).append(ctx.ref(it))
    # One cluster-wide question per verb and resource; per namespace only where refused.
    wide = _ask_all(ctx, {(v, g, r, None) for v, g, r, _ in needs})
    narrow = _ask_all(ctx, {k for k in needs if k[3] and wide.get((*k[:3], None)) is False})
    for (verb, group, resource, ns), objs in sorted(needs.items(), key=str):
        answer = wide.get((verb, group, resource, None))
        if answer is False and ns:
            answer = narrow.get((verb, group, resource, ns))
        if answer is not False:
            continue
        gr = f"{resource}.{group}" if group else resource
        where = f" in namespace {ns}" if ns else ""
        for obj in objs:
            c.add(
                "error",
                f"the target's credentials may not {verb} {gr}{where}",
                f"grant {verb} on {gr} to the target's user (a Role or ClusterRole binding), "
                "or use a kubeconfig with those rights",
                obj,
            )
    for what, why in sorted(ctx.target.unreadable.items()):
        c.add(
            "warning",
            f"preflight could not {what} on the target ({why}); the checks that need it are "
            "incomplete",
            "grant get/list on it to the target's user, or run preflight as an admin",
        )
    for err in ctx.source.errors:
        if _forbidden(err):
            c.add(
                "error",
                f"the source's credentials could not read: {err}",
                "grant get/list on it to the source's user; its objects are not migrated",
            )
    return c.findings()


def _forbidden(err: str) -> bool:
    return " 403 " in err or " 401 " in err or "forbidden" in err.lower()


def check_source(ctx: Context) -> list[Finding]:
    """Errors the source side recorded other than permissions (a PartiallyFailed backup)."""
    c = Collect("source")
    others = [e for e in ctx.source.errors if not _forbidden(e)]
    if others:
        c.add(
            "warning",
            f"the source side recorded {len(others)} errors, e.g. {others[0]}",
            "objects behind these errors are not in scope: fix them and take a new backup",
        )
    return c.findings()
