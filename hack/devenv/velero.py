"""A real `velero server` next to a local plane, for the Velero compatibility test and the
benchmark: both need the same server, and there is one way to run it.

The binary and its AWS plugin are built by `hack/build.sh velero` into the cache.  The
server runs outside the cluster (a process on 127.0.0.1, no pod) in a namespace of its own,
with what it expects to find there:

  - Velero's CRDs, taken from `velero install --crds-only` (a v1 List);
  - a dummy `velero` Deployment (0 replicas): restore item actions look up Velero's own
    Deployment for its image;
  - its default BackupStorageLocation on <bucket>/<prefix> of the MinIO bucket.

On exit the server is stopped, the finalizers Velero puts on its Restores are released
(they would hold the namespace forever) and the namespace is deleted.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import yaml

from devenv.main import CACHE, HACK, versions
from devenv.procs import free_port
from migrate.cluster import Cluster
from migrate.errors import AlreadyExists, NotFound

CRDS = "customresourcedefinitions.apiextensions.k8s.io"
BSL = ("velero.io/v1", "BackupStorageLocation")


class VeleroError(RuntimeError):
    """The Velero server did not come up, or a `velero` command failed."""


def home() -> Path:
    """Where hack/build.sh puts the binary (`velero`) and the plugins (`plugins/`)."""
    return CACHE / "bin" / f"velero-{versions()['VELERO']}"


def ensure_built() -> Path:
    if not (home() / ".stamp").exists():
        subprocess.run([str(HACK / "build.sh"), "velero"], check=True)
    return home()


class Velero:
    """The `velero` CLI against one server's namespace: `run("backup", "get")` returns
    stdout, or raises VeleroError with its stderr and stdout."""

    def __init__(self, binary: Path, kubeconfig: str, namespace: str, timeout: float) -> None:
        self.binary, self.kubeconfig, self.namespace = binary, kubeconfig, namespace
        self.timeout = timeout

    def __call__(self, *args: str, timeout: float | None = None) -> str:
        out = subprocess.run(
            [str(self.binary), *args, "-n", self.namespace, "--kubeconfig", self.kubeconfig],
            capture_output=True,
            text=True,
            timeout=self.timeout if timeout is None else timeout,
            check=False,
        )
        if out.returncode:
            raise VeleroError(f"velero {' '.join(args)}: {out.stderr}{out.stdout}")
        return out.stdout


def install_crds(c: Cluster, binary: Path, timeout: float = 60) -> None:
    """Create Velero's CRDs (existing ones are left alone) and wait until all are
    Established and served."""
    printed = subprocess.run(
        [str(binary), "install", "--crds-only", "--dry-run", "-o", "yaml"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    listed = [d for d in yaml.safe_load_all(printed) if d]  # a v1 List of CRDs
    items = [i for d in listed for i in (d.get("items") or [d])]
    docs = [d for d in items if d.get("kind") == "CustomResourceDefinition"]
    if len(docs) < 10:
        raise VeleroError("velero install --crds-only printed no CRDs")
    crdres = c.discovery().resolve(CRDS)
    for doc in docs:
        with suppress(AlreadyExists):
            c.create(crdres, doc)

    def established(name: str) -> bool:
        conds = (c.get(crdres, name).get("status") or {}).get("conditions") or []
        return any(x["type"] == "Established" and x["status"] == "True" for x in conds)

    deadline = time.monotonic() + timeout
    pending = [d["metadata"]["name"] for d in docs]
    while True:
        pending = [n for n in pending if not established(n)]
        if not pending and c.discovery(refresh=True).for_kind(*BSL) is not None:
            return
        if time.monotonic() > deadline:
            raise VeleroError(f"Velero CRDs not Established and served: {pending}")
        time.sleep(0.3)


def _deployment(ns: str, version: str) -> dict[str, Any]:
    labels = {"component": "velero"}
    container = {"name": "velero", "image": f"velero/velero:{version}"}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "velero", "namespace": ns, "labels": labels},
        "spec": {
            "replicas": 0,
            "selector": {"matchLabels": labels},
            "template": {"metadata": {"labels": labels}, "spec": {"containers": [container]}},
        },
    }


def _location(ns: str, bucket: str, prefix: str, env: Mapping[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "velero.io/v1",
        "kind": "BackupStorageLocation",
        "metadata": {"name": "default", "namespace": ns},
        "spec": {
            "provider": "aws",
            "default": True,
            "objectStorage": {"bucket": bucket.removeprefix("s3://"), "prefix": prefix},
            "config": {
                "region": env.get("AWS_REGION", "us-east-1"),
                "s3ForcePathStyle": "true",
                "s3Url": env["AWS_ENDPOINT_URL"],
                "checksumAlgorithm": "",
            },
        },
    }


@contextmanager
def velero_server(
    c: Cluster,
    kubeconfig: str,
    bucket: str,
    prefix: str,
    *,
    env: Mapping[str, str] | None = None,
    workdir: Path | None = None,
    sync_period: str = "5s",
    sync_at_start: bool = False,
    ready_timeout: float = 120,
    cli_timeout: float = 180,
    server_args: Sequence[str] = (),
) -> Iterator[Velero]:
    """A `velero server` against the plane `c` (whose kubeconfig is `kubeconfig`), its
    default location on s3://<bucket>/<prefix>; yields the CLI bound to its namespace
    once the location is Available.  `env` carries AWS_* (default: os.environ); the
    credentials file and server.log go to `workdir` (default: a new temporary dir);
    `server_args` are added to `velero server` (e.g. --client-qps).

    Velero syncs a location's backups once a minute whatever --backup-sync-period says
    (its sync controller ignores the location's events), the first time as it starts but
    only if the location is Available by then. `sync_at_start` marks it Available before
    the server starts (the server validates it again at once), so what the bucket holds
    already is listed within seconds instead of after the next minute's sync."""
    e = dict(os.environ if env is None else env)
    binary, version = home() / "velero", versions()["VELERO"]
    ns = f"velero-{uuid.uuid4().hex[:6]}"
    install_crds(c, binary)
    disc = c.discovery(refresh=True)
    bsl, nsres = disc.for_kind(*BSL), disc.resolve("namespaces")
    assert bsl is not None  # install_crds waited for it
    workdir = workdir or Path(tempfile.mkdtemp(prefix="velero-"))
    creds = workdir / "credentials"
    creds.write_text(
        f"[default]\naws_access_key_id={e['AWS_ACCESS_KEY_ID']}\n"
        f"aws_secret_access_key={e['AWS_SECRET_ACCESS_KEY']}\n"
    )
    server: subprocess.Popen[bytes] | None = None
    log = (workdir / "server.log").open("wb")
    try:
        c.create(nsres, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
        c.create(disc.resolve("deployments.apps"), _deployment(ns, version), ns)
        c.create(bsl, _location(ns, bucket, prefix, e), ns)
        if sync_at_start:
            c.patch(bsl, "default", {"status": {"phase": "Available"}}, ns)  # no subresource
        argv = [
            str(binary),
            "server",
            "--kubeconfig",
            kubeconfig,
            "--namespace",
            ns,
            "--plugin-dir",
            str(home() / "plugins"),
            "--metrics-address",
            f"127.0.0.1:{free_port()}",
            "--profiler-address",
            f"127.0.0.1:{free_port()}",
            "--backup-sync-period",
            sync_period,
            "--store-validation-frequency",
            "5s",
            *server_args,
        ]
        server = subprocess.Popen(
            argv,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=workdir,
            env={**e, "AWS_SHARED_CREDENTIALS_FILE": str(creds)},
        )
        deadline = time.monotonic() + ready_timeout
        while (c.get(bsl, "default", ns).get("status") or {}).get("phase") != "Available":
            if server.poll() is not None or time.monotonic() > deadline:
                raise VeleroError(f"Velero's location not Available; see {workdir}/server.log")
            time.sleep(0.3)
        yield Velero(binary, kubeconfig, ns, cli_timeout)
    finally:
        if server is not None:
            server.terminate()
            try:
                server.wait(30)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
        log.close()
        _release_restores(c, ns)
        with suppress(NotFound):
            c.delete(nsres, ns)


def _release_restores(c: Cluster, ns: str) -> None:
    """Velero's finalizers on its Restores would hold the namespace forever without it."""
    restores = c.discovery().for_kind("velero.io/v1", "Restore")
    if restores is None:
        return
    with suppress(NotFound):
        for obj in c.list(restores, ns):
            with suppress(NotFound):
                c.patch(restores, obj["metadata"]["name"], {"metadata": {"finalizers": None}}, ns)
