"""The ground is real: both local planes answer through migrate.cluster with the pinned
versions, serve what their versions should, run controllers, and paginate."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from migrate.cluster import Cluster
from migrate.cluster.discovery import _legacy
from migrate.errors import AlreadyExists, Invalid, NotFound

from .conftest import Env


def wait_for(what: str, check: Any, timeout: float = 90.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.5)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def test_versions_are_the_pinned_ones(dev_env: Env, source: Cluster, target: Cluster) -> None:
    sv, tv = source.version(), target.version()
    if dev_env.source_version:
        assert sv.git_version == dev_env.source_version
        assert tv.git_version == dev_env.target_version
    assert sv.major == tv.major == 1
    assert tv.minor - sv.minor >= 2, f"older plane {sv} must be 2+ minors below {tv}"


@pytest.mark.parametrize("side", ["source", "target"])
def test_discovery_serves_the_core_groups(side: str, request: pytest.FixtureRequest) -> None:
    c: Cluster = request.getfixturevalue(side)
    disc = c.discovery()
    for group in ("", "apps", "batch", "rbac.authorization.k8s.io", "apiextensions.k8s.io"):
        assert group in disc.group_versions, group
    deploy = disc.resolve("deploy")
    assert (deploy.group, deploy.resource, deploy.kind) == ("apps", "deployments", "Deployment")
    assert deploy.namespaced and {"list", "create", "delete"} <= deploy.verbs
    assert disc.resolve("deployments.apps") == deploy
    assert disc.resolve("Deployment") == deploy
    ns = disc.resolve("ns")
    assert ns.full_name == "namespaces" and not ns.namespaced
    assert disc.resolve("configmaps").path("a", "b") == "/api/v1/namespaces/a/configmaps/b"


def test_removed_api_served_only_by_the_older_plane(source: Cluster, target: Cluster) -> None:
    """flowcontrol v1beta3 was removed in 1.32: the older plane serves it, the primary not."""
    if source.version().minor <= 31:
        assert source.discovery().serves("flowcontrol.apiserver.k8s.io", "v1beta3", "FlowSchema")
    assert target.version().minor >= 32
    assert not target.discovery().serves("flowcontrol.apiserver.k8s.io", "v1beta3", "FlowSchema")
    assert target.discovery().serves("flowcontrol.apiserver.k8s.io", "v1", "FlowSchema")


@pytest.mark.parametrize("side", ["source", "target"])
def test_aggregated_and_per_group_discovery_agree(
    side: str, request: pytest.FixtureRequest
) -> None:
    c: Cluster = request.getfixturevalue(side)
    agg = {
        (r.group, r.resource, r.version, r.kind, r.namespaced) for r in c.discovery(refresh=True)
    }
    legacy = {
        (r.group, r.resource, r.version, r.kind, r.namespaced) for r in _legacy(c.get_path, 4)
    }
    assert agg == legacy
    assert len(agg) > 40


def _deployment(name: str, replicas: int) -> dict[str, Any]:
    labels = {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "app", "image": "registry.example/app:1"}]},
            },
        },
    }


@pytest.mark.parametrize("side", ["source", "target"])
def test_deployment_gets_running_pods(side: str, request: pytest.FixtureRequest) -> None:
    """controller-manager makes the ReplicaSet and Pods, the scheduler binds them to kwok
    nodes, and kwok reports them Running."""
    c: Cluster = request.getfixturevalue(side)
    ns = request.getfixturevalue(f"{side}_ns")
    disc = c.discovery()
    c.create(disc.resolve("deployments.apps"), _deployment("web", 2), ns)
    pods = disc.resolve("pods")

    def running() -> list[dict[str, Any]]:
        items = list(c.list(pods, ns, label_selector="app=web"))
        ok = [p for p in items if p.get("status", {}).get("phase") == "Running"]
        return ok if len(ok) == 2 else []

    ready = wait_for("2 running pods", running)
    assert all(p["spec"]["nodeName"].startswith("kwok-") for p in ready)
    assert all(p["metadata"]["ownerReferences"][0]["kind"] == "ReplicaSet" for p in ready)


def test_namespace_deletion_completes(source: Cluster) -> None:
    disc = source.discovery()
    ns_res, cm = disc.resolve("namespaces"), disc.resolve("configmaps")
    name = f"t-delete-{time.monotonic_ns() % 10**8}"
    source.create(ns_res, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    source.create(cm, {"metadata": {"name": "x"}, "data": {"k": "v"}}, name)
    source.delete(ns_res, name)

    def gone() -> bool:
        try:
            source.get(ns_res, name)
        except NotFound:
            return True
        return False

    wait_for("namespace deletion", gone)


def test_pagination_returns_every_object(source: Cluster, source_ns: str) -> None:
    cm = source.discovery().resolve("configmaps")

    def make(i: int) -> None:
        source.create(cm, {"metadata": {"name": f"cm-{i:04d}"}, "data": {"i": str(i)}}, source_ns)

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(make, range(1200)))
    pages: list[str] = []
    real_request = source.request

    def spy(method: str, path: str, **kw: Any) -> Any:
        pages.append(str((kw.get("query") or {}).get("continue", "")))
        return real_request(method, path, **kw)

    source.request = spy  # type: ignore[method-assign]
    try:
        items = list(source.list(cm, source_ns, limit=500))
    finally:
        del source.request
    names = sorted(i["metadata"]["name"] for i in items if i["metadata"]["name"].startswith("cm-"))
    assert names == [f"cm-{i:04d}" for i in range(1200)]
    assert len(pages) == 3 and pages[0] == "" and all(pages[1:]), pages
    assert all(i["kind"] == "ConfigMap" and i["apiVersion"] == "v1" for i in items)
    assert source.count(cm, source_ns) == len(items)


def test_object_crud_and_error_classes(target: Cluster, target_ns: str) -> None:
    cm = target.discovery().resolve("configmaps")
    obj = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"a": "1"}}
    created = target.create(cm, obj, target_ns)
    assert created["metadata"]["uid"]
    with pytest.raises(AlreadyExists):
        target.create(cm, obj, target_ns)
    patched = target.patch(cm, "c", {"data": {"b": "2"}}, target_ns)
    assert patched["data"] == {"a": "1", "b": "2"}
    patched["data"] = {"z": "9"}
    assert target.replace(cm, patched, target_ns)["data"] == {"z": "9"}
    with pytest.raises(Invalid):
        target.create(cm, {"metadata": {"name": "Bad_Name"}}, target_ns)
    target.delete(cm, "c", target_ns)
    with pytest.raises(NotFound):
        target.get(cm, "c", target_ns)
    target.delete(cm, "c", target_ns)  # deleting what is gone is not an error
