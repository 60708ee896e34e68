"""Incremental backups and their restore on the real planes: an increment holds only the
objects created or changed since its parent and lists those deleted (a metadata LIST
compared with the parent's resourceVersions tells which; the changed objects come from a
watch started at the parent's revisions, or one by one where none can run); restoring
it onto a target that holds the parent updates, creates and deletes (only what
kube-migrate restored), with workloads held and released (`cluster release`); bad parents
are refused before anything is written.
"""

from __future__ import annotations

import contextlib
import json
import os
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from migrate.backup.create import BackupOptions, create_backup
from migrate.cluster import Cluster
from migrate.errors import NotFound
from migrate.restore.held import release_all
from migrate.restore.plan import RestoreOptions
from migrate.restore.run import run_restore
from migrate.store import Store, layout, open_store
from migrate.store.positions import read_positions
from migrate.store.reader import open_backup
from migrate.transform.hold import HELD
from migrate.transform.scope import Scope
from migrate.verify import Transforms, VerifyOptions, run_verify

from .helpers import run_cli


def uniq(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


def cm(name: str, value: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name},
            "data": {"value": value}}  # fmt: skip


def deployment(name: str, replicas: int) -> dict[str, Any]:
    labels = {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "nodeSelector": {"kube-migrate.io/no-such-node": "true"},  # pods stay Pending
                    "containers": [{"name": "c", "image": "registry.invalid/app:1"}],
                },
            },
        },
    }


def res(c: Cluster, name: str) -> Any:
    return c.discovery().resolve(name)


def get(c: Cluster, kind: str, name: str, ns: str) -> dict[str, Any] | None:
    try:
        return c.get(res(c, kind), name, ns)
    except NotFound:
        return None


@pytest.fixture
def both_ns(source: Cluster, target: Cluster) -> Iterator[str]:
    """One namespace name, created on the source (the target gets it from the restore);
    deleted on both afterwards."""
    name = uniq("inc")
    ns_res = res(source, "namespaces")
    source.create(ns_res, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    yield name
    for c in (source, target):
        with contextlib.suppress(NotFound):
            c.delete(ns_res, name)


def tarball_names(store: Store, backup: str) -> set[tuple[str, str]]:
    return {(p.group_resource, p.name) for p, _obj in open_backup(store, backup).items()}


def test_increment_holds_the_changes_and_restore_applies_them(
    source: Cluster, target: Cluster, bucket_url: str, both_ns: str
) -> None:
    ns, store, store_url = both_ns, open_store(bucket_url), bucket_url
    for obj in (cm("keep", "1"), cm("change", "1"), cm("gone", "1"), cm("theirs", "1"),
                deployment("web", 2)):  # fmt: skip
        source.create(res(source, obj["kind"]), obj, ns)
    scope = Scope(include_namespaces=(ns,))
    full, inc = uniq("full"), uniq("inc")
    create_backup(source, store, BackupOptions(full, scope))
    target.create(res(target, "namespaces"), {"apiVersion": "v1", "kind": "Namespace",
                                               "metadata": {"name": ns}})  # fmt: skip
    target.create(res(target, "configmaps"), cm("theirs", "not ours"), ns)  # exists: skipped
    opts = RestoreOptions(name=uniq("r"), backup=full, scope=scope, hold_workloads=True)
    assert run_restore(target, store, opts).phase == "Completed"
    web = get(target, "deployments", "web", ns)
    assert web is not None and web["spec"]["replicas"] == 0
    assert json.loads(web["metadata"]["annotations"][HELD]) == 2

    cms = res(source, "configmaps")
    source.patch(cms, "change", {"data": {"value": "2"}}, ns)
    source.delete(cms, "gone", ns)
    source.delete(cms, "theirs", ns)
    source.create(cms, cm("new", "1"), ns)
    source.patch(res(source, "deployments"), "web", {"spec": {"replicas": 3}}, ns)

    opts = BackupOptions(inc, scope, parent=full, watch_min_objects=0)  # watch every type
    summary = create_backup(source, store, opts)
    assert summary.phase == "Completed", summary.errors
    assert summary.incremental["watched"] >= 1 and not summary.incremental["relisted"]
    assert summary.incremental["fromWatch"] >= 3  # change, new and web: from the stream
    assert summary.incremental["deleted"] == 2
    names = tarball_names(store, inc)
    assert {n for gr, n in names if gr == "configmaps"} == {"change", "new"}
    assert ("deployments.apps", "web") in names
    described = run_cli("backup", "describe", inc, "--bucket", store_url, "-o", "json")
    assert described.returncode == 0, described.stderr
    assert json.loads(described.stdout)["incremental"]["chain"] == [full, inc]
    info = layout.BackupInfo.parse(store.get(layout.BackupKeys(inc).metadata), inc)
    assert info.labels[layout.PARENT_LABEL] == full
    positions = read_positions(store, inc)
    assert positions is not None and positions.chain == [full, inc]
    assert {(d.resource, d.name) for d in positions.deleted} == {
        ("configmaps", "gone"), ("configmaps", "theirs")}  # fmt: skip

    check_restored_increment(source, target, store, ns, scope, inc)


def check_restored_increment(
    source: Cluster, target: Cluster, store: Store, ns: str, scope: Scope, inc: str
) -> None:
    opts = RestoreOptions(name=uniq("r"), backup=inc, scope=scope, hold_workloads=True)
    result = run_restore(target, store, opts)
    assert result.phase == "Completed", result.warnings
    rows = {(r.key[1], r.key[3]): r for r in result.results}
    assert rows[("ConfigMap", "change")].result == "updated"
    assert rows[("ConfigMap", "new")].result == "created"
    assert rows[("ConfigMap", "gone")].result == "deleted"
    assert rows[("ConfigMap", "theirs")].result == "skipped"
    assert "not restored by kube-migrate" in rows[("ConfigMap", "theirs")].message
    assert get(target, "configmaps", "gone", ns) is None
    assert (get(target, "configmaps", "theirs", ns) or {}).get("data") == {"value": "not ours"}
    assert (get(target, "configmaps", "change", ns) or {}).get("data") == {"value": "2"}
    web = get(target, "deployments", "web", ns)
    assert web is not None and web["spec"]["replicas"] == 0
    assert json.loads(web["metadata"]["annotations"][HELD]) == 3

    # held and released alike compare equal to the source: verify reads intended values
    target.delete(res(target, "configmaps"), "theirs", ns)
    vopts = VerifyOptions(scope, Transforms())
    report = run_verify(source, target, vopts)
    assert not report.drift, [(r.kind, r.name, r.status, r.changes) for r in report.drifted]
    kc = os.environ["KUBE_MIGRATE_TARGET_KUBECONFIG"]  # the dev-env's (conftest exports it)
    out = run_cli("cluster", "release", "-n", ns, "--kubeconfig", kc, "-o", "json")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == [
        {"kind": "Deployment", "namespace": ns, "name": "web", "action": "released"}]  # fmt: skip
    assert release_all(target, [ns]) == []  # released already
    web = get(target, "deployments", "web", ns)
    assert web is not None and web["spec"]["replicas"] == 3
    assert HELD not in (web["metadata"].get("annotations") or {})
    assert not run_verify(source, target, vopts).drift


def test_without_a_watch_the_changed_objects_are_read_one_by_one(
    source: Cluster, bucket_url: str, both_ns: str
) -> None:
    ns, store = both_ns, open_store(bucket_url)
    cms = res(source, "configmaps")
    for name in ("a", "b", "c"):
        source.create(cms, cm(name, "1"), ns)
    scope = Scope(include_namespaces=(ns,))
    full = uniq("full")
    create_backup(source, store, BackupOptions(full, scope))
    key = layout.BackupKeys(full).positions
    positions = read_positions(store, full)
    assert positions is not None
    # revisions a watch cannot start from (a server whose resourceVersions are not numbers)
    positions.revisions = dict.fromkeys(positions.revisions, "opaque")
    store.put(key, positions.to_bytes())
    source.patch(cms, "a", {"data": {"value": "2"}}, ns)
    source.delete(cms, "b", ns)
    inc = uniq("inc")
    opts = BackupOptions(inc, scope, parent=full, watch_min_objects=0)
    summary = create_backup(source, store, opts)
    assert summary.incremental["fromWatch"] == 0  # no watch: each read by a GET
    assert "configmaps" in summary.incremental["relisted"]
    assert summary.incremental["deleted"] == 1
    assert {n for gr, n in tarball_names(store, inc) if gr == "configmaps"} == {"a"}


def test_bad_parents_are_refused_before_anything_is_written(
    source: Cluster, dev_env: Any, bucket_url: str, both_ns: str
) -> None:
    store = open_store(bucket_url)
    full = uniq("full")
    create_backup(source, store, BackupOptions(full, Scope(include_namespaces=(both_ns,))))
    for parent, extra, message in (
        ("no-such-backup", ["--include-namespaces", both_ns], "not found"),
        (full, ["--include-namespaces", "kube-system"], "another scope than its parent"),
    ):
        name = uniq("inc")
        proc = run_cli("backup", "create", name, "--incremental-from", parent, *extra,
                       "--volumes", "none", "--bucket", bucket_url,
                       "--kubeconfig", dev_env.source_kubeconfig)  # fmt: skip
        assert proc.returncode == 2, proc.stderr
        assert message in proc.stderr and "hint:" in proc.stderr
        assert not list(store.list(f"backups/{name}/"))
