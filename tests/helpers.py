"""Test helpers: apply YAML manifests through migrate.cluster, and poll for conditions."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar

import yaml

from migrate.cluster import Cluster
from migrate.errors import AlreadyExists

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent  # the venv's console scripts
EXAMPLES = ROOT / "examples"
T = TypeVar("T")


def run_cli(*args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """Run the kube-migrate CLI as a user does (a subprocess); output captured as text."""
    return subprocess.run(
        [str(BIN / "kube-migrate"), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def wait_for(what: str, check: Callable[[], T], timeout: float = 90.0) -> T:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.3)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def load_docs(paths: Iterable[Path]) -> list[dict[str, Any]]:
    docs = []
    for path in sorted(paths):
        docs += [d for d in yaml.safe_load_all(path.read_text()) if d]
    return docs


def apply(cluster: Cluster, docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Create each object (existing ones are left alone); CRDs are waited for until
    Established and discovery is refreshed before their custom resources."""
    created = []
    crd_res = cluster.discovery().resolve("customresourcedefinitions.apiextensions.k8s.io")
    for doc in docs:
        res = cluster.discovery().for_kind(doc["apiVersion"], doc["kind"])
        if res is None:
            cluster.discovery(refresh=True)
            res = wait_for(
                f"{doc['kind']} served",
                lambda d=doc: cluster.discovery(refresh=True).for_kind(d["apiVersion"], d["kind"]),
                30,
            )
        ns = doc["metadata"].get("namespace")
        try:
            created.append(cluster.create(res, doc, ns))
        except AlreadyExists:
            created.append(cluster.get(res, doc["metadata"]["name"], ns))
        if doc["kind"] == "CustomResourceDefinition":

            def established(name: str = doc["metadata"]["name"]) -> bool:
                conds = (cluster.get(crd_res, name).get("status") or {}).get("conditions") or []
                return any(c["type"] == "Established" and c["status"] == "True" for c in conds)

            wait_for("CRD established", established, 30)
            cluster.discovery(refresh=True)
    return created


def apply_example(cluster: Cluster, name: str) -> list[dict[str, Any]]:
    return apply(cluster, load_docs((EXAMPLES / name).glob("*.yaml")))
