"""`kube-migrate preflight` on the real planes (source v1.30, target v1.37): every check
fires on a real case and stays quiet once fixed; --from-backup agrees with the live
source; every format parses; exit codes; nothing is written anywhere."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from migrate.backup.create import BackupOptions, create_backup
from migrate.cli.main import run
from migrate.cluster import Cluster
from migrate.errors import EXIT_PREFLIGHT, EXIT_USAGE, NotFound
from migrate.store import open_store
from migrate.transform.scope import Scope

from .builders import crd_manifest
from .conftest import Env
from .helpers import apply, wait_for

BIN = Path(sys.executable).parent
Report = dict[str, Any]


def uniq(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


def preflight(capsys: pytest.CaptureFixture[str], *args: str, fmt: str = "json") -> Any:
    """Run the command in-process; (exit code, parsed JSON report or the text)."""
    capsys.readouterr()
    code = run(["preflight", *args, "-o", fmt])
    out = capsys.readouterr().out
    return code, (json.loads(out) if fmt == "json" else out)


def live(env: Env, *args: str) -> list[str]:
    return ["--source-kubeconfig", env.source_kubeconfig,
            "--target-kubeconfig", env.target_kubeconfig, *args]  # fmt: skip


def found(report: Report, check: str, severity: str | None = None) -> list[dict[str, Any]]:
    return [
        f
        for f in report["findings"]
        if f["check"] == check and (severity is None or f["severity"] == severity)
    ]


def about(report: Report, check: str, obj: str, severity: str | None = None) -> list[Any]:
    return [f for f in found(report, check, severity) if obj in f["objects"]]


def resource_named(c: Cluster, name: str) -> Any:
    return c.discovery().resolve(name)


def configmap(ns: str, name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": ns}, "data": {"k": ns}}  # fmt: skip


def install_crd(c: Cluster, doc: dict[str, Any]) -> None:
    """Create a CRD and wait until it is Established and discovered."""
    crds = resource_named(c, "customresourcedefinitions.apiextensions.k8s.io")
    c.create(crds, doc)

    def established() -> bool:
        conds = (c.get(crds, doc["metadata"]["name"]).get("status") or {}).get("conditions")
        return any(x["type"] == "Established" and x["status"] == "True" for x in conds or [])

    wait_for("CRD established", established, 30)
    kind = doc["spec"]["names"]["kind"]
    api = f"{doc['spec']['group']}/{doc['spec']['versions'][0]['name']}"
    wait_for("CRD discovered", lambda: c.discovery(refresh=True).for_kind(api, kind), 30)


def gadget(group: str, version: str, ns: str) -> dict[str, Any]:
    return {"apiVersion": f"{group}/{version}", "kind": "PfGadget",
            "metadata": {"name": "g1", "namespace": ns}, "spec": {"size": 3}}  # fmt: skip


@pytest.fixture
def cleanup(source: Cluster, target: Cluster) -> Iterator[list[tuple[Cluster, str, str]]]:
    """Cluster-scoped objects to delete after the test: (cluster, resource, name)."""
    todo: list[tuple[Cluster, str, str]] = []
    yield todo
    for cluster, resource, name in reversed(todo):
        cluster.delete(resource_named(cluster, resource), name)
    for cluster, resource, name in todo:  # a CRD being deleted upsets other tests' backups
        if resource.startswith("customresourcedefinitions"):
            wait_for(f"CRD {name} gone", lambda c=cluster, n=name: _gone(c, n), 60)


def _gone(c: Cluster, crd_name: str) -> bool:
    try:
        c.get(resource_named(c, "customresourcedefinitions"), crd_name)
    except NotFound:
        plural, group = crd_name.split(".", 1)  # and dropped from discovery, which lags
        return c.discovery(refresh=True).get(group, plural) is None
    return False


def test_flowschema_at_removed_v1beta3_is_flagged(
    capsys: pytest.CaptureFixture[str], dev_env: Env, source: Cluster, cleanup: Any
) -> None:
    """A FlowSchema applied with flowcontrol.apiserver.k8s.io/v1beta3 on 1.30: the target
    (1.37) removed v1beta3 in 1.32; the report names the replacement v1."""
    name = uniq("pf-flow")
    body = {
        "apiVersion": "flowcontrol.apiserver.k8s.io/v1beta3",
        "kind": "FlowSchema",
        "metadata": {"name": name},
        "spec": {  # matches only a user that does not exist
            "priorityLevelConfiguration": {"name": "global-default"},
            "matchingPrecedence": 9000,
            "distinguisherMethod": {"type": "ByUser"},
            "rules": [
                {
                    "subjects": [{"kind": "User", "user": {"name": f"nobody-{name}"}}],
                    "resourceRules": [
                        {
                            "verbs": ["get"],
                            "apiGroups": [""],
                            "resources": ["configmaps"],
                            "namespaces": [name],
                        }
                    ],
                }
            ],
        },
    }
    applied = {**body, "metadata": {"name": name}}
    body["metadata"]["annotations"] = {
        "kubectl.kubernetes.io/last-applied-configuration": json.dumps(applied)
    }
    fs = source.discovery().for_kind(body["apiVersion"], "FlowSchema")
    assert fs is not None and fs.version == "v1beta3"
    source.create(fs, body)
    cleanup.append((source, "flowschemas.flowcontrol.apiserver.k8s.io", name))
    code, report = preflight(
        capsys,
        *live(dev_env, "--include-resources", "flowschemas.flowcontrol.apiserver.k8s.io",
              "--include-cluster-resources", "true"),
    )  # fmt: skip
    assert code == 0, report
    hits = about(report, "removed-api", f"FlowSchema {name}", "warning")
    assert len(hits) == 1, report["findings"]
    hit = hits[0]
    assert "flowcontrol.apiserver.k8s.io/v1beta3" in hit["message"]
    assert "removed in v1.32" in hit["message"] and "last-applied-configuration" in hit["message"]
    assert "use flowcontrol.apiserver.k8s.io/v1" in hit["fix"]
    # stored at v1 (the source's preferred version), which the target serves: no api finding
    assert not about(report, "api", f"FlowSchema {name}")
    assert report["source"]["version"] == "v1.30.14" and report["target"]["minorSkew"] == 7
    # the system FlowSchemas restore leaves alone are not judged
    assert not [f for f in found(report, "removed-api") if "FlowSchema exempt" in f["objects"]]


def test_target_older_than_source_is_an_error(
    capsys: pytest.CaptureFixture[str], dev_env: Env, target_ns: str
) -> None:
    """Swapped: the 1.37 plane as source, the 1.30 plane as target."""
    code, report = preflight(
        capsys,
        "--source-kubeconfig", dev_env.target_kubeconfig,
        "--target-kubeconfig", dev_env.source_kubeconfig,
        "--include-namespaces", target_ns,
    )  # fmt: skip
    assert code == EXIT_PREFLIGHT
    errors = found(report, "version", "error")
    assert len(errors) == 1 and "older than the source" in errors[0]["message"]
    assert "v1.37" in errors[0]["fix"]


def test_custom_resource_without_crd_on_target(
    capsys: pytest.CaptureFixture[str],
    dev_env: Env,
    source: Cluster,
    source_ns: str,
    cleanup: Any,
) -> None:
    group = f"{uniq('p')}.example.com"
    cleanup.append((source, "customresourcedefinitions", f"pfgadgets.{group}"))
    install_crd(source, crd_manifest(group, "pfgadgets", "PfGadget"))
    apply(source, [gadget(group, "v1", source_ns)])
    obj = f"PfGadget {source_ns}/g1"
    args = live(dev_env, "--include-namespaces", source_ns)
    code, report = preflight(capsys, *args, "--include-cluster-resources", "false")
    assert code == EXIT_PREFLIGHT
    (hit,) = about(report, "api", obj, "error")
    assert f"the target serves no PfGadget ({group}/v1)" in hit["message"]
    assert f"pfgadgets.{group}" in hit["fix"] and "--include-cluster-resources" in hit["fix"]
    # auto brings the CRD along: the restore creates it first, nothing to report
    code, report = preflight(capsys, *args)
    assert code == 0 and not found(report, "api"), report["findings"]


def test_crd_served_at_v1beta1_on_source_but_only_v1_on_target(
    capsys: pytest.CaptureFixture[str],
    dev_env: Env,
    source: Cluster,
    target: Cluster,
    source_ns: str,
    cleanup: Any,
) -> None:
    group = f"{uniq('p')}.example.com"
    cleanup.append((source, "customresourcedefinitions", f"pfgadgets.{group}"))
    install_crd(source, crd_manifest(group, "pfgadgets", "PfGadget", ["v1beta1"]))
    apply(source, [gadget(group, "v1beta1", source_ns)])
    cleanup.append((target, "customresourcedefinitions", f"pfgadgets.{group}"))
    install_crd(target, crd_manifest(group, "pfgadgets", "PfGadget"))
    code, report = preflight(capsys, *live(dev_env, "--include-namespaces", source_ns))
    assert code == 0, report["findings"]
    (hit,) = about(report, "api", f"PfGadget {source_ns}/g1", "warning")
    assert f"restore sends it as {group}/v1" in hit["message"]
    assert "serves v1 (conversion None)" in hit["message"]
    (ver,) = about(report, "crd-version", f"CustomResourceDefinition pfgadgets.{group}")
    assert "serving v1 but not v1beta1" in ver["message"]
    assert about(report, "collision", f"CustomResourceDefinition pfgadgets.{group}")


def test_missing_storage_class_fixed_by_mapping(
    capsys: pytest.CaptureFixture[str],
    dev_env: Env,
    source: Cluster,
    target: Cluster,
    source_ns: str,
    cleanup: Any,
) -> None:
    missing, present = uniq("pf-gone"), uniq("pf-here")
    pvc = {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
           "metadata": {"name": "data", "namespace": source_ns},
           "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": missing,
                    "resources": {"requests": {"storage": "1Gi"}}}}  # fmt: skip
    apply(source, [pvc])
    sc = {"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass", "metadata": {"name": present},
          "provisioner": "kubernetes.io/no-provisioner"}  # fmt: skip
    apply(target, [sc])
    cleanup.append((target, "storageclasses.storage.k8s.io", present))
    args = live(dev_env, "--include-namespaces", source_ns)
    code, report = preflight(capsys, *args)
    assert code == EXIT_PREFLIGHT
    (hit,) = about(report, "reference", f"PersistentVolumeClaim {source_ns}/data", "error")
    assert f"StorageClass {missing} is referenced but missing" in hit["message"]
    assert f"--storage-class-mappings {missing}:" in hit["fix"] and present in hit["fix"]
    code, report = preflight(capsys, *args, "--storage-class-mappings", f"{missing}:{present}")
    assert code == 0 and not found(report, "reference"), report["findings"]
    assert report["settings"]["storageClassMappings"] == {missing: present}


def test_collision_with_policy_consequence(
    capsys: pytest.CaptureFixture[str],
    dev_env: Env,
    source: Cluster,
    target: Cluster,
    source_ns: str,
    target_ns: str,
) -> None:
    apply(source, [configmap(source_ns, "settings"), configmap(source_ns, "fresh")])
    apply(target, [configmap(target_ns, "settings")])
    args = live(dev_env, "--include-namespaces", source_ns,
                "--namespace-mappings", f"{source_ns}:{target_ns}")  # fmt: skip
    obj = f"ConfigMap {target_ns}/settings"
    code, report = preflight(capsys, *args)
    assert code == 0
    (hit,) = about(report, "collision", obj, "warning")
    assert "restore keeps the target's version" in hit["message"]
    assert not about(report, "collision", f"ConfigMap {target_ns}/fresh")
    (ns_hit,) = about(report, "collision", f"Namespace {target_ns}", "info")
    assert "restored into it" in ns_hit["message"]
    code, report = preflight(capsys, *args, "--existing-resource-policy", "update")
    assert "patches them with the backup's version" in about(report, "collision", obj)[0]["message"]
    code, report = preflight(capsys, *args, "--existing-resource-policy", "fail")
    assert code == EXIT_PREFLIGHT
    assert "restore fails" in about(report, "collision", obj, "error")[0]["message"]


def test_target_webhook_matching_configmaps(
    capsys: pytest.CaptureFixture[str],
    dev_env: Env,
    source: Cluster,
    target: Cluster,
    source_ns: str,
    cleanup: Any,
) -> None:
    """A ValidatingWebhookConfiguration on the target for ConfigMaps in namespaces with a
    label only the restored namespace will carry.  It never fires: no real namespace has
    the label and its URL is a closed local port."""
    label = uniq("pf-hooked")
    name = uniq("pf-vwc")
    source.patch(
        resource_named(source, "namespaces"), source_ns, {"metadata": {"labels": {label: "yes"}}}
    )
    apply(source, [configmap(source_ns, "cfg")])
    vwc = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingWebhookConfiguration",
        "metadata": {"name": name},
        "webhooks": [
            {
                "name": "configmaps.preflight.example.com",
                "admissionReviewVersions": ["v1"],
                "sideEffects": "None",
                "failurePolicy": "Ignore",
                "timeoutSeconds": 1,
                "clientConfig": {"url": "https://127.0.0.1:9/x"},
                "namespaceSelector": {"matchLabels": {label: "yes"}},
                "rules": [{"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE"],
                           "resources": ["configmaps"]}],
            }
        ],
    }  # fmt: skip
    apply(target, [vwc])
    cleanup.append((target, "validatingwebhookconfigurations", name))
    code, report = preflight(capsys, *live(dev_env, "--include-namespaces", source_ns))
    assert code == 0
    hits = about(report, "webhook", f"ConfigMap {source_ns}/cfg", "warning")
    assert len(hits) == 1, found(report, "webhook")
    assert name in hits[0]["message"] and "https://127.0.0.1:9/x" in hits[0]["message"]
    assert "validating webhook" in hits[0]["message"]
    # objects in namespaces without the label are not matched
    assert not [f for f in found(report, "webhook") if f"Namespace {source_ns}" in f["objects"]]


def test_privileged_pods_into_restricted_namespace(
    capsys: pytest.CaptureFixture[str],
    dev_env: Env,
    source: Cluster,
    target: Cluster,
    source_ns: str,
    target_ns: str,
) -> None:
    labels = {"pod-security.kubernetes.io/enforce": "restricted"}
    target.patch(resource_named(target, "namespaces"), target_ns, {"metadata": {"labels": labels}})
    deploy = {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "agent", "namespace": source_ns},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "agent"}},
                 "template": {"metadata": {"labels": {"app": "agent"}},
                              "spec": {"hostNetwork": True,
                                       "containers": [{"name": "agent", "image": "agent:1",
                                                       "securityContext": {"privileged": True}}],
                                       "volumes": [{"name": "root",
                                                    "hostPath": {"path": "/"}}]}}},
    }  # fmt: skip
    apply(source, [deploy])
    args = live(dev_env, "--include-namespaces", source_ns,
                "--namespace-mappings", f"{source_ns}:{target_ns}")  # fmt: skip
    code, report = preflight(capsys, *args)
    assert code == EXIT_PREFLIGHT
    (hit,) = about(report, "pod-security", f"Deployment {target_ns}/agent", "error")
    assert "enforce=restricted" in hit["message"]
    for rule in ("privileged (container agent)", "hostNamespaces (hostNetwork)",
                 "hostPathVolumes (volume root)"):  # fmt: skip
        assert rule in hit["fix"]


def test_restricted_target_credentials_lack_create(
    capsys: pytest.CaptureFixture[str],
    dev_env: Env,
    source: Cluster,
    target: Cluster,
    source_ns: str,
    target_ns: str,
    cleanup: Any,
    tmp_path: Path,
) -> None:
    """A ServiceAccount kubeconfig that may read everything but create nothing."""
    name = uniq("pf-reader")
    apply(target, [
        {"apiVersion": "v1", "kind": "ServiceAccount",
         "metadata": {"name": "reader", "namespace": target_ns}},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
         "metadata": {"name": name},
         "rules": [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["get", "list"]}]},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
         "metadata": {"name": name},
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": name},
         "subjects": [{"kind": "ServiceAccount", "name": "reader", "namespace": target_ns}]},
    ])  # fmt: skip
    cleanup += [(target, "clusterroles", name), (target, "clusterrolebindings", name)]
    token = target.request(
        "POST", f"/api/v1/namespaces/{target_ns}/serviceaccounts/reader/token",
        body={"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
              "spec": {"expirationSeconds": 600}},
    )["status"]["token"]  # fmt: skip
    admin = yaml.safe_load(Path(dev_env.target_kubeconfig).read_text())
    kubeconfig = {
        "apiVersion": "v1", "kind": "Config", "current-context": "reader",
        "clusters": [{"name": "t", "cluster": admin["clusters"][0]["cluster"]}],
        "users": [{"name": "reader", "user": {"token": token}}],
        "contexts": [{"name": "reader", "context": {"cluster": "t", "user": "reader"}}],
    }  # fmt: skip
    restricted = tmp_path / "reader.kubeconfig"
    restricted.write_text(yaml.safe_dump(kubeconfig))
    apply(source, [configmap(source_ns, "cfg")])
    code, report = preflight(
        capsys,
        "--source-kubeconfig", dev_env.source_kubeconfig,
        "--target-kubeconfig", str(restricted),
        "--include-namespaces", source_ns,
    )  # fmt: skip
    assert code == EXIT_PREFLIGHT
    perms = found(report, "permission", "error")
    msgs = {f["message"] for f in perms}
    assert f"the target's credentials may not create configmaps in namespace {source_ns}" in msgs
    assert "the target's credentials may not create namespaces" in msgs
    # the admin kubeconfig may: no permission finding
    code, report = preflight(capsys, *live(dev_env, "--include-namespaces", source_ns))
    assert code == 0 and not found(report, "permission"), report["findings"]


NOISY = ("events", "events.events.k8s.io", "leases.coordination.k8s.io")
CLUSTER_WIDE = (
    "namespaces",
    "customresourcedefinitions.apiextensions.k8s.io",
    "storageclasses.storage.k8s.io",
    "validatingwebhookconfigurations.admissionregistration.k8s.io",
    "mutatingwebhookconfigurations.admissionregistration.k8s.io",
    "clusterroles.rbac.authorization.k8s.io",
    "persistentvolumes",
)


def census(c: Cluster, namespaces: list[str]) -> dict[str, Any]:
    """Object counts per resource in `namespaces` and the names of the cluster-wide kinds
    a restore would write (controller noise such as Events left out)."""
    out: dict[str, Any] = {}
    for r in c.discovery():
        if not r.listable or r.full_name in NOISY:
            continue
        if r.namespaced:
            for ns in namespaces:
                out[f"{r.full_name} {ns}"] = c.count(r, ns)
        elif r.full_name in CLUSTER_WIDE:
            out[r.full_name] = {o["metadata"]["name"] for o in c.list(r)}
    return out


def written(before: dict[str, Any], after: dict[str, Any], names: set[str]) -> dict[str, Any]:
    """What changed: namespaced counts, and cluster-wide objects among `names` that
    appeared (other tests may come and go on the shared planes meanwhile)."""
    out = {}
    for key, was in before.items():
        now = after.get(key)
        if isinstance(was, set):
            if (now - was) & names:
                out[key] = (now - was) & names
        elif now != was:
            out[key] = (was, now)
    return out


def _shape(report: Report) -> set[tuple[Any, ...]]:
    return {
        (f["severity"], f["check"], f["message"], f["fix"], tuple(f["objects"]))
        for f in report["findings"]
    }


def test_from_backup_equals_live_writes_nothing_and_formats(
    capsys: pytest.CaptureFixture[str],
    dev_env: Env,
    source: Cluster,
    target: Cluster,
    source_ns: str,
    target_ns: str,
    bucket_url: str,
) -> None:
    missing = uniq("pf-gone")
    apply(source, [
        {"apiVersion": "v1", "kind": "ConfigMap",
         "metadata": {"name": "settings", "namespace": source_ns}, "data": {"a": "b"}},
        {"apiVersion": "v1", "kind": "Secret",
         "metadata": {"name": "creds", "namespace": source_ns}, "stringData": {"p": "w"}},
        {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
         "metadata": {"name": "data", "namespace": source_ns},
         "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": missing,
                  "resources": {"requests": {"storage": "1Gi"}}}},
    ])  # fmt: skip
    apply(target, [{"apiVersion": "v1", "kind": "ConfigMap",
                    "metadata": {"name": "settings", "namespace": target_ns}}])  # fmt: skip
    store = open_store(bucket_url)
    name = uniq("pf-backup")
    create_backup(source, store, BackupOptions(name, Scope(include_namespaces=(source_ns,))))
    keys_before = sorted((o.key, o.etag) for o in store.list(""))
    namespaces = [source_ns, target_ns]
    before = (census(source, namespaces), census(target, namespaces))
    mapping = ["--namespace-mappings", f"{source_ns}:{target_ns}"]

    code, from_live = preflight(capsys, *live(dev_env, "--include-namespaces", source_ns, *mapping))
    assert code == EXIT_PREFLIGHT
    offline = ["--target-kubeconfig", dev_env.target_kubeconfig,
               "--from-backup", name, "--bucket", bucket_url, *mapping]  # fmt: skip
    code, from_backup = preflight(capsys, *offline)
    assert code == EXIT_PREFLIGHT
    assert _shape(from_backup) == _shape(from_live)
    assert about(from_backup, "reference", f"PersistentVolumeClaim {target_ns}/data", "error")
    assert about(from_backup, "collision", f"ConfigMap {target_ns}/settings", "warning")
    assert from_backup["source"]["origin"] == "backup" and from_backup["source"]["name"] == name
    assert from_live["source"]["origin"] == "cluster"
    assert from_backup["source"]["version"] == from_live["source"]["version"] == "v1.30.14"

    # every format: table, Markdown, HTML, JSON
    code, text = preflight(capsys, *offline, fmt="table")
    lines = text.splitlines()
    assert lines[0].startswith("Source: backup ") and "Kubernetes v1.30.14" in lines[0]
    header = next(line for line in lines if line.startswith("SEVERITY"))
    assert header.split() == ["SEVERITY", "CHECK", "OBJECTS", "MESSAGE", "FIX"]
    code, md = preflight(capsys, *offline, fmt="markdown")
    assert md.startswith("# kube-migrate preflight report")
    assert "| Severity | Objects | Finding | How to fix |\n|---|---|---|---|" in md
    assert "## References that must exist on the target (`reference`)" in md
    code, page = preflight(capsys, *offline, fmt="html")
    assert page.startswith("<!DOCTYPE html>") and page.count("<table") >= 3
    assert "</html>" in page and f"{target_ns}/data" in page

    # --fail-on: only warnings left once the claim is out of scope
    quiet = [*offline, "--exclude-resources", "persistentvolumeclaims"]
    code, report = preflight(capsys, *quiet)
    assert code == 0 and report["counts"]["error"] == 0 and report["counts"]["warning"] >= 1
    code, _ = preflight(capsys, *quiet, "--fail-on", "warning")
    assert code == EXIT_PREFLIGHT

    assert sorted((o.key, o.etag) for o in store.list("")) == keys_before
    names = {source_ns, target_ns, missing}
    assert not written(before[0], census(source, namespaces), names)
    assert not written(before[1], census(target, namespaces), names)


def test_velero_written_backup(
    capsys: pytest.CaptureFixture[str], dev_env: Env, bucket_url: str
) -> None:
    """A Velero backup (no manifest of ours): the version comes from velero-backup.json's
    annotations, served versions from the resource list; an Ingress stored at
    extensions/v1beta1 cannot be restored into 1.37."""
    from .builders import Item, write_backup

    ns = uniq("pf-velero")
    items = [
        Item("", "v1", "namespaces", "Namespace", None, ns),
        Item("", "v1", "configmaps", "ConfigMap", ns, "cfg"),
        Item("extensions", "v1beta1", "ingresses", "Ingress", ns, "web"),
    ]
    store = open_store(bucket_url)
    write_backup(store, "old-velero", items=items, ours=False, git_version="v1.21.14")
    code, report = preflight(capsys, "--target-kubeconfig", dev_env.target_kubeconfig,
                             "--from-backup", "old-velero", "--bucket", bucket_url)  # fmt: skip
    assert code == EXIT_PREFLIGHT
    assert report["source"]["backupWrittenBy"] == "Velero"
    assert report["source"]["version"] == "v1.21.14" and report["target"]["minorSkew"] == 16
    (api,) = about(report, "api", f"Ingress {ns}/web", "error")
    assert "removed in v1.22" in api["message"] and "networking.k8s.io/v1" in api["fix"]
    (removed,) = about(report, "removed-api", f"Ingress {ns}/web", "warning")
    assert "stored object" in removed["message"]
    assert not about(report, "api", f"ConfigMap {ns}/cfg")
    assert not [k.key for k in store.list("restores/")]


def test_usage_errors_and_exit_codes(
    capsys: pytest.CaptureFixture[str], dev_env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = ["--target-kubeconfig", dev_env.target_kubeconfig]
    monkeypatch.delenv("KUBE_MIGRATE_SOURCE_KUBECONFIG", raising=False)
    monkeypatch.delenv("KUBE_MIGRATE_BUCKET", raising=False)
    assert run(["preflight", *target]) == EXIT_USAGE
    assert "no source" in capsys.readouterr().err
    assert run(["preflight", *target, "--from-backup", "b"]) == EXIT_USAGE
    assert "--from-backup needs --bucket" in capsys.readouterr().err
    assert run(["preflight", *target, "-o", "yaml"]) == EXIT_USAGE


def test_console_script_exit_code(dev_env: Env, target_ns: str) -> None:
    """The installed script: report on stdout, one error line and a hint on stderr, 3."""
    proc = subprocess.run(
        [str(BIN / "kube-migrate"), "preflight", "--source-kubeconfig", dev_env.target_kubeconfig,
         "--target-kubeconfig", dev_env.source_kubeconfig, "--include-namespaces", target_ns,
         "-o", "json"],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert proc.returncode == EXIT_PREFLIGHT, proc.stderr
    assert json.loads(proc.stdout)["counts"]["error"] >= 1
    err = proc.stderr.strip().splitlines()
    assert err[-2].startswith("kube-migrate: error: preflight found 1 errors")
    assert err[-1].startswith("hint: ")
