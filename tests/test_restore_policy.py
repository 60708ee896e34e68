"""Pure tests of which backed-up objects restore leaves alone (skip_reason), and why."""

from __future__ import annotations

from typing import Any

import pytest

from migrate.restore.policy import SKIP_RULES, SkipRule, skip_reason

NONE: frozenset[str] = frozenset()


def _obj(
    kind: str,
    name: str,
    ns: str | None = "app",
    *,
    owner: tuple[str, bool | None] | None = None,
    labels: dict[str, str] | None = None,
    annotations: dict[str, str] | None = None,
    **top: Any,
) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if ns:
        meta["namespace"] = ns
    if owner:
        ref: dict[str, Any] = {"apiVersion": "apps/v1", "kind": owner[0], "name": "owner",
                               "uid": "owner-uid"}  # fmt: skip
        if owner[1] is not None:
            ref["controller"] = owner[1]
        meta["ownerReferences"] = [ref]
    if labels is not None:
        meta["labels"] = labels
    if annotations is not None:
        meta["annotations"] = annotations
    return {"apiVersion": "v1", "kind": kind, "metadata": meta, **top}


MANAGED_BY = "endpointslice.kubernetes.io/managed-by"
MIRRORING = "endpointslicemirroring-controller.k8s.io"
AUTOMANAGED = "kube-aggregator.kubernetes.io/automanaged"
TOKEN = "kubernetes.io/service-account-token"
BOOTSTRAP = {"kubernetes.io/bootstrapping": "rbac-defaults"}

SKIPPED: list[tuple[str, dict[str, Any], str]] = [
    ("pod-of-replicaset", _obj("Pod", "web-5d4f-x", owner=("ReplicaSet", True)), "ReplicaSet"),
    ("pod-of-job", _obj("Pod", "job-x", owner=("Job", True)), "controller"),
    ("pod-of-daemonset", _obj("Pod", "ds-x", owner=("DaemonSet", True)), "controller"),
    ("pod-of-statefulset", _obj("Pod", "db-0", owner=("StatefulSet", True)), "controller"),
    ("pod-of-rc", _obj("Pod", "rc-x", owner=("ReplicationController", True)), "controller"),
    ("replicaset-of-deployment", _obj("ReplicaSet", "web-5d4f", owner=("Deployment", True)),
     "Deployment controller"),
    ("job-of-cronjob", _obj("Job", "backup-2840", owner=("CronJob", True)), "CronJob"),
    ("revision-of-statefulset", _obj("ControllerRevision", "db-7f", owner=("StatefulSet", True)),
     "revision history"),
    ("revision-of-daemonset", _obj("ControllerRevision", "ds-7f", owner=("DaemonSet", True)),
     "revision history"),
    ("completed-job", _obj("Job", "migrate", status={"completionTime": "2024-05-01T00:00:00Z",
                                                     "succeeded": 1}), "completed"),
    ("succeeded-pod", _obj("Pod", "once", status={"phase": "Succeeded"}), "finished"),
    ("failed-pod", _obj("Pod", "crashed", status={"phase": "Failed"}), "finished"),
    ("root-ca-app", _obj("ConfigMap", "kube-root-ca.crt"), "root-CA"),
    ("root-ca-default", _obj("ConfigMap", "kube-root-ca.crt", "default"), "root-CA"),
    ("root-ca-kube-system", _obj("ConfigMap", "kube-root-ca.crt", "kube-system"), "root-CA"),
    ("sa-token", _obj("Secret", "builder-token-x7k2p", type=TOKEN,
                      annotations={"kubernetes.io/service-account.name": "builder"}),
     "<sa>-token-"),
    ("default-sa-token", _obj("Secret", "default-token-abcde", type=TOKEN), "<sa>-token-"),
    ("endpointslice", _obj("EndpointSlice", "web-abc12",
                           labels={MANAGED_BY: "endpointslice-controller.k8s.io",
                                   "kubernetes.io/service-name": "web"}),
     "EndpointSlice controller"),
    ("endpointslice-mirroring", _obj("EndpointSlice", "ext-abc12",
                                     labels={MANAGED_BY: MIRRORING}),
     "mirroring controller"),
    ("bootstrap-clusterrole", _obj("ClusterRole", "admin", None, labels=BOOTSTRAP),
     "bootstrap RBAC"),
    ("bootstrap-clusterrolebinding", _obj("ClusterRoleBinding", "system:basic-user", None,
                                          labels=BOOTSTRAP), "bootstrap RBAC"),
    ("bootstrap-role", _obj("Role", "extension-apiserver-authentication-reader", "kube-system",
                            labels=BOOTSTRAP), "bootstrap RBAC"),
    ("bootstrap-rolebinding", _obj("RoleBinding", "system:controller:bootstrap-signer",
                                   "kube-public", labels=BOOTSTRAP), "bootstrap RBAC"),
    ("automanaged-apiservice", _obj("APIService", "v1.apps", None,
                                    labels={AUTOMANAGED: "onstart"}),
     "registered automatically"),
    ("automanaged-apiservice-true", _obj("APIService", "v1.batch", None,
                                         labels={AUTOMANAGED: "true"}),
     "registered automatically"),
    ("flowschema-default", _obj("FlowSchema", "exempt", None,
                                annotations={"apf.kubernetes.io/autoupdate-spec": "true"}),
     "flow-control defaults"),
    ("priority-level-default", _obj("PriorityLevelConfiguration", "global-default", None,
                                    annotations={"apf.kubernetes.io/autoupdate-spec": "true"}),
     "flow-control defaults"),
    ("system-node-critical", _obj("PriorityClass", "system-node-critical", None),
     "system priority class"),
    ("system-cluster-critical", _obj("PriorityClass", "system-cluster-critical", None),
     "system priority class"),
    ("kubernetes-service", _obj("Service", "kubernetes", "default"), "API server's own Service"),
    ("kubernetes-endpoints", _obj("Endpoints", "kubernetes", "default"),
     "API server's own Service"),
    ("kubernetes-endpointslice", _obj("EndpointSlice", "kubernetes", "default"),
     "API server's own Service"),
    ("apiserver-ca-bundle", _obj("ConfigMap", "extension-apiserver-authentication", "kube-system"),
     "client-CA bundle"),
    ("ns-kube-system", _obj("Namespace", "kube-system", None), "namespace every cluster has"),
    ("ns-default", _obj("Namespace", "default", None), "namespace every cluster has"),
    ("ns-kube-public", _obj("Namespace", "kube-public", None), "namespace every cluster has"),
    ("ns-kube-node-lease", _obj("Namespace", "kube-node-lease", None),
     "namespace every cluster has"),
    ("service-cidr", _obj("ServiceCIDR", "kubernetes", None), "service CIDR"),
    ("node", _obj("Node", "worker-1", None), "node state"),
    ("event", _obj("Event", "web.17c"), "node state"),
    ("lease", _obj("Lease", "leader", "kube-system"), "node state"),
    ("csinode", _obj("CSINode", "worker-1", None), "node state"),
    ("volumeattachment", _obj("VolumeAttachment", "csi-abc", None), "node state"),
]  # fmt: skip


@pytest.mark.parametrize(("obj", "reason"), [c[1:] for c in SKIPPED], ids=[c[0] for c in SKIPPED])
def test_skipped(obj: dict[str, Any], reason: str) -> None:
    got = skip_reason(obj, NONE)
    assert got is not None
    assert reason in got


def test_every_skip_rule_is_exercised() -> None:
    reasons = {skip_reason(obj, NONE) for _, obj, _ in SKIPPED}
    assert {rule.reason for rule in SKIP_RULES} <= reasons


KEPT: list[tuple[str, dict[str, Any]]] = [
    ("bare-pod", _obj("Pod", "debug", status={"phase": "Running"})),
    ("pending-pod", _obj("Pod", "debug", status={"phase": "Pending"})),
    ("pod-non-controller-owner", _obj("Pod", "web-x", owner=("ReplicaSet", False))),
    ("pod-owner-without-controller-flag", _obj("Pod", "web-x", owner=("ReplicaSet", None))),
    ("pod-of-custom-controller", _obj("Pod", "wf-x", owner=("Workflow", True))),
    ("pod-of-deployment-directly", _obj("Pod", "odd", owner=("Deployment", True))),
    ("bare-replicaset", _obj("ReplicaSet", "web-5d4f")),
    ("replicaset-non-controller-owner", _obj("ReplicaSet", "web", owner=("Deployment", False))),
    ("replicaset-of-custom", _obj("ReplicaSet", "web", owner=("Rollout", True))),
    ("running-job", _obj("Job", "migrate", status={"active": 1})),
    ("job-without-status", _obj("Job", "migrate")),
    ("job-of-custom-controller", _obj("Job", "x", owner=("Pipeline", True))),
    ("bare-controllerrevision", _obj("ControllerRevision", "x")),
    ("configmap", _obj("ConfigMap", "app-config", data={"a": "b"})),
    ("configmap-named-like-root-ca", _obj("ConfigMap", "kube-root-ca.crt.bak")),
    ("deployment", _obj("Deployment", "web", spec={"replicas": 2})),
    ("deployment-in-kube-system", _obj("Deployment", "coredns", "kube-system")),
    ("statefulset", _obj("StatefulSet", "db")),
    ("opaque-secret", _obj("Secret", "db-password", type="Opaque")),
    ("opaque-secret-named-like-token", _obj("Secret", "x-token-y", type="Opaque")),
    ("untyped-secret-named-like-token", _obj("Secret", "x-token-y")),
    ("long-lived-sa-token", _obj("Secret", "builder-secret", type=TOKEN)),
    ("sa-token-without-token-infix", _obj("Secret", "ci-apitoken", type=TOKEN)),
    ("tls-secret", _obj("Secret", "web-tls", type="kubernetes.io/tls")),
    ("endpointslice-custom-manager", _obj("EndpointSlice", "ext",
                                          labels={MANAGED_BY: "my-controller.example.com"})),
    ("endpointslice-unlabelled", _obj("EndpointSlice", "ext")),
    ("service", _obj("Service", "web")),
    ("service-named-kubernetes-elsewhere", _obj("Service", "kubernetes", "app")),
    ("default-other-service", _obj("Service", "web", "default")),
    ("namespace", _obj("Namespace", "app", None)),
    ("namespace-like-system", _obj("Namespace", "kube-system-copy", None)),
    ("priorityclass", _obj("PriorityClass", "high", None)),
    ("clusterrole", _obj("ClusterRole", "reader", None)),
    ("clusterrole-other-bootstrap-value", _obj("ClusterRole", "x", None,
                                               labels={"kubernetes.io/bootstrapping": "custom"})),
    ("role-bootstrap-label-as-annotation", _obj("Role", "x", annotations=BOOTSTRAP)),
    ("apiservice", _obj("APIService", "v1beta1.metrics.k8s.io", None)),
    ("flowschema-user", _obj("FlowSchema", "mine", None,
                             annotations={"apf.kubernetes.io/autoupdate-spec": "false"})),
    ("serviceaccount", _obj("ServiceAccount", "builder")),
    ("pvc", _obj("PersistentVolumeClaim", "data")),
    ("custom-resource", _obj("Widget", "w", owner=("ReplicaSet", True))),
]  # fmt: skip


@pytest.mark.parametrize("obj", [c[1] for c in KEPT], ids=[c[0] for c in KEPT])
def test_restored(obj: dict[str, Any]) -> None:
    assert skip_reason(obj, NONE) is None


SELECTOR_SERVICES = frozenset({"app/web", "shop/api"})


@pytest.mark.parametrize(
    ("ns", "name", "skipped"),
    [
        ("app", "web", True),  # its Service has a selector: the controller rebuilds it
        ("shop", "api", True),
        ("app", "external-db", False),  # selector-less Service: user-managed Endpoints
        ("shop", "web", False),  # same name, other namespace
        ("app", "api", False),
    ],
)
def test_endpoints_follow_their_service(ns: str, name: str, skipped: bool) -> None:
    obj = _obj("Endpoints", name, ns, subsets=[{"addresses": [{"ip": "10.0.0.5"}]}])
    reason = skip_reason(obj, SELECTOR_SERVICES)
    if skipped:
        assert reason == "maintained by the endpoints controller for its Service"
    else:
        assert reason is None


def test_selector_services_concern_endpoints_only() -> None:
    for kind in ("Service", "EndpointSlice", "ConfigMap"):
        assert skip_reason(_obj(kind, "web", "app"), SELECTOR_SERVICES) is None


def test_first_matching_rule_gives_the_reason() -> None:
    # Owned by a ReplicaSet AND finished: the controller row comes first.
    obj = _obj("Pod", "web-x", owner=("ReplicaSet", True), status={"phase": "Succeeded"})
    reason = skip_reason(obj, NONE)
    assert reason == SKIP_RULES[0].reason
    assert reason is not None
    assert "ReplicaSet" in reason


def test_any_controller_owner_among_several() -> None:
    obj = _obj("Pod", "web-x")
    obj["metadata"]["ownerReferences"] = [
        {"kind": "ConfigMap", "name": "a", "uid": "1"},
        {"kind": "ReplicaSet", "name": "web", "uid": "2", "controller": True},
    ]
    assert skip_reason(obj, NONE) == SKIP_RULES[0].reason


@pytest.mark.parametrize(
    ("rule", "obj", "matches"),
    [
        (SkipRule("any kind"), _obj("Widget", "w"), True),
        (SkipRule("label any value", label=("x", "")), _obj("Pod", "p", labels={"x": ""}), True),
        (SkipRule("label any value", label=("x", "")), _obj("Pod", "p", labels={"y": "1"}), False),
        (SkipRule("label value", label=("x", "1")), _obj("Pod", "p", labels={"x": "2"}), False),
        (SkipRule("names", names=frozenset({"a/b"})), _obj("Pod", "b", "a"), True),
        (SkipRule("names", names=frozenset({"a/b"})), _obj("Pod", "b", None), False),
        (SkipRule("names", names=frozenset({"b"})), _obj("Pod", "b", "a"), False),
        (SkipRule("regex", name_regex="^x-"), _obj("Pod", "x-1"), True),
        (SkipRule("regex", name_regex="^x-"), _obj("Pod", "y-x-1"), False),
        (SkipRule("phase", phases=frozenset({"Failed"})), _obj("Pod", "p"), False),
    ],
)  # fmt: skip
def test_skip_rule_matching(rule: SkipRule, obj: dict[str, Any], matches: bool) -> None:
    assert rule.matches(obj) is matches


def test_object_without_metadata() -> None:
    assert skip_reason({"kind": "ConfigMap"}, NONE) is None
    assert skip_reason({"kind": "Node"}, NONE) is not None
