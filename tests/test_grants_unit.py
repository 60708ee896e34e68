"""Pure tests of the RBAC grant closure (migrate.transform.grants), the clone's copies
of ClusterRoleBindings (migrate.transform.bindings) and the findings preflight and
verify make of a backup's record.  The real operator migrations are in
tests/test_operator.py."""

from __future__ import annotations

from typing import Any

from migrate.transform.bindings import COPY_OF, MAX_NAME, copy_name, split_binding
from migrate.transform.grants import Grants, grants_of, resolve, sa_subjects

RBAC = "rbac.authorization.k8s.io"


def _crd(group: str, plural: str) -> dict[str, Any]:
    return {
        "metadata": {"name": f"{plural}.{group}"},
        "spec": {"group": group, "names": {"plural": plural, "kind": plural.title()}},
    }


def _binding(kind: str, role_kind: str, role: str, subjects: list[dict[str, Any]],
             ns: str | None = None) -> dict[str, Any]:  # fmt: skip
    meta: dict[str, Any] = {"name": f"{role}-binding"}
    if ns:
        meta["namespace"] = ns
    ref = {"apiGroup": RBAC, "kind": role_kind, "name": role}
    return {"kind": kind, "metadata": meta, "roleRef": ref, "subjects": subjects}


OPERATOR_SERVICE_ACCOUNT = {"kind": "ServiceAccount", "name": "op", "namespace": "ops"}


def test_explicit_rules_resolve_to_crds_and_subresources_count() -> None:
    rules = [
        {"apiGroups": ["example.com"], "resources": ["widgets", "widgets/status"]},
        {"apiGroups": ["example.com"], "resources": ["gadgets/finalizers"]},
        {"apiGroups": ["", "apps"], "resources": ["pods", "deployments"]},
        {"apiGroups": ["optional.io"], "resources": ["extras"]},
        {"apiGroups": ["metrics.k8s.io"], "resources": ["pods"]},
    ]
    g = Grants()
    g.add_rules(rules, "ClusterRole op", ["ops/op"])
    crds = [_crd("example.com", "widgets"), _crd("example.com", "gadgets"), _crd("other.io", "x")]
    served = {("", "pods"), ("apps", "deployments"), ("metrics.k8s.io", "pods")}
    got = resolve(g, crds, lambda grp, res: (grp, res) in served)
    why = "granted to ServiceAccount ops/op by ClusterRole op"
    assert got.present == {"widgets.example.com": why, "gadgets.example.com": why}
    assert got.absent == {"extras.optional.io": why}  # core/apps/served: not CRDs
    assert g.wildcards == {}


def test_wildcard_rules_pull_nothing_and_are_noted() -> None:
    g = Grants()
    g.add_rules(
        [
            {"apiGroups": ["*"], "resources": ["widgets"]},
            {"apiGroups": ["example.com"], "resources": ["*"]},
            {"apiGroups": ["example.com"], "resources": ["*/scale"]},
        ],
        "ClusterRole gitops",
        ["ops/op"],
    )
    assert g.explicit == {}
    assert g.wildcards == {
        "ClusterRole gitops": "ClusterRole gitops (bound to ServiceAccount ops/op)"
    }
    assert resolve(g, [_crd("example.com", "widgets")], lambda *_: False).present == {}


def test_only_service_accounts_in_scope_count() -> None:
    in_scope = {("ops", "op")}
    subjects = [{"kind": "ServiceAccount", "name": "op"}, {"kind": "User", "name": "alice"}]
    rb = _binding("RoleBinding", "Role", "r", subjects, ns="ops")
    assert sa_subjects(rb, lambda ns, n: (ns, n) in in_scope) == ["ops/op"]  # own namespace
    other = _binding("ClusterRoleBinding", "ClusterRole", "c",
                     [{"kind": "ServiceAccount", "name": "op", "namespace": "prod"}])  # fmt: skip
    asked: list[list[str]] = []

    def cluster_rules(names: list[str]) -> dict[str, list[dict[str, Any]]]:
        asked.append(names)
        return {"c": [{"apiGroups": ["example.com"], "resources": ["widgets"]}]}

    roles = {("ops", "r"): [{"apiGroups": ["example.com"], "resources": ["gadgets"]}]}
    g = grants_of([rb, other], roles, lambda ns, n: (ns, n) in in_scope, cluster_rules)
    assert g.explicit == {
        ("example.com", "gadgets"): "granted to ServiceAccount ops/op by Role ops/r"
    }
    assert asked == [[]]  # the ClusterRole bound only to an out-of-scope account is not read


def test_copies_per_mapped_namespace_and_originals_kept_only_for_others() -> None:
    crb = _binding(
        "ClusterRoleBinding",
        "ClusterRole",
        "op",
        [OPERATOR_SERVICE_ACCOUNT, {"kind": "ServiceAccount", "name": "b", "namespace": "ops2"},
         {"kind": "ServiceAccount", "name": "w", "namespace": "web"}],
    )  # fmt: skip
    split = split_binding(crb, {"ops": "ops-test", "ops2": "ops2-test"})
    assert split is not None and split.keep_original  # web/w is not mapped
    assert split.names() == ["op-binding-ops-test", "op-binding-ops2-test"]
    first = split.copies[0]
    assert first["subjects"] == [{"kind": "ServiceAccount", "name": "op", "namespace": "ops-test"}]
    assert first["metadata"]["annotations"] == {COPY_OF: "op-binding"}
    assert first["roleRef"] == crb["roleRef"]
    assert crb["subjects"][0]["namespace"] == "ops"  # the original is not touched
    only = split_binding(
        _binding("ClusterRoleBinding", "ClusterRole", "x", [OPERATOR_SERVICE_ACCOUNT]), {"ops": "t"}
    )
    assert only is not None and not only.keep_original
    assert split_binding(crb, {"elsewhere": "e"}) is None
    assert split_binding({**crb, "kind": "RoleBinding"}, {"ops": "t"}) is None


def test_copy_names_are_deterministic_and_fit() -> None:
    assert copy_name("op", "ops-test") == "op-ops-test"
    long = "a" * 250
    name = copy_name(long, "ops-test")
    assert len(name) <= MAX_NAME and name.endswith("-ops-test")
    assert name == copy_name(long, "ops-test")
    assert copy_name("a" * 249 + "b", "ops-test") != name  # different originals stay apart
