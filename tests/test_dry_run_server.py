"""`restore create --dry-run=server` on the real target: every write of the restore is sent
with dryRun=All, so the target's admission (ResourceQuota, Pod Security) rejects objects
before anything is written; the results come in the restore's format and exit 5 when an
object would be rejected; nothing is left in the cluster, the bucket or the state dir.
Objects the server cannot judge (in a namespace or of a CRD the restore would create)
are reported as not validated."""

from __future__ import annotations

import json
import subprocess
import uuid
from typing import Any

import pytest
import yaml

from migrate.backup.create import BackupOptions, create_backup
from migrate.cluster import Cluster
from migrate.errors import EXIT_PARTIAL, NotFound
from migrate.restore.journal import state_dir
from migrate.store import Store, open_store
from migrate.transform.scope import Scope
from tests.builders import crd_manifest
from tests.conftest import Env
from tests.helpers import BIN, apply, wait_for

PRIVILEGED_POD = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {"name": "priv"},
    "spec": {
        "containers": [
            {"name": "c", "image": "example.com/app:1", "securityContext": {"privileged": True}}
        ]
    },
}
DEPLOYMENT = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "web"},
    "spec": {
        "replicas": 1,
        "selector": {"matchLabels": {"app": "web"}},
        "template": {
            "metadata": {"labels": {"app": "web"}},
            "spec": {"containers": [{"name": "web", "image": "example.com/web:1"}]},
        },
    },
}


def _restore(
    env: Env, bucket: str, name: str, mapping: str, *more: str
) -> subprocess.CompletedProcess[str]:
    cmd = [str(BIN / "kube-migrate"), "restore", "create", name, "--from-backup", "dry",
           "--kubeconfig", env.target_kubeconfig, "--bucket", bucket,
           "--namespace-mappings", mapping, *more]  # fmt: skip
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=False)


def _by_name(doc: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(o["kind"], o["name"]): o for o in doc["objects"]}


def _names(c: Cluster, resource: str, ns: str) -> set[str]:
    return {o["metadata"]["name"] for o in c.list(c.discovery().resolve(resource), ns)}


@pytest.fixture
def crd_group(source: Cluster, target: Cluster) -> Any:
    """A CRD group of the test's own, its CRD deleted from both clusters afterwards."""
    group = f"g{uuid.uuid4().hex[:6]}.dry.example.com"
    yield group
    for c in (source, target):
        c.delete(c.discovery().resolve("customresourcedefinitions"), f"dials.{group}")


@pytest.fixture
def backup(source: Cluster, source_ns: str, bucket_url: str, crd_group: str) -> Store:
    """Backup "dry" of source_ns: two ConfigMaps, a ServiceAccount, a bare privileged Pod,
    a Deployment and a custom resource (its CRD comes along)."""
    cms = [{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": f"c{i}"},
            "data": {"k": str(i)}} for i in range(2)]  # fmt: skip
    sa = {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "app"},
          "imagePullSecrets": [{"name": "pull"}]}  # fmt: skip
    apply(source, [{**o, "metadata": {**o["metadata"], "namespace": source_ns}}
                   for o in (*cms, sa, PRIVILEGED_POD, DEPLOYMENT)])  # fmt: skip
    apply(source, [crd_manifest(crd_group, "dials", "Dial")])
    dials = source.discovery(refresh=True).for_kind(f"{crd_group}/v1", "Dial")
    assert dials is not None
    source.create(dials, {"apiVersion": f"{crd_group}/v1", "kind": "Dial",
                          "metadata": {"name": "d"}, "spec": {"max": 3}}, source_ns)  # fmt: skip
    store = open_store(bucket_url)
    create_backup(source, store, BackupOptions("dry", Scope(include_namespaces=(source_ns,))))
    return store


@pytest.fixture
def guarded(target: Cluster, target_ns: str) -> dict[str, Any]:
    """target_ns with Pod Security "restricted", a quota of ConfigMaps already full
    (kube-root-ca.crt) and a ServiceAccount "app" (as it was before the test)."""
    ns_res = target.discovery().resolve("namespaces")
    labels = {"pod-security.kubernetes.io/enforce": "restricted"}
    target.patch(ns_res, target_ns, {"metadata": {"labels": labels}})
    quota_res = target.discovery().resolve("resourcequotas")
    quota = {"metadata": {"name": "q"}, "spec": {"hard": {"configmaps": "1"}}}
    target.create(quota_res, quota, target_ns)
    wait_for("the quota to count kube-root-ca.crt", lambda: (
        (target.get(quota_res, "q", target_ns).get("status") or {}).get("used") or {}
    ).get("configmaps") == "1")  # fmt: skip
    sa_res = target.discovery().resolve("serviceaccounts")
    target.create(sa_res, {"metadata": {"name": "app"}}, target_ns)
    return target.get(sa_res, "app", target_ns)


def test_server_dry_run_reports_rejections_and_writes_nothing(
    dev_env: Env,
    target: Cluster,
    source_ns: str,
    target_ns: str,
    bucket_url: str,
    crd_group: str,
    backup: Store,
    guarded: dict[str, Any],
) -> None:
    before = sorted((o.key, o.etag) for o in backup.list())
    out = _restore(dev_env, bucket_url, "dr", f"{source_ns}:{target_ns}", "--dry-run=server",
                   "-o", "json")  # fmt: skip
    assert out.returncode == EXIT_PARTIAL, out.stderr
    assert "would reject 3 objects; nothing was written" in out.stderr
    doc = json.loads(out.stdout)
    assert doc["dryRun"] == "server" and doc["phase"] == "PartiallyFailed"
    objs = _by_name(doc)
    for name in ("c0", "c1"):
        assert objs["ConfigMap", name]["result"] == "failed"
        assert "exceeded quota" in objs["ConfigMap", name]["message"]
    assert objs["Pod", "priv"]["result"] == "failed"
    assert "violates PodSecurity" in objs["Pod", "priv"]["message"]
    # Pod Security only warns about a Deployment's template: accepted
    assert objs["Deployment", "web"]["result"] == "created"
    assert objs["Deployment", "web"]["message"] == "dry run: accepted by the server"
    assert objs["ServiceAccount", "app"]["result"] == "updated"  # merged (a dry-run patch)
    assert objs["Namespace", target_ns]["result"] == "skipped"
    # the CRD is dry-run created; its custom resource cannot be validated before it exists
    assert objs["CustomResourceDefinition", f"dials.{crd_group}"]["result"] == "created"
    assert objs["Dial", "d"]["result"] == "created"
    assert "not validated by the server" in objs["Dial", "d"]["message"]
    assert any("CustomResourceDefinition" in w for w in doc["warningMessages"])
    assert doc["failed"] == 3 and all(o["uid"] == "" for o in doc["objects"])

    table = _restore(dev_env, bucket_url, "dr", f"{source_ns}:{target_ns}", "--dry-run=server")
    assert table.returncode == EXIT_PARTIAL, table.stderr
    head, row = table.stdout.splitlines()
    assert head.split()[:3] == ["NAME", "BACKUP", "DRYRUN"] and row.split()[:4] == [
        "dr", "dry", "server", "PartiallyFailed"]  # fmt: skip

    # nothing written: no object, no merged ServiceAccount, no CRD, nothing in the bucket,
    # no journal
    assert _names(target, "configmaps", target_ns) == {"kube-root-ca.crt"}
    assert _names(target, "pods", target_ns) == set()
    assert _names(target, "deployments", target_ns) == set()
    sa = target.get(target.discovery().resolve("serviceaccounts"), "app", target_ns)
    assert sa["metadata"]["resourceVersion"] == guarded["metadata"]["resourceVersion"]
    with pytest.raises(NotFound):
        target.get(target.discovery().resolve("customresourcedefinitions"), f"dials.{crd_group}")
    assert sorted((o.key, o.etag) for o in backup.list()) == before
    assert list(backup.list("restores/")) == []
    assert not list((state_dir() / "restores").glob("dr*"))

    # the dry run foretold the restore: the same objects fail for real
    real = _restore(dev_env, bucket_url, "real", f"{source_ns}:{target_ns}", "-o", "json")
    assert real.returncode == EXIT_PARTIAL, real.stderr
    failed = {k for k, o in _by_name(json.loads(real.stdout)).items() if o["result"] == "failed"}
    assert failed == {k for k, o in objs.items() if o["result"] == "failed"}


def test_server_dry_run_into_a_new_namespace(
    dev_env: Env, target: Cluster, source_ns: str, bucket_url: str, backup: Store
) -> None:
    """The Namespace is dry-run created; its objects are reported as not validated (a
    dry-run Namespace is not kept, so the server would refuse them all)."""
    new = f"{source_ns}-new"
    out = _restore(dev_env, bucket_url, "dr2", f"{source_ns}:{new}", "--dry-run=server",
                   "-o", "yaml")  # fmt: skip
    assert out.returncode == 0, out.stderr
    doc = yaml.safe_load(out.stdout)
    objs = _by_name(doc)
    assert doc["phase"] == "Completed" and doc["failed"] == 0
    assert objs["Namespace", new]["message"] == "dry run: accepted by the server"
    for key in (("ConfigMap", "c0"), ("Pod", "priv"), ("Deployment", "web")):
        assert objs[key]["result"] == "created"
        assert objs[key]["message"].startswith(
            f"dry run: not validated by the server: namespace {new} does not exist yet"
        ), objs[key]
    assert any("namespace does not exist" in w for w in doc["warningMessages"])
    # a bare --dry-run is the client-side plan; its value is only taken after "=", so
    # `--dry-run NAME` keeps NAME the restore's name (kubectl's spelling)
    cmd = [str(BIN / "kube-migrate"), "restore", "create", "--dry-run", "dr3", "--from-backup",
           "dry", "--kubeconfig", dev_env.target_kubeconfig, "--bucket", bucket_url,
           "--namespace-mappings", f"{source_ns}:{new}", "-o", "json"]  # fmt: skip
    plan = subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=False)
    assert plan.returncode == 0, plan.stderr
    rows = json.loads(plan.stdout)
    assert {"level", "kind", "namespace", "name", "action"} <= set(rows[0])
    assert ("Namespace", "", new, "create") in {
        (r["kind"], r["namespace"], r["name"], r["action"]) for r in rows
    }
    with pytest.raises(NotFound):
        target.get(target.discovery().resolve("namespaces"), new)
    assert list(backup.list("restores/")) == []
