"""verify on the real planes (source v1.30, target v1.37): the shop example migrated with
backup + restore verifies equal; drift made on the target is reported exactly (path,
values, Secret redacted) and nothing else; a clone with namespace mapping and
--replicas 1 is equal once the same transforms are given; --from-backup; JUnit and JSON
are valid and complete; fields v1.37 defaults (StatefulSet maxUnavailable) are not drift.

Every test works on its own copy of the shop (uuid-named namespaces, cluster-scoped
objects and CRD group), so tests sharing the planes never see each other's objects.
"""

from __future__ import annotations

import base64
import contextlib
import json
import subprocess
import sys
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from migrate.backup.create import BackupOptions, create_backup
from migrate.cluster import Cluster
from migrate.restore.plan import RestoreOptions
from migrate.restore.run import run_restore
from migrate.store import Store, open_store
from migrate.transform.mappings import Mappings
from migrate.transform.sanitize import SanitizeOptions
from migrate.transform.scope import Scope
from migrate.verify import Transforms, VerifyOptions, VerifyReport, run_verify
from migrate.verify.results import ABSENT, hidden

from .helpers import EXAMPLES, apply, load_docs, wait_for

BIN = Path(sys.executable).parent
MARKERS = ("KM-MARKER-SECRET-7f3a9c", "KM-MARKER-SECRET-b81d44")
NEW_SECRET = "KM-NEW-SECRET-VALUE-91c2"
# resource -> names, of the cluster-scoped objects of a shop copy (for cleanup)
CLUSTER_OBJECTS = {
    "storageclasses.storage.k8s.io": "{p}-fast",
    "priorityclasses.scheduling.k8s.io": "{p}-high",
    "ingressclasses.networking.k8s.io": "{p}-nginx",
    "clusterroles.rbac.authorization.k8s.io": "{p}-node-reader,{p}-config-reader",
    "clusterrolebindings.rbac.authorization.k8s.io": "{p}-web-node-reader",
    "persistentvolumes": "{p}-pv-1",
    "customresourcedefinitions.apiextensions.k8s.io": "widgets.{p}.example.com",
}


def shop_docs(p: str) -> list[dict[str, Any]]:
    """examples/shop and examples/nginx with every name that could collide made unique by
    prefix p (namespaces p, p-data and p-nginx)."""
    shop = load_docs(sorted((EXAMPLES / "shop").glob("[0-2]*.yaml")))
    nginx = json.dumps(load_docs([EXAMPLES / "nginx" / "nginx.yaml"]))
    text = json.dumps(shop + json.loads(nginx.replace('"nginx"', '"shop-nginx-app"')))
    for old in (
        "shop-data",
        "shop-fast",
        "shop-high",
        "shop-nginx-app",
        "shop-nginx",
        "shop-node-reader",
        "shop-config-reader",
        "shop-web-node-reader",
        "shop-pv-1",
        "shop",
    ):
        text = text.replace(f'"{old}"', f'"{old.replace("shop", p, 1)}"')
    text = text.replace("shop.example.com", f"{p}.example.com")
    docs: list[dict[str, Any]] = json.loads(text)
    return docs


@dataclass
class Shop:
    p: str  # the source namespaces are p and p-data
    store: Store
    backup: str
    bucket_url: str

    @property
    def namespaces(self) -> tuple[str, str, str]:
        return self.p, f"{self.p}-data", f"{self.p}-nginx-app"

    def mapped(self, tag: str) -> dict[str, str]:
        return {ns: f"{ns}-{tag}" for ns in self.namespaces}


def _delete(c: Cluster, resource: str, name: str, ns: str | None = None) -> None:
    with contextlib.suppress(Exception):
        c.delete(c.discovery().resolve(resource), name, ns)


@pytest.fixture(scope="module")
def shop(source: Cluster, target: Cluster, dev_env: Any) -> Iterator[Shop]:
    """A shop copy on the source, backed up once; deleted from both clusters after."""
    p = f"vf-{uuid.uuid4().hex[:6]}"
    bucket_url = f"{dev_env.bucket}/t-{uuid.uuid4().hex[:10]}"
    try:
        docs = shop_docs(p)
        crd = next(d for d in docs if d["kind"] == "CustomResourceDefinition")
        crd_res = source.discovery().resolve("customresourcedefinitions.apiextensions.k8s.io")
        source.create(crd_res, crd)
        wait_for(
            "the CRD established",
            lambda: any(
                c["type"] == "Established" and c["status"] == "True"
                for c in (source.get(crd_res, crd["metadata"]["name"]).get("status") or {}).get(
                    "conditions"
                )
                or []
            ),
            60,
        )
        apply(source, docs)
        wait_for("the source's controllers", lambda: _recreated(source, p) == EXPECTED, 180)
        store = open_store(bucket_url)
        yield Shop(p, store, _backup(source, store, p), bucket_url)
    finally:
        for c in (source, target):
            for ns in c.list(c.discovery().resolve("namespaces")):
                if ns["metadata"]["name"].startswith(p):
                    _delete(c, "namespaces", ns["metadata"]["name"])
            for resource, names in CLUSTER_OBJECTS.items():
                for name in names.format(p=p).split(","):
                    _delete(c, resource, name)
            crbs = "clusterrolebindings.rbac.authorization.k8s.io"
            for crb in c.list(c.discovery().resolve(crbs)):  # copies made for mapped clones
                if crb["metadata"]["name"].startswith(f"{p}-web-node-reader-"):
                    _delete(c, crbs, crb["metadata"]["name"])


# What the source's controllers make for a shop copy (the backup must hold it all).
EXPECTED = {"Pod": 5, "ReplicaSet": 2, "EndpointSlice": 3}


def _recreated(c: Cluster, p: str) -> dict[str, int]:
    """How many Pods, ReplicaSets and EndpointSlices the copy's namespaces hold."""
    counts = dict.fromkeys(EXPECTED, 0)
    for kind, resource in (
        ("Pod", "pods"),
        ("ReplicaSet", "replicasets.apps"),
        ("EndpointSlice", "endpointslices.discovery.k8s.io"),
    ):
        res = c.discovery().resolve(resource)
        for ns in (p, f"{p}-data", f"{p}-nginx-app"):
            counts[kind] += sum(1 for _ in c.list(res, ns))
    return counts


def _backup(source: Cluster, store: Store, p: str) -> str:
    """Back up the copy; again when a type another test deleted meanwhile failed it."""
    for attempt in range(3):
        source.discovery(refresh=True)
        scope = Scope(include_namespaces=(p, f"{p}-data", f"{p}-nginx-app"))
        opts = BackupOptions(f"{p}-{attempt}", scope, ttl=timedelta(hours=2))
        if create_backup(source, store, opts).phase == "Completed":
            return opts.name
    raise AssertionError("the backup did not complete")


def restore(target: Cluster, shop: Shop, mappings: Mappings | None = None) -> None:
    opts = RestoreOptions(
        name=f"r-{uuid.uuid4().hex[:6]}",
        backup=shop.backup,
        mappings=mappings or Mappings(),
    )
    summary = run_restore(target, shop.store, opts)
    assert summary.phase == "Completed", summary.as_dict(details=True)


def settled(
    source: Cluster | None,
    target: Cluster,
    opts: VerifyOptions,
    store: Store | None = None,
    equal: bool = True,
    timeout: float = 90,
) -> VerifyReport:
    """Verify until the target's controllers caught up (pods, EndpointSlices exist)."""
    last: list[VerifyReport] = []

    def check() -> bool:
        last[:] = [run_verify(source, target, opts, store)]
        return last[0].drift != equal

    with contextlib.suppress(AssertionError):
        wait_for("verify to settle", check, timeout)
    return last[0]


def drift(report: VerifyReport) -> dict[tuple[str, str], Any]:
    """(kind, ns/name) -> status, or [(path, old, new)] for changed objects."""
    return {
        (r.kind, r.ref()): [(c.path, c.old, c.new) for c in r.changes] if r.changes else r.status
        for r in report.drifted
    }


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "kube-migrate"), "verify", *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )


def assert_no_secret(*texts: str) -> None:
    for text in texts:
        for secret in (*MARKERS, NEW_SECRET):
            assert secret not in text
            assert base64.b64encode(secret.encode()).decode() not in text


def scope_args(*namespaces: str) -> list[str]:
    return ["--include-namespaces", ",".join(namespaces)]


@pytest.fixture(scope="module")
def migrated(target: Cluster, shop: Shop) -> Shop:
    """The shop restored into the target under its own names (a plain migration)."""
    restore(target, shop)
    return shop


# --------------------------------------------------------------------------------- tests


def test_clean_migration_verifies_equal(
    source: Cluster, target: Cluster, migrated: Shop, tmp_path: Path
) -> None:
    shop = migrated
    opts = VerifyOptions(Scope(include_namespaces=shop.namespaces))
    report = settled(source, target, opts)
    assert not report.drift, drift(report)
    kinds = {r.kind for r in report.results}
    assert {
        "Namespace",
        "ConfigMap",
        "Secret",
        "ServiceAccount",
        "Role",
        "RoleBinding",
        "PersistentVolumeClaim",
        "Deployment",
        "Service",
        "Ingress",
        "CronJob",
        "StatefulSet",
        "Widget",
    } <= kinds
    assert not kinds & {"Pod", "ReplicaSet", "EndpointSlice", "Endpoints"}  # counted instead

    junit = tmp_path / "verify.xml"
    out = cli(*scope_args(*shop.namespaces), "-o", "json", "--junit", str(junit))
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert doc["kind"] == "VerifyReport" and doc["summary"]["drift"] is False
    assert doc["target"]["version"].startswith("v1.37") and doc["source"]["version"]
    assert len(doc["objects"]) == doc["summary"]["objects"] == len(report.results)
    assert {o["status"] for o in doc["objects"]} == {"equal"}
    suites = ET.parse(junit).getroot()
    cases = suites.findall("./testsuite/testcase")
    assert suites.get("tests") == str(len(cases)) == str(len(report.results))
    assert suites.get("failures") == "0" and not suites.findall(".//failure")
    for fmt in ("table", "markdown", "html"):
        text = cli(*scope_args(*shop.namespaces), "-o", fmt)
        assert text.returncode == 0 and "equal" in text.stdout.lower()
        assert_no_secret(text.stdout, text.stderr)
    assert_no_secret(out.stdout, out.stderr, junit.read_text())


def test_drift_on_the_target_is_reported_exactly(
    source: Cluster, target: Cluster, shop: Shop, tmp_path: Path
) -> None:
    m = shop.mapped("drift")
    restore(target, shop, Mappings(namespaces=m))
    opts = VerifyOptions(
        Scope(include_namespaces=shop.namespaces), Transforms(mappings=Mappings(namespaces=m))
    )
    assert not settled(source, target, opts).drift
    ns = m[shop.p]
    d = target.discovery()
    target.patch(d.resolve("configmaps"), "web-config", {"data": {"LOG_LEVEL": "debug"}}, ns)
    target.delete(d.resolve("services"), "web", ns)
    target.patch(d.resolve("deployments.apps"), "web", {"spec": {"replicas": 3}}, ns)
    target.create(
        d.resolve("configmaps"), {"metadata": {"name": "intruder"}, "data": {"a": "b"}}, ns
    )
    target.patch(d.resolve("secrets"), "web-secret", {"stringData": {"api-key": NEW_SECRET}}, ns)
    pods = d.resolve("pods")
    wait_for(
        "3 web pods",
        lambda: (
            sum(
                1
                for o in target.list(pods, ns, label_selector="app=web")
                if not o["metadata"].get("deletionTimestamp")
            )
            == 3
        ),
        60,
    )

    expected = {
        ("ConfigMap", f"{ns}/web-config"): [("data.LOG_LEVEL", hidden("info"), hidden("debug"))],
        ("Service", f"{ns}/web"): "missing",
        ("Deployment", f"{ns}/web"): [("spec.replicas", 2, 3), ("count(Pod)", 2, 3)],
        ("ConfigMap", f"{ns}/intruder"): "extra",
        ("Secret", f"{ns}/web-secret"): [("data.api-key", "<redacted>", "<redacted>")],
    }
    report = settled(source, target, opts, equal=False)
    for _ in range(30):  # the endpoint and ReplicaSet controllers may still be catching up
        if drift(report) == expected:
            break
        report = run_verify(source, target, opts)
    assert drift(report) == expected

    junit = tmp_path / "drift.xml"
    args = [
        *scope_args(*shop.namespaces),
        "--namespace-mappings",
        ",".join(f"{k}:{v}" for k, v in m.items()),
    ]
    out = cli(*args, "-o", "json", "--junit", str(junit))
    assert out.returncode == 1, out.stderr
    assert "drift between source and target" in out.stderr
    doc = json.loads(out.stdout)
    assert doc["summary"]["drift"] is True
    assert (doc["summary"]["changed"], doc["summary"]["missing"], doc["summary"]["extra"]) == (
        3,
        1,
        1,
    )
    by = {(o["kind"], o["name"]): o for o in doc["objects"] if o["status"] != "equal"}
    assert by[("ConfigMap", "web-config")]["changes"] == [
        {
            "path": "data.LOG_LEVEL",
            "op": "changed",
            "source": hidden("info"),
            "target": hidden("debug"),
        }
    ]
    assert by[("Service", "web")]["sourceNamespace"] == shop.p
    suites = ET.parse(junit).getroot()
    assert suites.get("tests") == str(len(doc["objects"])) and suites.get("failures") == "5"
    failed = {c.get("name"): c.find("failure") for c in suites.iter("testcase")}
    assert failed[f"{ns}/web-secret"].text == "data.api-key: <redacted> -> <redacted>"  # type: ignore[union-attr]
    assert failed[f"{ns}/web-config"] is not None
    assert failed[f"{m[shop.p + '-data']}/db-config"] is None
    table = cli(*args)
    assert table.returncode == 1
    assert_no_secret(out.stdout, out.stderr, junit.read_text(), table.stdout, table.stderr)
    for fmt in ("markdown", "html"):
        assert_no_secret(cli(*args, "-o", fmt).stdout)

    shown = cli(*args, "-o", "json", "--show-values")  # ConfigMap values: yes; Secrets: never
    changes = {o["kind"]: o["changes"] for o in json.loads(shown.stdout)["objects"] if o["changes"]}
    assert changes["ConfigMap"] == [
        {"path": "data.LOG_LEVEL", "op": "changed", "source": "info", "target": "debug"}
    ]
    assert changes["Secret"] == [
        {"path": "data.api-key", "op": "changed", "source": "<redacted>", "target": "<redacted>"}
    ]
    assert_no_secret(shown.stdout, shown.stderr)
    refused = cli(*args, "--show-secrets")
    assert refused.returncode == 2 and "never prints Secret values" in refused.stderr


def test_clone_with_mappings_and_replicas_is_equal(
    source: Cluster, target: Cluster, shop: Shop
) -> None:
    m = shop.mapped("clone")
    restore(target, shop, Mappings(namespaces=m, replicas=1, suspend_cronjobs=True))
    same = Transforms(mappings=Mappings(namespaces=m, replicas=1, suspend_cronjobs=True))
    report = settled(source, target, VerifyOptions(Scope(include_namespaces=shop.namespaces), same))
    assert not report.drift, drift(report)
    assert {r.namespace for r in report.results} >= set(m.values())

    # without the transforms the restore applied, the intended changes show as drift
    only_ns = Transforms(mappings=Mappings(namespaces=m))
    report = run_verify(
        source, target, VerifyOptions(Scope(include_namespaces=shop.namespaces), only_ns)
    )
    ns, web = m[shop.p], m[f"{shop.p}-nginx-app"]
    assert drift(report) == {
        ("Deployment", f"{ns}/web"): [("spec.replicas", 2, 1), ("count(Pod)", 2, 1)],
        ("Deployment", f"{web}/{shop.p}-nginx-app"): [
            ("spec.replicas", 2, 1),
            ("count(Pod)", 2, 1),
        ],
        ("CronJob", f"{ns}/report"): [("spec.suspend", False, True)],
    }


def test_from_backup(source: Cluster, target: Cluster, migrated: Shop) -> None:
    """The backup is the reference: the cluster-scoped objects it brought along (CRD,
    classes, RBAC) are compared too, and a later change on the source is not drift.  Its
    PV is not expected under the restore's default --pv-policy reprovision, and missing
    under retain-as-is (this restore left it out)."""
    shop = migrated
    opts = VerifyOptions(backup=shop.backup)
    report = settled(None, target, opts, shop.store)
    assert not report.drift, drift(report)
    cluster_kinds = {r.kind for r in report.results if r.namespace is None}
    assert {
        "Namespace",
        "CustomResourceDefinition",
        "StorageClass",
        "PriorityClass",
        "IngressClass",
        "ClusterRole",
        "ClusterRoleBinding",
    } <= cluster_kinds
    assert "PersistentVolume" not in cluster_kinds
    retained = Transforms(sanitize=SanitizeOptions(pv_policy="retain-as-is"))
    report = run_verify(
        None, target, VerifyOptions(transforms=retained, backup=shop.backup), shop.store
    )
    missing = {(r.kind, r.name) for r in report.results if r.status == "missing"}
    assert missing == {("PersistentVolume", f"{shop.p}-pv-1")}, drift(report)
    assert report.source["backup"] == shop.backup and report.source["version"].startswith("v1.30")
    live = run_verify(source, target, VerifyOptions(Scope(include_namespaces=shop.namespaces)))
    assert {r.key for r in live.results} < {r.key for r in report.results}  # + cluster deps

    cm = source.discovery().resolve("configmaps")
    role = target.discovery().resolve("clusterroles.rbac.authorization.k8s.io")
    source.patch(cm, "web-config", {"data": {"LOG_LEVEL": "trace"}}, shop.p)
    target.patch(role, f"{shop.p}-config-reader", {"metadata": {"labels": {"touched": "yes"}}})
    try:
        live = run_verify(source, target, VerifyOptions(Scope(include_namespaces=shop.namespaces)))
        assert drift(live) == {
            ("ConfigMap", f"{shop.p}/web-config"): [
                ("data.LOG_LEVEL", hidden("trace"), hidden("info"))
            ]
        }
        out = cli("--from-backup", shop.backup, "--bucket", shop.bucket_url, "-o", "json")
        assert out.returncode == 1, out.stderr
        changed = [o for o in json.loads(out.stdout)["objects"] if o["status"] != "equal"]
        assert [(o["kind"], o["name"], o["changes"]) for o in changed] == [
            (
                "ClusterRole",
                f"{shop.p}-config-reader",
                [{"path": "metadata.labels", "op": "added", "target": {"touched": "yes"}}],
            )
        ]
    finally:
        source.patch(cm, "web-config", {"data": {"LOG_LEVEL": "info"}}, shop.p)
        target.patch(role, f"{shop.p}-config-reader", {"metadata": {"labels": None}})


def test_target_defaults_are_not_drift(source: Cluster, target: Cluster, shop: Shop) -> None:
    """v1.37 defaults StatefulSet spec.updateStrategy.rollingUpdate.maxUnavailable, which
    v1.30 does not write: not drift.  A non-default value there is."""
    m = shop.mapped("def")
    restore(target, shop, Mappings(namespaces=m))
    sts = target.discovery().resolve("statefulsets.apps")
    data = m[f"{shop.p}-data"]
    rolling = ("spec", "updateStrategy", "rollingUpdate")
    src_obj = source.get(sts, "db", f"{shop.p}-data")
    tgt_obj = target.get(sts, "db", data)
    assert "maxUnavailable" not in _subtree_at(src_obj, rolling)
    assert _subtree_at(tgt_obj, rolling)["maxUnavailable"] == 1
    opts = VerifyOptions(
        Scope(include_namespaces=shop.namespaces), Transforms(mappings=Mappings(namespaces=m))
    )
    report = settled(source, target, opts)
    assert not report.drift, drift(report)
    target.patch(
        sts, "db", {"spec": {"updateStrategy": {"rollingUpdate": {"maxUnavailable": 2}}}}, data
    )
    assert drift(run_verify(source, target, opts)) == {
        ("StatefulSet", f"{data}/db"): [
            ("spec.updateStrategy.rollingUpdate.maxUnavailable", ABSENT, 2)
        ]
    }


def _subtree_at(obj: dict[str, Any], path: tuple[str, ...]) -> dict[str, Any]:
    for key in path:
        obj = obj.get(key) or {}
    return obj
