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
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from migrate.backup.create import BackupOptions, create_backup
from migrate.cluster import Cluster, ClusterRef
from migrate.errors import NotFound
from migrate.store import layout, open_store
from migrate.transform.scope import Scope
from tests.conftest import Env
from tests.helpers import km

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
    finally:
        procs.stop(p.procs)


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
    verify = km(
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
        out = km(
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
