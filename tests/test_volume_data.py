"""Volume data on the real nodes, with real kopia movers and MinIO: a StatefulSet (two
replicas, claim templates) and a Deployment with its own claim, filled with large random
files, thousands of small ones, nested and empty dirs, a symlink, a hardlink, odd names and
non-root owners, migrate with `kube-migrate run` into a mapped namespace; `verify --data`
passes, then fails naming a tampered file; a second backup of unchanged data uploads almost
nothing (measured in the bucket); a wrong repository password and a too-small target claim
fail with their exit codes before writing anything.
"""

from __future__ import annotations

import gzip
import json
import os
import re
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from migrate.cli.progress import INTERVAL_ENV
from migrate.store import open_store
from migrate.volumes.password import ID_KEY
from migrate.volumes.quiesce import ANNOTATION as QUIESCED
from tests.conftest import Env
from tests.helpers import ROOT, run_cli, wait_for
from tests.test_real_nodes import NODE_SELECTOR, TOLERATION, kube_for

BIG_MB = 35  # two files per pod: 210 MB of random data over the three claims
SMALL_PER_REPLICA = 5000  # + the Deployment's 10,000: 20,000 small files
FILL = """
set -e
cd /data
if [ ! -e .filled ]; then
  mkdir -p big small/a/b/c "odd dir" empty-dir
  head -c {big}000000 /dev/urandom > big/one.bin
  head -c {big}000000 /dev/urandom > big/two.bin
  i=0; while [ $i -lt {small} ]; do echo "file $i $HOSTNAME" > small/a/b/c/f$i; i=$((i+1)); done
  : > empty.txt
  echo hi > "odd dir/naïve café ✓.txt"
  ln -s ../big/one.bin small/link-to-one
  ln big/two.bin big/two-hardlink.bin
  echo owned > owned.txt; chown 1000:2000 owned.txt; chmod 640 owned.txt
  chmod 750 small/a/b
  touch .filled
fi
exec sleep 3600000
"""


# Velero's hook annotations: the pre hook's marker is in the backup, the post hook's is not
HOOKS = {
    "pre.hook.backup.velero.io/command": '["/bin/sh", "-c", "echo pre > /data/pre-hook-marker"]',
    "pre.hook.backup.velero.io/timeout": "20s",
    "post.hook.backup.velero.io/command": '["/bin/sh", "-c", "echo post > /data/post-hook-marker"]',
}


def container(image: str, big: int, small: int) -> dict[str, Any]:
    return {
        "name": "app",
        "image": image,
        "imagePullPolicy": "IfNotPresent",
        "command": ["sh", "-c", FILL.format(big=big, small=small)],
        "readinessProbe": {
            "exec": {"command": ["test", "-e", "/data/.filled"]},
            "periodSeconds": 1,
        },
        "volumeMounts": [{"name": "data", "mountPath": "/data"}],
    }


def app(image: str) -> list[dict[str, Any]]:
    pod_spec = {
        "nodeSelector": NODE_SELECTOR,
        "tolerations": [TOLERATION],
        "terminationGracePeriodSeconds": 1,
    }
    return [
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "db"},
            "spec": {"clusterIP": "None", "selector": {"app": "db"}},
        },
        {
            "apiVersion": "apps/v1",
            "kind": "StatefulSet",
            "metadata": {"name": "db"},
            "spec": {
                "replicas": 2,
                "serviceName": "db",
                "selector": {"matchLabels": {"app": "db"}},
                "template": {
                    "metadata": {"labels": {"app": "db"}, "annotations": HOOKS},
                    "spec": {
                        **pod_spec,
                        "containers": [container(image, BIG_MB, SMALL_PER_REPLICA)],
                    },
                },
                "volumeClaimTemplates": [
                    {
                        "metadata": {"name": "data"},
                        "spec": {
                            "accessModes": ["ReadWriteOnce"],
                            "resources": {"requests": {"storage": "1Gi"}},
                        },
                    }
                ],
            },
        },
        {
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "metadata": {"name": "files", "labels": {"data": "plain"}},
            "spec": {
                "accessModes": ["ReadWriteOnce"],
                "resources": {"requests": {"storage": "1Gi"}},
            },
        },
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "files"},
            "spec": {
                "replicas": 1,
                "strategy": {"type": "Recreate"},
                "selector": {"matchLabels": {"app": "files"}},
                "template": {
                    "metadata": {"labels": {"app": "files"}},
                    "spec": {
                        **pod_spec,
                        "containers": [container(image, BIG_MB, 2 * SMALL_PER_REPLICA)],
                        "volumes": [
                            {"name": "data", "persistentVolumeClaim": {"claimName": "files"}}
                        ],
                    },
                },
            },
        },
    ]


def kopia_bytes(bucket: str, ns: str) -> int:
    store = open_store(bucket)
    return sum(o.size for o in store.list(f"kopia/{ns}/"))


class Migrated:
    def __init__(self, env: Env, bucket: str, src: str, dst: str, reports: Path) -> None:
        self.env, self.bucket, self.src, self.dst, self.reports = env, bucket, src, dst, reports
        self.source, self.target = kube_for(env, "source"), kube_for(env, "target")
        self.backup = ""
        self.report: dict[str, Any] = {}
        self.run_stderr = ""

    def km(self, *args: str) -> subprocess.CompletedProcess[str]:
        return run_cli(*args, "--bucket", self.bucket, timeout=900)


@pytest.fixture(scope="module")
def migrated(dev_env: Env, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Migrated]:
    image = os.environ.get("KUBE_MIGRATE_TEST_IMAGE")
    if not image or not os.environ.get("KUBE_MIGRATE_MOVER_IMAGE"):
        pytest.skip("KUBE_MIGRATE_TEST_IMAGE/KUBE_MIGRATE_MOVER_IMAGE not set: no real node here")
    tag = uuid.uuid4().hex[:6]
    m = Migrated(
        dev_env,
        f"{dev_env.bucket}/vd-{tag}",
        f"vd-src-{tag}",
        f"vd-dst-{tag}",
        tmp_path_factory.mktemp("vd-reports"),
    )
    m.source.run("create", "namespace", m.src)
    try:
        for obj in app(image):
            m.source.create(m.src, obj)
        for w in ("statefulset/db", "deployment/files"):  # a StatefulSet starts db-1 after db-0
            m.source.run("rollout", "status", "-n", m.src, w, "--timeout=170s")
        playbook = tmp_path_factory.mktemp("vd-pb") / "data.yaml"
        playbook.write_text(
            yaml.safe_dump(
                {
                    "apiVersion": "kube-migrate.io/v1alpha1",
                    "kind": "Playbook",
                    "metadata": {"name": "data-move"},
                    "spec": {
                        "scope": {"includeNamespaces": [m.src]},
                        "restore": {"namespaceMappings": {m.src: m.dst}},
                        "waitReady": {"timeout": "5m"},
                        "steps": ["backup", "waitForSync", "restore", "waitReady", "verify"],
                    },
                }
            )
        )
        os.environ[INTERVAL_ENV] = "1"  # progress lines: stderr is a pipe here
        try:
            out = m.km("run", str(playbook), "--report-dir", str(m.reports))
        finally:
            os.environ.pop(INTERVAL_ENV)
        m.run_stderr = out.stderr
        m.report = json.loads((m.reports / "report.json").read_text())
        assert out.returncode == 0, out.stderr[-4000:]
        m.backup = next(s for s in m.report["steps"] if s["step"] == "backup")["result"]["name"]
        yield m
    finally:
        m.source.run("delete", "namespace", m.src, "--wait=false", check=False)
        m.target.run("delete", "namespace", m.dst, "--wait=false", check=False)


SIZE = r"([\d.]+)(B|KiB|MiB|GiB)"  # as units.human_bytes writes it


def size(number: str, unit: str) -> float:
    return float(number) * 1024 ** ["B", "KiB", "MiB", "GiB"].index(unit)


def step(m: Migrated, name: str) -> dict[str, Any]:
    return dict(next(s for s in m.report["steps"] if s["step"] == name)["result"])


def test_run_moves_every_claims_data_and_verifies_it(migrated: Migrated) -> None:
    m = migrated
    vols = step(m, "backup")["volumes"]
    assert vols["copied"] == 3 and vols["notCopied"] == [], vols
    assert vols["files"] >= 20000 and vols["bytes"] >= 3 * 2 * BIG_MB * 10**6
    restored = {r["claim"]: r for r in step(m, "restore")["volumes"]}
    assert set(restored) == {f"{m.dst}/data-db-0", f"{m.dst}/data-db-1", f"{m.dst}/files"}
    data = step(m, "verify")["data"]
    assert data["claims"] == 3 and data["drifted"] == 0, data
    # the copies' progress in bytes, from the movers' own counts, both ways (their counts
    # between start and end: test_mover_host; these copies take a few seconds)
    for what in (f"volume data of {m.backup}: \\d/3", r"volume data of \d claim\(s\): \d/\d"):
        shown = re.findall(rf"{what} volumes, {SIZE} of {SIZE}, {SIZE}/s, ETA", m.run_stderr)
        assert shown, (what, m.run_stderr[-3000:])
        assert all(size(a, u) <= size(b, v) for a, u, b, v, _, _ in shown), shown
        assert any(size(a, u) > 0 for a, u, _, _, _, _ in shown), shown
    # the workload on the target reads the restored files, owners and links intact
    ls = m.target.run(
        "exec",
        "-n",
        m.dst,
        "db-1",
        "--",
        "sh",
        "-c",
        "stat -c '%u:%g %a' /data/owned.txt; readlink /data/small/link-to-one; "
        "stat -c %h /data/big/two.bin; cat '/data/odd dir/naïve café ✓.txt'; "
        "ls /data/small/a/b/c | wc -l",
    )
    assert ls.split("\n")[:5] == [
        "1000:2000 640",
        "../big/one.bin",
        "2",
        "hi",
        str(SMALL_PER_REPLICA),
    ]
    marks = "for f in pre post; do test -e /data/$f-hook-marker && echo $f; done; true"
    assert m.source.run("exec", "-n", m.src, "db-0", "--", "sh", "-c", marks).split() == [
        "pre",
        "post",
    ]
    assert m.target.run("exec", "-n", m.dst, "db-0", "--", "sh", "-c", marks).split() == ["pre"]
    pvbs = open_store(m.bucket).get(f"backups/{m.backup}/{m.backup}-podvolumebackups.json.gz")
    docs = json.loads(gzip.decompress(pvbs))
    assert {d["spec"]["tags"]["pvc"] for d in docs} == {"data-db-0", "data-db-1", "files"}
    assert all(d["status"]["phase"] == "Completed" and d["status"]["snapshotID"] for d in docs)
    assert {d["spec"]["uploaderType"] for d in docs} == {"kopia"}
    described = m.km("backup", "describe", m.backup, "-o", "json")
    assert described.returncode == 0, described.stderr
    per_claim = {v["claim"]: v for v in json.loads(described.stdout)["volumes"]}
    assert set(per_claim) == {f"{m.src}/data-db-0", f"{m.src}/data-db-1", f"{m.src}/files"}
    assert all(v["files"] > 5000 and v["bytes"] > 0 and v["snapshot"] for v in per_claim.values())


def test_a_dr_drill_restores_verifies_the_data_and_removes_only_its_own(
    migrated: Migrated, tmp_path: Path
) -> None:
    """The shipped disaster-recovery playbook (pointed at this module's backup and
    namespace) on the real claims: its own volumes, the data verified file by file
    against the backup, then its namespace, claims and volumes gone, while the migrated
    copy beside it on the same cluster and the source stay as they were."""
    m = migrated
    drill = f"{m.src}-drill"
    book = yaml.safe_load((ROOT / "playbooks" / "disaster-recovery.yaml").read_text())
    spec = book["spec"]
    spec["scope"]["includeNamespaces"] = [m.src]
    spec["restore"]["namespaceMappings"] = {m.src: drill}
    spec["backup"] = {"name": m.backup}  # picking a schedule's newest: test_schedule
    (tmp_path / "drill.yaml").write_text(yaml.safe_dump(book))
    before = {pv["metadata"]["name"] for pv in m.target.json("get", "pv")["items"]}
    out = m.km("run", str(tmp_path / "drill.yaml"), "--report-dir", str(tmp_path / "r"))
    assert out.returncode == 0, out.stderr[-4000:]
    doc = json.loads((tmp_path / "r" / "report.json").read_text())
    by = {s["step"]: s for s in doc["steps"]}
    assert [s["status"] for s in doc["steps"]] == ["succeeded"] * 4, doc["steps"]
    restored = {r["claim"] for r in by["restore"]["result"]["volumes"]}
    assert restored == {f"{drill}/data-db-0", f"{drill}/data-db-1", f"{drill}/files"}
    data = by["verify"]["result"]["data"]
    assert data["claims"] == 3 and data["drifted"] == 0, data
    assert sum(c["files"] for c in data["checks"]) >= 20000, data
    gone = by["cleanup"]["result"]
    assert gone["namespaces"] == [drill] and gone["stillTerminating"] == [], gone
    assert len(gone["volumes"]) == 3 and gone["volumesKept"] == [], gone
    took = {s["step"]: s["seconds"] for s in doc["steps"]}
    print(f"DR drill on 3 claims: {took} (seconds)")
    after = m.target.json("get", "pv")["items"]
    assert not [pv for pv in after if pv["spec"].get("claimRef", {}).get("namespace") == drill]
    assert before <= {pv["metadata"]["name"] for pv in after}  # none of the others went
    assert m.target.run("get", "namespace", drill, check=False) == ""
    claims = m.target.json("get", "pvc", "-n", m.dst)["items"]
    assert sorted(c["status"]["phase"] for c in claims) == ["Bound"] * 3
    assert len(m.source.json("get", "pvc", "-n", m.src)["items"]) == 3


def test_verify_data_names_a_tampered_file(migrated: Migrated) -> None:
    m = migrated
    m.target.run(
        "exec",
        "-n",
        m.dst,
        "db-0",
        "--",
        "sh",
        "-c",
        "printf X | dd of=/data/big/one.bin bs=1 seek=1000 conv=notrunc 2>/dev/null",
    )
    out = m.km(
        "verify",
        "--from-backup",
        m.backup,
        "--data",
        "--include-namespaces",
        m.src,
        "--namespace-mappings",
        f"{m.src}:{m.dst}",
    )
    assert out.returncode == 1, out.stderr[-3000:]
    assert "big/one.bin" in out.stderr and "sha256" in out.stderr
    assert f"{m.dst}/data-db-1" in out.stderr  # the untouched claims are reported ok


def test_second_backup_of_unchanged_data_uploads_almost_nothing(migrated: Migrated) -> None:
    """The Deployment's claim (no hooks rewrite a marker in it) backed up again: the
    bucket grows by < 0.1% of its bytes, measured in the bucket."""
    m = migrated
    before = kopia_bytes(m.bucket, m.src)
    out = m.km(
        "backup",
        "create",
        "--kubeconfig",
        m.env.source_kubeconfig,
        f"{m.backup}-again",
        "--include-namespaces",
        m.src,
        "--selector",
        "data=plain",
        "--volumes",
        "all",
        "-o",
        "json",
    )
    assert out.returncode == 0, out.stderr[-3000:]
    grown = kopia_bytes(m.bucket, m.src) - before
    vols = json.loads(out.stdout)["volumes"]
    assert vols["copied"] == 1 and vols["files"] > 2 * SMALL_PER_REPLICA, vols
    assert vols["bytes"] > 2 * BIG_MB * 10**6 and grown < vols["bytes"] / 1000, (grown, vols)


def test_killed_mover_is_run_again_and_never_counts_a_partial_copy(migrated: Migrated) -> None:
    m = migrated
    killed: list[str] = []

    def kill_first_mover() -> None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not killed:
            pods = m.source.json("get", "pods", "-n", m.src, "-l", "kube-migrate.io/mover=backup")
            for p in pods["items"]:
                if p["status"].get("phase") == "Running":
                    m.source.run(
                        "delete",
                        "pod",
                        "-n",
                        m.src,
                        p["metadata"]["name"],
                        "--grace-period=0",
                        "--force",
                        check=False,
                    )
                    killed.append(p["metadata"]["name"])
                    return
            time.sleep(0.2)

    t = threading.Thread(target=kill_first_mover)
    t.start()
    out = m.km(
        "backup",
        "create",
        "--kubeconfig",
        m.env.source_kubeconfig,
        f"{m.backup}-killed",
        "--include-namespaces",
        m.src,
        "--volumes",
        "all",
        "-o",
        "json",
    )
    t.join()
    assert killed, "no mover pod was seen running"
    assert out.returncode == 0, out.stderr[-3000:]
    assert "trying again" in out.stderr
    assert json.loads(out.stdout)["volumes"]["copied"] == 3
    left = m.source.json(
        "get", "pods,secrets", "-n", m.src, "-l", "app.kubernetes.io/managed-by=kube-migrate"
    )
    assert left["items"] == [] or all(i["metadata"].get("deletionTimestamp") for i in left["items"])


def test_wrong_repository_password_exits_6_showing_no_data(
    migrated: Migrated, tmp_path: Path
) -> None:
    m = migrated
    repo_id = open_store(m.bucket).get(ID_KEY).decode().strip()
    state = tmp_path / "state"
    (state / "repository-passwords").mkdir(parents=True)
    (state / "repository-passwords" / repo_id).write_text("not-the-password\n")
    out = subprocess.run(
        [
            str(Path(sys.executable).parent / "kube-migrate"),
            "restore",
            "create",
            "wrongpw",
            "--from-backup",
            m.backup,
            "--bucket",
            m.bucket,
            "--namespace-mappings",
            f"{m.src}:{m.dst}-pw",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        env={**os.environ, "KUBE_MIGRATE_STATE_DIR": str(state)},
    )
    m.target.run("delete", "namespace", f"{m.dst}-pw", "--wait=false", check=False)
    assert out.returncode == 6, out.stderr[-3000:]
    assert "wrong-password" in out.stderr and "owned" not in out.stderr


def test_too_small_target_claim_exits_5_before_writing(migrated: Migrated, tmp_path: Path) -> None:
    m = migrated
    mods = tmp_path / "small.yaml"
    mods.write_text(
        yaml.safe_dump(
            {
                "version": "v1",
                "resourceModifierRules": [
                    {
                        "conditions": {"groupResource": "persistentvolumeclaims"},
                        "patches": [
                            {
                                "operation": "replace",
                                "path": "/spec/resources/requests/storage",
                                "value": "1Mi",
                            }
                        ],
                    }
                ],
            }
        )
    )
    ns = f"{m.dst}-small"
    out = m.km(
        "restore",
        "create",
        "toosmall",
        "--from-backup",
        m.backup,
        "--namespace-mappings",
        f"{m.src}:{ns}",
        "--resource-modifiers",
        str(mods),
    )
    assert out.returncode == 5, out.stderr[-3000:]
    assert "too small" in out.stderr and "1Mi" in out.stderr
    gone = m.target.run("get", "namespace", ns, check=False)
    assert gone == "", gone


def test_pvc_size_mappings_checked_by_preflight_and_refused_by_restore(migrated: Migrated) -> None:
    m = migrated
    ns = f"{m.dst}-sized"
    flags = ["--from-backup", m.backup, "--namespace-mappings", f"{m.src}:{ns}",
             "--pvc-size-mappings", f"{m.src}/data-db-*:1Mi,files:5Gi"]  # fmt: skip
    out = m.km("preflight", "--target-kubeconfig", m.env.target_kubeconfig, *flags, "-o", "json")
    assert out.returncode == 3, out.stderr[-3000:]
    found = [f for f in json.loads(out.stdout)["findings"] if f["check"] == "volume"]
    small = {o: f for f in found if f["severity"] == "error" for o in f["objects"]}
    assert set(small) == {f"PersistentVolumeClaim {ns}/data-db-{i}" for i in (0, 1)}, found
    for f in small.values():
        assert "asking 1Mi" in f["message"] and "too small" in f["message"], f
        assert f"--pvc-size-mappings {m.src}/data-db-" in f["fix"], f
    files = next(f for f in found if f"PersistentVolumeClaim {ns}/files" in f["objects"])
    assert files["severity"] == "info" and "asking 5Gi" in files["message"], files
    assert "restored by a mover pod first" in files["message"]
    out = m.km("restore", "create", "sized", *flags)
    assert out.returncode == 5, out.stderr[-3000:]
    assert "too small" in out.stderr and f"{ns}/data-db-0 asks for 1Mi" in out.stderr
    assert f"{ns}/files" not in out.stderr.split("too small")[1].split("\n")[0]
    gone = m.target.run("get", "namespace", ns, check=False)
    assert gone == "", gone


def replicas(k: Any, ns: str) -> dict[str, int]:
    out = k.json("get", "deployments,statefulsets", "-n", ns)
    return {f"{i['kind']}/{i['metadata']['name']}": i["spec"]["replicas"] for i in out["items"]}


def test_quiesce_scale_down_survives_a_crash_and_resume_gives_replicas_back(
    migrated: Migrated, tmp_path: Path
) -> None:
    """The run scales the workloads to 0 for the copy; killed meanwhile, it leaves them at
    0 and the journal says so; `run --resume` gives them back first, then finishes."""
    m = migrated
    assert replicas(m.source, m.src) == {"Deployment/files": 1, "StatefulSet/db": 2}
    playbook = tmp_path / "quiesce.yaml"
    playbook.write_text(
        yaml.safe_dump(
            {"apiVersion": "kube-migrate.io/v1alpha1", "kind": "Playbook",
             "metadata": {"name": "quiesce"},
             "spec": {"scope": {"includeNamespaces": [m.src]},
                      "volumes": {"quiesce": "scale-down", "perNode": 1, "parallelism": 1},
                      "steps": ["backup"]}}
        )
    )  # fmt: skip
    cmd = [str(Path(sys.executable).parent / "kube-migrate"), "run", str(playbook),
           "--bucket", m.bucket]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:  # stopped, and a mover copying
        movers = m.source.json("get", "pods", "-n", m.src, "-l", "kube-migrate.io/mover=backup")
        if replicas(m.source, m.src) == {"Deployment/files": 0, "StatefulSet/db": 0} and any(
            p["status"].get("phase") == "Running" for p in movers["items"]
        ):
            break
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.3)
    else:
        raise AssertionError("never saw the workloads stopped with a mover running")
    proc.kill()
    _, err = proc.communicate()
    assert replicas(m.source, m.src) == {"Deployment/files": 0, "StatefulSet/db": 0}
    run = next(
        line.split("run ")[1].split()[0] for line in err.splitlines() if "run quiesce-" in line
    )
    out = run_cli("run", "--resume", run, timeout=900)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "gave 2 workload(s) their replicas back" in out.stderr
    assert replicas(m.source, m.src) == {"Deployment/files": 1, "StatefulSet/db": 2}
    for w in ("statefulset/db", "deployment/files"):
        m.source.run("rollout", "status", "-n", m.src, w, "--timeout=170s")


def test_backup_create_quiesce_is_recorded_on_the_workloads_and_healed_by_the_next(
    migrated: Migrated,
) -> None:
    """`backup create --quiesce scale-down` has no run journal: killed while the workloads
    are at 0, it leaves their replicas in an annotation on them, and the next backup of
    that scope gives them back before anything else."""
    m = migrated
    assert replicas(m.source, m.src) == {"Deployment/files": 1, "StatefulSet/db": 2}
    scope = ["--kubeconfig", m.env.source_kubeconfig, "--include-namespaces", m.src]
    cmd = [str(Path(sys.executable).parent / "kube-migrate"), "backup", "create", "q1",
           "--bucket", m.bucket, *scope, "--volumes", "all", "--quiesce", "scale-down"]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(
            "the workloads stopped with a mover running",
            lambda: replicas(m.source, m.src) == {"Deployment/files": 0, "StatefulSet/db": 0}
            and any(p["status"].get("phase") == "Running" for p in m.source.json(
                "get", "pods", "-n", m.src, "-l", "kube-migrate.io/mover=backup")["items"]),
            timeout=240,
        )  # fmt: skip
    finally:
        proc.kill()
        proc.communicate()
    marks = m.source.json("get", "deployments,statefulsets", "-n", m.src)["items"]
    assert {i["metadata"]["name"]: i["metadata"]["annotations"][QUIESCED] for i in marks} == {
        "files": "1",
        "db": "2",
    }
    out = m.km(
        "backup", "create", "q2", *scope, "--volumes", "annotated", "--quiesce", "scale-down"
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert "gave 2 workload(s) their replicas back: an interrupted backup" in out.stderr
    assert replicas(m.source, m.src) == {"Deployment/files": 1, "StatefulSet/db": 2}
    marks = m.source.json("get", "deployments,statefulsets", "-n", m.src)["items"]
    assert all(QUIESCED not in (i["metadata"].get("annotations") or {}) for i in marks)
    m.source.run("delete", "pods", "-n", m.src, "-l", "kube-migrate.io/mover", "--wait=false")
    for w in ("statefulset/db", "deployment/files"):
        m.source.run("rollout", "status", "-n", m.src, w, "--timeout=170s")
