"""restore create on the real planes: the example apps end to end, CRDs before their
custom resources, webhooks last, resume after SIGKILL, a Velero-written backup, and
parallel restores equal serial ones."""

from __future__ import annotations

import gzip
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from migrate.backup.create import BackupOptions, create_backup
from migrate.cluster import Cluster
from migrate.errors import NotFound
from migrate.restore.plan import RestoreOptions
from migrate.restore.run import run_restore
from migrate.store import Store, layout, open_store
from migrate.store.archive import TarballWriter
from migrate.transform.mappings import Mappings
from migrate.transform.scope import Scope

from .builders import crd_manifest
from .helpers import apply, apply_example, load_docs, wait_for

BIN = Path(sys.executable).parent
EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def uniq(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


def restore(target: Cluster, store: Store, backup: str, **kw: Any) -> Any:
    return run_restore(target, store, RestoreOptions(name=uniq("r"), backup=backup, **kw))


def live(c: Cluster, kind: str, name: str, ns: str | None = None) -> dict[str, Any] | None:
    try:
        return c.get(c.discovery().resolve(kind), name, ns)
    except NotFound:
        return None


def test_nginx_example_end_to_end(source: Cluster, target: Cluster, bucket_url: str) -> None:
    apply_example(source, "nginx")
    store = open_store(bucket_url)
    create_backup(source, store, BackupOptions("nginx", Scope(include_namespaces=("nginx",))))
    dst = uniq("nginx")
    summary = restore(target, store, "nginx", mappings=Mappings(namespaces={"nginx": dst}),
                      wait_ready=True, ready_timeout=120)  # fmt: skip
    assert summary.phase == "Completed", summary.as_dict(details=True)
    deploy = live(target, "deployments.apps", "nginx", dst)
    assert deploy is not None and deploy["status"]["availableReplicas"] == 2
    svc = live(target, "services", "nginx", dst)
    src_svc = live(source, "services", "nginx", "nginx")
    assert svc and src_svc and svc["spec"]["ports"] == src_svc["spec"]["ports"]
    assert svc["metadata"]["labels"]["velero.io/backup-name"] == "nginx"
    target.delete(target.discovery().resolve("namespaces"), dst)


def test_shop_with_crd_and_custom_resources(
    source: Cluster, target: Cluster, bucket_url: str
) -> None:
    """A CRD and its custom resources in one restore: the CRD is created, Established,
    discovery refreshed, then the Widget — in one run, with every object accounted for."""
    apply_example(source, "shop")
    store = open_store(bucket_url)
    backup = create_backup(
        source, store, BackupOptions("shop", Scope(include_namespaces=("shop", "shop-data")))
    )
    shop, data = uniq("shop"), uniq("shop-data")
    summary = restore(target, store, "shop",
                      mappings=Mappings(namespaces={"shop": shop, "shop-data": data}))  # fmt: skip
    by = summary.as_dict(details=True)
    assert summary.phase == "Completed", by
    assert summary.counts["failed"] == 0
    # every backed-up object has a result, and the clone's copy of its ClusterRoleBinding
    assert len(summary.results) == backup.items + 1
    widget = live(target, "widgets.shop.example.com", "blue", shop)
    assert widget is not None and widget["spec"] == {"color": "blue", "size": 3}
    assert live(target, "deployments.apps", "web", shop) is not None
    rb = live(target, "rolebindings.rbac.authorization.k8s.io", "web-config-reader", shop)
    assert rb and rb["subjects"][0]["namespace"] == shop
    skipped = {(r.key[1], r.message) for r in summary.results if r.result == "skipped"}
    assert ("Pod", "created by its ReplicaSet/Job/DaemonSet/StatefulSet controller") in skipped
    assert ("ReplicaSet", "created by its Deployment controller") in skipped
    crbs = "clusterrolebindings.rbac.authorization.k8s.io"
    copy = live(target, crbs, f"shop-web-node-reader-{shop}")  # the clone's own binding
    assert copy and copy["subjects"] == [
        {"kind": "ServiceAccount", "name": "web", "namespace": shop}
    ]
    target.delete(target.discovery().resolve(crbs), f"shop-web-node-reader-{shop}")
    for ns in (shop, data):
        target.delete(target.discovery().resolve("namespaces"), ns)


def _webhook_docs(ns: str) -> list[dict[str, Any]]:
    docs = load_docs([EXAMPLES / "webhook" / "app.yaml"])
    for d in docs:
        text = json.dumps(d).replace("WEBHOOK_NS", ns)
        d.clear()
        d.update(json.loads(text))
    return docs


def test_webhook_restored_last(source: Cluster, target: Cluster, bucket_url: str) -> None:
    """A ValidatingWebhookConfiguration (failurePolicy Fail) whose backend cannot answer
    rejects ConfigMap creates in its namespace.  Restored in our order everything lands,
    the webhook last; once the webhook is in place (as if restored first), the same
    ConfigMap restore is rejected."""
    ns = uniq("hooked")
    docs = _webhook_docs(ns)
    apply(source, docs)
    store = open_store(bucket_url)
    vwc = target.discovery().resolve("validatingwebhookconfigurations")
    mwc = target.discovery().resolve("mutatingwebhookconfigurations")
    ns_res = target.discovery().resolve("namespaces")
    try:
        create_backup(source, store, BackupOptions("hooked", Scope(include_namespaces=(ns,))))
        summary = restore(target, store, "hooked", ready_timeout=120)
        assert summary.phase == "Completed", summary.as_dict(details=True)
        assert live(target, "configmaps", "settings", ns) is not None
        assert live(target, "validatingwebhookconfigurations", f"{ns}-deny") is not None
        assert live(target, "mutatingwebhookconfigurations", f"{ns}-defaults") is not None
        created = [r.key[1] for r in summary.results if r.result == "created"]
        assert created.index("MutatingWebhookConfiguration") > created.index("Deployment")
        # the naive order: with the webhook present first, the ConfigMap is refused
        target.delete(target.discovery().resolve("configmaps"), "settings", ns)
        naive = restore(target, store, "hooked", scope=Scope(include_resources=("configmaps",)))
        assert naive.phase != "Completed"
        failed = [r for r in naive.results if r.result == "failed"]
        assert [r.key[3] for r in failed] == ["settings"]
        assert "webhook" in failed[0].message
    finally:
        for c in (source, target):
            c.delete(vwc, f"{ns}-deny")
            c.delete(mwc, f"{ns}-defaults")
            c.delete(ns_res, ns)


def unthrottled(c: Cluster) -> Cluster:
    return Cluster(c.ref, name=c.name, qps=0, pool_size=20)


def _bulk(source: Cluster, ns: str, n: int) -> None:
    source = unthrottled(source)
    cm = source.discovery().resolve("configmaps")

    def make(i: int) -> None:
        source.create(cm, {"metadata": {"name": f"cm-{i:05d}", "labels": {"i": str(i % 7)}},
                           "data": {"v": str(i) * 10}}, ns)  # fmt: skip

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(make, range(n)))


def _configmaps(c: Cluster, ns: str) -> dict[str, Any]:
    cm = c.discovery().resolve("configmaps")
    return {o["metadata"]["name"]: (o.get("data"), o["metadata"].get("labels", {}).get("i"))
            for o in c.list(cm, ns) if o["metadata"]["name"].startswith("cm-")}  # fmt: skip


def test_parallel_equals_serial(source: Cluster, target: Cluster, bucket_url: str,
                                source_ns: str) -> None:  # fmt: skip
    _bulk(source, source_ns, 2000)
    store = open_store(bucket_url)
    create_backup(source, store, BackupOptions("bulk", Scope(include_namespaces=(source_ns,))))
    fast, slow = uniq("par"), uniq("ser")
    target = unthrottled(target)
    t0 = time.monotonic()
    a = restore(
        target, store, "bulk", parallelism=16, mappings=Mappings(namespaces={source_ns: fast})
    )
    t1 = time.monotonic()
    b = restore(
        target, store, "bulk", parallelism=1, mappings=Mappings(namespaces={source_ns: slow})
    )
    t2 = time.monotonic()
    assert a.phase == b.phase == "Completed"
    assert a.counts == b.counts and a.counts["created"] >= 2001
    assert _configmaps(target, fast) == _configmaps(target, slow) == _configmaps(source, source_ns)
    print(f"2000 ConfigMaps: parallel 16 {t1 - t0:.1f}s, serial {t2 - t1:.1f}s")
    for ns in (fast, slow):
        target.delete(target.discovery().resolve("namespaces"), ns)


def test_resume_after_sigkill(dev_env: Any, source: Cluster, target: Cluster, bucket_url: str,
                              source_ns: str) -> None:  # fmt: skip
    _bulk(source, source_ns, 300)
    store = open_store(bucket_url)
    create_backup(source, store, BackupOptions("killme", Scope(include_namespaces=(source_ns,))))
    dst = uniq("resumed")
    base = [str(BIN / "kube-migrate"), "restore", "create", "rk", "--from-backup", "killme",
            "--kubeconfig", dev_env.target_kubeconfig, "--bucket", bucket_url,
            "--namespace-mappings", f"{source_ns}:{dst}", "-o", "json"]  # fmt: skip
    proc = subprocess.Popen([*base, "--qps", "40", "--burst", "1", "--parallelism", "2"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    time.sleep(3)
    assert proc.poll() is None, "restore finished before the kill"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    partial = len(_configmaps(target, dst))
    assert 0 < partial < 300
    again = subprocess.run(base, capture_output=True, text=True, check=False)  # no --resume
    assert again.returncode == 2 and "add --resume" in again.stderr
    out = subprocess.run([*base, "--resume"], capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert doc["failed"] == 0 and doc["phase"] == "Completed"
    assert _configmaps(target, dst) == _configmaps(source, source_ns)
    restored = [o for o in doc["objects"] if o["name"].startswith("cm-")]
    assert len(restored) == 300 and {o["result"] for o in restored} == {"created"}
    target.delete(target.discovery().resolve("namespaces"), dst)


def test_restores_a_velero_written_backup(target: Cluster, bucket_url: str) -> None:
    """A backup laid out by Velero (no manifest of ours; objects raw with uid, status,
    managedFields): restored like our own."""
    ns = uniq("velero-app")
    store = open_store(bucket_url)
    raw = {
        "namespaces": {"apiVersion": "v1", "kind": "Namespace",
                       "metadata": {"name": ns, "uid": "u1", "resourceVersion": "9"},
                       "status": {"phase": "Active"}},
        "configmaps": {"apiVersion": "v1", "kind": "ConfigMap",
                       "metadata": {"name": "cfg", "namespace": ns, "uid": "u2",
                                    "resourceVersion": "10", "managedFields": [{"manager": "x"}]},
                       "data": {"k": "v"}},
        "deployments.apps": {"apiVersion": "apps/v1", "kind": "Deployment",
                             "metadata": {"name": "web", "namespace": ns, "uid": "u3",
                                          "generation": 4},
                             "spec": {"replicas": 1, "selector": {"matchLabels": {"a": "b"}},
                                      "template": {"metadata": {"labels": {"a": "b"}},
                                                   "spec": {"containers": [
                                                       {"name": "c", "image": "nginx"}]}}},
                             "status": {"replicas": 1}},
    }  # fmt: skip
    keys = layout.BackupKeys("from-velero")
    with TarballWriter(store, keys.tarball) as tw:
        tw.add("metadata/version", b"1.1.0\n")
        for gr, obj in raw.items():
            ons = obj["metadata"].get("namespace")
            for path in layout.item_paths(gr, obj["apiVersion"].split("/")[-1], ons,
                                          obj["metadata"]["name"]):  # fmt: skip
                tw.add(path, json.dumps(obj).encode())
    now = datetime.now(UTC)
    meta = layout.backup_object("from-velero", spec={"includedNamespaces": [ns]},
                                phase="Completed", started=now, completed=now, expiration=None,
                                total=3, backed_up=3, errors=0, warnings=0,
                                git_version="v1.30.14", major=1, minor=30)  # fmt: skip
    meta["metadata"]["annotations"].pop("kube-migrate.io/created-by")
    store.put(keys.metadata, json.dumps(meta).encode())
    summary = restore(target, store, "from-velero")
    assert summary.phase == "Completed", summary.as_dict(details=True)
    assert summary.counts["created"] == 3
    cfg = live(target, "configmaps", "cfg", ns)
    assert cfg and cfg["data"] == {"k": "v"} and cfg["metadata"]["uid"] != "u2"
    target.delete(target.discovery().resolve("namespaces"), ns)


def test_bad_backups_write_nothing(target: Cluster, bucket_url: str) -> None:
    store = open_store(bucket_url)
    with pytest.raises(Exception, match="not found"):
        restore(target, store, "missing")
    keys = layout.BackupKeys("torn")
    store.put(keys.tarball, b"\x1f\x8b\x08\x00garbage")
    now = datetime.now(UTC)
    meta = layout.backup_object("torn", spec={}, phase="Completed", started=now, completed=now,
                                expiration=None, total=1, backed_up=1, errors=0, warnings=0,
                                git_version="v1.30.14", major=1, minor=30)  # fmt: skip
    store.put(keys.metadata, json.dumps(meta).encode())
    with pytest.raises(Exception, match="corrupted or truncated"):
        restore(target, store, "torn")
    assert not [o.key for o in store.list("restores/")]


def test_restore_get_describe_logs_and_read_only_results(
    dev_env: Any, source: Cluster, target: Cluster, bucket_url: str
) -> None:
    apply_example(source, "nginx")
    store = open_store(bucket_url)
    create_backup(source, store, BackupOptions("ng", Scope(include_namespaces=("nginx",))))
    dst, name = uniq("ng"), uniq("rs")
    base = [str(BIN / "kube-migrate"), "restore"]
    common = ["--bucket", bucket_url]

    def describe(*args: str) -> Any:
        argv = [*base, "describe", *args, *common, "-o", "json"]
        return json.loads(subprocess.run(argv, capture_output=True, text=True, check=True).stdout)

    out = subprocess.run(
        [
            *base,
            "create",
            name,
            "--from-backup",
            "ng",
            "--kubeconfig",
            dev_env.target_kubeconfig,
            *common,
            "--namespace-mappings",
            f"nginx:{dst}",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    got = json.loads(
        subprocess.run(
            [*base, "get", *common, "-o", "json"], capture_output=True, text=True, check=True
        ).stdout
    )
    assert [r["phase"] for r in got if r["name"] == name] == ["Completed"]
    desc = describe(name, "--details")
    created = {
        (o["kind"], o["namespace"], o["name"]) for o in desc["objects"] if o["result"] == "created"
    }
    assert ("Deployment", dst, "nginx") in created and ("Service", dst, "nginx") in created
    logs = subprocess.run(
        [*base, "logs", name, *common], capture_output=True, text=True, check=True
    ).stdout
    assert f"restore {name} Completed" in logs
    assert {
        f"restores/{name}/restore-{name}-{s}"
        for s in ("results.gz", "resource-list.json.gz", "logs.gz", "kube-migrate.json.gz")
    } <= {o.key for o in store.list("restores/")}
    # a restore written before its details were gzipped (plain JSON) is still described
    details = f"restores/{name}/restore-{name}-kube-migrate.json"
    store.put(details, gzip.decompress(store.get(details + ".gz")))
    store.delete(details + ".gz")
    assert describe(name, "--details") == desc
    # with a read-only bucket the results stay local and nothing reaches the bucket
    ro, dst2 = uniq("ro"), uniq("ng")
    out = subprocess.run(
        [
            *base,
            "create",
            ro,
            "--from-backup",
            "ng",
            "--kubeconfig",
            dev_env.target_kubeconfig,
            *common,
            "--read-only-bucket",
            "--namespace-mappings",
            f"nginx:{dst2}",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    assert not [o.key for o in store.list(f"restores/{ro}/")]
    desc = describe(ro)
    assert desc["phase"] == "Completed" and desc["created"] >= 3
    for ns in (dst, dst2):
        target.delete(target.discovery().resolve("namespaces"), ns)


def test_restore_status(source: Cluster, target: Cluster, bucket_url: str, source_ns: str) -> None:
    group = f"{uuid.uuid4().hex[:6]}.status.example.com"
    crd = crd_manifest(group, "gauges", "Gauge", status_subresource=True)
    apply(source, [crd])
    gauges = source.discovery(refresh=True).for_kind(f"{group}/v1", "Gauge")
    assert gauges is not None
    source.create(
        gauges,
        {
            "apiVersion": f"{group}/v1",
            "kind": "Gauge",
            "metadata": {"name": "g"},
            "spec": {"max": 9},
        },
        source_ns,
    )
    source.patch(gauges, "g", {"status": {"level": 3}}, source_ns, sub="status")
    store = open_store(bucket_url)
    create_backup(source, store, BackupOptions("st", Scope(include_namespaces=(source_ns,))))
    with_status, without = uniq("st"), uniq("nost")
    crd_res = target.discovery().resolve("customresourcedefinitions")
    try:
        for ns, keep in ((with_status, True), (without, False)):
            s = restore(
                target,
                store,
                "st",
                restore_status=keep,
                mappings=Mappings(namespaces={source_ns: ns}),
            )
            assert s.phase == "Completed", s.as_dict(details=True)
        res = target.discovery(refresh=True).for_kind(f"{group}/v1", "Gauge")
        assert res is not None
        assert target.get(res, "g", with_status)["status"] == {"level": 3}
        assert "status" not in target.get(res, "g", without)
    finally:
        for ns in (with_status, without):
            target.delete(target.discovery().resolve("namespaces"), ns)
        target.delete(crd_res, f"gauges.{group}")
        source.delete(crd_res, f"gauges.{group}")


def test_nginx_with_a_pvc_end_to_end(source: Cluster, target: Cluster, bucket_url: str) -> None:
    """The seed's second scenario: the PV, then the claim bound to it, then the workload."""
    apply_example(source, "nginx-pvc")
    store = open_store(bucket_url)
    create_backup(source, store, BackupOptions("ngpvc", Scope(include_namespaces=("nginx-pvc",))))
    ns_res = target.discovery().resolve("namespaces")
    pv_res = target.discovery().resolve("persistentvolumes")
    try:
        summary = restore(
            target, store, "ngpvc", wait_ready=True, ready_timeout=120, pv_policy="retain-as-is"
        )
        assert summary.phase == "Completed", summary.as_dict(details=True)
        order = [r.key[1] for r in summary.results if r.result == "created"]
        assert order.index("PersistentVolume") < order.index("PersistentVolumeClaim")
        assert order.index("PersistentVolumeClaim") < order.index("Deployment")
        pvc = wait_for(
            "the claim to bind",
            lambda: (
                (live(target, "persistentvolumeclaims", "content", "nginx-pvc") or {})
                .get("status", {})
                .get("phase")
                == "Bound"
                and True
            ),
            60,
        )
        assert pvc
        deploy = live(target, "deployments.apps", "nginx", "nginx-pvc")
        assert deploy and deploy["status"].get("availableReplicas") == 1
    finally:
        target.delete(ns_res, "nginx-pvc")
        target.delete(pv_res, "nginx-pvc-content")
