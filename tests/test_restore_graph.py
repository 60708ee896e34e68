"""The restore graph as pure logic: edges from the reference table, levels, cycles, the
late kinds, and the plan built from a hand-made backup (no cluster)."""

from __future__ import annotations

import gzip
import json
import subprocess
import threading
import time
import tracemalloc
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from migrate.cluster.discovery import APIResource, Discovery
from migrate.errors import ClusterError, UsageError
from migrate.restore.execute import Restorer
from migrate.restore.graph import Leaves, build_graph, levels, to_dot
from migrate.restore.journal import Journal, ObjectResult, ResultTable
from migrate.restore.plan import Plan, RestoreOptions, make_plan
from migrate.restore.source import Item, ItemTable, LoadedBackup
from migrate.restore.spool import Spool
from migrate.restore.workers import map_all, run_all
from migrate.store import gzlists


def item(kind: str, name: str, ns: str | None = None, api: str = "v1", **extra: Any) -> Item:
    meta: dict[str, Any] = {"name": name}
    if ns:
        meta["namespace"] = ns
    obj = {"apiVersion": api, "kind": kind, "metadata": meta, **extra}
    return Item(f"{kind.lower()}s", ns, name, obj, desired=obj)


def owned_by(it: Item, *refs: dict[str, Any]) -> Item:
    desired = it.read_desired()
    desired["metadata"]["ownerReferences"] = list(refs)
    return Item(it.gr, it.namespace, it.name, it.read_obj(), desired)


def table(items: list[Item]) -> ItemTable:
    return ItemTable(Spool(), items)


def level_of(items: list[Item]) -> dict[str, int]:
    t = table(items)
    return {
        f"{it.kind}/{it.key[3]}": n for n, lv in enumerate(levels(build_graph(t), t)) for it in lv
    }


def test_reference_table_orders_a_workload_after_what_it_needs() -> None:
    pod_spec = {
        "serviceAccountName": "sa",
        "priorityClassName": "high",
        "volumes": [
            {"name": "v", "persistentVolumeClaim": {"claimName": "pvc"}},
            {"name": "s", "secret": {"secretName": "sec"}},
        ],
        "containers": [{"name": "c", "envFrom": [{"configMapRef": {"name": "cm"}}]}],
    }
    items = [
        item("Namespace", "app"),
        item("ServiceAccount", "sa", "app"),
        item("Secret", "sec", "app"),
        item("ConfigMap", "cm", "app"),
        item("PriorityClass", "high", api="scheduling.k8s.io/v1"),
        item("StorageClass", "fast", api="storage.k8s.io/v1"),
        item("PersistentVolume", "pv", spec={"storageClassName": "fast"}),
        item(
            "PersistentVolumeClaim",
            "pvc",
            "app",
            spec={"storageClassName": "fast", "volumeName": "pv"},
        ),
        item("Deployment", "web", "app", api="apps/v1", spec={"template": {"spec": pod_spec}}),
    ]
    lv = level_of(items)
    assert lv["Namespace/app"] == lv["StorageClass/fast"] == lv["PriorityClass/high"] == 0
    assert lv["PersistentVolume/pv"] == 1
    assert lv["PersistentVolumeClaim/pvc"] == 2
    for dep in ("ServiceAccount/sa", "Secret/sec", "ConfigMap/cm", "PersistentVolumeClaim/pvc"):
        assert lv["Deployment/web"] > lv[dep], dep


def test_crd_before_custom_resources_and_owner_before_dependent() -> None:
    crd = item(
        "CustomResourceDefinition",
        "widgets.ex.com",
        api="apiextensions.k8s.io/v1",
        spec={"group": "ex.com", "names": {"kind": "Widget", "plural": "widgets"}},
    )
    widget = item("Widget", "w", "app", api="ex.com/v1")
    owned = owned_by(
        item("ConfigMap", "owned", "app"),
        {"apiVersion": "ex.com/v1", "kind": "Widget", "name": "w", "uid": "old"},
    )
    lv = level_of([item("Namespace", "app"), crd, widget, owned])
    assert lv["CustomResourceDefinition/widgets.ex.com"] < lv["Widget/w"] < lv["ConfigMap/owned"]


def test_rbac_bindings_after_roles_and_subjects() -> None:
    rb = item(
        "RoleBinding",
        "rb",
        "app",
        api="rbac.authorization.k8s.io/v1",
        roleRef={"kind": "ClusterRole", "name": "reader"},
        subjects=[{"kind": "ServiceAccount", "name": "sa", "namespace": "app"}],
    )
    lv = level_of(
        [
            item("Namespace", "app"),
            item("ServiceAccount", "sa", "app"),
            item("ClusterRole", "reader", api="rbac.authorization.k8s.io/v1"),
            rb,
        ]
    )
    assert lv["RoleBinding/rb"] > lv["ClusterRole/reader"]
    assert lv["RoleBinding/rb"] > lv["ServiceAccount/sa"]


def test_webhooks_are_not_in_the_levels() -> None:
    hook = item(
        "ValidatingWebhookConfiguration", "deny", api="admissionregistration.k8s.io/v1", webhooks=[]
    )
    g = build_graph(table([item("Namespace", "app"), hook]))
    assert [k[1] for k in g.nodes] == ["Namespace"]
    assert "style=dashed" in to_dot(g, [hook]) and "digraph restore" in to_dot(g, [hook])


def test_cycle_is_reported_with_its_members() -> None:
    a = owned_by(
        item("ConfigMap", "a", "app"), {"apiVersion": "v1", "kind": "ConfigMap", "name": "b"}
    )
    b = owned_by(
        item("ConfigMap", "b", "app"), {"apiVersion": "v1", "kind": "ConfigMap", "name": "a"}
    )
    with pytest.raises(UsageError, match=r"dependency cycle: ConfigMap app/. -> ConfigMap app/"):
        t = table([a, b])
        levels(build_graph(t), t)


def test_references_outside_the_restore_add_no_edges() -> None:
    lv = level_of(
        [
            item(
                "RoleBinding",
                "rb",
                "elsewhere",
                api="rbac.authorization.k8s.io/v1",
                roleRef={"kind": "Role", "name": "missing"},
            )
        ]
    )
    assert lv == {"RoleBinding/rb": 0}


def test_an_item_is_read_only_and_its_reads_are_copies() -> None:
    it = Item("configmaps", "app", "cfg", {"apiVersion": "v1", "kind": "ConfigMap",
              "metadata": {"name": "cfg", "namespace": "app"}, "data": {"k": "v"}})  # fmt: skip
    assert it.read_desired() == {} and it.key == ("", "ConfigMap", "app", "cfg")
    assert it.target_ns == "app" and it.index == -1 and it.node is None
    assert (it.skip, it.refused) == (None, False)
    desired = it.read_obj()
    desired["metadata"]["namespace"] = "app-test"
    assert it.read_obj()["metadata"]["namespace"] == "app"  # each read is a fresh copy
    for name in ("skip", "refused", "desired", "obj", "key", "node", "index"):
        with pytest.raises(AttributeError, match="read-only"):
            setattr(it, name, "changed")
    with pytest.raises(AttributeError, match="read-only"):
        del it.skip
    assert it.skip is None and it.read_desired() == {}
    planned = Item(it.gr, it.namespace, it.name, it.read_obj(), desired)
    assert planned.key == ("", "ConfigMap", "app-test", "cfg") and planned.target_ns == "app-test"
    assert planned.api_version == "v1" and planned.read_desired()["data"] == {"k": "v"}
    desired["data"] = {"k": "changed"}
    assert planned.read_desired()["data"] == {"k": "v"}


def test_workers_bound_what_is_in_flight_keep_order_and_raise_the_first_error() -> None:
    seen: list[int] = []
    lock = threading.Lock()
    submitted = 0
    peak = 0

    def count(n: int) -> int:
        with lock:
            seen.append(n)
        time.sleep(0.001)
        return n * n

    def items() -> Iterator[int]:
        nonlocal submitted, peak
        for n in range(200):
            submitted += 1
            with lock:
                peak = max(peak, submitted - len(seen))
            yield n

    with ThreadPoolExecutor(4) as pool:
        run_all(pool, count, items(), window=8)
        assert sorted(seen) == list(range(200)) and peak <= 9  # 8 pending + the next one
        assert map_all(pool, count, list(range(50)), window=8) == [n * n for n in range(50)]

        def boom(n: int) -> None:
            if n == 5:
                raise ValueError("object 5")
            time.sleep(0.001)

        with pytest.raises(ValueError, match="object 5"):
            run_all(pool, boom, range(100), window=4)


def test_leaf_objects_share_one_node_and_keep_their_levels() -> None:
    """Objects nothing depends on, with the same needs, are one Leaves node: the levels
    are those of one node each, and every item knows its node."""
    cms = [item("ConfigMap", f"cm-{i}", "app") for i in range(50)]
    used = item("ConfigMap", "used", "app")
    env_from = [{"configMapRef": {"name": "used"}}]
    spec = {"template": {"spec": {"containers": [{"name": "c", "envFrom": env_from}]}}}
    deploy = item("Deployment", "web", "app", api="apps/v1", spec=spec)
    items = [item("Namespace", "app"), *cms, used, deploy]
    t = table(items)
    g = build_graph(t)
    leaves = [n for n in g.nodes if isinstance(n, Leaves)]
    assert len(leaves) == 1 and leaves[0].needs == (("", "Namespace", None, "app"),)
    assert [t[i].key[3] for i in g.nodes[leaves[0]]["items"]] == [it.key[3] for it in cms]
    assert g.number_of_nodes() == 4  # the namespace, the 50 leaves, used, web
    lv = level_of(items)
    assert {lv[f"ConfigMap/cm-{i}"] for i in range(50)} == {1} and lv["ConfigMap/used"] == 1
    assert lv["Deployment/web"] == 2 and lv["Namespace/app"] == 0
    second = list(levels(g, t)[1])  # nodes in a stable order, a node's objects as backed up
    assert [it.key[3] for it in second] == [f"cm-{i}" for i in range(50)] + ["used"]
    assert [it.node for it in second] == [leaves[0]] * 50 + [used.key]
    assert "ConfigMap x50\\napp/*" in to_dot(g, [])


def test_spool_round_trips_blobs_from_many_threads() -> None:
    spool = Spool()
    blobs = [bytes([i % 256]) * (i * 37 % 5000) for i in range(400)]
    with ThreadPoolExecutor(8) as pool:
        refs = list(pool.map(spool.put, blobs))
        assert list(pool.map(spool.get, refs)) == blobs
    assert spool.size == sum(len(b) for b in blobs) and len(set(refs)) == len(refs)
    spool.close()
    with pytest.raises(OSError):
        spool.get(refs[1])


def test_spool_in_an_unusable_directory_is_a_one_line_error(tmp_path: Any) -> None:
    with pytest.raises(UsageError, match="cannot write the restore's scratch file in") as exc:
        Spool(str(tmp_path / "missing"))
    assert exc.value.hint and "TMPDIR" in exc.value.hint


def test_result_table_keeps_order_and_replaces_in_place() -> None:
    results = ResultTable(Spool())
    a, b = ("", "ConfigMap", "app", "a"), ("", "ConfigMap", "app", "b")
    results.put(7, ObjectResult(a, "configmaps", "failed", "boom"))  # by table index
    results.put(2, ObjectResult(b, "configmaps", "created", uid="u-b"))
    results.put(7, ObjectResult(a, "configmaps", "created", uid="u-a"))
    assert [(r.key, r.result, r.uid) for r in results] == [
        (a, "created", "u-a"),
        (b, "created", "u-b"),
    ]
    assert len(results) == 2 and results.get(3) is None and results.get(100) is None
    assert results.get(2) == ObjectResult(b, "configmaps", "created", uid="u-b")
    assert results.get(2) in results and ObjectResult(b, "configmaps", "failed") not in results


class FakeTarget:
    """Creates whatever it is given (uid = "uid-<name>") but refuses CRDs: enough for the
    executor's pure logic (levels, failed dependencies, owner re-pointing)."""

    name = "fake"
    disc = Discovery([
        APIResource("", "v1", "namespaces", "Namespace", False, versions=("v1",)),
        APIResource("", "v1", "configmaps", "ConfigMap", True, versions=("v1",)),
        APIResource("apiextensions.k8s.io", "v1", "customresourcedefinitions",
                    "CustomResourceDefinition", False, versions=("v1",)),
        APIResource("example.com", "v1", "widgets", "Widget", True, versions=("v1",)),
    ])  # fmt: skip

    def __init__(self) -> None:
        self.created: dict[str, dict[str, Any]] = {}

    def discovery(self, refresh: bool = False) -> Discovery:
        return self.disc

    def create(self, res: APIResource, body: dict[str, Any], ns: str | None) -> dict[str, Any]:
        if res.kind == "CustomResourceDefinition":
            raise ClusterError("forbidden", status=403)
        self.created[f"{res.kind}/{body['metadata']['name']}"] = body
        return {"metadata": {"uid": f"uid-{body['metadata']['name']}"}}


def test_executor_skips_a_failed_dependencys_leaves_and_repoints_owners(tmp_path: Any) -> None:
    crd = item("CustomResourceDefinition", "widgets.example.com", api="apiextensions.k8s.io/v1",
               spec={"group": "example.com", "names": {"kind": "Widget"}})  # fmt: skip
    widgets = [item("Widget", f"w{i}", "app", api="example.com/v1") for i in range(5)]
    owner = item("ConfigMap", "owner", "app")
    ref = {"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": "old"}
    owned = [owned_by(item("ConfigMap", f"o{i}", "app"), ref) for i in range(3)]
    items = [item("Namespace", "app"), crd, *widgets, owner, *owned]
    t = table(items)
    g = build_graph(t)
    plan = Plan(t, g, levels(g, t), [], t.spool)
    target = FakeTarget()
    journal = Journal("r", resume=False, directory=tmp_path)
    restorer = Restorer(target, plan, RestoreOptions("r", "b"), journal)  # type: ignore[arg-type]
    results = {f"{r.key[1]}/{r.key[3]}": r for r in restorer.run()}
    journal.close()
    assert results["CustomResourceDefinition/widgets.example.com"].result == "failed"
    for w in widgets:
        r = results[f"Widget/{w.key[3]}"]
        assert (r.result, r.message) == (
            "skipped",
            "dependency CustomResourceDefinition widgets.example.com failed",
        )
    for i in range(3):
        refs = target.created[f"ConfigMap/o{i}"]["metadata"]["ownerReferences"]
        assert refs == [{**ref, "uid": "uid-owner"}]
    assert set(restorer.uids) == {("", "Namespace", None, "app"), owner.key}
    assert len(results) == len(items) and sum(r.result == "created" for r in results.values()) == 5


def test_executor_records_the_version_it_created_an_object_at(tmp_path: Any) -> None:
    """An apiVersion the target does not serve is created at the one it does, and the
    plan's table says so afterwards (the executor's one decision)."""
    old = item("Widget", "w", "app", api="example.com/v1beta1")
    t = table([item("Namespace", "app"), old])
    g = build_graph(t)
    plan = Plan(t, g, levels(g, t), [], t.spool)
    target = FakeTarget()
    journal = Journal("r", resume=False, directory=tmp_path)
    restorer = Restorer(target, plan, RestoreOptions("r", "b"), journal)  # type: ignore[arg-type]
    assert [r.result for r in restorer.run().values()] == ["created", "created"]
    journal.close()
    assert target.created["Widget/w"]["apiVersion"] == "example.com/v1"
    assert restorer.warnings == [
        "widgets app/w: example.com/v1beta1 not served, restored as example.com/v1"
    ]
    assert t[1].api_version == t[1].read_desired()["apiVersion"] == "example.com/v1"
    assert t[1].read_obj()["apiVersion"] == "example.com/v1beta1"  # as stored


def test_item_table_keeps_records_and_changes_them_only_by_decide() -> None:
    elsewhere = item("ConfigMap", "cfg", "app", data={"k": "v"})  # in the process's spool
    t = ItemTable(Spool(), [item("Namespace", "app"), elsewhere])
    got = t[1]
    assert (got.index, got.key, got.gr, got.target_ns) == (1, elsewhere.key, "configmaps", "app")
    assert got.read_desired() == elsewhere.read_desired() == got.read_obj()  # copied across
    with pytest.raises(AttributeError, match=r"ItemTable\.decide"):
        got.skip = "excluded"  # a change that would be lost: refused
    stub = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cfg", "namespace": "b"}}
    decided = t.decide(got, stub, "excluded", refused=True)
    assert (decided.skip, decided.refused, decided.target_ns) == ("excluded", True, "b")
    again = t[1]  # what is recorded
    assert (again.skip, again.refused, again.key, again.read_desired()) == (
        "excluded", True, ("", "ConfigMap", "b", "cfg"), stub
    )  # fmt: skip
    assert again.read_obj() == elsewhere.read_obj() and got.skip is None  # got: unchanged
    with pytest.raises(ValueError, match="read it again"):
        t.decide(got, elsewhere.read_desired())  # out of date: would undo "excluded"
    with pytest.raises(ValueError, match="read it again"):
        t.decide(elsewhere, elsewhere.read_desired())  # in no table
    assert t[1].skip == "excluded" and [it.key[3] for it in t] == ["app", "cfg"]
    chosen = t.where(lambda it: it.skip is None)
    assert len(chosen) == 1 and [it.kind for it in chosen] == ["Namespace"]
    assert t.decide(again, elsewhere.read_desired()).skip is None and t[1].target_ns == "app"
    assert [it.node for it in levels(build_graph(t), t)[1]] == [elsewhere.key]


def test_a_plan_and_its_results_hold_bytes_per_object_not_objects() -> None:
    """Planned, levelled and every result recorded, 10k ConfigMaps grow the heap by a few
    bytes each: the objects, their records and results are in the spool file (a list of
    Items alone was ~0.4 KiB an object)."""
    n = 10_000
    spool = Spool()
    tracemalloc.start()
    try:
        loaded = LoadedBackup(None, None, ItemTable(spool), spool)  # type: ignore[arg-type]
        for i in range(n):
            meta = {"name": f"cm-{i:05d}", "namespace": "app", "uid": f"u{i}"}
            obj = {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "data": {"k": "v" * 64},
                "metadata": meta,
            }
            loaded.items.append(Item("configmaps", "app", f"cm-{i:05d}", obj, spool=spool))
        plan = make_plan(loaded, RestoreOptions("r", "b"), FakeTarget.disc)
        results = ResultTable(spool)
        for level in plan.levels:
            for it in level:
                results.put(it.index, ObjectResult(it.key, it.gr, "created", uid=f"new-{it.name}"))
        held, peak = tracemalloc.get_traced_memory()
        print(f"{n} objects: heap {held / n:.0f} B an object, peak {peak / n:.0f}")
    finally:
        tracemalloc.stop()
    assert [len(lv) for lv in plan.levels] == [1, n] and len(results) == n + 1
    assert held < 64 * n and peak < 96 * n, (held / n, peak / n)


def test_resource_lists_are_compressed_as_they_come_and_read_as_one_document(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Batches of names become gzip members, concatenated: gzip readers see one JSON
    document; a key's parts come out sorted (None first), each in the order added."""
    assert json.loads(gzip.decompress(gzlists.GzipLists().gzipped())) == {}
    monkeypatch.setattr(gzlists, "BATCH", 2)
    lists = gzlists.GzipLists(sort_keys=True)
    for i in range(5):
        lists.add("v1/ConfigMap", f"b/cm-{i}", part="b")
    lists.add("v1/ConfigMap", 'a/"q"', part="a")
    lists.end_part("a")
    lists.add("apps/v1/Deployment", "w")
    lists.add("v1/ConfigMap", "cluster-wide")
    names = ["cluster-wide", 'a/"q"', *(f"b/cm-{i}" for i in range(5))]
    want = {"apps/v1/Deployment": ["w"], "v1/ConfigMap": names}
    data = lists.gzipped()
    assert json.loads(gzip.decompress(data)) == want
    assert list(json.loads(gzip.decompress(data))) == sorted(want)
    gunzip = subprocess.run(["gzip", "-dc"], input=data, capture_output=True, check=True)
    assert json.loads(gunzip.stdout) == want
    insertion = gzlists.GzipLists()
    insertion.add("z", "1")
    insertion.add("a", "2")
    assert list(json.loads(gzip.decompress(insertion.gzipped()))) == ["z", "a"]


def test_a_statefulset_comes_after_the_claims_of_its_templates() -> None:
    """Its pods' claims `<template>-<set>-<ordinal>` are created (and their data restored:
    the data level runs between levels) before the StatefulSet."""
    spec = {
        "replicas": 2,
        "serviceName": "db",
        "volumeClaimTemplates": [{"metadata": {"name": "data"}}],
        "template": {"spec": {"containers": [{"name": "c"}]}},
    }
    claims = [item("PersistentVolumeClaim", f"data-db-{i}", "app", spec={}) for i in range(3)]
    sts = item("StatefulSet", "db", "app", api="apps/v1", spec=spec)
    lv = level_of([item("Namespace", "app"), *claims, sts])
    assert lv["PersistentVolumeClaim/data-db-0"] == lv["PersistentVolumeClaim/data-db-1"] == 1
    assert lv["StatefulSet/db"] == 2
    assert lv["PersistentVolumeClaim/data-db-2"] == 1  # beyond the replicas: no edge needed
