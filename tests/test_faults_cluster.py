"""Faults on the Kubernetes side: the target's kube-apiserver killed (SIGKILL) and
restarted in the middle of a restore, and a source that keeps changing while it is
backed up.  (SIGKILL of kube-migrate itself, then --resume: test_restore.py and
test_playbook_run.py.)

The apiserver is killed on a private plane (etcd + kube-apiserver, started for this
module) so the shared planes other tests use are never disturbed.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tarfile
import threading
import time
import urllib.request
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import yaml

from migrate.backup.create import BackupOptions, create_backup
from migrate.cluster import Cluster, ClusterRef
from migrate.errors import NotFound
from migrate.store import layout, open_store
from migrate.transform.scope import Scope
from tests.conftest import Env
from tests.helpers import apply, run_cli, wait_for

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
CACHE = Path(os.environ.get("KUBE_MIGRATE_CACHE", Path.home() / ".cache" / "kube-migrate"))


@pytest.fixture(scope="module")
def plane(dev_env: Env, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A private etcd + kube-apiserver (the primary version) that tests may kill."""
    sys.path.insert(0, str(ROOT / "hack"))
    from devenv import procs
    from devenv.main import versions
    from devenv.plane import Plane

    v = versions()
    bindir = CACHE / "bin"
    p = Plane("faulty", v["K8S_PRIMARY"], bindir, tmp_path_factory.mktemp("plane"))
    try:
        p.up(bindir / f"etcd-{v['ETCD']}" / "etcd", bindir / f"kwok-{v['KWOK']}", minimal=True)
        yield p
    finally:  # thrown away: no graceful end (a kube-apiserver waits ~10 s for its clients)
        procs.stop(p.procs, timeout=2.0)


def _bulk(c: Cluster, ns: str, n: int) -> None:
    cm = c.discovery().resolve("configmaps")

    def make(i: int) -> None:
        c.create(cm, {"metadata": {"name": f"cm-{i:05d}"}, "data": {"v": str(i) * 20}}, ns)

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(make, range(n)))


def _count(c: Cluster, ns: str) -> int:
    try:
        return c.count(c.discovery().resolve("configmaps"), ns)
    except Exception:  # the apiserver is down: not counted
        return -1


def test_restore_survives_apiserver_restart(
    plane: Any, dev_env: Env, source: Cluster, source_ns: str, bucket_url: str
) -> None:
    n = 1500
    _bulk(source, source_ns, n)
    secret = source.discovery().resolve("secrets")
    source.create(secret, {"metadata": {"name": "s"}, "stringData": {"k": "v"}}, source_ns)
    store = open_store(bucket_url)
    create_backup(source, store, BackupOptions("b", Scope(include_namespaces=(source_ns,))))
    target = Cluster(ClusterRef(str(plane.kubeconfig)), name="faulty")
    cmd = [str(BIN / "kube-migrate"), "restore", "create", "r", "--from-backup", "b"]
    cmd += ["--kubeconfig", str(plane.kubeconfig), "--bucket", bucket_url, "-o", "json"]
    cmd += ["--qps", "150", "--burst", "10", "--parallelism", "4"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while _count(target, source_ns) < 200 and time.monotonic() < deadline:
        time.sleep(0.05)
    at_kill = _count(target, source_ns)
    assert proc.poll() is None and 0 < at_kill < n, "the restore must be midway at the kill"
    down = plane.restart_apiserver(down_for=2.0)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err[-3000:]
    doc = json.loads(out)
    assert doc["phase"] == "Completed" and doc["failed"] == 0
    assert _count(target, source_ns) == n  # (no controller-manager: no kube-root-ca.crt)
    verify = run_cli(
        "verify",
        "--source-kubeconfig",
        dev_env.source_kubeconfig,
        "--target-kubeconfig",
        str(plane.kubeconfig),
        "--include-namespaces",
        source_ns,
        "-o",
        "json",
    )
    assert verify.returncode == 0, verify.stdout[-2000:] + verify.stderr[-2000:]
    report = json.loads(verify.stdout)
    assert report["summary"]["drift"] is False and report["summary"]["objects"] >= n
    print(f"apiserver killed at {at_kill}/{n} objects, unreachable for {down:.1f}s")


def _objects(store: Any, name: str) -> dict[str, dict[str, Any]]:
    """ConfigMaps in a backup's tarball, by name (the Velero path, not the preferred copy)."""
    blob = store.get(layout.BackupKeys(name).tarball)
    out = {}
    with tarfile.open(fileobj=io.BytesIO(blob), mode="r:gz") as tar:
        for m in tar.getmembers():
            if m.name.startswith("resources/configmaps/namespaces/") and "/v1-" not in m.name:
                f = tar.extractfile(m)
                assert f is not None
                obj = json.loads(f.read())
                out[obj["metadata"]["name"]] = obj
    return out


@pytest.mark.parametrize(
    ("page_size", "detect"),
    [(500, True), (10, True), (10, False)],
    ids=["one-page", "paged", "off"],
)
def test_backup_counts_changes_made_while_it_runs(
    source: Cluster, source_ns: str, bucket_url: str, page_size: int, detect: bool
) -> None:
    """Changes made after the ConfigMaps were listed (and before the backup ended) are
    counted exactly: 5 modified (one of them twice), 3 deleted, 2 created; the backup
    holds the listed state, whether the LIST took one page or several (events newer than
    the snapshot count).  --no-detect-changes: no counts, no warning.  (Without watch
    permission: test_rbac.py.)"""
    cm = source.discovery().resolve("configmaps")
    _bulk(source, source_ns, 40)
    done = threading.Event()

    def meddle(event: str, _n: int) -> None:
        if event != "listed" or done.is_set():
            return
        done.set()
        for i in [0, 1, 2, 3, 4, 0]:
            source.patch(cm, f"cm-{i:05d}", {"data": {"v": f"changed-{i}"}}, source_ns)
        for i in range(5, 8):
            source.delete(cm, f"cm-{i:05d}", source_ns)
        for i in range(2):
            source.create(cm, {"metadata": {"name": f"new-{i}"}, "data": {}}, source_ns)

    store = open_store(bucket_url)
    scope = Scope(include_namespaces=(source_ns,), include_resources=("configmaps",))
    opts = BackupOptions("moving", scope, page_size=page_size, detect_changes=detect)
    summary = create_backup(source, store, opts, meddle)
    assert done.is_set() and summary.phase == "Completed"
    results = layout.gunzip_json(store.get(layout.BackupKeys("moving").results), "results")
    if detect:
        assert summary.changed == {"configmaps": {"modified": 5, "created": 2, "deleted": 3}}
        assert summary.as_dict()["changed"] == 10
        assert any("10 changed on the source" in w for w in results["warnings"]["cluster"])
    else:
        assert summary.changed == {} and summary.as_dict()["changed"] == 0
        assert not results["warnings"]["cluster"]
    backed = _objects(store, "moving")
    assert backed["cm-00000"]["data"]["v"] == "0" * 20  # as listed, before the patch
    assert "cm-00005" in backed and "new-0" not in backed


def test_backup_of_a_source_under_writes_is_consistent_per_object(
    dev_env: Env, source: Cluster, source_ns: str, bucket_url: str
) -> None:
    """Writers update pairs of keys in one request, in a loop, during a CLI backup: each
    backed-up object is one consistent version (a == b), and the result's change count
    is what the summary says."""
    cm = source.discovery().resolve("configmaps")
    names = [f"pair-{i}" for i in range(60)]
    for nm in names:
        source.create(cm, {"metadata": {"name": nm}, "data": {"a": "0", "b": "0"}}, source_ns)
    _bulk(source, source_ns, 1500)  # enough to make the listing take a while
    stop = threading.Event()
    writes = [0]

    def writer(offset: int) -> None:
        k = 0
        while not stop.is_set():
            k += 1
            nm = names[(k * 7 + offset) % len(names)]
            val = f"{offset}-{k}"
            try:
                source.patch(cm, nm, {"data": {"a": val, "b": val}}, source_ns)
                writes[0] += 1
            except NotFound:
                pass

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    try:
        time.sleep(0.5)
        name = f"busy-{uuid.uuid4().hex[:6]}"
        out = run_cli(
            "backup",
            "create",
            name,
            "--kubeconfig",
            dev_env.source_kubeconfig,
            "--bucket",
            bucket_url,
            "--include-namespaces",
            source_ns,
            "--parallelism",
            "2",
            "-o",
            "json",
        )
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert out.returncode == 0, out.stderr[-2000:]
    doc = json.loads(out.stdout)
    assert writes[0] > 0 and doc["phase"] == "Completed"
    backed = _objects(open_store(bucket_url), name)
    pairs = [backed[nm]["data"] for nm in names]
    assert all(p["a"] == p["b"] for p in pairs), "an object mixes two versions"
    changed = doc["changedByResource"].get("configmaps", {})
    assert doc["changed"] == sum(changed.values())
    assert changed.get("modified", 0) <= len(names) and not changed.get("deleted")
    print(f"{writes[0]} writes during the backup; {doc['changed']} objects changed meanwhile")


# ------------------------------------------------- a target with a tight APF limit


def _rejected(plane: Any, level: str) -> int:
    """apiserver_flowcontrol_rejected_requests_total of one priority level (all reasons)."""
    url = f"https://127.0.0.1:{plane.port}/metrics"
    with urllib.request.urlopen(url, context=plane._ctx(), timeout=30) as r:
        text = r.read().decode()
    total = 0.0
    for line in text.splitlines():
        if line.startswith("apiserver_flowcontrol_rejected_requests_total{") and (
            f'priority_level="{level}"' in line
        ):
            total += float(line.rsplit(" ", 1)[1])
    return int(total)


@pytest.fixture
def tight_apf(plane: Any, tmp_path: Path) -> Iterator[tuple[str, str]]:
    """A ServiceAccount (cluster-admin) whose every request APF serves with one seat and
    rejects (429, no queuing) when that seat is taken: a FlowSchema matching only it, a
    PriorityLevelConfiguration of 1 nominal share, lending and borrowing nothing, and a
    ballast level of 10000 shares nobody uses, so that share is 1 seat of the server's
    1200.  Yields (the SA's kubeconfig, the priority level's name)."""
    admin = Cluster(ClusterRef(str(plane.kubeconfig)), name="faulty-admin", qps=0)
    tag = uuid.uuid4().hex[:6]
    ns, level = f"apf-{tag}", f"km-tight-{tag}"
    fc = "flowcontrol.apiserver.k8s.io/v1"
    limited = {
        "lendablePercent": 0,
        "borrowingLimitPercent": 0,
        "limitResponse": {"type": "Reject"},
    }
    docs: list[dict[str, Any]] = [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}},
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "km", "namespace": ns}},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
         "metadata": {"name": level},
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                     "name": "cluster-admin"},
         "subjects": [{"kind": "ServiceAccount", "name": "km", "namespace": ns}]},
        {"apiVersion": fc, "kind": "PriorityLevelConfiguration", "metadata": {"name": level},
         "spec": {"type": "Limited", "limited": {"nominalConcurrencyShares": 1, **limited}}},
        {"apiVersion": fc, "kind": "PriorityLevelConfiguration",
         "metadata": {"name": f"km-ballast-{tag}"},
         "spec": {"type": "Limited", "limited": {
             "nominalConcurrencyShares": 10000, "lendablePercent": 100,
             "limitResponse": {"type": "Reject"}}}},
        {"apiVersion": fc, "kind": "FlowSchema", "metadata": {"name": level},
         "spec": {"priorityLevelConfiguration": {"name": level}, "matchingPrecedence": 500,
                  "distinguisherMethod": {"type": "ByUser"},
                  "rules": [{"subjects": [{"kind": "ServiceAccount",
                                           "serviceAccount": {"name": "km", "namespace": ns}}],
                             "resourceRules": [{"verbs": ["*"], "apiGroups": ["*"],
                                                "resources": ["*"], "clusterScope": True,
                                                "namespaces": ["*"]}],
                             "nonResourceRules": [{"verbs": ["*"], "nonResourceURLs": ["*"]}]}]}},
    ]  # fmt: skip
    apply(admin, docs)
    try:
        token = admin.request(
            "POST", f"/api/v1/namespaces/{ns}/serviceaccounts/km/token",
            body={"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
                  "spec": {"expirationSeconds": 3600}},
        )["status"]["token"]  # fmt: skip
        config = yaml.safe_load(plane.kubeconfig.read_text())
        config["users"] = [{"name": "km", "user": {"token": token}}]
        config["contexts"][0]["context"]["user"] = "km"
        path = tmp_path / "km-sa.kubeconfig"
        path.write_text(yaml.safe_dump(config))
        path.chmod(0o600)
        fs = admin.discovery(refresh=True).resolve("flowschemas.flowcontrol.apiserver.k8s.io")

        def in_force() -> bool:  # the APF controller has taken the FlowSchema up
            conds = (admin.get(fs, level).get("status") or {}).get("conditions") or []
            return any(c["type"] == "Dangling" and c["status"] == "False" for c in conds)

        wait_for("the FlowSchema in force", in_force, 60)
        yield str(path), level
    finally:
        for doc in reversed(docs):
            res = admin.discovery().for_kind(doc["apiVersion"], doc["kind"])
            assert res is not None
            meta = doc["metadata"]
            admin.delete(res, meta["name"], meta.get("namespace"))


def test_restore_backs_off_a_tight_apf_limit_and_completes(
    plane: Any, tight_apf: tuple[str, str], source: Cluster, source_ns: str, bucket_url: str
) -> None:
    """Default flags (no --qps): the restore adapts to a target that lets the restoring
    user have one request at a time and rejects the rest (429): it backs off, every
    object is restored, and APF rejected far fewer requests than were made."""
    kubeconfig, level = tight_apf
    n = 600
    _bulk(source, source_ns, n)
    store = open_store(bucket_url)
    create_backup(source, store, BackupOptions("b", Scope(include_namespaces=(source_ns,))))
    rejected_before = _rejected(plane, level)
    out = run_cli("-v", "restore", "create", "tight", "--from-backup", "b", "--kubeconfig",
                  kubeconfig,
             "--bucket", bucket_url, "--parallelism", "16", "-o", "json")  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    doc = json.loads(out.stdout)
    assert doc["phase"] == "Completed" and doc["failed"] == 0 and doc["created"] >= n
    target = Cluster(ClusterRef(str(plane.kubeconfig)), name="faulty", qps=0)
    assert _count(target, source_ns) == n
    rejected = _rejected(plane, level) - rejected_before
    backoffs = [ln for ln in out.stderr.splitlines() if "throttles us (429)" in ln]
    assert rejected > 0 and backoffs, out.stderr[-3000:]  # the limit was hit, and honoured
    print(f"APF rejected {rejected} requests; the client backed off {len(backoffs)} times")
    target.delete(target.discovery().resolve("namespaces"), source_ns)
