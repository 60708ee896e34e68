"""Check 7, RBAC objects: "may create roles" is not enough to restore them.  The API
server's escalation prevention lets a user create (or update) a Role or ClusterRole only
if the user holds every permission it grants, or may `escalate` it; and create a binding
only if the user holds every permission of the role it binds, or may `bind` that role.
Restore fails with 403 on exactly those objects, so preflight asks the same questions:
escalate/bind first, and where refused, every permission the role grants (in the
namespace of the Role or binding, cluster-wide for cluster roles and their bindings),
each as a SelfSubjectAccessReview.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from migrate.preflight.context import Context, Planned
from migrate.preflight.findings import Collect, Finding
from migrate.preflight.ssar import Ask, ask_all

RBAC = "rbac.authorization.k8s.io"
# Role kind -> its resource (what escalate and bind are asked on).
ROLE_RESOURCES = {"Role": "roles", "ClusterRole": "clusterroles"}
BINDINGS = frozenset({"RoleBinding", "ClusterRoleBinding"})
# What an aggregated ClusterRole (aggregationRule) needs without escalate: it may gather
# anything, so the API server asks for everything ("must have cluster-admin privileges").
FULL_AUTHORITY = (
    {"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]},
    {"nonResourceURLs": ["*"], "verbs": ["*"]},
)
SHOWN = 6  # missing permissions spelled out per finding; the rest counted
FIX = (
    "grant escalate and bind on roles and clusterroles to the target's user (see rule 12 of "
    "examples/rbac/target-restore.yaml), or grant it the permissions listed, or leave the "
    "object out (--exclude-resources) and create it yourself"
)


def _permissions(rules: list[dict[str, Any]], ns: str | None) -> Iterator[Ask]:
    """Every atomic permission of a role's rules, as the questions that test it."""
    for rule in rules:
        verbs = rule.get("verbs") or []
        for path in rule.get("nonResourceURLs") or []:
            for verb in verbs:
                yield Ask(verb, path=path)
        for group in rule.get("apiGroups") or []:
            for combined in rule.get("resources") or []:
                resource, _, sub = combined.partition("/")
                for name in rule.get("resourceNames") or [""]:
                    for verb in verbs:
                        yield Ask(verb, group, resource, ns, name, sub)


def _spell(ask: Ask) -> str:
    """`watch configmaps`, `create pods/exec`, `get deployments.apps/scale`,
    `get secrets named db`, `get /healthz`."""
    if ask.path:
        return f"{ask.verb} {ask.path}"
    gr = f"{ask.resource}.{ask.group}" if ask.group else ask.resource
    sub = f"/{ask.subresource}" if ask.subresource else ""
    return f"{ask.verb} {gr}{sub}" + (f" named {ask.name}" if ask.name else "")


def _role_rules(ctx: Context, kind: str, ns: str | None, name: str) -> list[dict[str, Any]] | None:
    """The rules of the role a binding refers to: as restored, else as on the target."""
    for it in ctx.by_kind(kind):
        if it.key[3] == name and (kind == "ClusterRole" or it.key[2] == ns):
            return list(it.read_desired().get("rules") or [])
    gr = f"{ROLE_RESOURCES[kind]}.{RBAC}"
    live = ctx.target.get(gr, ns if kind == "Role" else None, name)
    return None if live is None else list(live.get("rules") or [])


def _needs(ctx: Context, it: Planned) -> tuple[Ask, list[dict[str, Any]], str] | None:
    """(the escalate/bind question, the rules held otherwise, how the message begins)."""
    ns = it.key[2]
    if it.kind in ROLE_RESOURCES:
        ask = Ask("escalate", RBAC, ROLE_RESOURCES[it.kind], ns, it.key[3])
        own: list[dict[str, Any]] = list(it.read_desired().get("rules") or [])
        if it.read_desired().get("aggregationRule"):
            own += FULL_AUTHORITY
        return ask, own, "it grants"
    ref = it.read_desired().get("roleRef") or {}
    kind, name = str(ref.get("kind", "")), str(ref.get("name", ""))
    if kind not in ROLE_RESOURCES:
        return None
    rules = _role_rules(ctx, kind, ns, name)
    if rules is None:
        return None  # the role is missing: the reference check reports it
    ask = Ask("bind", RBAC, ROLE_RESOURCES[kind], ns, name)
    return ask, rules, f"the {kind} {name} it binds grants"


def check_escalation(ctx: Context) -> list[Finding]:
    c = Collect("permission")
    todo = []
    for it in ctx.by_kind(*ROLE_RESOURCES, *BINDINGS):
        if ctx.target.disc.for_kind(str(it.read_desired().get("apiVersion", "")), it.kind) is None:
            continue  # not served: the API check reports it
        need = _needs(ctx, it)
        if need is not None:
            todo.append((it, *need))
    waived = ask_all(ctx, {ask for _, ask, _, _ in todo})
    refused = [(it, ask, rules, what) for it, ask, rules, what in todo if waived[ask] is False]
    held = ask_all(
        ctx, {p for _, ask, rules, _ in refused for p in _permissions(rules, ask.namespace)}
    )
    for it, ask, rules, what in refused:
        missing = sorted(
            {_spell(p) for p in _permissions(rules, ask.namespace) if held[p] is False}
        )
        if not missing:
            continue
        shown = ", ".join(missing[:SHOWN]) + (
            f" (+{len(missing) - SHOWN} more)" if len(missing) > SHOWN else ""
        )
        where = f" in namespace {ask.namespace}" if ask.namespace else ""
        c.add(
            "error",
            f"the target's credentials may not create {ctx.ref(it)}: {what} {shown}, which "
            f"they do not hold, and they may not {ask.verb} {ask.resource}{where}",
            FIX,
            ctx.ref(it),
        )
    return c.findings()
