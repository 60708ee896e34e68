"""`kube-migrate run` with the shipped playbooks, end to end on the real planes: the
one-shot migration, the clone, the report-only preflight, disaster recovery, --dry-run,
--set, and --resume after a SIGKILL mid-restore."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from migrate.cluster import Cluster
from migrate.errors import NotFound
from migrate.store import open_store

from .helpers import ROOT, apply_example, load_docs, run_cli, wait_for

BIN = Path(sys.executable).parent
PLAYBOOKS = ROOT / "playbooks"
SHOP_NAMESPACES = (
    "shop",
    "shop-data",
    "shop-test",
    "shop-data-test",
    "shop-drill",
    "shop-data-drill",
)


def clean_target(target: Cluster) -> None:
    """Remove the shop app from the target (namespaces and its cluster-scoped objects), so
    each playbook run starts from a cluster that never saw it."""
    disc = target.discovery()
    for doc in load_docs([ROOT / "examples" / "shop" / "00-cluster.yaml"]):
        res = disc.for_kind(doc["apiVersion"], doc["kind"])
        if res is not None:
            target.delete(res, doc["metadata"]["name"])
            if doc["kind"] == "ClusterRoleBinding":  # a clone's own copies of it
                for ns in SHOP_NAMESPACES:
                    target.delete(res, f"{doc['metadata']['name']}-{ns}")
    ns_res, pods, pvcs = (disc.resolve(r) for r in ("namespaces", "pods", "persistentvolumeclaims"))
    for ns in SHOP_NAMESPACES:  # the namespace first (no pod is made in it from then on),
        target.delete(ns_res, ns)  # then its pods at once and its claims (their protection
        body = {"kind": "DeleteOptions", "apiVersion": "v1", "gracePeriodSeconds": 0}
        with contextlib.suppress(NotFound):  # goes with the pods): it goes in one sweep
            target.request("DELETE", pods.path(ns), body=body)
            target.request("DELETE", pvcs.path(ns))

    def gone() -> bool:
        for ns in SHOP_NAMESPACES:
            try:
                target.get(ns_res, ns)
                return False
            except NotFound:
                pass
        return True

    wait_for("shop namespaces deleted on the target", gone, 180)


@pytest.fixture
def fresh(source: Cluster, target: Cluster, bucket_url: str, tmp_path: Path) -> dict[str, Any]:
    apply_example(source, "shop")
    clean_target(target)
    return {"bucket": bucket_url, "reports": tmp_path / "reports"}


def report(path: Path) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((path / "report.json").read_text())
    return doc


def steps(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {s["step"]: s for s in doc["steps"]}


def test_migrate_cluster_end_to_end(fresh: dict[str, Any], target: Cluster) -> None:
    out = run_cli(
        "run",
        str(PLAYBOOKS / "migrate-cluster.yaml"),
        "--bucket",
        fresh["bucket"],
        "--report-dir",
        str(fresh["reports"]),
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert_migrated(fresh, target)


def test_run_in_cluster_gives_the_report_of_a_local_run_and_resumes_anywhere(
    fresh: dict[str, Any], target: Cluster, tmp_path: Path
) -> None:
    """The same playbook as a Job on the target's real node (the image the dev-env
    built), its log streamed and its report written here; its state travels through the
    bucket: a first Job pauses it before waitReady, this machine (whose journal never saw
    it, whose paths differ from the pod's) resumes it up to verify, a second Job
    (`--resume --in-cluster`) finishes it. Jobs and Secrets are removed after."""
    overrides = tmp_path / "o.json"
    overrides.write_text(json.dumps([  # the dev-env's: MinIO and API servers on loopback
        {"op": "add", "path": "/spec/hostNetwork", "value": True},
        {"op": "add", "path": "/spec/nodeSelector", "value": {"kube-migrate.dev/node": "real"}},
        {"op": "add", "path": "/spec/tolerations",
         "value": [{"key": "kube-migrate.dev/real-node", "operator": "Exists"}]},
    ]))  # fmt: skip
    ns = f"km-run-{uuid.uuid4().hex[:6]}"
    job = ["--in-cluster", "--in-cluster-namespace", ns, "--pod-overrides", str(overrides),
           "--bucket", fresh["bucket"], "--report-dir", str(fresh["reports"])]  # fmt: skip
    try:
        out = run_cli("run", str(PLAYBOOKS / "migrate-cluster.yaml"), *job,
                      "--stop-before", "waitReady", "-o", "json")  # fmt: skip
        assert out.returncode == 0, out.stderr[-3000:]
        doc = json.loads(out.stdout)
        run = doc["run"]
        assert [s["status"] for s in doc["steps"]] == ["succeeded"] * 4 + ["pending"] * 2
        assert report(fresh["reports"])["run"] == run  # written here
        assert f"[pod] run {run} paused before waitReady" in out.stderr, out.stderr[-3000:]
        reports = ["--report-dir", str(fresh["reports"])]
        here = run_cli("run", "--resume", run, "--bucket", fresh["bucket"],
                       "--stop-before", "verify", *reports)  # fmt: skip
        assert here.returncode == 0, here.stderr[-3000:]
        assert f"run {run}: state found in" in here.stderr
        assert "step 5/6: waitReady" in here.stderr and "step 6/6" not in here.stderr
        out = run_cli("run", "--resume", run, *job)
        assert out.returncode == 0, out.stderr[-3000:]
        assert "[pod] step 6/6: verify" in out.stderr and "step 4/6" not in out.stderr
        assert_migrated(fresh, target)
        again = run_cli("run", "--resume", run)  # this machine's journal: taken from the bucket
        assert again.returncode == 2 and "already succeeded" in again.stderr, again.stderr
        sel = "kube-migrate.io/in-cluster-run"
        for kind in ("jobs.batch", "secrets"):  # the Secret went with its Job
            res = target.discovery().resolve(kind)
            wait_for(
                f"{kind} removed", lambda r=res: not list(target.list(r, ns, label_selector=sel))
            )
        assert os.environ["AWS_SECRET_ACCESS_KEY"] not in out.stderr + out.stdout
    finally:
        target.delete(target.discovery().resolve("namespaces"), ns)


def assert_migrated(fresh: dict[str, Any], target: Cluster) -> None:
    """What a run of migrate-cluster.yaml leaves: its report, and the shop on the target."""
    doc = report(fresh["reports"])
    by = steps(doc)
    assert list(by) == ["preflight", "backup", "waitForSync", "restore", "waitReady", "verify"]
    assert all(s["status"] == "succeeded" for s in doc["steps"]), doc["steps"]
    assert by["restore"]["result"]["failed"] == 0 and by["restore"]["result"]["created"] > 20
    assert by["verify"]["result"]["drifted"] == 0 and by["verify"]["result"]["equal"] >= 15
    assert doc["source"]["version"].startswith("v1.30") and doc["target"]["version"].startswith(
        "v1.37"
    )
    for name in ("report.md", "report.html", "junit.xml"):
        assert (fresh["reports"] / name).stat().st_size > 200, name
    assert list(fresh["reports"].glob("restore-graph.*"))
    html = (fresh["reports"] / "report.html").read_text()
    assert "<table>" in html and "<h2>verify</h2>" in html
    assert "KM-MARKER-SECRET" not in "".join(p.read_text() for p in fresh["reports"].iterdir())
    assert target.get(target.discovery().resolve("deployments.apps"), "web", "shop")


def test_clone_prod_to_test(fresh: dict[str, Any], target: Cluster) -> None:
    """The clone's claim gets a volume of the target's own (--pv-policy reprovision): here
    an available PV of the mapped class `standard` that stands in for a provisioner (none
    runs on these planes), never the source's shop-pv-1."""
    disc = target.discovery()
    pv_res = disc.resolve("persistentvolumes")
    pool = f"km-pool-{os.getpid()}-{int(time.time())}"
    target.create(
        pv_res,
        {"apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": pool},
         "spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"],
                  "persistentVolumeReclaimPolicy": "Retain", "storageClassName": "standard",
                  "hostPath": {"path": f"/tmp/{pool}"}}},
    )  # fmt: skip
    try:
        out = run_cli(
            "run",
            str(PLAYBOOKS / "clone-prod-to-test.yaml"),
            "--bucket",
            fresh["bucket"],
            "--report-dir",
            str(fresh["reports"]),
        )
        assert out.returncode == 0, out.stderr[-3000:]
        claim = target.get(disc.resolve("persistentvolumeclaims"), "web-cache", "shop-test")
        assert claim["spec"]["volumeName"] == pool
        with pytest.raises(NotFound):
            target.get(pv_res, "shop-pv-1")
    finally:
        target.delete(pv_res, pool)
    web = target.get(disc.resolve("deployments.apps"), "web", "shop-test")
    assert web["spec"]["replicas"] == 1
    image = web["spec"]["template"]["spec"]["containers"][0]["image"]
    assert image.startswith("registry.test.example.com/")
    assert target.get(disc.resolve("cronjobs.batch"), "report", "shop-test")["spec"]["suspend"]
    assert steps(report(fresh["reports"]))["verify"]["result"]["drifted"] == 0


def test_preflight_report_and_dry_run_write_nothing(
    fresh: dict[str, Any], source: Cluster, target: Cluster
) -> None:
    ns_res = target.discovery().resolve("namespaces")
    before = sorted(n["metadata"]["name"] for n in target.list(ns_res))
    out = run_cli(
        "run",
        str(PLAYBOOKS / "preflight-report.yaml"),
        "--bucket",
        fresh["bucket"],
        "--report-dir",
        str(fresh["reports"]),
    )
    assert out.returncode in (0, 3), out.stderr[-2000:]
    assert steps(report(fresh["reports"]))["preflight"]["status"] in ("succeeded", "failed")
    dry = run_cli(
        "run",
        str(PLAYBOOKS / "migrate-cluster.yaml"),
        "--dry-run",
        "--bucket",
        fresh["bucket"],
        "--report-dir",
        str(fresh["reports"] / "dry"),
    )
    assert dry.returncode == 0, dry.stderr[-2000:]
    by = steps(report(fresh["reports"] / "dry"))
    assert by["restore"]["result"]["planned"] > 20 and by["backup"]["status"] == "skipped"
    assert sorted(n["metadata"]["name"] for n in target.list(ns_res)) == before
    assert list(open_store(fresh["bucket"]).list()) == []


def test_set_overrides(fresh: dict[str, Any], target: Cluster) -> None:
    out = run_cli(
        "run",
        str(PLAYBOOKS / "migrate-cluster.yaml"),
        "--bucket",
        fresh["bucket"],
        "--set",
        "restore.replicas=1",
        "--set",
        "verify.fromBackup=true",
        "--report-dir",
        str(fresh["reports"]),
    )
    assert out.returncode == 0, out.stderr[-3000:]
    web = target.get(target.discovery().resolve("deployments.apps"), "web", "shop")
    assert web["spec"]["replicas"] == 1
    bad = run_cli("run", str(PLAYBOOKS / "migrate-cluster.yaml"), "--set", "restore.replicas=-1")
    assert bad.returncode == 2 and "restore.replicas" in bad.stderr


def test_resume_after_kill(fresh: dict[str, Any], source: Cluster, target: Cluster) -> None:
    cm = source.discovery().resolve("configmaps")
    for i in range(150):
        source.create(cm, {"metadata": {"name": f"bulk-{i:03d}"}, "data": {"i": str(i)}}, "shop")
    try:
        cmd = [
            str(BIN / "kube-migrate"),
            "--log-format",
            "json",
            "run",
            str(PLAYBOOKS / "migrate-cluster.yaml"),
            "--bucket",
            fresh["bucket"],
            "--set",
            "restore.parallelism=1",
            "--report-dir",
            str(fresh["reports"]),
            "--qps",
            "25",
            "--burst",
            "1",
        ]
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert proc.stderr is not None
        run_name = ""
        for line in proc.stderr:
            msg = json.loads(line).get("msg", "")
            if msg.startswith("run "):
                run_name = msg.split()[1]
            if msg.startswith("step 4/6: restore"):
                time.sleep(2)
                break
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        assert run_name
        again = run_cli("run", "--resume", run_name, "--report-dir", str(fresh["reports"]))
        assert again.returncode == 0, again.stderr[-3000:]
        by = steps(report(fresh["reports"]))
        assert by["verify"]["result"]["drifted"] == 0
        names = {o["metadata"]["name"] for o in target.list(cm, "shop")}
        assert {f"bulk-{i:03d}" for i in range(150)} <= names
    finally:
        for i in range(150):
            source.delete(cm, f"bulk-{i:03d}", "shop")
            target.delete(cm, f"bulk-{i:03d}", "shop")


def test_cut_over_scales_the_source_down(
    fresh: dict[str, Any], source: Cluster, target: Cluster, tmp_path: Path
) -> None:
    book = tmp_path / "cutover.yaml"
    book.write_text(
        "apiVersion: kube-migrate.io/v1alpha1\nkind: Playbook\nmetadata: {name: cutover}\n"
        "spec:\n  scope: {includeNamespaces: [shop, shop-data]}\n"
        "  restore: {pvPolicy: retain-as-is}\n  steps:\n"  # a cut-over takes the volumes over
        "  - backup\n  - waitForSync\n  - restore\n  - waitReady\n"
        "  - scale: {side: source, replicas: 0}\n"
    )
    deploy = source.discovery().resolve("deployments.apps")
    sts = source.discovery().resolve("statefulsets.apps")
    try:
        out = run_cli(
            "run", str(book), "--bucket", fresh["bucket"], "--report-dir", str(fresh["reports"])
        )
        assert out.returncode == 0, out.stderr[-3000:]
        assert source.get(deploy, "web", "shop")["spec"]["replicas"] == 0
        assert source.get(sts, "db", "shop-data")["spec"]["replicas"] == 0
        assert target.get(deploy, "web", "shop")["spec"]["replicas"] == 2
        scaled = steps(report(fresh["reports"]))["scale[4]"]["result"]
        assert {(o["kind"], o["name"], o["from"], o["to"]) for o in scaled["objects"]} == {
            ("Deployment", "web", 2, 0),
            ("StatefulSet", "db", 1, 0),
        }
    finally:
        source.patch(deploy, "web", {"spec": {"replicas": 2}}, "shop", sub="scale")
        source.patch(sts, "db", {"spec": {"replicas": 1}}, "shop-data", sub="scale")
