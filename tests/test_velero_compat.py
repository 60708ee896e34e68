"""Velero itself reads our backups and we restore Velero's: a real `velero server` (built
from the Go module proxy by hack/build.sh) runs outside the cluster against the target
plane, with a BackupStorageLocation on the same MinIO bucket."""

from __future__ import annotations

import os
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from migrate.backup.create import BackupOptions, create_backup
from migrate.cluster import Cluster
from migrate.restore.plan import RestoreOptions
from migrate.restore.run import run_restore
from migrate.store import open_store
from migrate.transform.mappings import Mappings
from migrate.transform.scope import Scope

from .helpers import ROOT, apply, apply_example, wait_for

CACHE = Path(os.environ.get("KUBE_MIGRATE_CACHE", Path.home() / ".cache" / "kube-migrate"))


def _versions() -> dict[str, str]:
    pairs = (
        ln.split("=", 1)
        for ln in (ROOT / "hack" / "versions.env").read_text().splitlines()
        if "=" in ln and not ln.startswith("#")
    )
    return {k.strip(): v.strip() for k, v in pairs}


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Velero:
    def __init__(self, binary: Path, kubeconfig: str, namespace: str) -> None:
        self.binary, self.kubeconfig, self.namespace = binary, kubeconfig, namespace

    def __call__(self, *args: str, timeout: float = 180) -> str:
        out = subprocess.run(
            [str(self.binary), *args, "-n", self.namespace, "--kubeconfig", self.kubeconfig],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        assert out.returncode == 0, out.stderr + out.stdout
        return out.stdout


@pytest.fixture(scope="module")
def velero(
    dev_env: Any, target: Cluster, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Velero, str]]:
    """A velero server on the target plane, its location on a fresh prefix of the bucket."""
    version = _versions()["VELERO"]
    home = CACHE / "bin" / f"velero-{version}"
    if not (home / ".stamp").exists():
        subprocess.run([str(ROOT / "hack" / "build.sh"), "velero"], check=True)
    ns, prefix = f"velero-{uuid.uuid4().hex[:6]}", f"velero-{uuid.uuid4().hex[:8]}"
    crds = subprocess.run(
        [str(home / "velero"), "install", "--crds-only", "--dry-run", "-o", "yaml"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    listed = [d for d in yaml.safe_load_all(crds) if d]  # a v1 List of CRDs
    items = [i for d in listed for i in (d.get("items") or [d])]
    docs = [d for d in items if d.get("kind") == "CustomResourceDefinition"]
    assert len(docs) >= 10, "velero install --crds-only printed no CRDs"
    for items in ([d] for d in docs):
        apply(target, items)
    workdir = tmp_path_factory.mktemp("velero")
    creds = workdir / "credentials"
    creds.write_text(
        f"[default]\naws_access_key_id={os.environ['AWS_ACCESS_KEY_ID']}\n"
        f"aws_secret_access_key={os.environ['AWS_SECRET_ACCESS_KEY']}\n"
    )
    apply(
        target,
        [
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}},
            # restore item actions look up Velero's own Deployment for its image
            {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "metadata": {"name": "velero", "namespace": ns, "labels": {"component": "velero"}},
                "spec": {
                    "replicas": 0,
                    "selector": {"matchLabels": {"component": "velero"}},
                    "template": {
                        "metadata": {"labels": {"component": "velero"}},
                        "spec": {
                            "containers": [{"name": "velero", "image": f"velero/velero:{version}"}]
                        },
                    },
                },
            },
            {
                "apiVersion": "velero.io/v1",
                "kind": "BackupStorageLocation",
                "metadata": {"name": "default", "namespace": ns},
                "spec": {
                    "provider": "aws",
                    "default": True,
                    "objectStorage": {
                        "bucket": dev_env.bucket.removeprefix("s3://"),
                        "prefix": prefix,
                    },
                    "config": {
                        "region": os.environ.get("AWS_REGION", "us-east-1"),
                        "s3ForcePathStyle": "true",
                        "s3Url": os.environ["AWS_ENDPOINT_URL"],
                        "checksumAlgorithm": "",
                    },
                },
            },
        ],
    )
    log = (workdir / "server.log").open("wb")
    server = subprocess.Popen(
        [
            str(home / "velero"),
            "server",
            "--kubeconfig",
            dev_env.target_kubeconfig,
            "--namespace",
            ns,
            "--plugin-dir",
            str(home / "plugins"),
            "--metrics-address",
            f"127.0.0.1:{_free_port()}",
            "--profiler-address",
            f"127.0.0.1:{_free_port()}",
            "--backup-sync-period",
            "5s",
            "--store-validation-frequency",
            "5s",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=workdir,
        env={**os.environ, "AWS_SHARED_CREDENTIALS_FILE": str(creds)},
    )
    bsl = target.discovery(refresh=True).for_kind("velero.io/v1", "BackupStorageLocation")
    assert bsl is not None
    try:
        wait_for(
            "the location Available",
            lambda: (
                (target.get(bsl, "default", ns).get("status") or {}).get("phase") == "Available"
            ),
            90,
        )
        yield Velero(home / "velero", dev_env.target_kubeconfig, ns), f"{dev_env.bucket}/{prefix}"
    finally:
        server.terminate()
        server.wait(30)
        log.close()
        # Velero's finalizers on its Restores would hold the namespace forever without it
        restores = target.discovery().for_kind("velero.io/v1", "Restore")
        for obj in target.list(restores, ns) if restores else ():
            target.patch(restores, obj["metadata"]["name"], {"metadata": {"finalizers": None}}, ns)  # type: ignore[arg-type]
        target.delete(target.discovery().resolve("namespaces"), ns)


def test_velero_reads_and_restores_our_backup(
    velero: tuple[Velero, str], source: Cluster, target: Cluster
) -> None:
    run, bucket = velero
    apply_example(source, "nginx")
    summary = create_backup(
        source, open_store(bucket), BackupOptions("ours", Scope(include_namespaces=("nginx",)))
    )
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
    restored = run("restore", "describe", "vr-ours")
    assert f"Items restored:              {summary.items}" in restored or "Completed" in restored
    deploy = target.get(target.discovery().resolve("deployments.apps"), "nginx", dst)
    assert deploy["spec"]["template"]["spec"]["containers"][0]["image"].endswith("nginx:1.27")
    print(f"Velero synced our backup in {synced:.0f}s")
    target.delete(target.discovery().resolve("namespaces"), dst)


def test_we_restore_and_verify_velero_backups(
    velero: tuple[Velero, str], source: Cluster, target: Cluster
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
    cfg = source.get(source.discovery().resolve("configmaps"), "cfg", dst)
    assert cfg["data"] == {"k": "v"}
    for c, name in ((source, dst), (target, ns)):
        c.delete(c.discovery().resolve("namespaces"), name)
