"""backup create against the real source plane and MinIO: Velero's layout to the letter,
filters, cluster-scoped dependencies, atomic completion, and refusals that write nothing."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import signal
import subprocess
import sys
import tarfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from migrate.backup.create import BackupOptions, create_backup
from migrate.cluster import Cluster
from migrate.cluster.selectors import Selector
from migrate.errors import StoreReadOnly, UsageError
from migrate.store import Store, open_store
from migrate.transform.scope import Scope

from .helpers import apply_example

BIN = Path(sys.executable).parent
SHOP = ("shop", "shop-data")


@pytest.fixture(scope="session")
def shop(source: Cluster) -> list[dict[str, Any]]:
    """The example shop app on the source plane (once per session)."""
    return apply_example(source, "shop")


def tar_entries(store: Store, name: str) -> dict[str, bytes]:
    data = store.get(f"backups/{name}/{name}.tar.gz")
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        return {m.name: tar.extractfile(m).read() for m in tar if m.isfile()}  # type: ignore[union-attr]


def backup(source: Cluster, store: Store, name: str, **scope: Any) -> Any:
    return create_backup(source, store, BackupOptions(name, Scope(**scope), ttl=timedelta(hours=2)))


def test_layout_is_velero(shop: Any, source: Cluster, bucket_url: str) -> None:
    store = open_store(bucket_url)
    summary = backup(source, store, "shop-1", include_namespaces=SHOP)
    assert summary.phase == "Completed"
    keys = sorted(o.key for o in store.list())
    assert keys == sorted(
        f"backups/shop-1/{f}"
        for f in (
            "velero-backup.json",
            "shop-1.tar.gz",
            "shop-1-resource-list.json.gz",
            "shop-1-logs.gz",
            "shop-1-results.gz",
            "shop-1-kube-migrate.json",
            "shop-1-kube-migrate-positions.json.gz",  # ours: where a later increment starts
        )
    )
    meta = json.loads(store.get("backups/shop-1/velero-backup.json"))
    assert (meta["apiVersion"], meta["kind"]) == ("velero.io/v1", "Backup")
    status = meta["status"]
    assert status["phase"] == "Completed" and status["formatVersion"] == "1.1.0"
    assert status["progress"] == {"totalItems": summary.items, "itemsBackedUp": summary.items}
    annotations = meta["metadata"]["annotations"]
    assert annotations["velero.io/source-cluster-k8s-gitversion"] == str(source.version())
    assert annotations["velero.io/source-cluster-k8s-minor-version"] == str(source.version().minor)
    assert meta["spec"]["includedNamespaces"] == list(SHOP) and meta["spec"]["ttl"] == "2h0m0s"
    assert "includeClusterResources" not in meta["spec"]  # auto = nil, as Velero

    entries = tar_entries(store, "shop-1")
    assert entries["metadata/version"] == b"1.1.0\n"
    for path in (
        "deployments.apps/namespaces/shop/web",
        "configmaps/namespaces/shop/web-config",
        "secrets/namespaces/shop-data/db-credentials",
        "statefulsets.apps/namespaces/shop-data/db",
        "widgets.shop.example.com/namespaces/shop/blue",
        "namespaces/cluster/shop",
        "persistentvolumes/cluster/shop-pv-1",
    ):
        gr, rest = path.split("/", 1)
        ver = "v1"
        assert f"resources/{gr}/{rest}.json" in entries, path
        assert f"resources/{gr}/{ver}-preferredversion/{rest}.json" in entries, path
        assert (
            entries[f"resources/{gr}/{rest}.json"]
            == entries[f"resources/{gr}/{ver}-preferredversion/{rest}.json"]
        )
    assert not [p for p in entries if "/other" in p], "namespace 'other' leaked into the backup"

    # objects are stored as the API returned them, secrets included
    cm_res = source.discovery().resolve("configmaps")
    stored = json.loads(entries["resources/configmaps/namespaces/shop/web-config.json"])
    assert stored == source.get(cm_res, "web-config", "shop")
    secret = json.loads(entries["resources/secrets/namespaces/shop/web-secret.json"])
    assert secret["data"]["api-key"]  # faithful: restore decides what to strip

    rl = json.loads(gzip.decompress(store.get("backups/shop-1/shop-1-resource-list.json.gz")))
    assert rl["apps/v1/Deployment"] == ["shop/web"]
    assert "shop/web-config" in rl["v1/ConfigMap"]
    assert rl["shop.example.com/v1/Widget"] == ["shop/blue"]
    assert sum(map(len, rl.values())) == summary.items

    manifest = json.loads(store.get("backups/shop-1/shop-1-kube-migrate.json"))
    assert set(manifest["files"]) == {
        "shop-1-kube-migrate-positions.json.gz",
        "velero-backup.json",
        "shop-1.tar.gz",
        "shop-1-resource-list.json.gz",
        "shop-1-logs.gz",
        "shop-1-results.gz",
    }
    for fname, fact in manifest["files"].items():
        blob = store.get(f"backups/shop-1/{fname}")
        assert (len(blob), hashlib.sha256(blob).hexdigest()) == (fact["size"], fact["sha256"])
    assert manifest["source"]["gitVersion"] == str(source.version())


def test_auto_brings_exactly_the_cluster_dependencies(
    shop: Any, source: Cluster, bucket_url: str
) -> None:
    summary = backup(source, open_store(bucket_url), "deps", include_namespaces=SHOP)
    got = {gr: set(names) for gr, names in summary.cluster_included.items()}
    assert got == {
        "namespaces": {"shop", "shop-data"},
        "persistentvolumes": {"shop-pv-1"},
        "storageclasses.storage.k8s.io": {"shop-fast"},
        "priorityclasses.scheduling.k8s.io": {"shop-high"},
        "ingressclasses.networking.k8s.io": {"shop-nginx"},
        "clusterroles.rbac.authorization.k8s.io": {"shop-config-reader", "shop-node-reader"},
        "clusterrolebindings.rbac.authorization.k8s.io": {"shop-web-node-reader"},
        "customresourcedefinitions.apiextensions.k8s.io": {"widgets.shop.example.com"},
    }
    reasons = summary.cluster_included
    assert "web-cache" in reasons["persistentvolumes"]["shop-pv-1"]
    assert (
        "RoleBinding shop/web-config-reader"
        in reasons["clusterroles.rbac.authorization.k8s.io"]["shop-config-reader"]
    )
    assert (
        "Widget shop/blue"
        in reasons["customresourcedefinitions.apiextensions.k8s.io"]["widgets.shop.example.com"]
    )


def test_filters_selector_and_cluster_switch(shop: Any, source: Cluster, bucket_url: str) -> None:
    store = open_store(bucket_url)
    s = backup(
        source,
        store,
        "sel",
        include_namespaces=("shop",),
        include_resources=("configmaps", "secrets"),
        selector=Selector.parse("app=web"),
    )
    assert dict(s.by_resource) == {"configmaps": 1, "secrets": 1, "namespaces": 1}
    s = backup(
        source,
        store,
        "nosecrets",
        include_namespaces=SHOP,
        exclude_resources=("secrets",),
        include_cluster_resources="false",
    )
    assert "secrets" not in s.by_resource and s.by_resource["configmaps"] >= 3
    assert set(s.cluster_included) == {"namespaces"}
    everything = backup(source, store, "all", exclude_namespaces=("kube-*",))
    assert everything.by_resource["storageclasses.storage.k8s.io"] >= 1
    assert "kube-system" not in everything.by_namespace
    assert {"shop", "shop-data", "other"} <= set(everything.by_namespace)
    assert "events" not in everything.by_resource and "nodes" not in everything.by_resource


def test_pagination_beyond_one_page(source: Cluster, source_ns: str, bucket_url: str) -> None:
    cm = source.discovery().resolve("configmaps")
    for i in range(130):
        source.create(cm, {"metadata": {"name": f"p-{i:03d}"}}, source_ns)
    store = open_store(bucket_url)
    opts = BackupOptions("paged", Scope(include_namespaces=(source_ns,)), page_size=50)
    summary = create_backup(source, store, opts)
    names = [
        p for p in tar_entries(store, "paged") if p.startswith("resources/configmaps/namespaces/")
    ]
    assert len([n for n in names if "/p-" in n]) == 130
    assert summary.by_resource["configmaps"] == 131  # + kube-root-ca.crt


def test_bad_input_writes_nothing(shop: Any, source: Cluster, bucket_url: str) -> None:
    store = open_store(bucket_url)
    with pytest.raises(UsageError, match="unknown resource 'gadgets'"):
        backup(source, store, "bad", include_resources=("gadgets",))
    with pytest.raises(UsageError, match="invalid backup name"):
        backup(source, store, "Bad_Name")
    assert list(store.list()) == []
    with pytest.raises(StoreReadOnly):
        backup(source, open_store(bucket_url, read_only=True), "ro", include_namespaces=("shop",))
    assert list(store.list()) == []
    backup(source, store, "once", include_namespaces=("shop",))
    before = {o.key: o.etag for o in store.list()}
    with pytest.raises(UsageError, match="already exists"):
        backup(source, store, "once", include_namespaces=("shop",))
    assert {o.key: o.etag for o in store.list()} == before


def test_killed_backup_is_never_complete(shop: Any, dev_env: Any, bucket_url: str) -> None:
    """SIGKILL mid-backup (throttled to 4 requests/s so it is surely midway): no
    velero-backup.json, so no reader takes it for a completed backup."""
    cmd = [
        str(BIN / "kube-migrate"),
        "backup",
        "create",
        "killed",
        "--kubeconfig",
        dev_env.source_kubeconfig,
        "--bucket",
        bucket_url,
        "--qps",
        "4",
        "--burst",
        "1",
        "--parallelism",
        "1",
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    time.sleep(4)
    assert proc.poll() is None, "backup finished too early for this test"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    store = open_store(bucket_url)
    assert not store.exists("backups/killed/velero-backup.json")
    assert not store.exists("backups/killed/killed-kube-migrate.json")


def test_cli_backup_create(shop: Any, dev_env: Any, bucket_url: str) -> None:
    out = subprocess.run(
        [
            str(BIN / "kube-migrate"),
            "backup",
            "create",
            "cli-1",
            "--kubeconfig",
            dev_env.source_kubeconfig,
            "--bucket",
            bucket_url,
            "--include-namespaces",
            "shop",
            "--labels",
            "team=shop",
            "-o",
            "json",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert doc["phase"] == "Completed" and doc["items"] > 10
    assert "KM-MARKER-SECRET" not in out.stdout + out.stderr
    meta = json.loads(open_store(bucket_url).get("backups/cli-1/velero-backup.json"))
    assert meta["metadata"]["labels"]["team"] == "shop"
    bad = subprocess.run(
        [str(BIN / "kube-migrate"), "backup", "create", "x", "--kubeconfig",
         dev_env.source_kubeconfig, "--bucket", bucket_url, "--ttl", "forever"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert bad.returncode == 2 and "invalid --ttl 'forever'" in bad.stderr
