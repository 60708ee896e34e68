"""Pure tests of the clone/move rewrites: namespace, storage-class and registry mappings,
replica overrides, suspended CronJobs and the restore labels."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from migrate.errors import EXIT_USAGE, UsageError
from migrate.transform.mappings import (
    BACKUP_LABEL,
    RESTORE_LABEL,
    Mappings,
    apply_mappings,
    label_restored,
    parse_mapping,
)
from migrate.transform.workloads import POD_SPEC_PATHS

NAMESPACE_MAPPINGS = Mappings(namespaces={"old": "new", "shop": "shop-staging"})


def _obj(kind: str, name: str = "x", ns: str | None = "old", **top: Any) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if ns:
        meta["namespace"] = ns
    return {"apiVersion": "v1", "kind": kind, "metadata": meta, **top}


# --------------------------------------------------------------------------- parse_mapping


@pytest.mark.parametrize(
    ("text", "sep", "expected"),
    [
        ("a:b", ":", {"a": "b"}),
        ("a:b,c:d", ":", {"a": "b", "c": "d"}),
        (" a : b ,  c:d ", ":", {"a": "b", "c": "d"}),
        ("a:b,", ":", {"a": "b"}),
        (",,a:b,,", ":", {"a": "b"}),
        ("a:b,b:a", ":", {"a": "b", "b": "a"}),  # a swap is two distinct sources
        ("", ":", {}),
        (None, ":", {}),
        ("  ", ":", {}),
        ("a:b:c", ":", {"a": "b:c"}),  # split on the first separator only
        ("docker.io=mirror.local:5000/hub", "=", {"docker.io": "mirror.local:5000/hub"}),
        ("quay.io/org=reg.io/org,gcr.io=reg.io/gcr", "=",
         {"quay.io/org": "reg.io/org", "gcr.io": "reg.io/gcr"}),
    ],
)  # fmt: skip
def test_parse_mapping(text: str | None, sep: str, expected: dict[str, str]) -> None:
    assert parse_mapping(text, "--flag", sep) == expected


@pytest.mark.parametrize(
    ("text", "bad"),
    [
        ("a", "a"),
        ("a:", "a:"),
        (":b", ":b"),
        (" : ", ":"),
        ("a:b,c", "c"),
        ("a:b, c: ,d:e", "c:"),
        ("a=b", "a=b"),  # wrong separator
    ],
)
def test_parse_mapping_rejects_and_names_the_bad_entry(text: str, bad: str) -> None:
    with pytest.raises(UsageError) as info:
        parse_mapping(text, "--namespace-mapping")
    err = info.value
    assert err.message == f"invalid --namespace-mapping entry {bad!r}"
    assert "old:new" in err.hint
    assert err.exit_code == EXIT_USAGE


def test_parse_mapping_hint_uses_the_separator() -> None:
    with pytest.raises(UsageError) as info:
        parse_mapping("docker.io", "--registry-mapping", "=")
    assert "old=new" in info.value.hint
    assert "--registry-mapping" in info.value.message


@pytest.mark.parametrize("text", ["a:b,a:c", "a:b,a:b", "a:b, a :c", "x:y,a:b,a:c"])
def test_parse_mapping_rejects_duplicate_source(text: str) -> None:
    with pytest.raises(UsageError, match=r"--storage-class-mapping maps 'a' twice"):
        parse_mapping(text, "--storage-class-mapping")


# --------------------------------------------------------------------------- namespaces


@pytest.mark.parametrize(
    ("ns", "expected"), [("old", "new"), ("shop", "shop-staging"), ("other", "other"),
                         (None, None), ("", "")],
)  # fmt: skip
def test_mappings_namespace(ns: str | None, expected: str | None) -> None:
    assert NAMESPACE_MAPPINGS.namespace(ns) == expected


@pytest.mark.parametrize(("ns", "expected"), [("old", "new"), ("other", "other")])
def test_namespaced_object_moves(ns: str, expected: str) -> None:
    obj = _obj("ConfigMap", ns=ns, data={"namespace": "old"})
    out = apply_mappings(obj, NAMESPACE_MAPPINGS)
    assert out is obj  # rewritten in place
    assert out["metadata"] == {"name": "x", "namespace": expected}
    assert out["data"] == {"namespace": "old"}  # only references, never data


def test_cluster_scoped_object_gets_no_namespace() -> None:
    out = apply_mappings(_obj("ClusterRole", ns=None), NAMESPACE_MAPPINGS)
    assert "namespace" not in out["metadata"]


@pytest.mark.parametrize(("name", "expected"), [("old", "new"), ("shop", "shop-staging"),
                                                ("kube-system", "kube-system")])  # fmt: skip
def test_namespace_object_is_renamed(name: str, expected: str) -> None:
    out = apply_mappings(_obj("Namespace", name=name, ns=None), NAMESPACE_MAPPINGS)
    assert out["metadata"] == {"name": expected}


def test_non_namespace_object_named_like_a_namespace_is_not_renamed() -> None:
    assert (
        apply_mappings(_obj("ConfigMap", name="old"), NAMESPACE_MAPPINGS)["metadata"]["name"]
        == "old"
    )


def _subjects() -> list[dict[str, Any]]:
    return [
        {"kind": "ServiceAccount", "name": "builder", "namespace": "old"},
        {"kind": "ServiceAccount", "name": "viewer", "namespace": "elsewhere"},
        {"kind": "User", "name": "alice", "apiGroup": "rbac.authorization.k8s.io",
         "namespace": "old"},
        {"kind": "Group", "name": "old", "apiGroup": "rbac.authorization.k8s.io",
         "namespace": "old"},
    ]  # fmt: skip


def test_binding_service_account_subjects_follow_the_mapping() -> None:
    role_ref = {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "old"}
    obj = _obj("RoleBinding", ns="old", subjects=_subjects(), roleRef=dict(role_ref))
    out = apply_mappings(obj, NAMESPACE_MAPPINGS)
    assert [s.get("namespace") for s in out["subjects"]] == ["new", "elsewhere", "old", "old"]
    assert [s["name"] for s in out["subjects"]] == ["builder", "viewer", "alice", "old"]
    assert out["roleRef"] == role_ref
    assert out["metadata"].get("namespace") == "new"


def test_cluster_role_binding_is_not_rewritten() -> None:
    """A clone gets copies of its ClusterRoleBindings (transform.bindings); the original
    keeps naming the original namespace."""
    obj = _obj("ClusterRoleBinding", ns=None, subjects=_subjects())
    assert apply_mappings(copy.deepcopy(obj), NAMESPACE_MAPPINGS) == obj


def test_binding_without_subjects() -> None:
    out = apply_mappings(_obj("RoleBinding", subjects=None), NAMESPACE_MAPPINGS)
    assert out["metadata"]["namespace"] == "new"


def test_subjects_of_other_kinds_are_not_references() -> None:
    obj = _obj("Widget", subjects=_subjects())
    out = apply_mappings(obj, NAMESPACE_MAPPINGS)
    assert out["subjects"] == _subjects()


@pytest.mark.parametrize(("ns", "expected"), [("old", "new"), ("elsewhere", "elsewhere")])
def test_persistent_volume_claim_ref_namespace(ns: str, expected: str) -> None:
    claim = {"kind": "PersistentVolumeClaim", "namespace": ns, "name": "data"}
    out = apply_mappings(
        _obj("PersistentVolume", ns=None, spec={"claimRef": claim}), NAMESPACE_MAPPINGS
    )
    assert out["spec"]["claimRef"] == {
        "kind": "PersistentVolumeClaim",
        "namespace": expected,
        "name": "data",
    }


def test_persistent_volume_without_claim_ref() -> None:
    out = apply_mappings(
        _obj("PersistentVolume", ns=None, spec={"capacity": {}}), NAMESPACE_MAPPINGS
    )
    assert out["spec"] == {"capacity": {}}


@pytest.mark.parametrize("kind", ["ValidatingWebhookConfiguration", "MutatingWebhookConfiguration"])
def test_webhook_service_namespace(kind: str) -> None:
    webhooks = [
        {"name": "a.example.com",
         "clientConfig": {"service": {"namespace": "old", "name": "hook", "path": "/v"}}},
        {"name": "b.example.com",
         "clientConfig": {"service": {"namespace": "elsewhere", "name": "hook"}}},
        {"name": "c.example.com", "clientConfig": {"url": "https://old.example.com/v"}},
        {"name": "d.example.com"},
    ]  # fmt: skip
    out = apply_mappings(_obj(kind, ns=None, webhooks=webhooks), NAMESPACE_MAPPINGS)
    hooks = out["webhooks"]
    assert hooks[0]["clientConfig"]["service"] == {"namespace": "new", "name": "hook", "path": "/v"}
    assert hooks[1]["clientConfig"]["service"]["namespace"] == "elsewhere"
    assert hooks[2]["clientConfig"] == {"url": "https://old.example.com/v"}
    assert hooks[3] == {"name": "d.example.com"}


def test_api_service_namespace() -> None:
    spec = {"group": "metrics.k8s.io", "service": {"namespace": "old", "name": "metrics"}}
    out = apply_mappings(_obj("APIService", ns=None, spec=spec), NAMESPACE_MAPPINGS)
    assert out["spec"]["service"] == {"namespace": "new", "name": "metrics"}


def test_local_api_service_without_service() -> None:
    out = apply_mappings(_obj("APIService", ns=None, spec={"group": "apps"}), NAMESPACE_MAPPINGS)
    assert out["spec"] == {"group": "apps"}


def test_no_namespace_mapping_changes_nothing() -> None:
    objs = [
        _obj("Namespace", name="old", ns=None),
        _obj("RoleBinding", subjects=_subjects()),
        _obj("APIService", ns=None, spec={"service": {"namespace": "old", "name": "m"}}),
    ]
    for obj in objs:
        before = copy.deepcopy(obj)
        assert apply_mappings(obj, Mappings()) == before


# --------------------------------------------------------------------------- storage classes

STORAGE_CLASS_MAPPINGS = Mappings(storage_classes={"gp2": "gp3", "standard": "premium"})


@pytest.mark.parametrize("kind", ["PersistentVolumeClaim", "PersistentVolume"])
@pytest.mark.parametrize(("sc", "expected"), [("gp2", "gp3"), ("standard", "premium"),
                                              ("fast", "fast"), ("", "")])  # fmt: skip
def test_storage_class_of_claims_and_volumes(kind: str, sc: str, expected: str) -> None:
    out = apply_mappings(_obj(kind, spec={"storageClassName": sc}), STORAGE_CLASS_MAPPINGS)
    assert out["spec"]["storageClassName"] == expected


def test_claim_without_storage_class_stays_default() -> None:
    out = apply_mappings(
        _obj("PersistentVolumeClaim", spec={"resources": {}}), STORAGE_CLASS_MAPPINGS
    )
    assert "storageClassName" not in out["spec"]


@pytest.mark.parametrize("kind", ["StorageClass", "PersistentVolumeClaim", "ConfigMap"])
def test_objects_named_like_a_mapped_class_keep_their_name(kind: str) -> None:
    """As Velero: a mapping rewrites references to a class, never a class object (the
    restore plan skips the mapped class instead of renaming it onto the target's)."""
    obj = _obj(kind, name="gp2", ns=None if kind == "StorageClass" else "app")
    assert apply_mappings(obj, STORAGE_CLASS_MAPPINGS)["metadata"]["name"] == "gp2"


def test_stateful_set_volume_claim_templates() -> None:
    templates = [
        {"metadata": {"name": "data"}, "spec": {"storageClassName": "gp2"}},
        {"metadata": {"name": "logs"}, "spec": {"storageClassName": "standard"}},
        {"metadata": {"name": "cache"}, "spec": {"storageClassName": "fast"}},
        {"metadata": {"name": "tmp"}, "spec": {"resources": {}}},
    ]
    obj = _obj("StatefulSet", spec={"replicas": 3, "volumeClaimTemplates": templates})
    out = apply_mappings(obj, STORAGE_CLASS_MAPPINGS)
    assert [t["spec"].get("storageClassName") for t in out["spec"]["volumeClaimTemplates"]] == [
        "gp3",
        "premium",
        "fast",
        None,
    ]
    assert out["spec"]["replicas"] == 3


def test_storage_class_mapping_is_not_chained() -> None:
    m = Mappings(storage_classes={"a": "b", "b": "c"})
    out = apply_mappings(_obj("PersistentVolumeClaim", spec={"storageClassName": "a"}), m)
    assert out["spec"]["storageClassName"] == "b"


# --------------------------------------------------------------------------- images

REGISTRY_MAPPINGS = Mappings(
    registries={
        "docker.io": "mirror.local/hub",
        "docker.io/library": "mirror.local/official",
        "quay.io/org": "registry.corp/org",
        "docker.io/lib": "WRONG.io",
    }
)


@pytest.mark.parametrize(
    ("image", "expected"),
    [
        ("docker.io/library/nginx:1.25", "mirror.local/official/nginx:1.25"),  # longest wins
        ("docker.io/bitnami/redis:7", "mirror.local/hub/bitnami/redis:7"),
        ("docker.io/library", "mirror.local/official"),  # exact match
        # segment boundaries only: "docker.io/lib" must not match "docker.io/library/..."
        ("docker.io/libfoo/x:1", "mirror.local/hub/libfoo/x:1"),
        ("docker.io/lib/x", "WRONG.io/x"),
        ("docker.iox/app", "docker.iox/app"),
        ("quay.io/org/app@sha256:abc123", "registry.corp/org/app@sha256:abc123"),
        ("quay.io/organisation/app", "quay.io/organisation/app"),
        ("quay.io/other/app", "quay.io/other/app"),
        ("ghcr.io/docker.io/app", "ghcr.io/docker.io/app"),  # a prefix, never a substring
        ("nginx", "nginx"),
    ],
)
def test_image_mapping(image: str, expected: str) -> None:
    assert REGISTRY_MAPPINGS.image(image) == expected


def test_library_mapping_is_not_applied_across_segments() -> None:
    m = Mappings(registries={"docker.io/lib": "other.io/lib"})
    assert m.image("docker.io/library/nginx") == "docker.io/library/nginx"
    assert m.image("docker.io/lib/nginx") == "other.io/lib/nginx"


@pytest.mark.parametrize(
    "registries",
    [{"docker.io": "mirror.io"}, {"docker.io/": "mirror.io/"}, {"docker.io/": "mirror.io"},
     {"docker.io": "mirror.io/"}],
)  # fmt: skip
def test_image_mapping_trailing_slashes(registries: dict[str, str]) -> None:
    m = Mappings(registries=registries)
    assert m.image("docker.io/library/nginx:1") == "mirror.io/library/nginx:1"
    assert m.image("docker.iox/nginx") == "docker.iox/nginx"


def _pod_spec() -> dict[str, Any]:
    return {
        "initContainers": [{"name": "init", "image": "docker.io/library/busybox"}],
        "containers": [
            {"name": "app", "image": "quay.io/org/app:v1"},
            {"name": "sidecar", "image": "docker.io/envoyproxy/envoy:v1.30"},
            {"name": "noimage"},
        ],
        "ephemeralContainers": [{"name": "debug", "image": "docker.io/library/alpine"}],
    }


MAPPED_IMAGES = {
    "init": "mirror.local/official/busybox",
    "app": "registry.corp/org/app:v1",
    "sidecar": "mirror.local/hub/envoyproxy/envoy:v1.30",
    "debug": "mirror.local/official/alpine",
}


def _workload(kind: str, pod_spec: dict[str, Any]) -> dict[str, Any]:
    obj = _obj(kind)
    node = obj
    *parents, last = POD_SPEC_PATHS[kind]
    for key in parents:
        node = node.setdefault(key, {})
    node[last] = pod_spec
    return obj


def _containers(spec: dict[str, Any]) -> dict[str, str | None]:
    return {
        c["name"]: c.get("image")
        for key in ("initContainers", "containers", "ephemeralContainers")
        for c in spec.get(key) or []
    }


def test_every_workload_kind_is_covered() -> None:
    assert set(POD_SPEC_PATHS) >= {"Pod", "Deployment", "ReplicaSet", "StatefulSet",
                                   "DaemonSet", "Job", "CronJob", "ReplicationController",
                                   "PodTemplate"}  # fmt: skip


@pytest.mark.parametrize("kind", sorted(POD_SPEC_PATHS))
def test_images_of_every_container_kind_in_every_workload(kind: str) -> None:
    obj = _workload(kind, _pod_spec())
    out = apply_mappings(obj, REGISTRY_MAPPINGS)
    node: Any = out
    for key in POD_SPEC_PATHS[kind]:
        node = node[key]
    assert _containers(node) == {**MAPPED_IMAGES, "noimage": None}


def test_cron_job_template_path() -> None:
    pod = {"containers": [{"name": "a", "image": "docker.io/library/nginx"}]}
    obj = {
        "kind": "CronJob",
        "metadata": {"name": "c"},
        "spec": {"schedule": "* * * * *", "jobTemplate": {"spec": {"template": {"spec": pod}}}},
    }
    out = apply_mappings(obj, REGISTRY_MAPPINGS)
    container = out["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "mirror.local/official/nginx"


@pytest.mark.parametrize("kind", ["ConfigMap", "Widget", "Service"])
def test_images_outside_pod_specs_are_left_alone(kind: str) -> None:
    obj = _obj(kind, spec={"template": {"spec": _pod_spec()}}, image="docker.io/library/x")
    before = copy.deepcopy(obj)
    assert apply_mappings(obj, REGISTRY_MAPPINGS) == before


def test_workload_without_pod_spec() -> None:
    obj = _obj("Deployment", spec={"replicas": 1})
    assert apply_mappings(obj, REGISTRY_MAPPINGS)["spec"] == {"replicas": 1}


# --------------------------------------------------------------------------- replicas, cronjobs


@pytest.mark.parametrize(
    ("kind", "scaled"),
    [("Deployment", True), ("StatefulSet", True), ("ReplicaSet", True),
     ("DaemonSet", False), ("Job", False), ("CronJob", False), ("Pod", False),
     ("ConfigMap", False)],
)  # fmt: skip
@pytest.mark.parametrize("replicas", [0, 5])
def test_replicas_override(kind: str, scaled: bool, replicas: int) -> None:
    obj = _obj(kind, spec={"replicas": 3, "other": "kept"})
    out = apply_mappings(obj, Mappings(replicas=replicas))
    assert out["spec"] == {"replicas": replicas if scaled else 3, "other": "kept"}


def test_replicas_set_when_absent_on_scalable_kind() -> None:
    out = apply_mappings(_obj("Deployment", spec={}), Mappings(replicas=0))
    assert out["spec"]["replicas"] == 0


def test_no_replicas_override() -> None:
    out = apply_mappings(_obj("Deployment", spec={"replicas": 3}), Mappings())
    assert out["spec"]["replicas"] == 3


def test_daemonset_gets_no_replicas_field() -> None:
    out = apply_mappings(_obj("DaemonSet", spec={}), Mappings(replicas=0))
    assert "replicas" not in out["spec"]


@pytest.mark.parametrize(
    ("kind", "suspend", "expected"),
    [("CronJob", True, True), ("CronJob", False, None), ("Job", True, None),
     ("Deployment", True, None)],
)  # fmt: skip
def test_suspend_cronjobs(kind: str, suspend: bool, expected: bool | None) -> None:
    out = apply_mappings(_obj(kind, spec={"schedule": "0 * * * *"}),
                         Mappings(suspend_cronjobs=suspend))  # fmt: skip
    assert out["spec"].get("suspend") is expected


def test_suspend_overrides_an_explicit_false() -> None:
    obj = _obj("CronJob", spec={"suspend": False})
    assert apply_mappings(obj, Mappings(suspend_cronjobs=True))["spec"]["suspend"] is True


def test_all_mappings_together() -> None:
    m = Mappings(
        namespaces={"old": "new"},
        storage_classes={"gp2": "gp3"},
        registries={"docker.io": "mirror.io"},
        replicas=1,
    )
    obj = _obj(
        "StatefulSet",
        spec={
            "replicas": 4,
            "template": {"spec": {"containers": [{"name": "db", "image": "docker.io/pg:16"}]}},
            "volumeClaimTemplates": [{"spec": {"storageClassName": "gp2"}}],
        },
    )
    out = apply_mappings(obj, m)
    assert out["metadata"]["namespace"] == "new"
    assert out["spec"]["replicas"] == 1
    assert out["spec"]["template"]["spec"]["containers"][0]["image"] == "mirror.io/pg:16"
    assert out["spec"]["volumeClaimTemplates"][0]["spec"]["storageClassName"] == "gp3"


# --------------------------------------------------------------------------- labels


def test_label_restored_adds_velero_labels_and_keeps_others() -> None:
    obj = _obj("ConfigMap")
    obj["metadata"]["labels"] = {"app": "web", BACKUP_LABEL: "older"}
    out = label_restored(obj, "nightly-1", "nightly-1-20240501")
    assert out is obj
    assert out["metadata"]["labels"] == {
        "app": "web",
        "velero.io/backup-name": "nightly-1",
        "velero.io/restore-name": "nightly-1-20240501",
    }


def test_label_restored_creates_metadata_and_labels() -> None:
    out = label_restored({"kind": "ConfigMap"}, "b", "r")
    assert out["metadata"] == {"labels": {BACKUP_LABEL: "b", RESTORE_LABEL: "r"}}


def test_label_names_are_velero_s() -> None:
    assert BACKUP_LABEL == "velero.io/backup-name"
    assert RESTORE_LABEL == "velero.io/restore-name"


def test_claim_sizes_match_source_namespace_and_glob_first_entry_wins() -> None:
    m = Mappings(
        namespaces={"shop": "shop-test"},
        claim_sizes={"shop/data-*": "5Gi", "cache": "100Mi", "*/data-*": "1Gi"},
    )
    claim = _obj("PersistentVolumeClaim", "data-db-0", "shop",
                 spec={"resources": {"requests": {"storage": "100Gi"}}})  # fmt: skip
    assert apply_mappings(claim, m)["spec"]["resources"]["requests"]["storage"] == "5Gi"
    assert claim["metadata"]["namespace"] == "shop-test"
    other = apply_mappings(_obj("PersistentVolumeClaim", "data-x", "blog", spec={}), m)
    assert other["spec"]["resources"]["requests"]["storage"] == "1Gi"
    untouched = _obj("PersistentVolumeClaim", "logs", "shop",
                     spec={"resources": {"requests": {"storage": "3Gi"}}})  # fmt: skip
    assert apply_mappings(untouched, m)["spec"]["resources"]["requests"]["storage"] == "3Gi"
    sts = _obj("StatefulSet", "db", "shop", spec={"volumeClaimTemplates": [
        {"metadata": {"name": "data"}, "spec": {"resources": {"requests": {"storage": "9Gi"}}}},
        {"metadata": {"name": "logs"}, "spec": {"resources": {"requests": {"storage": "9Gi"}}}},
    ]})  # fmt: skip
    tpls = apply_mappings(sts, m)["spec"]["volumeClaimTemplates"]
    assert [t["spec"]["resources"]["requests"]["storage"] for t in tpls] == ["5Gi", "9Gi"]


@pytest.mark.parametrize("text", ["a/b/c:1Gi", "data:big", "data:0", "/:1Gi"])
def test_bad_claim_size_entries_are_usage_errors(text: str) -> None:
    with pytest.raises(UsageError) as err:
        Mappings(claim_sizes=parse_mapping(text, "--pvc-size-mappings"))
    assert err.value.exit_code == EXIT_USAGE and "--pvc-size-mappings" in err.value.message
