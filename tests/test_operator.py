"""An operator arrives with the CRDs it needs (examples/operator), migrated with the real
CLI on the real planes: the CRDs RBAC grants its ServiceAccount come along even without
custom resources (backup describe says why), `*` rules and optional integrations are
preflight infos, a granted CRD left out of the backup is a preflight warning and a
verify warning; and a namespace-mapped clone inside the same cluster gets its own
copies of the operator's ClusterRoleBindings, the originals untouched.

Every cluster-scoped name of the fixture is made unique per test (namespace-derived
names, and the API group from a uuid), so tests never share a CRD.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import yaml

from migrate.cluster import Cluster
from migrate.errors import NotFound
from tests.conftest import Env
from tests.helpers import EXAMPLES, apply, run_cli, wait_for

CRDS = "customresourcedefinitions.apiextensions.k8s.io"
CRBS = "clusterrolebindings.rbac.authorization.k8s.io"
VALIDATING_WEBHOOK_CONFIGS = "validatingwebhookconfigurations.admissionregistration.k8s.io"
EXCLUDE = "velero.io/exclude-from-backup"


@dataclass
class Operator:
    ns: str  # the operator's namespace (also its ServiceAccount's, roles' and bindings' name)
    group: str  # its API group
    extras: str  # the granted type no CRD defines

    def crd(self, plural: str) -> str:
        return f"{plural}.{self.group}"


def _docs(op: Operator) -> list[dict[str, Any]]:
    text = (EXAMPLES / "operator" / "operator.yaml").read_text()
    text = text.replace("widget-operator", op.ns).replace("ops.example.com", op.group)
    text = text.replace("integrations.example.com", op.extras.split(".", 1)[1])
    return [d for d in yaml.safe_load_all(text) if d]


def _gone(c: Cluster, crd: str) -> bool:
    try:
        c.get(c.discovery().resolve(CRDS), crd)
    except NotFound:
        plural, group = crd.split(".", 1)
        return c.discovery(refresh=True).get(group, plural) is None
    return False


def _remove(c: Cluster, op: Operator, extra_namespaces: tuple[str, ...] = ()) -> None:
    """Everything the fixture (and a restore of it) made on one cluster."""
    disc = c.discovery()
    for ns in (op.ns, *extra_namespaces):
        c.delete(disc.resolve("namespaces"), ns)
    for res, names in (
        (CRBS, [op.ns, f"{op.ns}-gitops", *(f"{op.ns}-{ns}" for ns in extra_namespaces),
                *(f"{op.ns}-gitops-{ns}" for ns in extra_namespaces)]),
        ("clusterroles.rbac.authorization.k8s.io", [op.ns, f"{op.ns}-gitops"]),
        (VALIDATING_WEBHOOK_CONFIGS, [op.ns]),
        (CRDS, [op.crd(p) for p in ("widgets", "gadgets", "gizmos", "sprockets")]),
    ):  # fmt: skip
        for name in names:
            c.delete(disc.resolve(res), name)
    for plural in ("widgets", "gadgets", "gizmos", "sprockets"):
        wait_for(f"CRD {op.crd(plural)} gone", lambda p=plural: _gone(c, op.crd(p)), 60)


@pytest.fixture
def operator(source: Cluster, target: Cluster) -> Iterator[Operator]:
    uid = uuid.uuid4().hex[:8]
    op = Operator(f"wo-{uid}", f"ops{uid}.example.com", f"extras.int{uid}.example.com")
    apply(source, _docs(op))
    yield op
    _remove(source, op, (f"{op.ns}-clone",))
    _remove(target, op)


def _json(proc: Any) -> Any:
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def _findings(report: dict[str, Any], check: str) -> list[dict[str, Any]]:
    return [f for f in report["findings"] if f["check"] == check]


def test_operator_arrives_with_its_granted_crds(
    dev_env: Env, source: Cluster, target: Cluster, bucket_url: str, operator: Operator
) -> None:
    op, src, dst = operator, dev_env.source_kubeconfig, dev_env.target_kubeconfig
    b = ("--bucket", bucket_url)
    sa = f"ServiceAccount {op.ns}/{op.ns}"
    preflight = _json(run_cli("preflight", "--source-kubeconfig", src, "--target-kubeconfig", dst,
                         "--include-namespaces", op.ns, "-o", "json"))  # fmt: skip
    grant = _findings(preflight, "grant")
    assert {(f["severity"], tuple(f["objects"])) for f in grant} == {
        ("info", (f"ClusterRole {op.ns}-gitops",)),  # the `*` rule: pulls nothing
        ("info", (f"CustomResourceDefinition {op.extras}",)),  # granted, defined nowhere
    }, grant

    backed_up = run_cli(
        "backup", "create", "op", "--kubeconfig", src, *b, "--include-namespaces", op.ns
    )
    assert backed_up.returncode == 0, backed_up.stderr
    described = _json(run_cli("backup", "describe", "op", *b, "-o", "json"))
    why = described["clusterIncluded"][CRDS]
    assert set(why) == {op.crd("widgets"), op.crd("gadgets"), op.crd("gizmos")}  # no sprockets
    assert why[op.crd("widgets")] == f"defines Widget {op.ns}/first in scope"
    assert why[op.crd("gadgets")] == f"granted to {sa} by ClusterRole {op.ns}"
    assert why[op.crd("gizmos")] == f"granted to {sa} by Role {op.ns}/{op.ns}-gizmos"
    grants = described["grants"]
    assert grants["crds"][op.extras]["status"] == "absent"
    assert grants["wildcards"] == {f"ClusterRole {op.ns}-gitops": f"ClusterRole {op.ns}-gitops "
                                   f"(bound to {sa})"}  # fmt: skip

    restored = run_cli(
        "restore", "create", f"r-{op.ns}", "--from-backup", "op", "--kubeconfig", dst, *b
    )
    assert restored.returncode == 0, restored.stderr
    crds = target.discovery().resolve(CRDS)
    for plural in ("widgets", "gadgets", "gizmos"):  # the ones without instances too
        assert target.get(crds, op.crd(plural))["spec"]["group"] == op.group
    with pytest.raises(NotFound):
        target.get(crds, op.crd("sprockets"))
    verified = _json(run_cli("verify", "--from-backup", "op", *b, "--target-kubeconfig", dst,
                        "-o", "json"))  # fmt: skip
    assert not verified["summary"]["drift"] and "warnings" not in verified["summary"]
    assert {o["name"] for o in verified["objects"] if o["kind"] == "CustomResourceDefinition"} >= {
        op.crd("gadgets"),
        op.crd("gizmos"),
    }


def test_granted_crd_left_out_is_a_warning(
    dev_env: Env, source: Cluster, target: Cluster, bucket_url: str, operator: Operator
) -> None:
    op, src, dst = operator, dev_env.source_kubeconfig, dev_env.target_kubeconfig
    b = ("--bucket", bucket_url)
    source.patch(source.discovery().resolve(CRDS), op.crd("gadgets"),
                 {"metadata": {"labels": {EXCLUDE: "true"}}})  # fmt: skip
    live = ["--source-kubeconfig", src, "--target-kubeconfig", dst, "--include-namespaces", op.ns]
    # every CRD excluded (and the Widget, whose kind the target would not serve)
    excluded = _json(run_cli("preflight", *live, "--exclude-resources",
                        f"customresourcedefinitions,widgets.{op.group}", "-o", "json"))  # fmt: skip
    warned = {f["objects"][0]: f["message"] for f in _findings(excluded, "grant")
              if f["severity"] == "warning"}  # fmt: skip
    assert set(warned) == {
        f"CustomResourceDefinition {op.crd(p)}" for p in ("widgets", "gadgets", "gizmos")
    }
    assert all("excluded by --exclude-resources" in m for m in warned.values()), warned

    backed_up = run_cli(
        "backup", "create", "op", "--kubeconfig", src, *b, "--include-namespaces", op.ns
    )
    assert backed_up.returncode == 0, backed_up.stderr
    described = _json(run_cli("backup", "describe", "op", *b, "-o", "json"))
    assert op.crd("gadgets") not in described["clusterIncluded"][CRDS]
    assert described["grants"]["crds"][op.crd("gadgets")]["status"] == "leftOut"
    report = _json(run_cli("preflight", "--from-backup", "op", *b, "--target-kubeconfig", dst,
                      "-o", "json"))  # fmt: skip
    warnings = [f for f in _findings(report, "grant") if f["severity"] == "warning"]
    assert [f["objects"] for f in warnings] == [[f"CustomResourceDefinition {op.crd('gadgets')}"]]
    assert "left out" in warnings[0]["message"] and EXCLUDE in warnings[0]["message"]

    restored = run_cli(
        "restore", "create", f"r-{op.ns}", "--from-backup", "op", "--kubeconfig", dst, *b
    )
    assert restored.returncode == 0, restored.stderr
    for args in (["--from-backup", "op", *b], ["--source-kubeconfig", src,
                                                "--include-namespaces", op.ns]):  # fmt: skip
        proc = run_cli("verify", *args, "--target-kubeconfig", dst, "-o", "json")
        summary = _json(proc)["summary"]
        assert not summary["drift"]  # a warning, not drift
        assert len(summary["warnings"]) == 1 and op.crd("gadgets") in summary["warnings"][0]
        assert op.crd("gadgets") in proc.stderr  # logged too


def test_same_cluster_clone_gets_its_own_cluster_role_bindings(
    dev_env: Env, source: Cluster, bucket_url: str, operator: Operator
) -> None:
    op, src = operator, dev_env.source_kubeconfig
    clone = f"{op.ns}-clone"
    b = ("--bucket", bucket_url)
    crb_res, vwc_res = (
        source.discovery().resolve(CRBS),
        source.discovery().resolve(VALIDATING_WEBHOOK_CONFIGS),
    )
    originals = {n: source.get(crb_res, n) for n in (op.ns, f"{op.ns}-gitops")}
    hook = source.get(vwc_res, op.ns)
    mapping = ("--namespace-mappings", f"{op.ns}:{clone}")

    backed_up = run_cli(
        "backup", "create", "op", "--kubeconfig", src, *b, "--include-namespaces", op.ns
    )
    assert backed_up.returncode == 0, backed_up.stderr
    report = _json(run_cli("preflight", "--from-backup", "op", *b, "--target-kubeconfig", src,
                      *mapping, "-o", "json"))  # fmt: skip
    found = {(f["severity"], o) for f in _findings(report, "clone") for o in f["objects"]}
    assert found == {
        ("warning", f"ValidatingWebhookConfiguration {op.ns}"),  # not copied: said so
        ("info", f"ClusterRoleBinding {op.ns}-{clone}"),
        ("info", f"ClusterRoleBinding {op.ns}-gitops-{clone}"),
    }, _findings(report, "clone")

    restored = run_cli("restore", "create", f"c-{op.ns}", "--from-backup", "op", "--kubeconfig",
                       src,
                  *b, *mapping)  # fmt: skip
    assert restored.returncode == 0, restored.stderr
    for name, original in originals.items():
        copy = source.get(crb_res, f"{name}-{clone}")
        assert copy["subjects"] == [{"kind": "ServiceAccount", "name": op.ns, "namespace": clone}]
        assert copy["roleRef"] == original["roleRef"]
        assert copy["metadata"]["labels"]["velero.io/restore-name"] == f"c-{op.ns}"
        assert copy["metadata"]["annotations"]["kube-migrate.io/copy-of"] == name
        now = source.get(crb_res, name)  # the original: untouched
        assert now["metadata"]["resourceVersion"] == original["metadata"]["resourceVersion"]
        assert now["subjects"] == original["subjects"]
    webhooks = [w["metadata"]["name"] for w in source.list(vwc_res)]
    assert [w for w in webhooks if w.startswith(op.ns)] == [op.ns]  # not duplicated
    assert (
        source.get(vwc_res, op.ns)["metadata"]["resourceVersion"]
        == (hook["metadata"]["resourceVersion"])
    )

    proc = run_cli("verify", "--from-backup", "op", *b, "--target-kubeconfig", src, *mapping,
              "-o", "json")  # fmt: skip
    assert proc.returncode in (0, 1), proc.stderr
    objects = json.loads(proc.stdout)["objects"]
    copies = {o["name"]: o for o in objects if o["kind"] == "ClusterRoleBinding"}
    assert set(copies) == {f"{op.ns}-{clone}", f"{op.ns}-gitops-{clone}"}  # compared as mapped
    assert {(o["status"], o.get("sourceName")) for o in copies.values()} == {
        ("equal", op.ns),
        ("equal", f"{op.ns}-gitops"),
    }
    # the one difference: the (not copied) webhook still calls the original namespace
    drift = [o for o in objects if o["status"] != "equal"]
    assert [(o["kind"], o["name"]) for o in drift] == [("ValidatingWebhookConfiguration", op.ns)]
