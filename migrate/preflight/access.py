"""Check 7: permissions.  The target's credentials must be allowed every verb the restore
uses on each kind it restores, where it restores it (RESTORE_VERBS below, kept in step
with migrate/restore/execute.py), and, for RBAC objects, hold what they grant or may
escalate/bind (escalation.py); asked with SelfSubjectAccessReviews, which the API server
answers without storing anything.  Reads preflight itself could not do on the target, and
what the source side could not list (recorded in the backup's results), are reported
here too.
"""

from __future__ import annotations

from dataclasses import dataclass

from migrate.preflight.context import Context
from migrate.preflight.findings import Collect, Finding
from migrate.preflight.ssar import Ask, ask_all


@dataclass(frozen=True)
class VerbUse:
    """A verb restore uses on the objects it restores, and when."""

    verb: str
    why: str
    kinds: frozenset[str] = frozenset()  # only these kinds (empty: every kind)
    except_kinds: frozenset[str] = frozenset()
    policies: frozenset[str] = frozenset()  # only under these existing-resource policies

    def applies(self, kind: str, policy: str) -> bool:
        return (
            (not self.kinds or kind in self.kinds)
            and kind not in self.except_kinds
            and (not self.policies or policy in self.policies)
        )


# Every request restore makes to the objects it restores (migrate/restore/execute.py and
# ready.py); restore never PUTs (update) or deletes.  Data, not code: edit with restore.
RESTORE_VERBS: tuple[VerbUse, ...] = (
    VerbUse("create", "every object is POSTed"),
    VerbUse("get", "an object that exists already is read back (is it ours? its uid), so "
            "are owners for their uids, CRDs until Established, workloads until ready"),
    VerbUse("patch", "an existing ServiceAccount (the controller makes `default` in every "
            "new namespace) is merged with the backup's", kinds=frozenset({"ServiceAccount"})),
    VerbUse("patch", "--existing-resource-policy update replaces existing objects with a "
            "merge patch; an existing namespace is used as it is",
            except_kinds=frozenset({"Namespace"}), policies=frozenset({"update"})),
)  # fmt: skip


def check_permissions(ctx: Context) -> list[Finding]:
    c = Collect("permission")
    policy = ctx.options.existing_policy
    needs: dict[Ask, list[str]] = {}  # (verb, group, resource, namespace) -> objects
    reason: dict[Ask, str] = {}
    for it in ctx.restorable:
        res = ctx.target.disc.for_kind(str(it.read_desired().get("apiVersion", "")), it.kind)
        if res is None:
            continue
        ns = it.key[2] if res.namespaced else None
        for use in RESTORE_VERBS:
            if use.applies(it.kind, policy):
                ask = Ask(use.verb, res.group, res.resource, ns)
                needs.setdefault(ask, []).append(ctx.ref(it))
                reason.setdefault(ask, use.why)
    # One cluster-wide question per verb and resource; per namespace only where refused.
    wide = ask_all(ctx, {a._replace(namespace=None) for a in needs})
    narrow = ask_all(
        ctx, {a for a in needs if a.namespace and wide.get(a._replace(namespace=None)) is False}
    )
    for ask, objs in sorted(needs.items(), key=str):
        answer = wide.get(ask._replace(namespace=None))
        if answer is False and ask.namespace:
            answer = narrow.get(ask)
        if answer is not False:
            continue
        gr = f"{ask.resource}.{ask.group}" if ask.group else ask.resource
        where = f" in namespace {ask.namespace}" if ask.namespace else ""
        for obj in objs:
            c.add(
                "error",
                f"the target's credentials may not {ask.verb} {gr}{where}",
                f"restore needs it: {reason[ask]}; grant {ask.verb} on {gr} to the target's "
                "user (a Role or ClusterRole binding, see examples/rbac/target-restore.yaml), "
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
