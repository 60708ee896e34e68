"""restore create against the real planes: objects put on the source, backed up into
MinIO with create_backup, restored into the target with run_restore, and checked on what
the target API server returns.  Namespace, storage-class and registry mappings, replica
overrides, suspended CronJobs, Velero resource modifiers, sanitizing on a real server,
the existing-resource policies, owner references re-pointed to the new owners, and the
CLI's --dry-run writing nothing.

Every test uses its own namespaces (source_ns or uuid-suffixed names) and cluster-scoped
objects with uuid-suffixed names, and deletes what it created on the target.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from migrate.backup.create import BackupOptions, create_backup
from migrate.cluster import APIResource, Cluster
from migrate.errors import ClusterError, NotFound, PreflightFailed
from migrate.restore.journal import ObjectResult, state_dir
from migrate.restore.plan import RestoreOptions
from migrate.restore.run import RestoreSummary, run_restore
from migrate.store import Store, open_store
from migrate.transform.mappings import BACKUP_LABEL, RESTORE_LABEL, Mappings
from migrate.transform.modifiers import parse_modifiers
from migrate.transform.scope import Scope

from .helpers import apply, wait_for

BIN = Path(sys.executable).parent
Cleanup = Callable[..., None]


# --------------------------------------------------------------------------- helpers


def short_uid() -> str:
    return uuid.uuid4().hex[:8]


def resource_named(cluster: Cluster, name: str) -> APIResource:
    return cluster.discovery().resolve(name)


@pytest.fixture
def cleanup() -> Iterator[Cleanup]:
    """cleanup(cluster, resource, name, namespace=None): deleted after the test, in
    reverse order, best effort."""
    todo: list[tuple[Cluster, str, str, str | None]] = []

    def add(cluster: Cluster, resource: str, name: str, namespace: str | None = None) -> None:
        todo.append((cluster, resource, name, namespace))

    yield add
    for cluster, resource, name, namespace in reversed(todo):
        with contextlib.suppress(Exception):  # best effort
            cluster.delete(resource_named(cluster, resource), name, namespace)


def make_ns(cluster: Cluster, name: str, cleanup: Cleanup) -> str:
    cleanup(cluster, "namespaces", name)
    cluster.create(resource_named(cluster, "namespaces"), {"metadata": {"name": name}})
    return name


def target_ns_name(cleanup: Cleanup, target: Cluster, tag: str) -> str:
    """A unique namespace name for the target, deleted after the test (restore creates it)."""
    name = f"km-{tag}-{short_uid()}"
    cleanup(target, "namespaces", name)
    return name


def configmap_manifest(name: str, ns: str, data: dict[str, str], **meta: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": ns, **meta},
        "data": data,
    }


def backup(source: Cluster, bucket_url: str, name: str, *namespaces: str) -> Store:
    store = open_store(bucket_url)
    opts = BackupOptions(name, Scope(include_namespaces=namespaces), ttl=timedelta(hours=2))
    summary = create_backup(source, store, opts)
    assert summary.phase == "Completed", summary.errors
    return store


def restore(target: Cluster, store: Store, backup_name: str, **kw: Any) -> RestoreSummary:
    opts = RestoreOptions(name=f"r-{short_uid()}", backup=backup_name, **kw)
    return run_restore(target, store, opts)


def results(summary: RestoreSummary) -> dict[tuple[str, str | None, str], ObjectResult]:
    """(kind, namespace, name) -> result."""
    return {(x.key[1], x.key[2], x.key[3]): x for x in summary.results}


def failures(summary: RestoreSummary) -> list[str]:
    return [f"{x.key}: {x.message}" for x in summary.results if x.result == "failed"]


def assert_completed(summary: RestoreSummary) -> None:
    assert summary.phase == "Completed", failures(summary)
    assert summary.counts["created"] > 0


# --------------------------------------------------------------------------- 1. namespaces


def test_namespace_mapping_rewrites_every_namespace_reference(
    source: Cluster, target: Cluster, source_ns: str, bucket_url: str, cleanup: Cleanup
) -> None:
    u = short_uid()
    dst = target_ns_name(cleanup, target, "map")
    cleanup(target, "namespaces", source_ns)  # only there if the mapping were ignored
    pv, crole, crb = f"km-pv-{u}", f"km-reader-{u}", f"km-crb-{u}"
    for c in (source, target):
        cleanup(c, "persistentvolumes", pv)
        cleanup(c, "clusterrolebindings.rbac.authorization.k8s.io", crb)
        cleanup(c, "clusterrolebindings.rbac.authorization.k8s.io", f"{crb}-{dst}")
        cleanup(c, "clusterroles.rbac.authorization.k8s.io", crole)
    sa_subject = [{"kind": "ServiceAccount", "name": "app", "namespace": source_ns}]
    rbac = "rbac.authorization.k8s.io/v1"
    apply(
        source,
        [
            configmap_manifest("settings", source_ns, {"k": "v"}),
            {"apiVersion": "v1", "kind": "ServiceAccount",
             "metadata": {"name": "app", "namespace": source_ns}},
            {"apiVersion": rbac, "kind": "Role",
             "metadata": {"name": "reader", "namespace": source_ns},
             "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get"]}]},
            {"apiVersion": rbac, "kind": "RoleBinding",
             "metadata": {"name": "reader", "namespace": source_ns},
             "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                         "name": "reader"},
             "subjects": sa_subject},
            {"apiVersion": rbac, "kind": "ClusterRole", "metadata": {"name": crole},
             "rules": [{"apiGroups": [""], "resources": ["nodes"], "verbs": ["get"]}]},
            {"apiVersion": rbac, "kind": "ClusterRoleBinding", "metadata": {"name": crb},
             "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                         "name": crole},
             "subjects": sa_subject},
            {"apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": pv},
             "spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"],
                      "persistentVolumeReclaimPolicy": "Retain", "storageClassName": "",
                      "hostPath": {"path": f"/tmp/{pv}"},
                      "claimRef": {"namespace": source_ns, "name": "data"}}},
            {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
             "metadata": {"name": "data", "namespace": source_ns},
             "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": "",
                      "volumeName": pv, "resources": {"requests": {"storage": "1Gi"}}}},
        ],
    )  # fmt: skip
    pvc_res = resource_named(source, "persistentvolumeclaims")

    def bound(c: Cluster, ns: str) -> bool:
        return bool(c.get(pvc_res, "data", ns).get("status", {}).get("phase") == "Bound")

    wait_for("the PVC bound on the source", lambda: bound(source, source_ns), 60)
    src_pv = source.get(resource_named(source, "persistentvolumes"), pv)
    assert src_pv["spec"]["claimRef"].get("uid")  # the backup carries the source's uid

    store = backup(source, bucket_url, "ns-map", source_ns)
    summary = restore(
        target,
        store,
        "ns-map",
        mappings=Mappings(namespaces={source_ns: dst}),
        pv_policy="retain-as-is",  # the static PV (Retain) travels with its mapped claim
    )
    assert_completed(summary)
    got = results(summary)

    # every namespaced object that was restored is in the mapped namespace
    restored = [x for x in summary.results if x.result in ("created", "updated")]
    namespaced = [x for x in restored if x.key[2]]
    assert {x.key[2] for x in namespaced} == {dst}
    for kind, name in (
        ("ConfigMap", "settings"),
        ("ServiceAccount", "app"),
        ("Role", "reader"),
        ("RoleBinding", "reader"),
        ("PersistentVolumeClaim", "data"),
    ):
        assert got[(kind, dst, name)].result == "created", got.get((kind, dst, name))
    assert got[("Namespace", None, dst)].result == "created"
    assert got[("PersistentVolume", None, pv)].result == "created"
    # the clone's own copy of the binding; the original (naming only the source
    # namespace's account) is not restored (migrate.transform.bindings)
    assert got[("ClusterRoleBinding", None, f"{crb}-{dst}")].result == "created"
    assert got[("ClusterRoleBinding", None, crb)].result == "skipped"
    for resource, name in (
        ("configmaps", "settings"),
        ("serviceaccounts", "app"),
        ("roles.rbac.authorization.k8s.io", "reader"),
        ("persistentvolumeclaims", "data"),
    ):
        assert (
            target.get(resource_named(target, resource), name, dst)["metadata"]["namespace"] == dst
        )
    with pytest.raises(NotFound):  # the source namespace's name was not used on the target
        target.get(resource_named(target, "namespaces"), source_ns)

    want_subjects = [{"kind": "ServiceAccount", "name": "app", "namespace": dst}]
    rb = target.get(resource_named(target, "rolebindings.rbac.authorization.k8s.io"), "reader", dst)
    assert rb["subjects"] == want_subjects
    crbs = resource_named(target, "clusterrolebindings.rbac.authorization.k8s.io")
    binding = target.get(crbs, f"{crb}-{dst}")
    assert binding["subjects"] == want_subjects
    assert binding["metadata"]["annotations"]["kube-migrate.io/copy-of"] == crb
    with pytest.raises(NotFound):
        target.get(crbs, crb)

    pv_res = resource_named(target, "persistentvolumes")
    claim = target.get(pv_res, pv)["spec"]["claimRef"]
    assert (claim["namespace"], claim["name"]) == (dst, "data")
    wait_for("the PVC bound on the target", lambda: bound(target, dst), 60)
    pvc = target.get(resource_named(target, "persistentvolumeclaims"), "data", dst)
    assert pvc["spec"]["volumeName"] == pv
    claim = target.get(pv_res, pv)["spec"]["claimRef"]
    assert claim["uid"] == pvc["metadata"]["uid"] != src_pv["spec"]["claimRef"]["uid"]


# --------------------------------------------------------------------------- 2. clone rewrites


def test_storage_class_registry_replicas_and_suspend(
    source: Cluster, target: Cluster, source_ns: str, bucket_url: str, cleanup: Cleanup
) -> None:
    u = short_uid()
    dst = target_ns_name(cleanup, target, "clone")
    sc_old, sc_new = f"km-old-{u}", f"km-new-{u}"
    cleanup(source, "storageclasses.storage.k8s.io", sc_old)
    cleanup(target, "storageclasses.storage.k8s.io", sc_new)
    cleanup(target, "storageclasses.storage.k8s.io", sc_old)
    old_reg, new_reg = "registry.example.com/team", "mirror.test:5000/team"
    claim_spec = {
        "accessModes": ["ReadWriteOnce"],
        "storageClassName": sc_old,
        "resources": {"requests": {"storage": "1Gi"}},
    }
    pod_meta = {"labels": {"app": "web"}}
    apply(
        source,
        [
            {"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
             "metadata": {"name": sc_old}, "provisioner": "kubernetes.io/no-provisioner",
             "volumeBindingMode": "WaitForFirstConsumer"},
            {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
             "metadata": {"name": "claim", "namespace": source_ns}, "spec": claim_spec},
            {"apiVersion": "apps/v1", "kind": "StatefulSet",
             "metadata": {"name": "db", "namespace": source_ns},
             "spec": {"serviceName": "db", "replicas": 0,
                      "selector": {"matchLabels": {"app": "db"}},
                      "template": {"metadata": {"labels": {"app": "db"}},
                                   "spec": {"containers": [
                                       {"name": "db", "image": f"{old_reg}/postgres:16"}]}},
                      "volumeClaimTemplates": [{"metadata": {"name": "data"},
                                                "spec": claim_spec}]}},
            {"apiVersion": "apps/v1", "kind": "Deployment",
             "metadata": {"name": "web", "namespace": source_ns},
             "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}},
                      "template": {"metadata": pod_meta, "spec": {
                          "initContainers": [{"name": "init", "image": f"{old_reg}/init:1"}],
                          "containers": [
                              {"name": "web", "image": f"{old_reg}/web:1.4.2"},
                              {"name": "side", "image": "docker.io/library/busybox:1.36"},
                              # a longer name, not the mapped path: must stay
                              {"name": "lookalike",
                               "image": "registry.example.com/teamwork/x:1"},
                          ]}}}},
            {"apiVersion": "batch/v1", "kind": "CronJob",
             "metadata": {"name": "report", "namespace": source_ns},
             "spec": {"schedule": "0 3 * * *", "suspend": False,
                      "jobTemplate": {"spec": {"template": {"spec": {
                          "restartPolicy": "OnFailure",
                          "initContainers": [{"name": "prep",
                                              "image": f"{old_reg}/prep:2"}],
                          "containers": [{"name": "report",
                                          "image": f"{old_reg}/report:2.0"}]}}}}}},
        ],
    )  # fmt: skip
    dep_res = resource_named(source, "deployments.apps")
    wait_for(
        "3 available replicas on the source",
        lambda: (
            source.get(dep_res, "web", source_ns).get("status", {}).get("availableReplicas") == 3
        ),
    )
    store = backup(source, bucket_url, "clone", source_ns)
    mappings = Mappings(
        namespaces={source_ns: dst},
        storage_classes={sc_old: sc_new},
        registries={old_reg: new_reg},
        replicas=1,
        suspend_cronjobs=True,
    )
    summary = restore(target, store, "clone", mappings=mappings)
    assert_completed(summary)

    # storage classes: claims follow the mapping; class objects are never renamed (Velero
    # rewrites references only), so the mapped class is not restored
    for name in (sc_new, sc_old):
        with pytest.raises(NotFound):
            target.get(resource_named(target, "storageclasses.storage.k8s.io"), name)
    sc_result = [x for x in summary.results if x.key[1] == "StorageClass" and x.key[3] == sc_old]
    assert sc_result and sc_result[0].result == "skipped"
    assert f"mapped to the target's storage class {sc_new}" in sc_result[0].message
    pvc = target.get(resource_named(target, "persistentvolumeclaims"), "claim", dst)
    assert pvc["spec"]["storageClassName"] == sc_new
    sts = target.get(resource_named(target, "statefulsets.apps"), "db", dst)
    assert [t["spec"]["storageClassName"] for t in sts["spec"]["volumeClaimTemplates"]] == [sc_new]
    assert sts["spec"]["template"]["spec"]["containers"][0]["image"] == f"{new_reg}/postgres:16"
    assert sts["spec"]["replicas"] == 1  # --replicas applies to every scalable kind

    # images: containers and init containers, of Deployments and CronJobs
    dep = target.get(resource_named(target, "deployments.apps"), "web", dst)
    pod = dep["spec"]["template"]["spec"]
    assert [c["image"] for c in pod["initContainers"]] == [f"{new_reg}/init:1"]
    assert [c["image"] for c in pod["containers"]] == [
        f"{new_reg}/web:1.4.2",
        "docker.io/library/busybox:1.36",
        "registry.example.com/teamwork/x:1",
    ]
    cron = target.get(resource_named(target, "cronjobs.batch"), "report", dst)
    job_pod = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    assert [c["image"] for c in job_pod["initContainers"]] == [f"{new_reg}/prep:2"]
    assert [c["image"] for c in job_pod["containers"]] == [f"{new_reg}/report:2.0"]
    assert cron["spec"]["suspend"] is True

    # --replicas 1 on a 3-replica Deployment: and the target really runs one pod
    assert dep["spec"]["replicas"] == 1
    tdep = resource_named(target, "deployments.apps")

    def one_available() -> bool:
        st = target.get(tdep, "web", dst).get("status", {})
        return bool(st.get("availableReplicas") == 1 and st.get("replicas") == 1)

    wait_for("1 available replica on the target", one_available, 90)


def test_storage_class_mapping_onto_a_class_the_target_has(
    source: Cluster, target: Cluster, source_ns: str, bucket_url: str, cleanup: Cleanup
) -> None:
    u = short_uid()
    dst = target_ns_name(cleanup, target, "scmap")
    sc_old, sc_new = f"km-gp2-{u}", f"km-std-{u}"
    sc = "storageclasses.storage.k8s.io"
    cleanup(source, sc, sc_old)
    cleanup(target, sc, sc_new)
    apply(
        source,
        [
            {"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
             "metadata": {"name": sc_old}, "provisioner": "example.com/source-disk"},
            {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
             "metadata": {"name": "data", "namespace": source_ns},
             "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": sc_old,
                      "resources": {"requests": {"storage": "1Gi"}}}},
        ],
    )  # fmt: skip
    store = backup(source, bucket_url, "scmap", source_ns)
    apply(
        target,
        [
            {"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
             "metadata": {"name": sc_new}, "provisioner": "example.com/target-disk"},
        ],
    )  # fmt: skip
    summary = restore(
        target,
        store,
        "scmap",
        mappings=Mappings(namespaces={source_ns: dst}, storage_classes={sc_old: sc_new}),
        existing_policy="update",
    )
    assert results(summary)[("PersistentVolumeClaim", dst, "data")].result == "created"
    pvc = target.get(resource_named(target, "persistentvolumeclaims"), "data", dst)
    assert pvc["spec"]["storageClassName"] == sc_new
    assert (
        target.get(resource_named(target, sc), sc_new)["provisioner"] == "example.com/target-disk"
    )
    assert summary.phase == "Completed", failures(summary)


# --------------------------------------------------------------------------- 3. modifiers


def test_resource_modifiers_velero_format(
    source: Cluster,
    target: Cluster,
    source_ns: str,
    bucket_url: str,
    cleanup: Cleanup,
) -> None:
    other_ns = make_ns(source, f"km-mod-src-{short_uid()}", cleanup)
    dst, dst_other = target_ns_name(cleanup, target, "mod"), target_ns_name(cleanup, target, "mod")
    data = {"LOG_LEVEL": "info", "MODE": "a"}
    apply(
        source,
        [
            configmap_manifest("app-config", source_ns, data),
            configmap_manifest("other-config", source_ns, data),
            configmap_manifest("app-config", other_ns, data),
        ],
    )
    store = backup(source, bucket_url, "mods", source_ns, other_ns)
    modifiers = parse_modifiers(
        f"""
version: v1
resourceModifierRules:
- conditions:
    groupResource: configmaps
    resourceNameRegex: "^app-"
    namespaces: [{source_ns}]
  patches:
  - operation: replace
    path: /data/LOG_LEVEL
    value: debug
- conditions:
    groupResource: configmaps
    resourceNameRegex: "^app-"
    namespaces: [{source_ns}]
  mergePatches:
  - patchData: |
      metadata:
        annotations:
          example.com/patched: "yes"
# conditions name the backup's namespaces, not the mapped ones: this rule never applies
- conditions:
    groupResource: configmaps
    namespaces: [{dst}, {dst_other}]
  patches:
  - operation: replace
    path: /data/MODE
    value: mapped-namespace-matched
"""
    )
    summary = restore(
        target,
        store,
        "mods",
        mappings=Mappings(namespaces={source_ns: dst, other_ns: dst_other}),
        modifiers=modifiers,
    )
    assert_completed(summary)
    res = resource_named(target, "configmaps")
    changed = target.get(res, "app-config", dst)
    assert changed["data"] == {"LOG_LEVEL": "debug", "MODE": "a"}
    assert (changed["metadata"].get("annotations") or {}).get("example.com/patched") == "yes"
    for name, ns in (("other-config", dst), ("app-config", dst_other)):
        same = target.get(res, name, ns)
        assert same["data"] == data, (name, ns)
        assert "example.com/patched" not in (same["metadata"].get("annotations") or {})


# --------------------------------------------------------------------------- 4. sanitizing


def _hold_cluster_ip(target: Cluster, ns: str, name: str, ip: str) -> None:
    """Take `ip` on the target, so a restore that reused it would be refused."""
    svc = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": ns},
        "spec": {"clusterIP": ip, "ports": [{"port": 80}]},
    }
    try:
        target.create(resource_named(target, "services"), svc, ns)
    except ClusterError as exc:  # somebody else's Service has it: taken all the same
        assert "already allocated" in exc.message, exc.message


def test_services_get_new_cluster_ips_and_node_ports(
    source: Cluster, target: Cluster, source_ns: str, bucket_url: str, cleanup: Cleanup
) -> None:
    selector = {"app": "api"}
    apply(
        source,
        [
            {"apiVersion": "v1", "kind": "Service",
             "metadata": {"name": "api", "namespace": source_ns},
             "spec": {"selector": selector, "ports": [{"port": 80, "targetPort": 8080}]}},
            {"apiVersion": "v1", "kind": "Service",
             "metadata": {"name": "edge", "namespace": source_ns},
             "spec": {"type": "NodePort", "selector": selector,
                      "ports": [{"port": 80, "targetPort": 8080}]}},
            {"apiVersion": "v1", "kind": "Service",
             "metadata": {"name": "peers", "namespace": source_ns},
             "spec": {"clusterIP": "None", "selector": selector, "ports": [{"port": 7000}]}},
            configmap_manifest("settings", source_ns, {"k": "v"}),
        ],
    )  # fmt: skip
    svc = resource_named(source, "services")
    api_ip = source.get(svc, "api", source_ns)["spec"]["clusterIP"]
    edge = source.get(svc, "edge", source_ns)["spec"]
    edge_ip, node_port = edge["clusterIP"], edge["ports"][0]["nodePort"]
    assert api_ip != "None" and edge_ip != "None" and node_port
    store = backup(source, bucket_url, "svc", source_ns)

    # the source's cluster IPs are taken on the target: a restore reusing them would fail
    hold = make_ns(target, f"km-hold-{short_uid()}", cleanup)
    _hold_cluster_ip(target, hold, "hold-api", api_ip)
    _hold_cluster_ip(target, hold, "hold-edge", edge_ip)

    tsvc = resource_named(target, "services")
    # first with --preserve-node-ports: the nodePort is kept
    dst1 = target_ns_name(cleanup, target, "svc")
    kept = restore(
        target,
        store,
        "svc",
        mappings=Mappings(namespaces={source_ns: dst1}),
        preserve_node_ports=True,
    )
    assert_completed(kept)
    api1, edge1 = (target.get(tsvc, n, dst1)["spec"] for n in ("api", "edge"))
    assert api1["clusterIP"] not in ("", "None", api_ip)
    assert edge1["clusterIP"] not in ("", "None", edge_ip)
    assert edge1["ports"][0]["nodePort"] == node_port
    assert target.get(tsvc, "peers", dst1)["spec"]["clusterIP"] == "None"  # headless stays

    # then without: the nodePort (now taken by dst1/edge) is assigned anew
    dst2 = target_ns_name(cleanup, target, "svc")
    fresh = restore(target, store, "svc", mappings=Mappings(namespaces={source_ns: dst2}))
    assert_completed(fresh)
    edge2 = target.get(tsvc, "edge", dst2)["spec"]
    assert edge2["type"] == "NodePort"
    assert edge2["ports"][0]["nodePort"] not in (None, node_port)
    assert edge2["clusterIP"] not in ("", "None", edge_ip, edge1["clusterIP"])

    # every restored object carries Velero's restore labels
    created = [x for x in fresh.results if x.result == "created"]
    kinds = {x.key[1] for x in created}
    assert {"Namespace", "Service", "ConfigMap"} <= kinds, kinds
    for x in created:
        live = target.get(resource_named(target, x.gr), x.key[3], x.key[2])
        labels = live["metadata"].get("labels") or {}
        assert labels.get(BACKUP_LABEL) == "svc", x.key
        assert labels.get(RESTORE_LABEL) == fresh.name, x.key


# --------------------------------------------------------------------------- 5. existing objects


def _collide(
    source: Cluster, target: Cluster, source_ns: str, bucket_url: str, cleanup: Cleanup
) -> tuple[Store, str]:
    """Backup: ConfigMap conf {v: from-backup} and ConfigMap fresh.  Target: the mapped
    namespace with its own ConfigMap conf (and a key the backup lacks) already in it."""
    apply(
        source,
        [
            configmap_manifest("conf", source_ns, {"v": "from-backup"}),
            configmap_manifest("fresh", source_ns, {"x": "1"}),
        ],
    )
    store = backup(source, bucket_url, "collide", source_ns)
    dst = make_ns(target, f"km-exist-{short_uid()}", cleanup)
    target.create(
        resource_named(target, "configmaps"),
        configmap_manifest(
            "conf", dst, {"v": "on-target", "extra": "only-on-target"}, labels={"owner": "t"}
        ),
        dst,
    )
    return store, dst


def test_existing_policy_none_then_update(
    source: Cluster, target: Cluster, source_ns: str, bucket_url: str, cleanup: Cleanup
) -> None:
    store, dst = _collide(source, target, source_ns, bucket_url, cleanup)
    res = resource_named(target, "configmaps")
    mappings = Mappings(namespaces={source_ns: dst})

    none = restore(target, store, "collide", mappings=mappings)  # the default policy
    assert_completed(none)
    got = results(none)
    assert got[("ConfigMap", dst, "conf")].result == "skipped"
    assert "already exists" in got[("ConfigMap", dst, "conf")].message
    assert got[("ConfigMap", dst, "fresh")].result == "created"
    live = target.get(res, "conf", dst)
    assert live["data"] == {"v": "on-target", "extra": "only-on-target"}
    assert RESTORE_LABEL not in live["metadata"]["labels"]

    update = restore(target, store, "collide", mappings=mappings, existing_policy="update")
    assert update.phase == "Completed", failures(update)
    got = results(update)
    assert got[("ConfigMap", dst, "conf")].result == "updated"
    assert got[("ConfigMap", dst, "conf")].uid == live["metadata"]["uid"]
    live = target.get(res, "conf", dst)
    assert live["data"]["v"] == "from-backup"
    assert live["metadata"]["labels"][RESTORE_LABEL] == update.name
    # fresh was created by the first restore: the second one updates it
    assert got[("ConfigMap", dst, "fresh")].result == "updated"


def test_update_leaves_nothing_of_the_target_version(
    source: Cluster, target: Cluster, source_ns: str, bucket_url: str, cleanup: Cleanup
) -> None:
    store, dst = _collide(source, target, source_ns, bucket_url, cleanup)
    update = restore(
        target,
        store,
        "collide",
        mappings=Mappings(namespaces={source_ns: dst}),
        existing_policy="update",
    )
    assert results(update)[("ConfigMap", dst, "conf")].result == "updated"
    assert target.get(resource_named(target, "configmaps"), "conf", dst)["data"] == {
        "v": "from-backup"
    }


def test_fail_policy_into_an_existing_namespace(
    source: Cluster, target: Cluster, source_ns: str, bucket_url: str, cleanup: Cleanup
) -> None:
    """`fail` refuses the whole restore before its first write (issue #9: bad input
    fails safe), naming the collision; the existing namespace is not a collision."""
    store, dst = _collide(source, target, source_ns, bucket_url, cleanup)
    with pytest.raises(PreflightFailed, match=rf"policy is fail: ConfigMap {dst}/conf;"):
        restore(
            target,
            store,
            "collide",
            mappings=Mappings(namespaces={source_ns: dst}),
            existing_policy="fail",
        )
    assert target.get(resource_named(target, "configmaps"), "conf", dst)["data"]["v"] == "on-target"
    with pytest.raises(NotFound):
        target.get(resource_named(target, "configmaps"), "fresh", dst)  # nothing was created


def test_existing_policy_fail_writes_nothing(
    source: Cluster, target: Cluster, source_ns: str, bucket_url: str, cleanup: Cleanup
) -> None:
    """A collision under --existing-resource-policy fail stops the restore before it
    writes anything: a cluster-scoped ClusterRole already on the target, while the
    namespace is new (it is not created either)."""
    crole = f"km-fail-{short_uid()}"
    for c in (source, target):
        cleanup(c, "clusterroles.rbac.authorization.k8s.io", crole)
    rules = [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get"]}]
    apply(
        source,
        [
            configmap_manifest("conf", source_ns, {"v": "from-backup"}),
            {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
             "metadata": {"name": crole}, "rules": rules},
            {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
             "metadata": {"name": "read", "namespace": source_ns},
             "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                         "name": crole},
             "subjects": [{"kind": "ServiceAccount", "name": "default",
                           "namespace": source_ns}]},
        ],
    )  # fmt: skip
    store = backup(source, bucket_url, "fail", source_ns)
    on_target = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": {"name": crole},
        "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["list"]}],
    }
    target.create(resource_named(target, "clusterroles.rbac.authorization.k8s.io"), on_target)
    dst = target_ns_name(cleanup, target, "fail")

    with pytest.raises(PreflightFailed, match=rf"1 object already on the target.*{crole}"):
        restore(
            target,
            store,
            "fail",
            mappings=Mappings(namespaces={source_ns: dst}),
            existing_policy="fail",
            scope=Scope(exclude_resources=("serviceaccounts",)),
        )
    live = target.get(resource_named(target, "clusterroles.rbac.authorization.k8s.io"), crole)
    assert live["rules"][0]["resources"] == ["pods"]  # untouched
    with pytest.raises(NotFound):
        target.get(resource_named(target, "namespaces"), dst)  # nothing was created


def test_update_refused_by_immutable_fields_is_reported(
    source: Cluster, target: Cluster, source_ns: str, bucket_url: str, cleanup: Cleanup
) -> None:
    def job(ns: str, image: str) -> dict[str, Any]:
        return {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {"name": "migrate-db", "namespace": ns},
            "spec": {
                "suspend": True,  # never runs, so never completes (completed Jobs are skipped)
                "template": {
                    "spec": {
                        "restartPolicy": "Never",
                        "containers": [{"name": "m", "image": image}],
                    }
                },
            },
        }

    def headless(ns: str, headless: bool) -> dict[str, Any]:
        spec: dict[str, Any] = {"selector": {"app": "db"}, "ports": [{"port": 5432}]}
        if headless:
            spec["clusterIP"] = "None"
        return {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "db", "namespace": ns},
            "spec": spec,
        }

    apply(
        source,
        [
            job(source_ns, "example.com/migrate:2"),
            headless(source_ns, True),
            configmap_manifest("conf", source_ns, {"v": "from-backup"}),
        ],
    )
    store = backup(source, bucket_url, "immutable", source_ns)
    dst = make_ns(target, f"km-immut-{short_uid()}", cleanup)
    apply(
        target,
        [
            job(dst, "example.com/migrate:1"),
            headless(dst, False),
            configmap_manifest("conf", dst, {"v": "on-target"}),
        ],
    )
    summary = restore(
        target,
        store,
        "immutable",
        mappings=Mappings(namespaces={source_ns: dst}),
        existing_policy="update",
    )
    assert summary.phase == "PartiallyFailed", failures(summary)
    got = results(summary)
    job_result = got[("Job", dst, "migrate-db")]
    assert job_result.result == "failed"
    assert "immutable" in job_result.message and "spec.template" in job_result.message
    svc_result = got[("Service", dst, "db")]
    assert svc_result.result == "failed"
    assert "immutable" in svc_result.message and "clusterIP" in svc_result.message
    assert summary.counts["failed"] == 2, failures(summary)
    # the rest of the restore went on
    assert got[("ConfigMap", dst, "conf")].result == "updated"
    assert target.get(resource_named(target, "configmaps"), "conf", dst)["data"] == {
        "v": "from-backup"
    }
    live_job = target.get(resource_named(target, "jobs.batch"), "migrate-db", dst)
    assert live_job["spec"]["template"]["spec"]["containers"][0]["image"] == (
        "example.com/migrate:1"
    )
    assert target.get(resource_named(target, "services"), "db", dst)["spec"]["clusterIP"] != "None"


# --------------------------------------------------------------------------- 6. owners


def test_owner_references_point_at_the_new_owner(
    source: Cluster, target: Cluster, source_ns: str, bucket_url: str, cleanup: Cleanup
) -> None:
    dep = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "owner", "namespace": source_ns},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": "owner"}},
            "template": {
                "metadata": {"labels": {"app": "owner"}},
                "spec": {"containers": [{"name": "c", "image": "example.com/owner:1"}]},
            },
        },
    }
    (src_owner,) = apply(source, [dep])
    src_uid = src_owner["metadata"]["uid"]
    owner_ref = {"apiVersion": "apps/v1", "kind": "Deployment", "name": "owner", "uid": src_uid}
    apply(source, [configmap_manifest("owned", source_ns, {"k": "v"}, ownerReferences=[owner_ref])])
    store = backup(source, bucket_url, "owners", source_ns)
    dst = target_ns_name(cleanup, target, "own")

    summary = restore(target, store, "owners", mappings=Mappings(namespaces={source_ns: dst}))
    assert_completed(summary)
    assert not [w for w in summary.warnings if "owned" in w], summary.warnings
    owner = target.get(resource_named(target, "deployments.apps"), "owner", dst)
    new_uid = owner["metadata"]["uid"]
    assert new_uid != src_uid
    cm_res = resource_named(target, "configmaps")
    owned = target.get(cm_res, "owned", dst)
    refs = owned["metadata"].get("ownerReferences") or []
    assert [(x["kind"], x["name"], x["uid"]) for x in refs] == [("Deployment", "owner", new_uid)]

    # the target's garbage collector takes the dependent away with its owner
    target.delete(resource_named(target, "deployments.apps"), "owner", dst)

    def gone() -> bool:
        try:
            target.get(cm_res, "owned", dst)
        except NotFound:
            return True
        return False

    wait_for("the garbage collector to delete the dependent ConfigMap", gone, 60)


# --------------------------------------------------------------------------- 7. dry run


def test_cli_dry_run_writes_nothing(
    source: Cluster,
    target: Cluster,
    dev_env: Any,
    source_ns: str,
    bucket_url: str,
    cleanup: Cleanup,
) -> None:
    apply(
        source,
        [
            configmap_manifest("settings", source_ns, {"k": "v"}),
            {"apiVersion": "v1", "kind": "ServiceAccount",
             "metadata": {"name": "app", "namespace": source_ns}},
            {"apiVersion": "apps/v1", "kind": "Deployment",
             "metadata": {"name": "web", "namespace": source_ns},
             "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}},
                      "template": {"metadata": {"labels": {"app": "web"}},
                                   "spec": {"serviceAccountName": "app", "containers": [
                                       {"name": "web", "image": "example.com/web:1",
                                        "envFrom": [{"configMapRef": {"name": "settings"}}]}
                                   ]}}}},
        ],
    )  # fmt: skip
    store = backup(source, bucket_url, "dry", source_ns)
    before = sorted((o.key, o.etag) for o in store.list())
    dst = target_ns_name(cleanup, target, "dry")
    name = f"dry-{short_uid()}"

    def cli(*extra: str) -> subprocess.CompletedProcess[str]:
        cmd = [str(BIN / "kube-migrate"), "restore", "create", name, "--from-backup", "dry",
               "--kubeconfig", dev_env.target_kubeconfig, "--bucket", bucket_url,
               "--namespace-mappings", f"{source_ns}:{dst}", "--dry-run", *extra]  # fmt: skip
        return subprocess.run(cmd, capture_output=True, text=True, check=False)

    out = cli("-o", "json")
    assert out.returncode == 0, out.stderr
    rows = json.loads(out.stdout)
    plan = {(x["kind"], x["namespace"], x["name"]): x for x in rows}
    for key in (
        ("Namespace", "", dst),
        ("ConfigMap", dst, "settings"),
        ("ServiceAccount", dst, "app"),
        ("Deployment", dst, "web"),
    ):
        assert plan[key]["action"] == "create", key
    # ordered: the namespace first, then the ConfigMap and ServiceAccount, then the Deployment
    level = {key: plan[key]["level"] for key in plan if plan[key]["action"] == "create"}
    assert level[("Namespace", "", dst)] < level[("ConfigMap", dst, "settings")]
    assert level[("ServiceAccount", dst, "app")] < level[("Deployment", dst, "web")]
    assert level[("ConfigMap", dst, "settings")] < level[("Deployment", dst, "web")]
    assert any(x["action"].startswith("skip:") for x in rows)  # kube-root-ca.crt at least

    dot = cli("-o", "dot")
    assert dot.returncode == 0, dot.stderr
    assert dot.stdout.startswith("digraph restore {") and dot.stdout.rstrip().endswith("}")
    assert " -> " in dot.stdout and f"{dst}/web" in dot.stdout

    # nothing on the target, nothing in the bucket, no journal
    with pytest.raises(NotFound):
        target.get(resource_named(target, "namespaces"), dst)
    assert list(store.list("restores/")) == []
    assert sorted((o.key, o.etag) for o in store.list()) == before
    assert not (state_dir() / "restores" / f"{name}.journal.jsonl").exists()
