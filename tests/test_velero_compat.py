"""Velero itself reads our backups and we restore and verify Velero's: a real `velero
server` (built from the Go module proxy by hack/build.sh) runs outside the cluster
against the target plane, with a BackupStorageLocation on the same MinIO bucket."""

from __future__ import annotations

import json
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from migrate.backup.create import BackupOptions, create_backup
from migrate.cluster import Cluster
from migrate.restore.plan import RestoreOptions
from migrate.restore.run import run_restore
from migrate.store import open_store
from migrate.transform.mappings import Mappings
from migrate.transform.scope import Scope

from .helpers import ROOT, apply, apply_example, run_cli, wait_for

if str(ROOT / "hack") not in sys.path:
    sys.path.insert(0, str(ROOT / "hack"))
from devenv.velero import Velero, ensure_built, velero_server


@dataclass
class Written:
    """What the bucket prefix holds before Velero starts: our backup `ours` and a
    schedule's backup (its Job finished), so Velero's first sync, as it starts, lists
    them (it syncs once a minute after that)."""

    bucket: str
    ours_items: int
    schedule_job: str  # namespace/name


@pytest.fixture(scope="module")
def written(
    dev_env: Any, source: Cluster, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Written]:
    from .test_schedule import prepare, tidy, wait_job

    bucket = f"{dev_env.bucket}/velero-{uuid.uuid4().hex[:8]}"
    env = prepare(source, dev_env, tmp_path_factory.mktemp("vsched"), bucket)
    try:
        r = run_cli("schedule", "create", "nightly", "--schedule", "0 3 * * *", *env.flags,
                    "--include-namespaces", env.data, "--volumes", "none")  # fmt: skip
        assert r.returncode == 0, r.stderr
        kc = ["--kubeconfig", dev_env.source_kubeconfig, "-n", env.ns]
        r = run_cli("schedule", "run-now", "nightly", *kc)
        assert r.returncode == 0, r.stderr
        job = r.stdout.strip()
        apply_example(source, "nginx")  # while the Job runs
        summary = create_backup(
            source,
            open_store(bucket),
            BackupOptions("ours", Scope(include_namespaces=("nginx",))),
        )
        wait_job(source, env.ns, job)
        yield Written(bucket, summary.items, f"{env.ns}/{job}")
    finally:
        tidy(source, dev_env, env, "nightly")


@pytest.fixture(scope="module")
def velero(
    dev_env: Any, target: Cluster, written: Written, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Velero, str]]:
    """A velero server on the target plane, its location on the prefix `written` filled
    (hack/devenv/velero.py: CRDs, dummy Deployment, location; stopped and deleted after)."""
    ensure_built()
    prefix = written.bucket.removeprefix(f"{dev_env.bucket}/")
    with velero_server(
        target,
        dev_env.target_kubeconfig,
        dev_env.bucket,
        prefix,
        workdir=tmp_path_factory.mktemp("velero"),
        sync_at_start=True,
    ) as run:
        yield run, written.bucket


def test_velero_reads_and_restores_our_backup(
    velero: tuple[Velero, str], written: Written, source: Cluster, target: Cluster
) -> None:
    run, _ = velero
    started = time.monotonic()
    wait_for("Velero to sync our backup", lambda: "ours" in run("backup", "get"), 120)
    synced = time.monotonic() - started
    described = run("backup", "describe", "ours", "--details")
    assert "Completed" in described and "apps/v1/Deployment:" in described
    assert "nginx/nginx" in described and "v1.30.14" in described
    dst = f"from-ours-{uuid.uuid4().hex[:5]}"
    out = run(
        "restore",
        "create",
        "vr-ours",
        "--from-backup",
        "ours",
        "--namespace-mappings",
        f"nginx:{dst}",
        "--wait",
    )
    assert "Completed" in out, out
    progress = json.loads(run("restore", "get", "vr-ours", "-o", "json"))["status"]["progress"]
    # Velero counts every item of our backup, and has restored each of them
    assert progress["itemsRestored"] == progress["totalItems"] == written.ours_items, progress
    deploy = target.get(target.discovery().resolve("deployments.apps"), "nginx", dst)
    assert deploy["spec"]["template"]["spec"]["containers"][0]["image"].endswith("nginx:1.27")
    print(f"Velero synced our backup in {synced:.0f}s")
    target.delete(target.discovery().resolve("namespaces"), dst)


def test_we_restore_and_verify_velero_backups(
    velero: tuple[Velero, str], dev_env: Any, source: Cluster, target: Cluster
) -> None:
    run, bucket = velero
    ns = f"vsrc-{uuid.uuid4().hex[:5]}"
    apply(
        target,
        [
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}},
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": "cfg", "namespace": ns},
                "data": {"k": "v"},
            },
        ],
    )
    out = run(
        "backup",
        "create",
        "theirs",
        "--include-namespaces",
        ns,
        "--snapshot-volumes=false",
        "--wait",
    )
    assert "Completed" in out, out
    store = open_store(bucket)
    dst = f"from-velero-{uuid.uuid4().hex[:5]}"
    summary = run_restore(
        source,
        store,
        RestoreOptions(
            name=f"r-{uuid.uuid4().hex[:5]}",
            backup="theirs",
            mappings=Mappings(namespaces={ns: dst}),
        ),
    )
    assert summary.phase == "Completed", summary.as_dict(details=True)
    cm = source.discovery().resolve("configmaps")
    assert source.get(cm, "cfg", dst)["data"] == {"k": "v"}
    # every item Velero backed up has a result of ours, and none failed
    backed_up = json.loads(run("backup", "get", "theirs", "-o", "json"))["status"]["progress"]
    results = sum(summary.counts[k] for k in ("created", "updated", "skipped", "failed"))
    assert results == backed_up["itemsBackedUp"] == backed_up["totalItems"], summary.counts
    assert summary.counts["failed"] == 0 and summary.counts["created"] >= 2, summary.counts

    def verify(kubeconfig: str, *args: str) -> tuple[int, dict[str, Any]]:
        """`kube-migrate verify --from-backup theirs` against one cluster: its exit code
        and its report."""
        out = run_cli(
            "verify", "--from-backup", "theirs", "--bucket", bucket,
            "--target-kubeconfig", kubeconfig, "-o", "json", *args,
        )  # fmt: skip
        assert out.returncode in (0, 1), out.stderr
        return out.returncode, json.loads(out.stdout)

    # Velero's backup against the cluster it was taken from, and against our restore
    code, report = verify(dev_env.target_kubeconfig)
    assert code == 0 and report["summary"]["drift"] is False, report["summary"]
    compared = {(o["kind"], o.get("namespace"), o["name"]) for o in report["objects"]}
    assert ("ConfigMap", ns, "cfg") in compared, compared
    code, report = verify(dev_env.source_kubeconfig, "--namespace-mappings", f"{ns}:{dst}")
    assert code == 0 and report["summary"]["equal"] == report["summary"]["objects"] > 1
    source.patch(cm, "cfg", {"data": {"k": "changed"}}, dst)  # drift is found
    code, report = verify(dev_env.source_kubeconfig, "--namespace-mappings", f"{ns}:{dst}")
    changed = [(o["kind"], o["status"]) for o in report["objects"] if o["status"] != "equal"]
    assert code == 1 and changed == [("ConfigMap", "changed")], report["summary"]
    for c, name in ((source, dst), (target, ns)):
        c.delete(c.discovery().resolve("namespaces"), name)


def test_velero_lists_scheduled_backups_with_their_schedule(velero: tuple[Velero, str]) -> None:
    """`velero backup get -l velero.io/schedule-name=NAME` (Velero's own label) lists a
    schedule's backups."""
    run, _ = velero

    def listed() -> list[str]:
        out = run("backup", "get", "-l", "velero.io/schedule-name=nightly")
        return [line for line in out.splitlines() if line.startswith("nightly-")]

    rows = wait_for("Velero to sync the scheduled backup", listed, 90)
    assert len(rows) == 1 and "Completed" in rows[0], rows
    assert "velero.io/schedule-name=nightly" in run("backup", "describe", rows[0].split()[0])
    assert "nightly-" not in run("backup", "get", "-l", "velero.io/schedule-name=other")
