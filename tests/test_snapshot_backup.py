"""CSI snapshots on the real nodes (csi-driver-host-path, external-snapshotter): a backup
reads each claim from a VolumeSnapshot taken between the pod's hooks, so the copy is one
point in time while the app was held for the snapshot's cut only; a live copy of the same
busy claim without hooks is not one point in time.  The snapshot and its temporary claim
are removed on success, on a mover failure and, after SIGKILL, by `run --resume`; a kept
snapshot is removed by `backup delete`, and with it the backup's volume data (its kopia
snapshots, and only its own).

The app keeps a ledger: each iteration appends its number as the last line and then
writes it, in place, into the first line, checking a pause flag between iterations (what
a database's FLUSH ... WITH READ LOCK does for its files).  40 MB of padding between the
two lines make any reader that does not hold the writer see two different numbers: it
reads the first line long before it reaches the end.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from migrate.store import open_store
from migrate.volumes import forget
from tests.conftest import Env
from tests.helpers import run_cli, wait_for
from tests.test_real_nodes import NODE_SELECTOR, TOLERATION, kube_for

CLASS = "csi-hostpath-sc"
TEMPORARY = "kube-migrate.io/temporary=true"
WRITER = """
set -e
L=/data/ledger
if [ ! -e $L ]; then
  printf '%010d\\n' 0 > $L
  head -c 40000000 /dev/zero | tr '\\0' x >> $L
  echo >> $L
fi
i=$(tail -n 1 $L | grep -E '^[0-9]+$' || echo 0)
touch /tmp/ready
while true; do
  if [ -e /tmp/pause ]; then
    touch /tmp/paused; while [ -e /tmp/pause ]; do sleep 0.02; done; rm -f /tmp/paused
  fi
  i=$((i+1))
  echo "$i" >> $L
  printf '%010d\\n' "$i" 1<> $L
done
"""
# Velero's hook annotations: the pre hook holds the writer between two iterations
HOOKS = {
    "pre.hook.backup.velero.io/command": json.dumps(
        ["/bin/sh", "-c", "touch /tmp/pause; while [ ! -e /tmp/paused ]; do sleep 0.01; done"]
    ),
    "post.hook.backup.velero.io/command": '["/bin/sh", "-c", "rm -f /tmp/pause"]',
}
READER = "head -n 1 /data/ledger; tail -n 1 /data/ledger; ls /data"


class App:
    def __init__(self, env: Env, image: str, bucket: str, ns: str, dst: str) -> None:
        self.env, self.image, self.bucket, self.ns, self.dst = env, image, bucket, ns, dst
        self.source, self.target = kube_for(env, "source"), kube_for(env, "target")

    def km(self, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        return run_cli(*args, "--bucket", self.bucket, timeout=timeout)

    def backup(self, name: str, *flags: str) -> tuple[subprocess.CompletedProcess[str], Any]:
        out = self.km("backup", "create", name, "--kubeconfig", self.env.source_kubeconfig,
                      "--include-namespaces", self.ns, "--volumes", "all", "-o", "json",
                      *flags)  # fmt: skip
        return out, json.loads(out.stdout) if out.stdout.strip() else None

    def describe(self, name: str) -> dict[str, Any]:
        out = self.km("backup", "describe", name, "-o", "json")
        assert out.returncode == 0, out.stderr
        return dict(json.loads(out.stdout))

    def read_back(self, backup: str, ns: str) -> tuple[int, int, str]:
        """Restore the backup's claim into `ns` on the target and read (counter, last
        line of the log, m/'s listing) from it."""
        out = self.km("restore", "create", f"r-{ns}", "--from-backup", backup,
                      "--kubeconfig", self.env.target_kubeconfig,
                      "--include-resources", "persistentvolumeclaims,deployments",
                      "--replicas", "0",  # the writer's placement, not the writer
                      "--namespace-mappings", f"{self.ns}:{ns}", timeout=600)  # fmt: skip
        assert out.returncode == 0, out.stderr[-3000:]
        return self.read_claim(ns)

    def read_claim(self, ns: str, source_side: bool = False) -> tuple[int, int, str]:
        """(the ledger's first line, its last line, the claim's listing) of claim `data`
        in `ns`."""
        k = self.source if source_side else self.target
        reader = pod_on("reader", self.image, READER, claim="data", read_only=True)
        reader["spec"]["restartPolicy"] = "Never"
        k.create(ns, reader)
        k.wait_pod(ns, "reader", ("Succeeded",))
        counter, last, listing = k.run("logs", "-n", ns, "reader").split("\n", 2)
        return int(counter), int(last), listing.strip()

    def start_until_temporary_claim(self, cmd: list[str]) -> subprocess.Popen[str]:
        """Start `cmd` and return it once a temporary claim of a snapshot copy exists (it
        is killed if that never happens, or it ended first)."""
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            wait_for("a temporary claim", lambda: proc.poll() is not None or any(
                t.startswith("PersistentVolumeClaim/") for t in self.temporaries()
            ), timeout=180)  # fmt: skip
            assert proc.poll() is None, proc.communicate()
        except BaseException:
            proc.kill()
            raise
        return proc

    def writer(self) -> str:
        pods = self.source.json("get", "pods", "-n", self.ns, "-l", "app=writer")["items"]
        return str(next(p["metadata"]["name"] for p in pods
                        if not p["metadata"].get("deletionTimestamp")))  # fmt: skip

    def temporaries(self) -> list[str]:
        found = self.source.json("get", "volumesnapshots,pvc", "-n", self.ns, "-l", TEMPORARY)
        return [f"{i['kind']}/{i['metadata']['name']}" for i in found["items"]
                if not i["metadata"].get("deletionTimestamp")]  # fmt: skip

    def contents(self) -> list[str]:
        """The VolumeSnapshotContents of this namespace's snapshots still in the cluster."""
        items = self.source.json("get", "volumesnapshotcontents")["items"]
        refs = ((i["metadata"]["name"], i["spec"].get("volumeSnapshotRef") or {}) for i in items)
        return [name for name, ref in refs if ref.get("namespace") == self.ns]


def pod_on(name: str, image: str, script: str, claim: str, read_only: bool = False) -> Any:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "annotations": {} if read_only else HOOKS},
        "spec": {
            "nodeSelector": NODE_SELECTOR,
            "tolerations": [TOLERATION],
            "terminationGracePeriodSeconds": 1,
            "containers": [
                {
                    "name": "app",
                    "image": image,
                    "imagePullPolicy": "IfNotPresent",
                    "command": ["sh", "-c", script],
                    "readinessProbe": {
                        "exec": {"command": ["test", "-e", "/tmp/ready"]},
                        "periodSeconds": 1,
                    },
                    "volumeMounts": [{"name": "data", "mountPath": "/data"}],
                }
            ],
            "volumes": [
                {
                    "name": "data",
                    "persistentVolumeClaim": {"claimName": claim, "readOnly": read_only},
                }
            ],
        },
    }


@pytest.fixture(scope="module")
def app(dev_env: Env) -> Iterator[App]:
    image = os.environ.get("KUBE_MIGRATE_TEST_IMAGE")
    if not image or not os.environ.get("KUBE_MIGRATE_MOVER_IMAGE"):
        pytest.skip("KUBE_MIGRATE_TEST_IMAGE/KUBE_MIGRATE_MOVER_IMAGE not set: no real node here")
    tag = uuid.uuid4().hex[:6]
    a = App(dev_env, image, f"{dev_env.bucket}/snap-{tag}", f"snap-{tag}", f"snap-dst-{tag}")
    a.source.run("create", "namespace", a.ns)
    try:
        claim = {
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "metadata": {"name": "data"},
            "spec": {
                "accessModes": ["ReadWriteOnce"],
                "storageClassName": CLASS,
                "resources": {"requests": {"storage": "1Gi"}},
            },
        }
        a.source.create(a.ns, claim)
        pod = pod_on("writer", image, WRITER, "data")
        a.source.create(a.ns, {
            "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "writer"},
            "spec": {"replicas": 1, "strategy": {"type": "Recreate"},
                     "selector": {"matchLabels": {"app": "writer"}},
                     "template": {"metadata": {"labels": {"app": "writer"},
                                               "annotations": HOOKS},
                                  "spec": pod["spec"]}},
        })  # fmt: skip
        a.source.run("rollout", "status", "-n", a.ns, "deploy/writer", "--timeout=170s")
        yield a
    finally:
        for side, ns in ((a.source, a.ns), (a.target, f"{a.ns}-s"), (a.target, f"{a.ns}-l")):
            side.run("delete", "namespace", ns, "--wait=false", check=False)


def test_snapshot_copy_is_one_point_in_time_and_a_live_one_is_not(app: App) -> None:
    snap_out, snap = app.backup(f"{app.ns}-s", "--snapshot-volumes", "always")
    assert snap_out.returncode == 0, snap_out.stderr[-3000:]
    assert snap["volumes"]["fromSnapshots"] == 1 and snap["volumes"]["copied"] == 1
    frozen = snap["volumes"]["frozenSeconds"]
    assert app.temporaries() == []  # snapshot and temporary claim gone
    wait_for("the snapshot's content deleted", lambda: app.contents() == [], timeout=60)

    live_out, live = app.backup(f"{app.ns}-l", "--snapshot-volumes", "never")
    assert live_out.returncode == 0, live_out.stderr[-3000:]
    assert live["volumes"]["fromSnapshots"] == 0
    (row,) = app.describe(f"{app.ns}-l")["volumes"]
    assert row["method"] == "PodVolumeBackup" and "--snapshot-volumes never" in row["whyLive"]
    (srow,) = app.describe(f"{app.ns}-s")["volumes"]
    assert srow["method"] == "CSISnapshot" and srow["frozenSeconds"] == frozen

    counter, last, listing = app.read_back(f"{app.ns}-s", f"{app.ns}-s")
    assert listing == "ledger"
    assert counter == last > 0, "the snapshot copy is not one point in time"
    # the hooks held the writer for the snapshot's cut, not for a whole copy's time
    live_copy = live["volumes"]["seconds"]
    print(f"writer held {frozen:.2f}s with a snapshot; a live copy took {live_copy:.2f}s")
    assert frozen < live_copy

    # the live copy held nothing (the same hooks ran around it, too: they hold the writer
    # for its whole length, so its data would be consistent only at that price)
    app.source.run("annotate", "pod", "-n", app.ns, app.writer(),
                   *[f"{k}-" for k in HOOKS])  # fmt: skip
    out, nohooks = app.backup(f"{app.ns}-n", "--snapshot-volumes", "never")
    assert out.returncode == 0, out.stderr[-3000:]
    assert nohooks["volumes"]["frozenSeconds"] == 0
    counter, last, _ = app.read_back(f"{app.ns}-n", f"{app.ns}-l")
    assert counter != last, "a live copy of a busy claim happened to be consistent"
    print(f"live copy without hooks: counter {counter}, log's last line {last}")
    app.source.run("annotate", "pod", "-n", app.ns, app.writer(),
                   *[f"{k}={v}" for k, v in HOOKS.items()])  # fmt: skip


def test_preflight_says_which_claims_are_read_from_a_snapshot_and_why_not(app: App) -> None:
    def finding(*flags: str) -> tuple[int, dict[str, Any]]:
        out = run_cli("preflight", "--source-kubeconfig", app.env.source_kubeconfig,
                      "--target-kubeconfig", app.env.target_kubeconfig,
                      "--include-namespaces", app.ns, "--volumes", "all", "-o", "json",
                      *flags)  # fmt: skip
        assert out.stdout, out.stderr[-2000:]
        found = [f for f in json.loads(out.stdout)["findings"] if f["check"] == "volume"
                 and any(o.endswith(f"{app.ns}/data") for o in f["objects"])]  # fmt: skip
        assert len(found) == 1, found
        return out.returncode, found[0]

    _, snap = finding()
    assert "from a CSI snapshot (VolumeSnapshotClass csi-hostpath-snapclass)" in snap["message"]
    _, live = finding("--snapshot-volumes", "never")
    assert "live (not from a snapshot: --snapshot-volumes never)" in live["message"]
    assert snap["severity"] == live["severity"] == "info"


def test_a_failed_mover_leaves_no_snapshot_behind(app: App) -> None:
    out, doc = app.backup(f"{app.ns}-f", "--mover-image", "km-no-such-image:0")
    assert out.returncode != 0
    assert doc is not None and doc["volumes"]["copied"] == 0, out.stderr[-2000:]
    assert "ErrImagePull" in out.stderr, out.stderr[-2000:]
    (why,) = doc["volumes"]["notCopied"]
    assert "ErrImagePull" in why["reason"]
    assert app.temporaries() == []
    wait_for("the snapshot's content deleted", lambda: app.contents() == [], timeout=60)


def test_sigkill_leaves_labelled_leftovers_that_resume_removes(app: App, tmp_path: Path) -> None:
    playbook = tmp_path / "snap.yaml"
    playbook.write_text(
        yaml.safe_dump(
            {"apiVersion": "kube-migrate.io/v1alpha1", "kind": "Playbook",
             "metadata": {"name": "snapkill"},
             "spec": {"scope": {"includeNamespaces": [app.ns]},
                      "volumes": {"snapshotVolumes": "always"},
                      "steps": ["backup"]}}
        )
    )  # fmt: skip
    cmd = [str(Path(sys.executable).parent / "kube-migrate"), "run", str(playbook),
           "--bucket", app.bucket, "--source-kubeconfig", app.env.source_kubeconfig]  # fmt: skip
    proc = app.start_until_temporary_claim(cmd)
    proc.send_signal(signal.SIGKILL)
    _, err = proc.communicate()
    left = app.temporaries()
    assert any(t.startswith("VolumeSnapshot/") for t in left), left
    run = next(line.split("run ")[1].split()[0] for line in err.splitlines()
               if "run snapkill-" in line)  # fmt: skip
    out = run_cli("run", "--resume", run, timeout=900)
    assert out.returncode == 0, out.stderr[-3000:]
    assert app.temporaries() == []
    wait_for("the snapshots' contents deleted", lambda: app.contents() == [], timeout=60)
    # the writer was thawed by the resumed backup's own post hook
    assert (
        app.source.run("exec", "-n", app.ns, app.writer(), "--", "ls", "/tmp").count("pause") == 0
    )


def test_ctrl_c_removes_the_snapshot_and_its_claim_before_exiting(app: App) -> None:
    cmd = [str(Path(sys.executable).parent / "kube-migrate"), "backup", "create",
           f"{app.ns}-i", "--kubeconfig", app.env.source_kubeconfig, "--bucket", app.bucket,
           "--include-namespaces", app.ns, "--volumes", "all",
           "--snapshot-volumes", "always"]  # fmt: skip
    proc = app.start_until_temporary_claim(cmd)
    try:
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err[-2000:]
    assert app.temporaries() == [], err[-2000:]  # gone before the command ended
    wait_for("the snapshot's content deleted", lambda: app.contents() == [], timeout=60)


def test_kept_snapshot_is_described_and_deleted_with_the_backup(app: App) -> None:
    name = f"{app.ns}-k"
    out, _ = app.backup(name, "--keep-snapshots")
    assert out.returncode == 0, out.stderr[-3000:]
    (row,) = app.describe(name)["volumes"]
    kept = row["keptSnapshot"]
    vs = app.source.json("get", "volumesnapshot", "-n", app.ns, kept)
    assert vs["status"]["readyToUse"] is True
    assert "kube-migrate.io/temporary" not in vs["metadata"]["labels"]
    refused = app.km("backup", "delete", name, "--confirm",
                     "--kubeconfig", "/nonexistent/kubeconfig")  # fmt: skip
    assert refused.returncode != 0 and "kept 1 VolumeSnapshots" in refused.stderr
    assert app.describe(name)["volumes"]  # nothing deleted
    # its volume data goes too (a mover pod deletes its kopia snapshots, data and manifest),
    # and only its own: the module's other backups of the claim keep theirs
    store = open_store(app.bucket)
    ids = forget.snapshot_ids(store, name)
    assert list(ids) == [app.ns] and len(ids[app.ns]) == 2, ids
    others = {b: forget.snapshot_ids(store, b) for b in (f"{app.ns}-s", f"{app.ns}-l")}
    out = app.km("backup", "delete", name, "--confirm", "--kubeconfig", app.env.source_kubeconfig)
    assert out.returncode == 0, out.stderr
    assert f"2 kopia snapshots deleted from kopia/{app.ns}/ (0 already gone, 0 kept" in out.stderr
    assert {b: forget.snapshot_ids(store, b) for b in others} == others
    assert all(not ids[app.ns] & set().union(*o.values()) for o in others.values())
    wait_for("the kept snapshot deleted", lambda: app.source.run(
        "get", "volumesnapshot", "-n", app.ns, kept, check=False) == "", timeout=60)  # fmt: skip
    left = app.source.run("get", "pods,secrets", "-n", app.ns, "-l", "kube-migrate.io/mover",
                          "-o", "name")  # fmt: skip
    assert left.strip() == ""


def test_same_cluster_clone_moves_no_data_through_the_bucket(app: App, tmp_path: Path) -> None:
    """A run whose source and target are one cluster keeps the snapshot (its files'
    manifest only goes to the bucket) and makes the mapped claim from it; verify --data
    checks the clone against that manifest."""
    clone_ns = f"{app.ns}-c"
    playbook = tmp_path / "clone.yaml"
    playbook.write_text(
        yaml.safe_dump(
            {"apiVersion": "kube-migrate.io/v1alpha1", "kind": "Playbook",
             "metadata": {"name": "snapclone"},
             "spec": {"scope": {"includeNamespaces": [app.ns],
                                "includeResources": ["persistentvolumeclaims", "deployments"]},
                      "restore": {"namespaceMappings": {app.ns: clone_ns}, "replicas": 0},
                      "verify": {"data": True, "fromBackup": True},
                      "steps": ["backup", "restore", "verify"]}}
        )
    )  # fmt: skip
    before = kopia_bytes(app.bucket, app.ns)
    src = app.env.source_kubeconfig
    try:
        out = run_cli("run", str(playbook), "--bucket", app.bucket, "--report-dir",
                      str(tmp_path / "report"), "--source-kubeconfig", src,
                      "--target-kubeconfig", src, timeout=900)  # fmt: skip
        assert out.returncode == 0, out.stderr[-4000:]
        report = json.loads((tmp_path / "report" / "report.json").read_text())
        steps = {s["step"]: s["result"] for s in report["steps"]}
        assert steps["restore"]["clonedClaims"] == [f"{clone_ns}/data"]
        assert not steps["restore"].get("volumes")  # no mover wrote into it
        assert steps["backup"]["volumes"]["keptOnly"] == 1
        grown = kopia_bytes(app.bucket, app.ns) - before
        assert grown < 2_000_000, f"{grown} bytes went through the bucket for a clone"
        assert steps["verify"]["data"]["drifted"] == 0 and steps["verify"]["data"]["claims"] == 1
        counter, last, listing = app.read_claim(clone_ns, source_side=True)
        assert counter == last > 0 and listing == "ledger"
        # the objects binding the snapshot in the clone's namespace are gone; the kept
        # snapshot stays the backup's
        made = app.source.json("get", "volumesnapshots", "-n", clone_ns)["items"]
        assert made == []
        kept = app.source.json("get", "volumesnapshots", "-n", app.ns, "-l",
                               "kube-migrate.io/kept-snapshot=true")["items"]  # fmt: skip
        assert len(kept) == 1
    finally:
        app.source.run("delete", "namespace", clone_ns, "--wait=false", check=False)


def kopia_bytes(bucket: str, ns: str) -> int:
    return sum(o.size for o in open_store(bucket).list(f"kopia/{ns}/"))
