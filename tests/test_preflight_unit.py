"""Preflight's pure logic, no cluster: the packaged deprecation table, Pod Security
rules, quantities, webhook rule matching, finding merging and the report formats."""

from __future__ import annotations

import json
from html.parser import HTMLParser

from migrate.preflight import deprecations
from migrate.preflight.capacity import pod_requests, quantity
from migrate.preflight.findings import Collect, Finding, Report
from migrate.preflight.podsecurity import violations
from migrate.preflight.render import html_report, markdown, rows
from migrate.preflight.webhooks import _rule_matches


def test_deprecation_table_is_packaged_and_answers() -> None:
    fs = deprecations.lookup("flowcontrol.apiserver.k8s.io/v1beta3", "FlowSchema")
    assert fs is not None
    assert fs.status((1, 28)) is None and fs.status((1, 30)) == "deprecated"
    assert fs.status((1, 32)) == "removed" and fs.status((1, 37)) == "removed"
    assert fs.replacement == "flowcontrol.apiserver.k8s.io/v1"
    assert "removed in v1.32" in fs.describe()
    ing = deprecations.lookup("extensions/v1beta1", "Ingress")
    assert ing is not None and ing.status((1, 20)) == "deprecated"
    assert "pathType" in ing.advice()
    assert deprecations.lookup("apps/v1", "Deployment") is None
    table = deprecations.table()
    removed = {d.removed for d in table.values() if d.removed}
    assert {(1, 16), (1, 22), (1, 25), (1, 26), (1, 27), (1, 29), (1, 32)} <= removed
    psp = deprecations.lookup("policy/v1beta1", "PodSecurityPolicy")
    assert psp is not None and psp.replacement is None and "no replacement" in psp.advice()


def _pod(**spec: object) -> dict[str, object]:
    return {"containers": [{"name": "app", "image": "x"}], **spec}


def test_pod_security_levels() -> None:
    priv = _pod(
        hostNetwork=True,
        containers=[{"name": "c", "securityContext": {"privileged": True}}],
        volumes=[{"name": "root", "hostPath": {"path": "/"}}],
    )
    base = violations(priv, "baseline")
    assert any(v.startswith("hostNamespaces (hostNetwork)") for v in base)
    assert any(v.startswith("privileged (container c)") for v in base)
    assert any(v.startswith("hostPathVolumes (volume root)") for v in base)
    assert violations(priv, "privileged") == []
    plain = _pod()
    assert violations(plain, "baseline") == []
    restricted = {v.split(" ")[0] for v in violations(plain, "restricted")}
    assert {"allowPrivilegeEscalation", "runAsNonRoot", "seccompProfile"} <= restricted
    hardened = _pod(
        securityContext={"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
        containers=[
            {
                "name": "c",
                "securityContext": {
                    "allowPrivilegeEscalation": False,
                    "capabilities": {"drop": ["ALL"]},
                },
            }
        ],
    )
    assert violations(hardened, "restricted") == []


def test_quantities_and_pod_requests() -> None:
    assert quantity("250m") == 0.25 and quantity("2") == 2 and quantity("1Gi") == 2**30
    assert quantity("1e3") == 1000 and quantity("bogus") == 0
    spec = {
        "containers": [
            {"resources": {"requests": {"cpu": "100m", "memory": "64Mi"}}},
            {"resources": {"requests": {"cpu": "200m"}}},
        ],
        "initContainers": [{"resources": {"requests": {"cpu": "1", "memory": "32Mi"}}}],
    }
    req = pod_requests(spec)
    assert req["cpu"] == 1.0 and req["memory"] == 64 * 2**20


def test_webhook_rule_matching() -> None:
    rule = {
        "operations": ["CREATE"],
        "apiGroups": [""],
        "apiVersions": ["v1"],
        "resources": ["configmaps"],
    }
    assert _rule_matches(rule, {"CREATE"}, "", "v1", "configmaps", True, False)
    assert not _rule_matches(rule, {"CREATE"}, "", "v1", "secrets", True, False)
    assert not _rule_matches(rule, {"UPDATE"}, "", "v1", "configmaps", True, False)
    assert not _rule_matches(rule, {"CREATE"}, "apps", "v1", "configmaps", True, False)
    # matchPolicy Equivalent: another version of the same resource matches too
    assert _rule_matches(rule, {"CREATE"}, "", "v2", "configmaps", True, True)
    assert not _rule_matches(rule, {"CREATE"}, "", "v2", "configmaps", True, False)
    wide = {"operations": ["*"], "apiGroups": ["*"], "apiVersions": ["*"], "resources": ["*"]}
    assert _rule_matches(wide, {"CREATE"}, "apps", "v1", "deployments", True, False)
    cluster_only = {**wide, "scope": "Cluster"}
    assert not _rule_matches(cluster_only, {"CREATE"}, "", "v1", "pods", True, False)


def _report() -> Report:
    c = Collect("reference")
    for name in ("a", "b", "c", "d"):
        c.add("error", "StorageClass fast | missing", "map it", f"PersistentVolumeClaim ns/{name}")
    report = Report(
        source={"origin": "backup", "name": "b1", "version": "v1.30.14"},
        target={"name": "target", "server": "https://x", "version": "v1.37.2", "minorSkew": 7},
        settings={"existingResourcePolicy": "none", "restored": 4, "skipped": 0},
    )
    report.add(c.findings())
    report.add([Finding("warning", "webhook", "<script>hook</script>", "check it")])
    return report


def test_collect_merges_objects_and_report_counts() -> None:
    report = _report()
    assert report.counts() == {"error": 1, "warning": 1, "info": 0}
    ref = report.by_check()["reference"][0]
    assert len(ref.objects) == 4
    assert [f.check for f in report.reaches("warning")] == ["reference", "webhook"]
    assert rows(report)[0]["objects"].endswith("(+2 more)")
    doc = json.loads(json.dumps(report.as_dict()))
    assert doc["kind"] == "PreflightReport" and len(doc["findings"][0]["objects"]) == 4


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.open: list[str] = []
        self.seen: list[str] = []

    def handle_starttag(self, tag: str, attrs: object) -> None:
        self.seen.append(tag)
        if tag not in ("meta", "br"):
            self.open.append(tag)

    def handle_endtag(self, tag: str) -> None:
        assert self.open and self.open.pop() == tag, f"unbalanced </{tag}>"


def test_markdown_and_html_are_well_formed() -> None:
    report = _report()
    md = markdown(report)
    assert "| Severity | Objects | Finding | How to fix |" in md
    assert "StorageClass fast \\| missing" in md  # pipes escaped inside cells
    assert "## References that must exist on the target (`reference`)" in md
    page = html_report(report)
    parser = _Tags()
    parser.feed(page)
    assert parser.open == [] and parser.seen.count("table") >= 3
    assert "<script>" not in page and "&lt;script&gt;" in page
