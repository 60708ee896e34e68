"""The least-privilege roles of examples/rbac/ on the real planes: ServiceAccounts bound
to them exactly as the files say (in a namespace and under names unique to this run),
tokens from the TokenRequest API, kubeconfigs with the dev-env's server and CA.

With them: backup and preflight read the source, restore and verify work on the target
with zero drift, the read-only identity writes nothing; and weaker roles get exactly the
findings from preflight that the restore then fails on, no more, no fewer.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from migrate.backup.deps import LIST_OVER
from migrate.cli.main import run
from migrate.cluster import Cluster, ClusterRef
from migrate.errors import EXIT_ACCESS, EXIT_PARTIAL, EXIT_PREFLIGHT, Forbidden, NotFound

from .conftest import Env
from .helpers import EXAMPLES, apply, load_docs

RBAC_DIR = EXAMPLES / "rbac"
RUN = uuid.uuid4().hex[:6]  # names of this run's cluster-scoped objects end with it
CUSTOM_RULE_GROUP = "shop.example.com"  # marks the "custom resources" rule of both roles
Perm = tuple[str, str, str]  # (verb, group, resource)
Role = dict[str, Any]


def without(*perms: Perm) -> Callable[[Role], None]:
    """An edit of a ClusterRole that takes away exactly `perms`, leaving the rest."""

    def edit(role: Role) -> None:
        rules = []
        for original in role["rules"]:
            rule = original
            for verb, group, resource in perms:
                grants = verb in rule["verbs"] and group in rule.get("apiGroups", [])
                if grants and resource in rule["resources"]:
                    rest = [r for r in rule["resources"] if r != resource]
                    rules.append({**rule, "resources": [resource],
                                  "verbs": [v for v in rule["verbs"] if v != verb]})  # fmt: skip
                    rule = {**rule, "resources": rest}
                assert not (grants and "*" in rule["resources"]), (perms, rule)
            if rule["resources"]:
                rules.append(rule)
        role["rules"] = [r for r in rules if r["verbs"]]

    return edit


def without_rule(verbs: set[str]) -> Callable[[Role], None]:
    def edit(role: Role) -> None:
        role["rules"] = [r for r in role["rules"] if not verbs & set(r["verbs"])]

    return edit


@dataclass
class Identities:
    """ServiceAccounts bound to (edited) example roles; cleans up after the module."""

    env: Env
    clusters: dict[str, Cluster]
    folder: Path
    made: dict[tuple[str, str, str], Path] = field(default_factory=dict)
    cleanup: list[tuple[Cluster, str, str]] = field(default_factory=list)

    def kubeconfig(
        self,
        side: str,
        example: str,
        variant: str = "full",
        edit: Callable[[Role], None] | None = None,
    ) -> str:
        """A kubeconfig for a ServiceAccount bound to examples/rbac/<example>, edited."""
        if (side, example, variant) in self.made:
            return str(self.made[side, example, variant])
        cluster = self.clusters[side]
        ns = f"t-rbac-{RUN}"
        crds = cluster.discovery().resolve("customresourcedefinitions.apiextensions.k8s.io")
        groups = sorted({crd["spec"]["group"] for crd in cluster.list(crds)})
        docs = []
        for doc in load_docs([RBAC_DIR / example]):
            meta = doc["metadata"]
            if doc["kind"] == "Namespace":
                meta["name"] = ns
            elif doc["kind"] == "ServiceAccount":
                sa = meta["name"] = f"{meta['name']}-{variant}"
                meta["namespace"] = ns
            elif doc["kind"] == "ClusterRole":
                role = meta["name"] = f"{meta['name']}-{variant}-{RUN}"
                for rule in doc["rules"]:  # README: "one entry per API group of your CRDs"
                    if CUSTOM_RULE_GROUP in rule.get("apiGroups", []):
                        rule["apiGroups"] = sorted({*rule["apiGroups"], *groups})
                if edit:
                    edit(doc)
            elif doc["kind"] == "ClusterRoleBinding":
                meta["name"] = f"{meta['name']}-{variant}-{RUN}"
                doc["roleRef"]["name"] = role
                doc["subjects"] = [{**doc["subjects"][0], "name": sa, "namespace": ns}]
            docs.append(doc)
            if doc["kind"] in ("ClusterRole", "ClusterRoleBinding"):
                self.cleanup.append((cluster, doc["kind"].lower() + "s", meta["name"]))
        if (cluster, "namespaces", ns) not in self.cleanup:
            self.cleanup.insert(0, (cluster, "namespaces", ns))
        apply(cluster, docs)
        token = cluster.request(
            "POST", f"/api/v1/namespaces/{ns}/serviceaccounts/{sa}/token",
            body={"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
                  "spec": {"expirationSeconds": 3600}},
        )["status"]["token"]  # fmt: skip
        admin_file = self.env.source_kubeconfig if side == "source" else self.env.target_kubeconfig
        admin = yaml.safe_load(Path(admin_file).read_text())
        current = next(c for c in admin["contexts"] if c["name"] == admin["current-context"])
        server = next(  # the server and CA of the admin kubeconfig's cluster
            c["cluster"] for c in admin["clusters"] if c["name"] == current["context"]["cluster"]
        )
        config = {
            "apiVersion": "v1", "kind": "Config", "current-context": sa,
            "clusters": [{"name": side, "cluster": server}],
            "users": [{"name": sa, "user": {"token": token}}],
            "contexts": [{"name": sa, "context": {"cluster": side, "user": sa}}],
        }  # fmt: skip
        path = self.folder / f"{side}-{variant}.kubeconfig"
        path.write_text(yaml.safe_dump(config))
        self.made[side, example, variant] = path
        return str(path)


@pytest.fixture(scope="module")
def identities(
    dev_env: Env, source: Cluster, target: Cluster, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Identities]:
    made = Identities(
        dev_env, {"source": source, "target": target}, tmp_path_factory.mktemp("rbac")
    )
    yield made
    for cluster, resource, name in reversed(made.cleanup):
        cluster.delete(cluster.discovery().resolve(resource), name)


@pytest.fixture
def app(source: Cluster, target: Cluster, source_ns: str) -> Iterator[str]:
    """A namespace on the source with a Deployment, Service, ConfigMap, Secret, RBAC
    (a ServiceAccount, a Role granting watch and pods/log, which the restore role does not
    hold, and bindings to it and to the bootstrap ClusterRole view) and a PVC; its copies
    on the target are deleted afterwards."""
    ns = source_ns
    labels = {"app": "web"}
    apply(source, [
        {"apiVersion": "v1", "kind": "ServiceAccount",
         "metadata": {"name": "web", "namespace": ns}},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
         "metadata": {"name": "web", "namespace": ns},
         "rules": [{"apiGroups": [""], "resources": ["configmaps"],
                    "verbs": ["get", "list", "watch"]},
                   {"apiGroups": [""], "resources": ["pods/log"], "verbs": ["get"]},
                   {"apiGroups": [""], "resources": ["secrets"], "resourceNames": ["db"],
                    "verbs": ["get"]}]},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
         "metadata": {"name": "web", "namespace": ns},
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "web"},
         "subjects": [{"kind": "ServiceAccount", "name": "web", "namespace": ns}]},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
         "metadata": {"name": "web-view", "namespace": ns},
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                     "name": "view"},
         "subjects": [{"kind": "ServiceAccount", "name": "web", "namespace": ns}]},
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cfg", "namespace": ns},
         "data": {"greeting": "hello"}},
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "db", "namespace": ns},
         "stringData": {"password": "rbac-test-not-a-secret"}},
        {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
         "metadata": {"name": "data", "namespace": ns},
         "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": "",
                  "resources": {"requests": {"storage": "1Gi"}}}},
        {"apiVersion": "apps/v1", "kind": "Deployment",
         "metadata": {"name": "web", "namespace": ns, "labels": labels},
         "spec": {"replicas": 1, "selector": {"matchLabels": labels},
                  "template": {"metadata": {"labels": labels},
                               "spec": {"serviceAccountName": "web",
                                        "containers": [{"name": "web", "image": "nginx:1.27"}]}}}},
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "namespace": ns},
         "spec": {"selector": labels, "ports": [{"port": 80}]}},
    ])  # fmt: skip
    yield ns
    target.delete(target.discovery().resolve("namespaces"), ns)


def uniq(prefix: str) -> str:
    """Restore names are unique per session (their journals share one state folder)."""
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, Any, str]:
    """Run kube-migrate in-process: (exit code, stdout parsed as JSON, stderr)."""
    capsys.readouterr()
    code = run([*args, "-o", "json"])
    out, err = capsys.readouterr()
    try:
        return code, json.loads(out), err
    except ValueError:
        return code, out, err


def permission_findings(report: dict[str, Any]) -> dict[str, tuple[str, ...]]:
    """message -> objects of every finding of the permission check."""
    return {f["message"]: tuple(f["objects"]) for f in report["findings"]
            if f["check"] == "permission"}  # fmt: skip


def outcome(summary: dict[str, Any], result: str) -> set[str]:
    """`Kind name` of the objects a restore summary (--details) gives `result`."""
    return {f"{o['kind']} {o['name']}" for o in summary["objects"] if o["result"] == result}


def test_least_privilege_roles_migrate_with_zero_drift(
    capsys: pytest.CaptureFixture[str], identities: Identities, app: str, bucket_url: str
) -> None:
    """backup and preflight with the source's read-only role, restore and verify with the
    target's restore role: every step succeeds and nothing drifts."""
    ro = identities.kubeconfig("source", "source-readonly.yaml")
    rw = identities.kubeconfig("target", "target-restore.yaml")
    bucket = ["--bucket", bucket_url]
    code, backup, err = cli(capsys, "backup", "create", "b", "--kubeconfig", ro, *bucket,
                            "--include-namespaces", app)  # fmt: skip
    assert code == 0 and backup["phase"] == "Completed" and backup["errors"] == 0, err
    code, described, _ = cli(capsys, "backup", "describe", "b", "--details", *bucket)
    kinds = set(described["counts"]["byResource"])
    assert {"deployments.apps", "services", "configmaps", "secrets", "serviceaccounts",
            "roles.rbac.authorization.k8s.io", "rolebindings.rbac.authorization.k8s.io",
            "persistentvolumeclaims", "namespaces"} <= kinds, kinds  # fmt: skip

    code, report, err = cli(capsys, "preflight", "--source-kubeconfig", ro,
                            "--target-kubeconfig", rw, "--include-namespaces", app)  # fmt: skip
    assert code == 0, err
    assert report["counts"]["error"] == 0 and not permission_findings(report), report["findings"]

    code, restored, err = cli(capsys, "restore", "create", uniq("r"), "--from-backup", "b",
                              "--kubeconfig", rw, *bucket, "--wait-ready",
                              "--ready-timeout", "90s")  # fmt: skip
    assert code == 0 and restored["phase"] == "Completed", (err, restored)
    assert {"Role web", "RoleBinding web", "RoleBinding web-view", "Secret db",
            "Deployment web"} <= outcome(restored, "created")  # fmt: skip

    code, diff, err = cli(capsys, "verify", "--source-kubeconfig", ro, "--target-kubeconfig", rw,
                          "--include-namespaces", app)  # fmt: skip
    assert code == 0, (err, diff)
    counts = diff["summary"]
    assert counts["drift"] is False and counts["objects"] == counts["equal"] >= 9, counts


def test_read_only_identity_cannot_write(
    capsys: pytest.CaptureFixture[str],
    identities: Identities,
    app: str,
    bucket_url: str,
    source: Cluster,
) -> None:
    """The source role writes nothing: a restore with it stops with exit 4 before its
    first write, and the API refuses every kind of write it might attempt."""
    ro = identities.kubeconfig("source", "source-readonly.yaml")
    bucket = ["--bucket", bucket_url]
    code, _, err = cli(capsys, "backup", "create", "b", "--kubeconfig", ro, *bucket,
                       "--include-namespaces", app)  # fmt: skip
    assert code == 0, err
    copy_ns = f"{app[:50]}-copy"
    code, _, err = cli(capsys, "restore", "create", uniq("r"), "--from-backup", "b",
                       "--kubeconfig", ro, *bucket,
                       "--namespace-mappings", f"{app}:{copy_ns}")  # fmt: skip
    namespaces = source.discovery().resolve("namespaces")
    try:
        assert code == EXIT_ACCESS, err
        assert "kube-migrate: error:" in err and "may not create" in err, err
        with pytest.raises(NotFound):
            source.get(namespaces, copy_ns)
    finally:
        source.delete(namespaces, copy_ns)
    reader = Cluster(ClusterRef(ro), name="reader")
    d = reader.discovery()
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "new"}}
    writes = {
        "create configmaps": lambda: reader.create(d.resolve("configmaps"), cm, app),
        "patch secrets": lambda: reader.patch(d.resolve("secrets"), "db", {"data": {}}, app),
        "patch deployments/scale": lambda: reader.patch(
            d.resolve("deployments.apps"), "web", {"spec": {"replicas": 0}}, app, sub="scale"),
        "delete services": lambda: reader.delete(d.resolve("services"), "web", app),
        "create namespaces": lambda: reader.create(namespaces, {"metadata": {"name": copy_ns}}),
        "create pods/exec": lambda: reader.request(
            "POST", f"/api/v1/namespaces/{app}/pods/x/exec?command=true"),
    }  # fmt: skip
    for what, write in writes.items():
        with pytest.raises(Forbidden, match="403"):
            write()
            pytest.fail(f"the read-only identity may {what}")


# Subresources a wildcard read role would open: exec/attach/port-forward over websockets
# (GET), the kubelet's API and Services through the API server, logs, tokens.
DANGEROUS = (
    ("get", "pods", "exec"), ("get", "pods", "attach"), ("get", "pods", "portforward"),
    ("create", "pods", "exec"), ("get", "pods", "log"), ("get", "pods", "proxy"),
    ("get", "nodes", "proxy"), ("get", "services", "proxy"),
    ("create", "serviceaccounts", "token"), ("get", "secrets", ""), ("list", "secrets", ""),
)  # fmt: skip


def may(kubeconfig: str, verb: str, resource: str, sub: str, ns: str) -> bool:
    """The API server's answer (SelfSubjectAccessReview) for the kubeconfig's user."""
    c = Cluster(ClusterRef(kubeconfig), name="probe")
    attrs = {"verb": verb, "resource": resource, "subresource": sub, "namespace": ns}
    review = {"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
              "spec": {"resourceAttributes": {k: v for k, v in attrs.items() if v}}}  # fmt: skip
    ssar = c.discovery().resolve("selfsubjectaccessreviews.authorization.k8s.io")
    return bool(c.create(ssar, review)["status"].get("allowed"))


def test_roles_grant_no_subresource_that_runs_or_proxies(identities: Identities) -> None:
    """Neither role grants exec, attach, port-forward, proxies, logs or tokens (what a
    wildcard over the core group would); both do read Secrets, which are migrated."""
    for side, example in (("source", "source-readonly.yaml"), ("target", "target-restore.yaml")):
        kubeconfig = identities.kubeconfig(side, example)
        granted = {(v, r, s) for v, r, s in DANGEROUS if may(kubeconfig, v, r, s, "default")}
        assert granted == {("get", "secrets", ""), ("list", "secrets", "")}, (side, granted)


def test_weaker_restore_role_findings_equal_what_restore_fails_on(
    capsys: pytest.CaptureFixture[str], identities: Identities, app: str, bucket_url: str
) -> None:
    """The restore role without create on Secrets, patch on Deployments and get on
    ConfigMaps: preflight (policy update) reports exactly these three; restore then
    fails on exactly the objects that need them (the Secret on the first run, the
    Secret, Deployment and ConfigMap when updating the existing objects)."""
    ro = identities.kubeconfig("source", "source-readonly.yaml")
    removed = {("create", "", "secrets"), ("patch", "apps", "deployments"),
               ("get", "", "configmaps")}  # fmt: skip
    weak = identities.kubeconfig("target", "target-restore.yaml", "weak", without(*removed))
    bucket = ["--bucket", bucket_url]
    code, report, err = cli(capsys, "preflight", "--source-kubeconfig", ro,
                            "--target-kubeconfig", weak, "--include-namespaces", app,
                            "--existing-resource-policy", "update")  # fmt: skip
    assert code == EXIT_PREFLIGHT, err
    assert permission_findings(report) == {
        f"the target's credentials may not create secrets in namespace {app}":
            (f"Secret {app}/db",),
        f"the target's credentials may not patch deployments.apps in namespace {app}":
            (f"Deployment {app}/web",),
        f"the target's credentials may not get configmaps in namespace {app}":
            (f"ConfigMap {app}/cfg",),
    }, report["findings"]  # fmt: skip
    assert report["counts"]["error"] == 3

    code, _, err = cli(capsys, "backup", "create", "b", "--kubeconfig", ro, *bucket,
                       "--include-namespaces", app)  # fmt: skip
    assert code == 0, err
    code, first, err = cli(capsys, "restore", "create", uniq("r1"), "--from-backup", "b",
                           "--kubeconfig", weak, *bucket)  # fmt: skip
    assert code == EXIT_PARTIAL and first["phase"] == "PartiallyFailed", err
    assert outcome(first, "failed") == {"Secret db"}, first["objects"]
    code, second, err = cli(capsys, "restore", "create", uniq("r2"), "--from-backup", "b",
                            "--kubeconfig", weak, *bucket,
                            "--existing-resource-policy", "update")  # fmt: skip
    assert code == EXIT_PARTIAL, err
    assert outcome(second, "failed") == {"Secret db", "Deployment web", "ConfigMap cfg"}, second
    messages = [o["message"] for o in second["objects"] if o["result"] == "failed"]
    assert all("403" in m for m in messages), messages


def test_restore_role_without_escalate_and_bind(
    capsys: pytest.CaptureFixture[str], identities: Identities, app: str, bucket_url: str
) -> None:
    """Without rule 12 (escalate, bind) the restore role may create Roles and bindings
    only for permissions it holds itself: preflight names the Role (it grants watch) and
    both bindings (their roles grant what the restore role lacks); restore then fails on
    the Role and the binding to `view`, and skips the binding to the failed Role."""
    ro = identities.kubeconfig("source", "source-readonly.yaml")
    no_esc = identities.kubeconfig("target", "target-restore.yaml", "noescalate",
                            without_rule({"escalate", "bind"}))  # fmt: skip
    code, report, err = cli(capsys, "preflight", "--source-kubeconfig", ro,
                            "--target-kubeconfig", no_esc, "--include-namespaces", app)  # fmt: skip
    assert code == EXIT_PREFLIGHT, err
    found = permission_findings(report)
    assert sorted(found.values()) == [(f"Role {app}/web",), (f"RoleBinding {app}/web",),
                                      (f"RoleBinding {app}/web-view",)], found  # fmt: skip
    role_msg = next(m for m, objs in found.items() if objs == (f"Role {app}/web",))
    # the restore role holds get on Secrets (so on the one named db), not pods/log or watch
    assert "it grants get pods/log, watch configmaps, which they do not hold" in role_msg
    assert "may not escalate roles" in role_msg
    view_msg = next(m for m, objs in found.items() if objs == (f"RoleBinding {app}/web-view",))
    assert "the ClusterRole view it binds grants" in view_msg and "may not bind" in view_msg

    bucket = ["--bucket", bucket_url]
    code, _, err = cli(capsys, "backup", "create", "b", "--kubeconfig", ro, *bucket,
                       "--include-namespaces", app)  # fmt: skip
    assert code == 0, err
    code, restored, err = cli(capsys, "restore", "create", uniq("r"), "--from-backup", "b",
                              "--kubeconfig", no_esc, *bucket)  # fmt: skip
    assert code == EXIT_PARTIAL, err
    assert outcome(restored, "failed") == {"Role web", "RoleBinding web-view"}, restored
    refusal = next(o["message"] for o in restored["objects"] if o["name"] == "web"
                   and o["kind"] == "Role")  # fmt: skip
    assert "pods/log" in refusal and '"watch"' in refusal and "secrets" not in refusal, refusal
    skipped = {f"{o['kind']} {o['name']}": o["message"] for o in restored["objects"]
               if o["result"] == "skipped"}  # fmt: skip
    assert "dependency" in skipped["RoleBinding web"] and "Role" in skipped["RoleBinding web"]


def test_backup_without_secrets_list_is_partially_failed(
    capsys: pytest.CaptureFixture[str], identities: Identities, app: str, bucket_url: str
) -> None:
    """A source role that may not list Secrets: the backup is written, but as
    PartiallyFailed with exit 5, the refusal named on stderr and recorded in its results;
    it holds everything else; preflight from it blocks (exit 3) on that one refusal."""
    nosecrets = identities.kubeconfig("source", "source-readonly.yaml", "nosecrets",
                               without(("list", "", "secrets")))  # fmt: skip
    rw = identities.kubeconfig("target", "target-restore.yaml")
    bucket = ["--bucket", bucket_url]
    code, backup, err = cli(capsys, "backup", "create", "b", "--kubeconfig", nosecrets, *bucket,
                            "--include-namespaces", app)  # fmt: skip
    assert code == EXIT_PARTIAL, err
    assert backup["phase"] == "PartiallyFailed" and backup["errors"] == 1, backup
    assert "list secrets" in err or "listing secrets" in err, err
    assert "403" in err and "forbidden" in err and "kube-migrate: error: backup b is" in err, err
    code, described, _ = cli(capsys, "backup", "describe", "b", "--details", *bucket)
    assert described["phase"] == "PartiallyFailed"
    errors = described["errorMessages"]["namespaces"][app]
    assert len(errors) == 1 and "list secrets" in errors[0] and "403" in errors[0], errors
    held = described["counts"]["byResource"]
    assert "secrets" not in held, held
    assert {"configmaps", "deployments.apps", "roles.rbac.authorization.k8s.io"} <= set(held)
    code, report, err = cli(capsys, "preflight", "--from-backup", "b", *bucket,
                            "--target-kubeconfig", rw)  # fmt: skip
    assert code == EXIT_PREFLIGHT, err
    found = permission_findings(report)
    assert len(found) == 1, found
    assert next(iter(found)).startswith("the source's credentials could not read:")
    assert "list secrets" in next(iter(found))


def test_backup_without_watch_cannot_tell_what_changed(
    capsys: pytest.CaptureFixture[str],
    identities: Identities,
    source: Cluster,
    app: str,
    bucket_url: str,
) -> None:
    """The source role minus `watch`: a backup still completes, but for a resource listed
    in more than one page it says it cannot tell what changed, rather than report zero;
    one-page resources fall back to a metadata re-list compared by resourceVersion."""
    nowatch = identities.kubeconfig(
        "source", "source-readonly.yaml", "nowatch", without_verb("watch")
    )
    cm = source.discovery().resolve("configmaps")
    for i in range(520):  # more than one page (500) of ConfigMaps
        source.create(cm, {"metadata": {"name": f"many-{i:03d}"}, "data": {"i": str(i)}}, app)
    code, backup, err = cli(capsys, "backup", "create", "nw", "--kubeconfig", nowatch,
                            "--bucket", bucket_url, "--include-namespaces", app)  # fmt: skip
    assert code == 0 and backup["phase"] == "Completed", err
    assert "configmaps: cannot tell what changed while the backup ran" in err, err
    assert "403" in err and backup["changed"] == 0, err
    code, described, _ = cli(capsys, "backup", "describe", "nw", "--details",
                             "--bucket", bucket_url)  # fmt: skip
    warnings = described["warningMessages"]["cluster"]
    assert [w for w in warnings if "cannot tell" in w] == [
        next(w for w in warnings if w.startswith("configmaps: cannot tell"))
    ], warnings


def without_verb(verb: str) -> Callable[[Role], None]:
    """An edit of a ClusterRole that drops one verb from every rule."""

    def edit(role: Role) -> None:
        for rule in role["rules"]:
            rule["verbs"] = [v for v in rule["verbs"] if v != verb]

    return edit


def test_many_namespaces_come_by_one_list_or_by_get_when_list_is_refused(
    capsys: pytest.CaptureFixture[str], identities: Identities, source: Cluster, bucket_url: str
) -> None:
    """More than a few namespaces in scope: a backup brings their Namespace objects by
    one LIST; a role that may get namespaces but not list them still gets every one (a
    GET each), and the backup completes without an error."""
    nsr = source.discovery().resolve("namespaces")
    cm = source.discovery().resolve("configmaps")
    names = [uniq("many-ns") for _ in range(LIST_OVER + 2)]
    for ns in names:
        source.create(nsr, {"metadata": {"name": ns}})
        source.create(cm, {"metadata": {"name": "cfg"}, "data": {"k": "v"}}, ns)
    nolist = identities.kubeconfig(
        "source", "source-readonly.yaml", "nolistns", without(("list", "", "namespaces"))
    )
    assert not may(nolist, "list", "namespaces", "", "")
    try:
        for kubeconfig in (identities.env.source_kubeconfig, nolist):
            name = uniq("nsdeps")
            code, backup, err = cli(capsys, "backup", "create", name, "--kubeconfig", kubeconfig,
                                    "--bucket", bucket_url, "--include-namespaces",
                                    ",".join(names))  # fmt: skip
            assert code == 0 and backup["phase"] == "Completed" and backup["errors"] == 0, err
            code, described, _ = cli(capsys, "backup", "describe", name, "--details",
                                     "--bucket", bucket_url)  # fmt: skip
            included = described["clusterIncluded"]["namespaces"]
            assert set(included) == set(names), included
            assert all(reason.startswith("namespace of ") for reason in included.values())
    finally:
        for ns in names:
            source.delete(nsr, ns)
