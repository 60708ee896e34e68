"""Check 6a: admission webhooks already on the target whose rules match objects the
restore creates.  A validating webhook whose server is down or strict rejects the
restore's creates (velero#2443); a mutating one changes objects on the way in, which
verify then reports as drift.

Matching follows the API server: operations, apiGroups, apiVersions (any version of the
same resource under matchPolicy Equivalent, the default), resources, scope, then the
namespaceSelector against the labels the namespace will have and the objectSelector
against the object's labels.  matchConditions (CEL) are not evaluated: such webhooks
match here at least as often as in the cluster.
"""

from __future__ import annotations

from typing import Any

from migrate.cluster.selectors import Selector
from migrate.preflight.context import Context, api_parts
from migrate.preflight.findings import Collect, Finding

# resource.group of each configuration type -> how findings name it.
WEBHOOK_TYPES: dict[str, str] = {
    "validatingwebhookconfigurations.admissionregistration.k8s.io": "validating",
    "mutatingwebhookconfigurations.admissionregistration.k8s.io": "mutating",
}
# What each kind of webhook may do to a restored object.
EFFECTS: dict[str, str] = {
    "validating": "it may reject them",
    "mutating": "it may change them on the way in (verify then reports drift) or reject them",
}


def _rule_matches(
    rule: dict[str, Any],
    ops: set[str],
    group: str,
    version: str,
    resource: str,
    namespaced: bool,
    equivalent: bool,
) -> bool:
    if not ({"*"} | ops) & set(rule.get("operations") or []):
        return False
    groups = rule.get("apiGroups") or []
    if "*" not in groups and group not in groups:
        return False
    versions = rule.get("apiVersions") or []
    if not equivalent and "*" not in versions and version not in versions:
        return False
    if not {"*", "*/*", resource} & set(rule.get("resources") or []):
        return False
    scope = rule.get("scope") or "*"
    return scope == "*" or (scope == "Namespaced") == namespaced


def _endpoint(hook: dict[str, Any]) -> str:
    cfg = hook.get("clientConfig") or {}
    svc = cfg.get("service")
    if svc:
        return f"service {svc.get('namespace')}/{svc.get('name')}"
    return str(cfg.get("url") or "?")


def check_webhooks(ctx: Context) -> list[Finding]:
    c = Collect("webhook")
    ops = {"CREATE", "UPDATE"} if ctx.options.existing_policy == "update" else {"CREATE"}
    targets = []  # (planned object, group, version, resource, namespaced)
    for it in ctx.restorable:
        api_version = str(it.read_desired().get("apiVersion", ""))
        res = ctx.target.disc.for_kind(api_version, it.kind)
        if res is not None:
            targets.append((it, res.group, res.version, res.resource, res.namespaced))
    for gr, flavour in WEBHOOK_TYPES.items():
        for config in ctx.target.objects(gr) or []:
            for hook in config.get("webhooks") or []:
                equivalent = hook.get("matchPolicy", "Equivalent") == "Equivalent"
                ns_sel = Selector.from_object(hook.get("namespaceSelector"))
                obj_sel = Selector.from_object(hook.get("objectSelector"))
                matched = []
                for it, group, version, resource, namespaced in targets:
                    if not any(
                        _rule_matches(r, ops, group, version, resource, namespaced, equivalent)
                        for r in hook.get("rules") or []
                    ):
                        continue
                    labels = (it.read_desired().get("metadata") or {}).get("labels") or {}
                    if not obj_sel.matches(labels):
                        continue
                    if it.kind == "Namespace":
                        ns_labels = {**labels, "kubernetes.io/metadata.name": it.key[3]}
                    elif namespaced and it.key[2]:
                        ns_labels = ctx.namespace_labels(it.key[2])
                    else:
                        ns_labels = None  # cluster-scoped: the namespaceSelector does not apply
                    if ns_labels is not None and not ns_sel.matches(ns_labels):
                        continue
                    matched.append(it)
                if not matched:
                    continue
                kinds = sorted({f"{api_parts(str(it.read_desired()['apiVersion']))[0] or 'core'}/"
                                f"{it.kind}" for it in matched})  # fmt: skip
                policy = hook.get("failurePolicy", "Fail")
                cel = (
                    "; it has matchConditions, not evaluated here"
                    if hook.get("matchConditions")
                    else ""
                )
                message = (
                    f"{flavour} webhook {hook.get('name')} ({config['metadata']['name']}, "
                    f"{_endpoint(hook)}, failurePolicy {policy}) matches "
                    f"{', '.join(kinds)} the restore creates: {EFFECTS[flavour]}"
                    + (", and if its server is down every matching create fails"
                       if policy == "Fail" else "") + cel
                )  # fmt: skip
                fix = (
                    "check its server is up and admits these objects, or narrow its "
                    "namespaceSelector/objectSelector during the restore"
                )
                for it in matched:
                    c.add("warning", message, fix, ctx.ref(it))
    return c.findings()
