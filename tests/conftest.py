"""Shared fixtures: the real local planes and MinIO, and a unique namespace per test.

If the KUBE_MIGRATE_* variables already point at clusters and a bucket (kind clusters
on a laptop, say), those are used.  Otherwise a running `hack/dev-env` is reused, or
one is started for the session and stopped at its end.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from migrate.cluster import Cluster, ClusterRef

ROOT = Path(__file__).resolve().parent.parent
DEV_ENV = ROOT / "hack" / "dev-env"
STATE = Path(os.environ.get("KUBE_MIGRATE_DEV_ENV_DIR", ROOT / ".dev-env"))
REQUIRED = (
    "KUBE_MIGRATE_SOURCE_KUBECONFIG",
    "KUBE_MIGRATE_TARGET_KUBECONFIG",
    "KUBE_MIGRATE_BUCKET",
)


@dataclass(frozen=True)
class Env:
    source_kubeconfig: str
    target_kubeconfig: str
    bucket: str  # s3://bucket
    source_version: str | None  # the pinned version, when the planes are our own
    target_version: str | None


def _read_env_file(path: Path) -> dict[str, str]:
    out = {}
    for line in path.read_text().splitlines():
        if line.startswith("export ") and "=" in line:
            key, val = line[len("export ") :].split("=", 1)
            out[key] = val
    return out


@pytest.fixture(scope="session")
def dev_env() -> Iterator[Env]:
    started = False
    if not all(os.environ.get(k) for k in REQUIRED):
        status = subprocess.run([str(DEV_ENV), "status"], capture_output=True, check=False)
        if status.returncode != 0:
            subprocess.run([str(DEV_ENV), "up"], check=True)
            started = os.environ.get("KUBE_MIGRATE_KEEP_DEV_ENV") != "1"
        os.environ.update(_read_env_file(STATE / "env"))
    yield Env(
        os.environ["KUBE_MIGRATE_SOURCE_KUBECONFIG"],
        os.environ["KUBE_MIGRATE_TARGET_KUBECONFIG"],
        os.environ["KUBE_MIGRATE_BUCKET"].rstrip("/"),
        os.environ.get("KUBE_MIGRATE_SOURCE_VERSION"),
        os.environ.get("KUBE_MIGRATE_TARGET_VERSION"),
    )
    if started:
        subprocess.run([str(DEV_ENV), "down"], check=False)


@pytest.fixture(scope="session", autouse=True)
def _state_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Restore journals and local results go to a temporary folder, not ~/.local/state."""
    old = os.environ.get("KUBE_MIGRATE_STATE_DIR")
    os.environ["KUBE_MIGRATE_STATE_DIR"] = str(tmp_path_factory.mktemp("state"))
    yield
    if old is None:
        os.environ.pop("KUBE_MIGRATE_STATE_DIR", None)
    else:
        os.environ["KUBE_MIGRATE_STATE_DIR"] = old


@pytest.fixture(scope="session")
def source(dev_env: Env) -> Cluster:
    return Cluster(ClusterRef(dev_env.source_kubeconfig), name="source")


@pytest.fixture(scope="session")
def target(dev_env: Env) -> Cluster:
    return Cluster(ClusterRef(dev_env.target_kubeconfig), name="target")


@pytest.fixture
def bucket_url(dev_env: Env) -> str:
    """A unique prefix in the test bucket (AWS_* variables are exported)."""
    return f"{dev_env.bucket}/t-{uuid.uuid4().hex[:10]}"


def _namespace(cluster: Cluster, request: pytest.FixtureRequest) -> Iterator[str]:
    name = f"t-{request.node.name[:30].lower().replace('_', '-').strip('-')}-{uuid.uuid4().hex[:6]}"
    name = "".join(ch for ch in name if ch.isalnum() or ch == "-")
    ns_res = cluster.discovery().get("", "namespaces")
    assert ns_res is not None
    cluster.create(ns_res, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    yield name
    cluster.delete(ns_res, name)


@pytest.fixture
def source_ns(source: Cluster, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh namespace on the source cluster, deleted after the test."""
    yield from _namespace(source, request)


@pytest.fixture
def target_ns(target: Cluster, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh namespace on the target cluster, deleted after the test."""
    yield from _namespace(target, request)


REAL_FIXTURES = {"dev_env", "source", "target", "bucket_url", "source_ns", "target_ns"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests that use the real planes carry the `cluster` mark (`make unit` skips them)."""
    for item in items:
        if REAL_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.cluster)


@pytest.fixture
def image(dev_env: Env) -> str:
    """The busybox image the dev-env imported into its real nodes."""
    img = os.environ.get("KUBE_MIGRATE_TEST_IMAGE")
    if not img:
        pytest.skip("KUBE_MIGRATE_TEST_IMAGE not set: these clusters have no real node image")
    return img
