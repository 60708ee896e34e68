"""Pure tests of restore's sanitizer: what the source cluster owned is removed, the rest
is kept, and the object read from the backup is never changed."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from migrate.transform.sanitize import (
    KIND_SANITIZERS,
    STRIP_ANNOTATIONS,
    STRIP_LABELS,
    STRIP_METADATA,
    SanitizeOptions,
    sanitize,
)

LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
OWNER = {
    "apiVersion": "apps/v1",
    "kind": "ReplicaSet",
    "name": "web-5d4f",
    "uid": "1111-2222",
    "controller": True,
    "blockOwnerDeletion": True,
}


def _source_meta(**extra: Any) -> dict[str, Any]:
    """Metadata as the source API server returns it: every server-set field present."""
    meta: dict[str, Any] = {
        "name": "obj",
        "namespace": "app",
        "uid": "0c5a-uid",
        "resourceVersion": "4242",
        "creationTimestamp": "2024-05-01T10:00:00Z",
        "generation": 7,
        "managedFields": [{"manager": "kubectl", "operation": "Apply"}],
        "selfLink": "/api/v1/namespaces/app/configmaps/obj",
        "deletionTimestamp": "2024-05-02T10:00:00Z",
        "deletionGracePeriodSeconds": 30,
        "labels": {"app": "web"},
        "annotations": {"team": "core"},
        "ownerReferences": [dict(OWNER)],
        "finalizers": ["example.com/cleanup"],
    }
    meta.update(extra)
    return meta


def _obj(kind: str, spec: dict[str, Any] | None = None, **top: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"apiVersion": "v1", "kind": kind, "metadata": _source_meta()}
    if spec is not None:
        out["spec"] = spec
    out.update(top)
    return out


def _service(spec: dict[str, Any], annotations: dict[str, str] | None = None) -> dict[str, Any]:
    obj = _obj("Service", spec)
    if annotations is not None:
        obj["metadata"]["annotations"] = annotations
    return obj


# --------------------------------------------------------------------------- metadata


def test_strip_tables_are_not_empty() -> None:
    # The parametrized tests below iterate these tables; an empty table would make them
    # vacuous.
    assert len(STRIP_METADATA) >= 8
    assert STRIP_ANNOTATIONS
    assert STRIP_LABELS


@pytest.mark.parametrize("key", sorted(STRIP_METADATA))
@pytest.mark.parametrize("kind", ["ConfigMap", "Service", "Pod", "Job", "Secret", "Widget"])
def test_every_server_set_metadata_key_is_removed(key: str, kind: str) -> None:
    obj = _obj(kind)
    assert key in obj["metadata"]
    out = sanitize(obj)
    assert key not in out["metadata"]


def test_all_server_set_metadata_removed_and_the_rest_kept() -> None:
    out = sanitize(_obj("ConfigMap", data={"k": "v"}))
    assert out["metadata"] == {
        "name": "obj",
        "namespace": "app",
        "labels": {"app": "web"},
        "annotations": {"team": "core"},
        "ownerReferences": [OWNER],
        "finalizers": ["example.com/cleanup"],
    }
    assert out["data"] == {"k": "v"}
    assert out["apiVersion"] == "v1"
    assert out["kind"] == "ConfigMap"


def test_owner_references_are_kept_untouched() -> None:
    refs = [dict(OWNER), {"apiVersion": "v1", "kind": "Node", "name": "n1", "uid": "9"}]
    obj = _obj("Pod", {"containers": []})
    obj["metadata"]["ownerReferences"] = refs
    out = sanitize(obj)
    assert out["metadata"]["ownerReferences"] == refs
    assert out["metadata"]["ownerReferences"][0]["uid"] == "1111-2222"


@pytest.mark.parametrize("keep_status", [False, True])
def test_status_removed_unless_kept(keep_status: bool) -> None:
    status = {"phase": "Bound", "capacity": {"storage": "1Gi"}}
    obj = _obj("PersistentVolumeClaim", {}, status=status)
    out = sanitize(obj, SanitizeOptions(keep_status=keep_status))
    if keep_status:
        assert out["status"] == status
    else:
        assert "status" not in out


def test_default_options_are_no_preserve_and_no_status() -> None:
    assert sanitize(_obj("ConfigMap", status={"x": 1})) == sanitize(
        _obj("ConfigMap", status={"x": 1}), SanitizeOptions()
    )
    assert "status" not in sanitize(_obj("ConfigMap", status={"x": 1}), None)


@pytest.mark.parametrize("key", sorted(STRIP_ANNOTATIONS))
def test_source_state_annotation_removed_others_kept(key: str) -> None:
    obj = _obj("PersistentVolumeClaim", {})
    obj["metadata"]["annotations"] = {key: "x", "team": "core"}
    out = sanitize(obj)
    assert out["metadata"]["annotations"] == {"team": "core"}


@pytest.mark.parametrize("key", sorted(STRIP_LABELS))
def test_source_uid_label_removed_others_kept(key: str) -> None:
    obj = _obj("Pod", {"containers": []})
    obj["metadata"]["labels"] = {key: "abc-uid", "job-name": "migrate"}
    out = sanitize(obj)
    assert out["metadata"]["labels"] == {"job-name": "migrate"}


def test_annotation_and_label_maps_emptied_by_stripping_are_dropped() -> None:
    obj = _obj("PersistentVolumeClaim", {})
    obj["metadata"]["annotations"] = dict.fromkeys(STRIP_ANNOTATIONS, "x")
    obj["metadata"]["labels"] = dict.fromkeys(STRIP_LABELS, "x")
    out = sanitize(obj)
    assert "annotations" not in out["metadata"]
    assert "labels" not in out["metadata"]


def test_object_without_metadata_gets_an_empty_one() -> None:
    out = sanitize({"apiVersion": "v1", "kind": "ConfigMap", "data": {"a": "b"}})
    assert out == {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {}, "data": {"a": "b"}}


@pytest.mark.parametrize(
    "obj",
    [
        _obj("ConfigMap", status={"a": 1}),
        _service(
            {"clusterIP": "10.0.0.1", "clusterIPs": ["10.0.0.1"], "healthCheckNodePort": 31000,
             "ports": [{"port": 80, "nodePort": 30080}]},
            {LAST_APPLIED: "{}", "deployment.kubernetes.io/revision": "3"},
        ),
        _obj("Pod", {"nodeName": "n1", "priority": 100, "containers": [{"name": "a"}]}),
        _obj("PersistentVolume", {"claimRef": {"name": "c", "namespace": "app", "uid": "u",
                                               "resourceVersion": "1"}}),
        _obj("Job", {"selector": {"matchLabels": {"controller-uid": "u"}},
                     "template": {"metadata": {"labels": {"controller-uid": "u", "x": "y"}}}}),
        _obj("Secret", type="kubernetes.io/service-account-token",
             data={"token": "dA==", "ca.crt": "Yw==", "namespace": "bg==", "extra": "eA=="}),
    ],
    ids=["configmap", "service", "pod", "pv", "job", "token-secret"],
)  # fmt: skip
def test_input_is_not_mutated(obj: dict[str, Any]) -> None:
    before = copy.deepcopy(obj)
    out = sanitize(obj)
    assert obj == before
    assert out != before
    # The result shares nothing mutable with the input.
    out["metadata"].setdefault("labels", {})["new"] = "x"
    out.setdefault("spec", {})["new"] = "x"
    for value in out.get("data", {}), out["metadata"].get("ownerReferences", [{}])[0]:
        value["new"] = "x"
    assert obj == before


@pytest.mark.parametrize(
    "obj",
    [
        _obj("ConfigMap", status={"a": 1}),
        _service({"clusterIP": "10.0.0.1", "ports": [{"port": 80, "nodePort": 30080}]}),
        _obj("Job", {"selector": {"matchLabels": {"a": "b"}}}),
    ],
)
def test_sanitize_is_idempotent(obj: dict[str, Any]) -> None:
    once = sanitize(obj)
    assert sanitize(once) == once


def test_kind_sanitizers_cover_the_kinds_with_extra_rules() -> None:
    assert set(KIND_SANITIZERS) >= {"Service", "Pod", "PersistentVolume", "Job", "Secret"}


# --------------------------------------------------------------------------- Service


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ({"type": "ClusterIP", "clusterIP": "10.96.0.10", "clusterIPs": ["10.96.0.10"]},
         {"type": "ClusterIP"}),
        ({"clusterIP": "10.96.0.10", "clusterIPs": ["10.96.0.10", "fd00::10"],
          "ipFamilies": ["IPv4", "IPv6"]},
         {"ipFamilies": ["IPv4", "IPv6"]}),
        ({"clusterIP": "", "clusterIPs": []}, {}),
        # No clusterIP but a stale clusterIPs list: still an allocated address (Velero
        # clears clusterIPs unless clusterIP is "None").
        ({"clusterIPs": ["10.96.0.10"]}, {}),
        ({"clusterIP": "None", "clusterIPs": ["None"], "selector": {"app": "db"}},
         {"clusterIP": "None", "clusterIPs": ["None"], "selector": {"app": "db"}}),
        ({"type": "LoadBalancer", "clusterIP": "10.96.0.11", "healthCheckNodePort": 32000,
          "externalTrafficPolicy": "Local"},
         {"type": "LoadBalancer", "externalTrafficPolicy": "Local"}),
        ({"type": "ExternalName", "externalName": "db.example.com", "ports": [{"port": 5432}]},
         {"type": "ExternalName", "externalName": "db.example.com", "ports": [{"port": 5432}]}),
    ],
    ids=["cluster-ip", "dual-stack", "empty", "cluster-ips-only", "headless",
         "health-check-node-port", "external-name"],
)  # fmt: skip
def test_service_addresses(spec: dict[str, Any], expected: dict[str, Any]) -> None:
    assert sanitize(_service(spec))["spec"] == expected


def test_health_check_node_port_removed_even_when_node_ports_preserved() -> None:
    spec = {"type": "LoadBalancer", "healthCheckNodePort": 32000,
            "ports": [{"port": 80, "nodePort": 30080}]}  # fmt: skip
    out = sanitize(_service(spec), SanitizeOptions(preserve_node_ports=True))
    assert "healthCheckNodePort" not in out["spec"]
    assert out["spec"]["ports"] == [{"port": 80, "nodePort": 30080}]


NODE_PORTS = [
    {"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP", "nodePort": 30080},
    {"name": "https", "port": 443, "targetPort": 8443, "protocol": "TCP", "nodePort": 30443},
]


def _applied(*node_ports: int | None) -> str:
    ports = [{"port": 80 + i} | ({"nodePort": n} if n else {}) for i, n in enumerate(node_ports)]
    return json.dumps({"apiVersion": "v1", "kind": "Service", "spec": {"ports": ports}})


@pytest.mark.parametrize(
    ("annotations", "preserve", "kept"),
    [
        (None, False, set()),
        (None, True, {30080, 30443}),
        ({LAST_APPLIED: _applied(30080)}, False, {30080}),
        ({LAST_APPLIED: _applied(30080, 30443)}, False, {30080, 30443}),
        ({LAST_APPLIED: _applied(None, None)}, False, set()),
        ({LAST_APPLIED: _applied(31999)}, False, set()),  # explicit elsewhere, not these
        ({LAST_APPLIED: "{not json"}, False, set()),
        ({LAST_APPLIED: "null"}, False, set()),
        ({LAST_APPLIED: "[1, 2]"}, False, set()),
        ({LAST_APPLIED: '{"spec": null}'}, False, set()),
        ({LAST_APPLIED: ""}, False, set()),
    ],
    ids=["auto", "preserve", "one-explicit", "both-explicit", "applied-without-nodeports",
         "other-explicit", "bad-json", "json-null", "json-list", "spec-null", "empty"],
)  # fmt: skip
def test_service_node_ports(
    annotations: dict[str, str] | None, preserve: bool, kept: set[int]
) -> None:
    spec = {"type": "NodePort", "clusterIP": "10.96.1.1", "ports": copy.deepcopy(NODE_PORTS)}
    obj = _service(spec, annotations)
    out = sanitize(obj, SanitizeOptions(preserve_node_ports=preserve))
    ports = out["spec"]["ports"]
    assert {p["nodePort"] for p in ports if "nodePort" in p} == kept
    # Everything else about each port survives.
    for port, original in zip(ports, NODE_PORTS, strict=True):
        assert {k: v for k, v in port.items() if k != "nodePort"} == {
            k: v for k, v in original.items() if k != "nodePort"
        }
    assert "clusterIP" not in out["spec"]


def test_service_without_spec_or_ports() -> None:
    assert "spec" not in sanitize(_obj("Service"))
    assert sanitize(_service({"type": "ClusterIP", "ports": None}))["spec"] == {
        "type": "ClusterIP",
        "ports": None,
    }


# --------------------------------------------------------------------------- other kinds


def test_pod_loses_node_binding_and_priority() -> None:
    spec = {"nodeName": "node-7", "priority": 2000000000, "priorityClassName": "high",
            "schedulerName": "default-scheduler", "containers": [{"name": "a"}]}  # fmt: skip
    out = sanitize(_obj("Pod", spec))
    assert out["spec"] == {"priorityClassName": "high", "schedulerName": "default-scheduler",
                           "containers": [{"name": "a"}]}  # fmt: skip


def test_pod_fields_kept_on_other_kinds() -> None:
    # nodeName/priority mean something only on a Pod; a custom kind keeps them.
    out = sanitize(_obj("Widget", {"nodeName": "n", "priority": 1}))
    assert out["spec"] == {"nodeName": "n", "priority": 1}


def test_persistent_volume_claim_ref_loses_source_identity() -> None:
    claim = {"kind": "PersistentVolumeClaim", "apiVersion": "v1", "namespace": "app",
             "name": "data", "uid": "pvc-uid", "resourceVersion": "77"}  # fmt: skip
    out = sanitize(_obj("PersistentVolume", {"claimRef": claim, "storageClassName": "fast"}))
    assert out["spec"]["claimRef"] == {"kind": "PersistentVolumeClaim", "apiVersion": "v1",
                                       "namespace": "app", "name": "data"}  # fmt: skip
    assert out["spec"]["storageClassName"] == "fast"


def test_persistent_volume_without_claim_ref() -> None:
    assert sanitize(_obj("PersistentVolume", {"capacity": {"storage": "1Gi"}}))["spec"] == {
        "capacity": {"storage": "1Gi"}
    }


def _job(manual: bool | None) -> dict[str, Any]:
    labels = {"controller-uid": "u1", "batch.kubernetes.io/controller-uid": "u1",
              "job-name": "migrate", "batch.kubernetes.io/job-name": "migrate"}  # fmt: skip
    spec: dict[str, Any] = {
        "selector": {"matchLabels": {"batch.kubernetes.io/controller-uid": "u1"}},
        "template": {"metadata": {"labels": labels}, "spec": {"containers": []}},
    }
    if manual is not None:
        spec["manualSelector"] = manual
    return _obj("Job", spec)


@pytest.mark.parametrize(("manual", "selector_kept"), [(None, False), (False, False), (True, True)])
def test_job_selector_and_controller_uid_labels(manual: bool | None, selector_kept: bool) -> None:
    out = sanitize(_job(manual))
    assert ("selector" in out["spec"]) is selector_kept
    if selector_kept:
        assert out["spec"]["selector"] == {
            "matchLabels": {"batch.kubernetes.io/controller-uid": "u1"}
        }
    assert out["spec"]["template"]["metadata"]["labels"] == {
        "job-name": "migrate",
        "batch.kubernetes.io/job-name": "migrate",
    }


def test_job_without_template_labels() -> None:
    out = sanitize(_obj("Job", {"template": {"spec": {"containers": []}}}))
    assert out["spec"] == {"template": {"spec": {"containers": []}}}


def test_service_account_token_secret_loses_generated_data() -> None:
    data = {"token": "dA==", "ca.crt": "Yw==", "namespace": "YXBw", "extra": "eA=="}
    obj = _obj("Secret", type="kubernetes.io/service-account-token", data=data)
    obj["metadata"]["annotations"] = {
        "kubernetes.io/service-account.name": "builder",
        "kubernetes.io/service-account.uid": "sa-uid",
    }
    out = sanitize(obj)
    assert out["data"] == {"extra": "eA=="}
    assert out["type"] == "kubernetes.io/service-account-token"
    assert out["metadata"]["annotations"] == {"kubernetes.io/service-account.name": "builder"}


@pytest.mark.parametrize("type_", ["Opaque", "kubernetes.io/tls", None])
def test_other_secrets_keep_their_data(type_: str | None) -> None:
    data = {"token": "dA==", "ca.crt": "Yw==", "namespace": "YXBw"}
    obj = _obj("Secret", data=dict(data))
    if type_:
        obj["type"] = type_
    assert sanitize(obj)["data"] == data


def test_token_secret_without_data() -> None:
    out = sanitize(_obj("Secret", type="kubernetes.io/service-account-token"))
    assert "data" not in out
