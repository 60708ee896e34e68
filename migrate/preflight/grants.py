"""Checks for what RBAC grants the ServiceAccounts in scope, and for namespace-mapped
clones.

CRDs: backup brings the CRDs named in the rules granted to the ServiceAccounts it holds
and records the others (migrate.backup.grants).  A granted CRD that is neither restored
nor on the target leaves its operator crash-looping: a warning.  A granted type the
source does not define either (an optional integration) and a `*` rule (which pulls no
CRD) are worth knowing: infos.

Clones: restore gives a namespace-mapped clone its own copies of the
ClusterRoleBindings of its ServiceAccounts (migrate.transform.bindings).  Admission
webhook configurations are not copied: a second configuration would act on every
object of the cluster twice, so the clone is told it goes without.
"""

from __future__ import annotations

from migrate.preflight.context import Context
from migrate.preflight.findings import Collect, Finding
from migrate.transform.bindings import COPY_OF

CRDS = "customresourcedefinitions.apiextensions.k8s.io"
ADMISSION = "admissionregistration.k8s.io"
WEBHOOK_GR = {  # kind -> resource.group
    "ValidatingWebhookConfiguration": f"validatingwebhookconfigurations.{ADMISSION}",
    "MutatingWebhookConfiguration": f"mutatingwebhookconfigurations.{ADMISSION}",
}


def check_grants(ctx: Context) -> list[Finding]:
    c = Collect("grant")
    grants = ctx.source.grants
    for role, why in sorted((grants.get("wildcards") or {}).items()):
        c.add(
            "info",
            f"{why} has a '*' rule (every API group or resource): no CRD is brought for it",
            "if it relies on CRDs, install them on the target first, or back up with "
            "--include-cluster-resources true",
            role,
        )
    crds = grants.get("crds") or {}
    on_target = ctx.target.names(CRDS) if crds else None
    for name, rec in sorted(crds.items()):
        why = rec.get("grantedBy", "")
        if rec.get("status") == "absent":
            c.add(
                "info",
                f"{name} is {why}, but the source has no CRD for it either "
                "(an optional integration not installed)",
                obj=f"CustomResourceDefinition {name}",
            )
            continue
        planned = ctx.in_plan("CustomResourceDefinition", None, name)
        if planned or (on_target is not None and name in on_target):
            continue
        left = rec.get("leftOut") or "not restored (--exclude-resources or its scope)"
        c.add(
            "warning",
            f"CRD {name} is {why} and exists on the source, but is left out ({left}) "
            "and missing on the target: the workload using it may fail",
            "restore the CRD too (drop the exclusion), or install it on the target first",
            f"CustomResourceDefinition {name}",
        )
    return c.findings()


def check_clone(ctx: Context) -> list[Finding]:
    c = Collect("clone")
    mapped = ctx.options.namespace_mappings
    if not mapped:
        return []
    for it in ctx.items:
        meta = it.read_desired().get("metadata") or {}
        if it.kind == "ClusterRoleBinding" and (meta.get("annotations") or {}).get(COPY_OF):
            c.add(
                "info",
                "ClusterRoleBinding restored as the clone's own copy, subjects re-pointed "
                "to the mapped namespace (the original is left untouched)",
                obj=ctx.ref(it),
            )
        if it.kind not in WEBHOOK_GR:
            continue
        services = [
            (hook.get("clientConfig") or {}).get("service") or {}
            for hook in it.read_obj().get("webhooks") or []
        ]
        hit = sorted(
            {f"{s['namespace']}/{s.get('name')}" for s in services if s.get("namespace") in mapped}
        )
        if not hit:
            continue
        existing = ctx.target.names(WEBHOOK_GR[it.kind]) or set()
        where = ", ".join(hit)
        if it.key[3] in existing:
            c.add(
                "warning",
                f"not copied for the clone: the target's configuration of this name keeps "
                f"calling Service {where} of the original namespace; a copy would act on "
                "every object of the cluster twice",
                "the clone goes without this admission webhook; add a configuration scoped "
                "to the clone's namespace yourself if it needs one",
                f"{it.kind} {it.key[3]}",
            )
        else:
            c.add(
                "info",
                f"restored once (not copied per clone), calling the clone's Service instead "
                f"of {where}",
                obj=f"{it.kind} {it.key[3]}",
            )
    return c.findings()
