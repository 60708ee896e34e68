"""Live migration on the real nodes (playbooks/live-migrate.yaml's steps): an app that
writes a counter to its volume every 100 ms, and a writer that bumps a ConfigMap every
100 ms while the app's Deployment runs, are pre-copied while they run; then 1% of the
claim's files change and objects are added and deleted; the cut-over stops the source,
moves the last increment and starts the target.  The target has every write made before
the stop (its app starts from the source's last counter; the ConfigMap holds the
writer's last value), the deleted objects are gone, the added ones there, and the
cut-over's data verify is clean.  A fault in the cut-over (a ResourceQuota on the target
that admits no mover pod) rolls back: the source runs again at its replicas and the
target stays held.  SIGKILL of kube-migrate in the middle of the cut-over, then --resume:
it completes.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from migrate.cluster import Cluster
from migrate.errors import NotFound
from migrate.transform.hold import HELD
from tests.conftest import Env
from tests.helpers import BIN, ROOT, run_cli, wait_for
from tests.test_real_nodes import NODE_SELECTOR, TOLERATION, kube_for

APP = """
set -e
mkdir -p /data/files
if [ ! -e /data/files/f99 ]; then
  i=0; while [ $i -lt 100 ]; do head -c 20000 /dev/urandom > /data/files/f$i; i=$((i+1)); done
fi
n=$(cat /data/counter 2>/dev/null || echo 0)
echo "start $n" >> /data/starts
touch /tmp/ready
while true; do
  n=$((n+1)); echo $n > /data/counter.new; mv /data/counter.new /data/counter; sleep 0.1
done
"""
READER = "cat /data/counter; tail -n 1 /data/starts; md5sum /data/files/f7"


def app(ns: str, image: str) -> list[dict[str, Any]]:
    return [
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "counter"},
         "data": {"n": "0"}},
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "doomed"},
         "data": {"x": "1"}},
        {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "data"},
         "spec": {"accessModes": ["ReadWriteOnce"],
                  "resources": {"requests": {"storage": "200Mi"}}}},
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "app"},
            "spec": {
                "replicas": 1,
                "strategy": {"type": "Recreate"},
                "selector": {"matchLabels": {"app": "counter"}},
                "template": {
                    "metadata": {"labels": {"app": "counter"}},
                    "spec": {
                        "nodeSelector": NODE_SELECTOR,
                        "tolerations": [TOLERATION],
                        "terminationGracePeriodSeconds": 1,
                        "containers": [{
                            "name": "app", "image": image, "imagePullPolicy": "IfNotPresent",
                            "command": ["sh", "-c", APP],
                            "readinessProbe": {"exec": {"command": ["test", "-e", "/tmp/ready"]},
                                               "periodSeconds": 1},
                            "volumeMounts": [{"name": "data", "mountPath": "/data"}],
                        }],
                        "volumes": [{"name": "data",
                                     "persistentVolumeClaim": {"claimName": "data"}}],
                    },
                },
            },
        },
    ]  # fmt: skip


def playbook(path: Path, ns: str, image: str) -> Path:
    announce = {  # a Job hook on the target's real node: what it learns, in its log
        "name": "announce",
        "job": {"spec": {"template": {"spec": {
            "nodeSelector": NODE_SELECTOR, "tolerations": [TOLERATION],
            "containers": [{"name": "a", "image": image, "imagePullPolicy": "IfNotPresent",
                            "command": ["sh", "-c", "echo $KUBE_MIGRATE_RUN "
                                        "$KUBE_MIGRATE_TARGET_NAMESPACES "
                                        "$KUBE_MIGRATE_DOWNTIME_SECONDS"]}],
        }}}},
    }  # fmt: skip
    path.write_text(
        "apiVersion: kube-migrate.io/v1alpha1\nkind: Playbook\nmetadata: {name: live}\n"
        f"spec:\n  scope: {{includeNamespaces: [{ns}]}}\n"
        "  volumes: {mode: all}\n"
        "  waitForSync: {interval: 200ms}\n"
        "  restore: {holdWorkloads: true}\n"
        "  precopy: {passes: 1}\n"
        "  cutover:\n    stopTimeout: 1m\n    readyTimeout: 3m\n"
        "    hooks: [{name: switch, command: [sh, -c, 'echo $KUBE_MIGRATE_RUN "
        f"$KUBE_MIGRATE_TARGET_NAMESPACES >> {path.parent / 'switched'}']}}, "
        f"{json.dumps(announce)}]\n"
        "  steps: [backup, waitForSync, restore, precopy, cutover]\n"
    )
    return path


class Writer(threading.Thread):
    """Bumps ConfigMap `counter` every 100 ms while the app's Deployment runs replicas."""

    def __init__(self, c: Cluster, ns: str) -> None:
        super().__init__(daemon=True)
        self.c, self.ns, self.last, self.stop = c, ns, 0, threading.Event()

    def run(self) -> None:
        deploy = self.c.discovery().resolve("deployments.apps")
        cms = self.c.discovery().resolve("configmaps")
        while not self.stop.is_set():
            if self.c.get(deploy, "app", self.ns)["spec"]["replicas"] == 0:
                return
            self.c.patch(cms, "counter", {"data": {"n": str(self.last + 1)}}, self.ns)
            self.last += 1
            time.sleep(0.1)


class Live:
    def __init__(self, env: Env, source: Cluster, target: Cluster, ns: str, tmp: Path,
                 bucket: str, image: str) -> None:  # fmt: skip
        self.env, self.source, self.target, self.ns, self.tmp = env, source, target, ns, tmp
        self.bucket, self.image = bucket, image
        self.kube = {"source": kube_for(env, "source"), "target": kube_for(env, "target")}
        self.book = playbook(tmp / "live.yaml", ns, image)

    def km(self, *args: str) -> subprocess.CompletedProcess[str]:
        return run_cli(*args, "--bucket", self.bucket, "--report-dir", str(self.tmp / "report"))

    def deploy(self, c: Cluster) -> dict[str, Any]:
        return c.get(c.discovery().resolve("deployments.apps"), "app", self.ns)

    def cm(self, c: Cluster, name: str) -> dict[str, Any] | None:
        try:
            return c.get(c.discovery().resolve("configmaps"), name, self.ns)
        except NotFound:
            return None

    def read_claim(self, side: str) -> tuple[int, int, str]:
        """(the counter, the last start's counter, f7's md5) of claim `data` on `side`,
        read by a pod of its own (the app must not run there)."""
        k = self.kube[side]
        name = f"reader-{uuid.uuid4().hex[:5]}"
        k.create(self.ns, {
            "apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"nodeSelector": NODE_SELECTOR, "tolerations": [TOLERATION],
                     "restartPolicy": "Never", "terminationGracePeriodSeconds": 1,
                     "containers": [{"name": "r", "image": self.image,
                                     "imagePullPolicy": "IfNotPresent",
                                     "command": ["sh", "-c", READER],
                                     "volumeMounts": [{"name": "d", "mountPath": "/data"}]}],
                     "volumes": [{"name": "d", "persistentVolumeClaim": {"claimName": "data"}}]},
        })  # fmt: skip
        k.wait_pod(self.ns, name, ("Succeeded",))
        counter, start, md5 = k.run("logs", "-n", self.ns, name).strip().split("\n")[:3]
        k.run("delete", "pod", "-n", self.ns, name, "--wait=false")
        return int(counter), int(start.split()[1]), md5.split()[0]

    def report(self) -> dict[str, Any]:
        doc: dict[str, Any] = json.loads((self.tmp / "report" / "report.json").read_text())
        return {s["step"]: s for s in doc["steps"]}


@pytest.fixture
def live(dev_env: Env, source: Cluster, target: Cluster, tmp_path: Path, bucket_url: str,
         image: str) -> Iterator[Live]:  # fmt: skip
    ns = f"lm-{uuid.uuid4().hex[:6]}"
    ns_res = source.discovery().resolve("namespaces")
    source.create(ns_res, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
    for obj in app(ns, image):
        res = source.discovery().for_kind(obj["apiVersion"], obj["kind"])
        assert res is not None
        source.create(res, obj, ns)
    it = Live(dev_env, source, target, ns, tmp_path, bucket_url, image)
    wait_for("the app ready", lambda: it.deploy(source).get("status", {}).get("readyReplicas"),
             180)  # fmt: skip
    yield it
    for c in (source, target):
        with contextlib.suppress(NotFound):
            c.delete(ns_res, ns)


def run_id(out: subprocess.CompletedProcess[str]) -> str:
    return next(w for w in out.stderr.split() if w.startswith("live-"))


def test_live_migration_pre_copies_cuts_over_and_rolls_back(live: Live) -> None:
    writer = Writer(live.source, live.ns)
    writer.start()
    first = live.km("run", str(live.book), "--stop-before", "cutover")
    assert first.returncode == 0, first.stderr[-3000:]
    run = run_id(first)
    held = live.deploy(live.target)
    assert held["spec"]["replicas"] == 0 and json.loads(held["metadata"]["annotations"][HELD]) == 1
    by = live.report()
    assert by["precopy"]["result"]["passes"][0]["parent"] == run  # the first increment
    assert by["cutover"]["status"] == "pending"

    # after the pre-copy: 1% of the files change, objects come and go
    pod = next(p["metadata"]["name"] for p in live.kube["source"].json(
        "get", "pods", "-n", live.ns, "-l", "app=counter")["items"])  # fmt: skip
    live.kube["source"].run("exec", "-n", live.ns, pod, "--", "sh", "-c",
                            "head -c 20000 /dev/urandom > /data/files/f7")  # fmt: skip
    cms = live.source.discovery().resolve("configmaps")
    live.source.delete(cms, "doomed", live.ns)
    added = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "added"},
             "data": {"y": "2"}}  # fmt: skip
    live.source.create(cms, added, live.ns)
    writer = fault_rolls_back(live, run, writer)
    cut_over_after_sigkill(live, run, writer)


def fault_rolls_back(live: Live, run: str, writer: Writer) -> Writer:
    """A cut-over whose data restore fails gives the source its replicas back."""
    # a fault in the cut-over: the target admits no pod, so no mover restores the data
    quota = live.target.discovery().resolve("resourcequotas")
    live.target.create(quota, {"apiVersion": "v1", "kind": "ResourceQuota",
                               "metadata": {"name": "no-pods"}, "spec": {"hard": {"pods": "0"}}},
                       live.ns)  # fmt: skip
    failed = live.km("run", "--resume", run)
    assert failed.returncode != 0
    result = live.report()["cutover"]["result"]
    assert result["rolledBack"]["releasedOnSource"] == [f"Deployment {live.ns}/app"], result
    assert "hint" in result
    wait_for("the source running again", lambda: live.deploy(live.source).get("status", {})
             .get("readyReplicas") == 1, 120)  # fmt: skip
    assert HELD not in (live.deploy(live.source)["metadata"].get("annotations") or {})
    assert live.deploy(live.target)["spec"]["replicas"] == 0
    live.target.delete(quota, "no-pods", live.ns)
    writer.join(0)
    if not writer.is_alive():  # it stopped when the source was: it writes again now
        writer = Writer(live.source, live.ns)
        writer.last = int((live.cm(live.source, "counter") or {})["data"]["n"])
        writer.start()
    time.sleep(1)
    return writer


def cut_over_after_sigkill(live: Live, run: str, writer: Writer) -> None:
    """SIGKILL in the middle of the cut-over (the source stopped), then --resume completes."""
    proc = subprocess.Popen(
        [str(BIN / "kube-migrate"), "run", "--resume", run, "--bucket", live.bucket,
         "--report-dir", str(live.tmp / "report")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
    )  # fmt: skip
    wait_for("the source held by the cut-over", lambda: proc.poll() is not None or HELD in (
        live.deploy(live.source)["metadata"].get("annotations") or {}), 120)  # fmt: skip
    assert proc.poll() is None, proc.communicate()
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    writer.join(30)
    done = live.km("run", "--resume", run)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "downtime" in done.stdout  # the run summary's cutover row
    switched = (live.tmp / "switched").read_text().split("\n")
    assert switched[:-1] == [f"{run} {live.ns}"], switched  # the hook ran once, at the end
    result = live.report()["cutover"]["result"]
    assert result["downtimeSeconds"] > 0
    hooks = result["hooks"]
    assert [(h["hook"], h["exitCode"]) for h in hooks] == [("switch", 0), ("announce", 0)]
    job = hooks[1]["job"].split("/")[1]
    said = live.kube["target"].run("logs", "-n", live.ns, f"job/{job}").split()
    assert said[:2] == [run, live.ns] and float(said[2]) == result["downtimeSeconds"], said
    assert set(result["phases"]) >= {"quiesce", "backup", "sync", "restore", "start"}
    assert result["data"]["drifted"] == 0 and result["verify"]["drifted"] == 0, result
    assert result["data"]["checkedByTheirWriter"] == 1  # the claim, by the mover writing it
    # both copies ran in movers started before the downtime (the killed attempt's are gone)
    one = {"ready": 1, "used": 1}
    assert result["standbyMovers"] == {"source": one, "target": one}, result["standbyMovers"]
    for side in ("source", "target"):
        left = live.kube[side].json("get", "pods", "-n", live.ns, "-l", "kube-migrate.io/mover")
        assert [p for p in left["items"] if not p["metadata"].get("deletionTimestamp")] == []

    source_app, target_app = live.deploy(live.source), live.deploy(live.target)
    assert source_app["spec"]["replicas"] == 0  # stopped, its replicas recorded
    assert json.loads(source_app["metadata"]["annotations"][HELD]) == 1
    assert target_app["spec"]["replicas"] == 1
    assert HELD not in (target_app["metadata"].get("annotations") or {})
    assert live.cm(live.target, "doomed") is None
    assert (live.cm(live.target, "added") or {}).get("data") == {"y": "2"}
    assert (live.cm(live.target, "counter") or {})["data"]["n"] == str(writer.last)
    last, _start, f7 = live.read_claim("source")
    wait_for("the target app ready", lambda: live.deploy(live.target).get("status", {})
             .get("readyReplicas") == 1, 120)  # fmt: skip
    live.target.patch(live.target.discovery().resolve("deployments.apps"), "app",
                      {"spec": {"replicas": 0}}, live.ns)  # fmt: skip
    wait_for("the target app stopped", lambda: not live.kube["target"].json(
        "get", "pods", "-n", live.ns, "-l", "app=counter")["items"], 60)  # fmt: skip
    _now, started_from, target_f7 = live.read_claim("target")
    assert started_from == last  # every write before the stop is on the target
    assert target_f7 == f7
