"""verify without clusters: paths, the normalization tables, sorting objects into
compared / counted / not compared, the one-pass compare, redaction, and every output
format (table, JSON, Markdown, HTML, JUnit)."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from migrate.backup.scope import resolve_resources
from migrate.cli.main import run
from migrate.cluster import APIResource, Discovery
from migrate.errors import EXIT_USAGE, UsageError
from migrate.transform.exclusions import EXCLUDED_RESOURCES
from migrate.transform.mappings import Mappings
from migrate.transform.modifiers import parse_modifiers
from migrate.transform.scope import Scope
from migrate.verify import paths
from migrate.verify.collect import Collector, Side
from migrate.verify.compare import compare, expected_count
from migrate.verify.ignorefile import parse_ignore_rules
from migrate.verify.junit import to_xml
from migrate.verify.normalize import (
    Normalizer,
    Raw,
    Transforms,
    same_but_volatile,
    secret_digest,
)
from migrate.verify.render import html_page, markdown, table
from migrate.verify.results import ABSENT, ObjectResult, VerifyReport, hidden, shown
from migrate.verify.scope import ResourceFilter, VerifyScope, resolve_types

BIN = Path(sys.executable).parent
SECRET = "c3VwZXItc2VjcmV0"  # base64("super-secret")


# ------------------------------------------------------------------------ object makers


def obj(
    kind: str, name: str, ns: str | None = "app", api: str = "v1", **top: Any
) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "name": name,
        "uid": f"uid-{kind}-{name}-{ns}",
        "resourceVersion": "42",
        "creationTimestamp": "2024-01-01T00:00:00Z",
    }
    if ns:
        meta["namespace"] = ns
    meta.update(top.pop("meta", {}))
    return {"apiVersion": api, "kind": kind, "metadata": meta, **top}


def owned(o: dict[str, Any], owner: dict[str, Any]) -> dict[str, Any]:
    o["metadata"]["ownerReferences"] = [
        {
            "apiVersion": owner["apiVersion"],
            "kind": owner["kind"],
            "name": owner["metadata"]["name"],
            "uid": owner["metadata"]["uid"],
            "controller": True,
        }
    ]
    return o


def deployment(name: str, ns: str = "app", replicas: int = 2) -> dict[str, Any]:
    return obj(
        "Deployment",
        name,
        ns,
        "apps/v1",
        spec={
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}, "creationTimestamp": None},
                "spec": {"containers": [{"name": "c", "image": "docker.io/x/web:1"}]},
            },
        },
    )


def with_pods(d: dict[str, Any], n: int, rs_suffix: str) -> list[dict[str, Any]]:
    """d, its ReplicaSet and n running Pods, as a cluster would list them."""
    ns = d["metadata"]["namespace"]
    rs = owned(
        obj(
            "ReplicaSet",
            f"{d['metadata']['name']}-{rs_suffix}",
            ns,
            "apps/v1",
            spec={"replicas": n},
        ),
        d,
    )
    pods = [
        owned(obj("Pod", f"{rs['metadata']['name']}-{i}", ns, status={"phase": "Running"}), rs)
        for i in range(n)
    ]
    return [d, rs, *pods]


def restored(o: dict[str, Any], ns_map: dict[str, str] | None = None) -> dict[str, Any]:
    """What the target returns for o after a restore: new identity, restore labels."""
    out = copy.deepcopy(o)
    meta = out["metadata"]
    meta["uid"] = "new-" + meta["uid"]
    if ns_map and meta.get("namespace") in ns_map:
        meta["namespace"] = ns_map[meta["namespace"]]
    meta.setdefault("labels", {}).update(
        {"velero.io/backup-name": "b1", "velero.io/restore-name": "r1"}
    )
    for ref in meta.get("ownerReferences") or []:
        ref["uid"] = "new-" + ref["uid"]
    meta["managedFields"] = [{"manager": "kube-migrate"}]
    return out


def sides(
    src: list[dict[str, Any]],
    tgt: list[dict[str, Any]],
    t: Transforms | None = None,
    scope: Scope | None = None,
) -> tuple[Side, Side, Normalizer]:
    t = t or Transforms()
    norm = Normalizer(t)
    col = Collector(VerifyScope((scope or Scope(),), t.mappings), norm)
    out = Side("source"), Side("target")
    for side, objs in zip(out, (src, tgt), strict=True):
        for o in objs:
            col.add(side, o["kind"].lower() + "s", copy.deepcopy(o), True)
        col.finish(side)
    return out[0], out[1], norm


def results_of(src: list[dict[str, Any]], tgt: list[dict[str, Any]], **kw: Any) -> dict[str, Any]:
    s, t, norm = sides(src, tgt, **kw)
    return {
        f"{r.kind}/{r.name}": r.status
        if r.status != "changed"
        else [(c.path, c.old, c.new) for c in r.changes]
        for r in compare(s, t, norm)
    }


# --------------------------------------------------------------------------------- paths


def test_paths() -> None:
    doc: dict[str, Any] = {"a": {"b": [{"c": 1}, {"c": 2, "d": 3}]}, "m": {"x.y/z": "v"}}
    assert list(paths.expand(doc, ("a", "b", "*", "c"))) == [("a", "b", 0, "c"), ("a", "b", 1, "c")]
    assert list(paths.expand(doc, ("a", "nope", "*"))) == []
    assert paths.get(doc, ("a", "b", 1, "d")) == 3 and paths.has(doc, ("m", "x.y/z"))
    assert not paths.has(doc, ("a", "b", 5))
    paths.delete_matching(doc, ("a", "b", "*", "c"))
    assert doc["a"]["b"] == [{}, {"d": 3}]
    paths.delete(doc, ("m", "x.y/z"))
    assert "m" not in doc  # the map emptied by the removal goes too
    assert paths.format_path(["spec", "containers", 0, "image"]) == "spec.containers[0].image"
    assert paths.format_path(["metadata", "labels", "app.kubernetes.io/name"]) == (
        'metadata.labels["app.kubernetes.io/name"]'
    )
    assert paths.parse_pointer("/metadata/annotations/a~1b~0c") == (
        "metadata",
        "annotations",
        "a/b~c",
    )
    with pytest.raises(UsageError):
        paths.parse_pointer("spec/replicas")
    nulls: dict[str, Any] = {"a": None, "b": {"c": None, "d": [{"e": None, "f": 1}]}}
    paths.drop_nulls(nulls)
    assert nulls == {"b": {"d": [{"f": 1}]}}


# -------------------------------------------------------------------- normalize / compare


def test_restored_objects_compare_equal() -> None:
    """uid, resourceVersion, managedFields, restore labels, owner uids, nulls: not drift."""
    d = deployment("web")
    src = [*with_pods(d, 2, "aaa"), obj("ConfigMap", "cfg", data={"k": "v"})]
    tgt = [restored(o) for o in src]
    tgt[1]["metadata"]["name"] = "web-bbb"  # the target's ReplicaSet has its own hash
    assert set(results_of(src, tgt).values()) == {"equal"}
    assert set(results_of(src, tgt)) == {"Deployment/web", "ConfigMap/cfg"}  # pods counted


def test_changed_missing_extra() -> None:
    src = [
        obj("ConfigMap", "a", data={"k": "v", "long": "x" * 100}),
        obj("ConfigMap", "gone"),
        obj("Service", "s", spec={"ports": [{"port": 80}], "clusterIP": "10.0.0.1"}),
    ]
    tgt = [restored(src[0]), restored(src[2]), obj("ConfigMap", "new")]
    tgt[0]["data"] = {"k": "w", "long": "y" * 100, "added": "1"}
    tgt[1]["spec"]["clusterIP"] = "10.9.9.9"  # allocated by the target: per the restore policy
    got = results_of(src, tgt)
    assert got["ConfigMap/gone"] == "missing" and got["ConfigMap/new"] == "extra"
    assert got["Service/s"] == "equal"
    assert got["ConfigMap/a"] == [
        ("data.added", ABSENT, hidden("1")),
        ("data.k", hidden("v"), hidden("w")),
        ("data.long", hidden("x" * 100), hidden("y" * 100)),
    ]


def test_the_restore_transforms_are_applied_to_the_source() -> None:
    m = Mappings(
        namespaces={"app": "clone"},
        registries={"docker.io/x": "reg.test/x"},
        replicas=1,
        suspend_cronjobs=True,
    )
    mods = parse_modifiers("""
version: v1
resourceModifierRules:
- conditions: {groupResource: configmaps}
  mergePatches: [{patchData: '{"data": {"env": "test"}}'}]
""")
    cj = obj("CronJob", "report", api="batch/v1", spec={"schedule": "* * * * *", "suspend": False})
    src = [
        deployment("web"),
        cj,
        obj("ConfigMap", "cfg", data={"env": "prod"}),
        obj("Namespace", "app", None, meta={"labels": {"kubernetes.io/metadata.name": "app"}}),
    ]
    tgt = [restored(o, {"app": "clone"}) for o in src]
    tgt[0]["spec"]["replicas"] = 1
    tgt[0]["spec"]["template"]["spec"]["containers"][0]["image"] = "reg.test/x/web:1"
    tgt[1]["spec"]["suspend"] = True
    tgt[2]["data"]["env"] = "test"
    tgt[3]["metadata"]["name"] = "clone"
    tgt[3]["metadata"]["labels"]["kubernetes.io/metadata.name"] = "clone"
    same = Transforms(mappings=m, modifiers=mods)
    assert set(results_of(src, tgt, t=same).values()) == {"equal"}
    only_ns = results_of(src, tgt, t=Transforms(mappings=Mappings(namespaces={"app": "clone"})))
    assert only_ns["Deployment/web"] == [
        ("spec.replicas", 2, 1),
        ("spec.template.spec.containers[0].image", "docker.io/x/web:1", "reg.test/x/web:1"),
    ]
    assert only_ns["CronJob/report"] == [("spec.suspend", False, True)]
    assert only_ns["ConfigMap/cfg"] == [("data.env", hidden("prod"), hidden("test"))]


def test_secrets_are_compared_by_hash_and_never_shown() -> None:
    src = [obj("Secret", "s", type="Opaque", data={"password": SECRET})]
    tgt = [restored(src[0])]
    tgt[0]["data"] = {"password": "b3RoZXI=", "token": "dG9r"}
    s, t, norm = sides(src, tgt)
    held = norm.materialize(s.objects[("", "Secret", "app", "s")])
    assert held["data"]["password"] == secret_digest(SECRET)
    got = compare(s, t, norm)[0]
    assert [(c.path, c.old, c.new) for c in got.changes] == [
        ("data.password", "<redacted>", "<redacted>"),
        ("data.token", ABSENT, "<redacted>"),
    ]
    assert SECRET not in json.dumps(got.as_dict())
    # --show-values opens ConfigMaps only: a Secret stays <redacted>
    s, t, norm = sides(src, tgt, t=Transforms(show_values=True))
    got = compare(s, t, norm, show_values=True)[0]
    assert (got.changes[0].old, got.changes[0].new) == ("<redacted>", "<redacted>")
    # a whole data map, or a Secret's last-applied annotation, is redacted too
    for show in (False, True):
        assert shown("Secret", ["data"], {"a": "x"}, show) == {"a": "<redacted>"}
        la = ["metadata", "annotations", "kubectl.kubernetes.io/last-applied-configuration"]
        assert shown("Secret", la, '{"data": {"a": "x"}}', show) == "<redacted>"


def test_configmap_values_are_hashes_and_sizes_unless_show_values() -> None:
    value = "postgres://app:M4RK3R@db:5432/app"
    digest = hidden(value)
    assert value not in digest and "M4RK3R" not in digest
    assert digest.startswith("<sha256:") and digest.endswith(f", {len(value)} bytes>")
    assert hidden("a") != hidden("b")  # two values stay told apart
    assert shown("ConfigMap", ["data", "url"], value) == digest
    assert shown("ConfigMap", ["binaryData"], {"b": "AAEC"}) == {"b": hidden("AAEC")}
    la = ["metadata", "annotations", "kubectl.kubernetes.io/last-applied-configuration"]
    assert shown("ConfigMap", la, '{"data": {"url": "x"}}') == hidden('{"data": {"url": "x"}}')
    assert shown("ConfigMap", ["data", "url"], value, True) == value
    assert shown("ConfigMap", ["data", "k"], "z" * 250, True) == "z" * 200 + "... (250 chars)"
    assert shown("ConfigMap", ["metadata", "labels", "a"], "b") == "b"  # not a value: shown
    src = [obj("ConfigMap", "cfg", data={"url": value})]
    tgt = [restored(src[0])]
    tgt[0]["data"] = {"url": value + "x"}
    s, t, norm = sides(src, tgt)
    got = compare(s, t, norm)[0]
    for out in (table(VerifyReport({}, {}, [got])), json.dumps(got.as_dict())):
        assert "M4RK3R" not in out and hidden(value) in out


def test_deferred_normalization_is_sound() -> None:
    """Objects kept raw (normalization put off) are equal only when equal but for what a
    restore never carries over; wherever the transforms could change an object's content,
    objects are normalized up front, so a restore that skipped a transform is drift."""
    cm = obj("ConfigMap", "cfg", data={"k": "v"}, meta={"labels": {"a": "b"}})
    s, t, norm = sides([cm], [restored(cm)])
    assert type(s.objects[("", "ConfigMap", "app", "cfg")]) is Raw
    assert same_but_volatile(  # restore labels, uid, managedFields: the fast path's equal
        s.objects[("", "ConfigMap", "app", "cfg")], t.objects[("", "ConfigMap", "app", "cfg")]
    )
    assert [r.status for r in compare(s, t, norm)] == ["equal"]
    changed = restored(cm)
    changed["metadata"]["labels"]["a"] = "c"
    assert results_of([cm], [changed])["ConfigMap/cfg"] == [("metadata.labels.a", "b", "c")]
    extra_null = restored(cm)
    extra_null["immutable"] = None  # differs raw, equal normalized: the slow path says so
    assert results_of([cm], [extra_null])["ConfigMap/cfg"] == "equal"
    # an image mapping the restore did not apply: the raw objects are equal, yet drift
    d = deployment("web")
    m = Mappings(registries={"docker.io/x": "reg.test/x"})
    got = results_of([d], [restored(d)], t=Transforms(mappings=m))
    assert got["Deployment/web"] == [
        ("spec.template.spec.containers[0].image", "reg.test/x/web:1", "docker.io/x/web:1")
    ]
    # a namespace mapping the restore did not apply to a RoleBinding's subject
    rb = obj(
        "RoleBinding",
        "rb",
        api="rbac.authorization.k8s.io/v1",
        roleRef={"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "r"},
        subjects=[{"kind": "ServiceAccount", "name": "sa", "namespace": "app"}],
    )
    stale = restored(rb, {"app": "clone"})
    stale["subjects"][0]["namespace"] = "app"
    got = results_of([rb], [stale], t=Transforms(mappings=Mappings(namespaces={"app": "clone"})))
    assert got["RoleBinding/rb"] == [("subjects[0].namespace", "clone", "app")]


def test_target_only_defaults_are_not_drift_but_source_values_must_match() -> None:
    sts = obj(
        "StatefulSet",
        "db",
        api="apps/v1",
        spec={
            "replicas": 1,
            "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}},
        },
    )
    tgt = restored(sts)
    tgt["spec"]["updateStrategy"]["rollingUpdate"]["maxUnavailable"] = 1
    assert results_of([sts], [tgt]) == {"StatefulSet/db": "equal"}
    tgt["spec"]["updateStrategy"]["rollingUpdate"]["maxUnavailable"] = 2  # not the default
    assert results_of([sts], [tgt])["StatefulSet/db"] == [
        ("spec.updateStrategy.rollingUpdate.maxUnavailable", ABSENT, 2)
    ]
    src = copy.deepcopy(sts)
    src["spec"]["updateStrategy"]["rollingUpdate"]["maxUnavailable"] = (
        3  # on the source: must match
    )
    tgt["spec"]["updateStrategy"]["rollingUpdate"]["maxUnavailable"] = 1
    assert results_of([src], [tgt])["StatefulSet/db"] == [
        ("spec.updateStrategy.rollingUpdate.maxUnavailable", 3, 1)
    ]


def test_recreated_objects_are_counted_per_root_owner() -> None:
    d = deployment("web", replicas=2)
    src = with_pods(d, 2, "aaa")
    tgt_d = restored(d)
    tgt = with_pods(tgt_d, 3, "bbb")
    got = results_of(src, tgt)
    assert got == {"Deployment/web": [("count(Pod)", 2, 3)]}
    # --replicas: the expected Pods are the override
    tgt_d["spec"]["replicas"] = 1
    one = with_pods(tgt_d, 1, "ccc")
    assert set(results_of(src, one, t=Transforms(mappings=Mappings(replicas=1))).values()) == {
        "equal"
    }
    assert expected_count("ReplicaSet", "Deployment", 1, Mappings(replicas=0)) == 0
    assert expected_count("Pod", "DaemonSet", 5, Mappings(replicas=1)) == 5


def test_what_is_not_compared() -> None:
    ds = obj("DaemonSet", "agent", api="apps/v1", spec={"selector": {}})
    job = obj("Job", "migrate", api="batch/v1", spec={"template": {}})
    svc = obj("Service", "web", spec={"selector": {"app": "web"}, "ports": [{"port": 80}]})
    src = [
        ds,
        owned(obj("Pod", "agent-1", status={"phase": "Running"}), ds),
        job,
        svc,
        obj("Endpoints", "web", subsets=[{"addresses": [{"ip": "10.0.0.1"}]}]),
        obj("ConfigMap", "kube-root-ca.crt", data={"ca.crt": "A"}),
        obj("StorageClass", "fast", None, "storage.k8s.io/v1", provisioner="x"),
    ]
    tgt_ds, tgt_svc = restored(ds), restored(svc)
    done = restored(job)
    done["status"] = {"completionTime": "2024-01-01T00:00:00Z"}  # finished on the target
    tgt = [
        tgt_ds,
        *(owned(obj("Pod", f"agent-{i}", status={"phase": "Running"}), tgt_ds) for i in range(3)),
        done,
        tgt_svc,
        obj("Endpoints", "web", subsets=[{"addresses": [{"ip": "10.9.9.9"}]}]),
        obj("ConfigMap", "kube-root-ca.crt", data={"ca.crt": "B"}),
        obj("ServiceAccount", "default"),
        obj("StorageClass", "standard", None, "storage.k8s.io/v1", provisioner="y"),
    ]
    m = Transforms(mappings=Mappings(storage_classes={"fast": "standard"}))
    assert results_of(src, tgt, t=m) == {
        "DaemonSet/agent": "equal",
        "Job/migrate": "equal",
        "Service/web": "equal",
    }


def test_user_ignore_rules_and_scope() -> None:
    rules = parse_ignore_rules("""
ignoreDifferences:
- group: apps
  kind: Deployment
  name: web*
  jsonPointers: [/spec/replicas]
""")
    src = [deployment("web"), deployment("api")]
    tgt = [restored(o) for o in src]
    for o in tgt:
        o["spec"]["replicas"] = 5
    got = results_of(src, tgt, t=Transforms(ignore=tuple(rules)))
    assert got == {"Deployment/web": "equal", "Deployment/api": [("spec.replicas", 2, 5)]}
    with pytest.raises(UsageError, match="unknown keys"):
        parse_ignore_rules("- kind: X\n  jsonPointer: [/a]\n")
    with pytest.raises(UsageError, match="JSON pointer"):
        parse_ignore_rules("- jsonPointers: [spec]\n")
    vs = VerifyScope(
        (Scope(include_namespaces=("a", "b")), Scope(include_namespaces=("a",))),
        Mappings(namespaces={"a": "a2", "x": "a"}),
    )
    assert vs.source_namespace("a2") == "a" and vs.source_namespace("a") == "x"
    assert vs.source_namespace("x") is None and vs.source_namespace("zz") == "zz"
    assert vs.target_ns_included("a2") and not vs.target_ns_included("b")
    assert vs.explicit_namespaces() == ["a"]
    assert vs.cluster_mode == "deps"
    rf = ResourceFilter(((frozenset({"deployments.apps", "configmaps"}), frozenset()),))
    assert rf.passes("deployments.apps") and rf.passes("configmaps")
    assert not rf.passes("secrets") and not ResourceFilter(((None, frozenset()),)).passes("events")


def test_backup_and_verify_leave_out_the_same_types() -> None:
    """One exclusion table: the types backup leaves out by default are the ones verify does
    not list, and a type named in --include-resources comes back in both."""
    rw = frozenset({"list", "get"})
    disc = Discovery([
        APIResource("", "v1", "configmaps", "ConfigMap", True, rw),
        APIResource("", "v1", "events", "Event", True, rw),
        APIResource("networking.k8s.io", "v1", "servicecidrs", "ServiceCIDR", False, rw),
        APIResource("networking.k8s.io", "v1", "ipaddresses", "IPAddress", False, rw),
    ])  # fmt: skip

    def backed_up_and_verified(scope: Scope) -> tuple[set[str], set[str]]:
        resolved = resolve_resources(disc, scope)
        vs = VerifyScope((scope,), Mappings())
        verified = resolve_types(disc, vs, ResourceFilter.resolve(disc, vs, strict=True))
        return {r.full_name for r in resolved.namespaced + resolved.cluster}, set(verified)

    everything = Scope(include_cluster_resources="true")
    assert backed_up_and_verified(everything) == ({"configmaps"}, {"configmaps"})
    left_out = set(resolve_resources(disc, everything).skipped)
    assert left_out == {r.full_name for r in disc} - {"configmaps"}
    assert left_out <= set(EXCLUDED_RESOURCES)
    named = Scope(
        include_resources=("configmaps", "servicecidrs"), include_cluster_resources="true"
    )
    both = {"configmaps", "servicecidrs.networking.k8s.io"}
    assert backed_up_and_verified(named) == (both, both)


# ------------------------------------------------------------------------------- outputs


def report() -> VerifyReport:
    src = [
        obj(  # hostile text where reports print values as they are (not a ConfigMap value)
            "ConfigMap", "a|b", data={"k": "v"}, meta={"annotations": {"n": "<script>x</script>"}}
        ),
        obj("Service", "s"),
        obj("Secret", "pw", data={"p": SECRET}),
        obj("ConfigMap", "same"),
    ]
    tgt = [restored(src[0]), restored(src[2]), restored(src[3]), obj("ConfigMap", "extra")]
    tgt[0]["metadata"]["annotations"]["n"] = "new\nline"
    tgt[1]["data"]["p"] = "eA=="
    s, t, norm = sides(src, tgt)
    return VerifyReport(
        {"cluster": "src", "version": "v1.30.14"},
        {"cluster": "dst", "version": "v1.37.2"},
        compare(s, t, norm),
        3,
        1.5,
    )


def test_outputs_are_valid_and_complete() -> None:
    r = report()
    assert r.summary() == {
        "objects": 5,
        "equal": 1,
        "changed": 2,
        "missing": 1,
        "extra": 1,
        "notCompared": 3,
        "drift": True,
        "seconds": 1.5,
    }
    doc = json.loads(json.dumps(r.as_dict(), default=str))
    assert [o["status"] for o in doc["objects"]] == [
        "missing",
        "extra",
        "changed",
        "changed",
        "equal",
    ]
    text = table(r)
    lines = text.splitlines()
    assert lines[0].split() == ["STATUS", "KIND", "NAMESPACE", "NAME", "PATH", "SOURCE", "TARGET"]
    assert lines[-1] == "5 objects: 1 equal, 2 changed, 1 missing, 1 extra"
    assert "new\\nline" in text and "<redacted>" in text
    md = markdown(r)
    assert "a\\|b" in md and "drift found" in md
    page = html_page(r)
    assert "<script>" not in page and "&lt;script&gt;" in page
    root = ET.fromstring(to_xml(r))
    cases = root.findall("./testsuite/testcase")
    assert root.get("tests") == "5" == str(len(cases)) and root.get("failures") == "4"
    assert {c.get("name") for c in cases} == {"app/a|b", "app/s", "app/pw", "app/same", "app/extra"}
    fail = {c.get("name"): c.find("failure") for c in cases}
    assert fail["app/same"] is None and fail["app/s"].get("type") == "missing"  # type: ignore[union-attr]
    for out in (text, md, page, to_xml(r).decode(), json.dumps(doc)):
        assert SECRET not in out and "super-secret" not in out
    equal = VerifyReport({}, {}, [ObjectResult(("", "ConfigMap", "a", "x"), "configmaps", "equal")])
    assert table(equal) == "1 objects: 1 equal, 0 changed, 0 missing, 0 extra"


def test_cli_usage_errors(tmp_path: Path) -> None:
    bad = tmp_path / "ignore.yaml"
    bad.write_text("- kind: X\n")
    assert run(["verify", "--ignore-fields", str(bad)]) == EXIT_USAGE
    assert run(["verify", "--from-backup", "b1", "--bucket", ""]) == EXIT_USAGE
    out = subprocess.run(
        [str(BIN / "kube-migrate"), "verify", "--help"], capture_output=True, text=True, check=True
    )
    for flag in (
        "--from-backup",
        "--namespace-mappings",
        "--replicas",
        "--ignore-fields",
        "--junit",
        "--show-values",
        "markdown|html",
    ):
        assert flag in out.stdout
