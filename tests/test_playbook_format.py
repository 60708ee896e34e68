"""Pure tests of the playbook format layer (no cluster): the shipped playbooks load, schema
and cross-field errors name file, line and field, `--set` overrides, endpoint resolution,
and the run journal behind `--resume`."""

from __future__ import annotations

import inspect
import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from migrate.cli.options import open_bucket
from migrate.errors import EXIT_USAGE, PlaybookError, UsageError
from migrate.playbook import (
    Endpoints,
    Playbook,
    RunState,
    load_playbook,
    new_run_name,
    resolve_endpoints,
    schema,
    state_root,
)
from migrate.playbook.state import list_runs

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = sorted(
    [*ROOT.glob("playbooks/*.yaml"), *ROOT.glob("examples/**/*playbook*.yaml")],
)
ENV = {
    "KUBE_MIGRATE_SOURCE_KUBECONFIG": "/k/source.kubeconfig",
    "KUBE_MIGRATE_TARGET_KUBECONFIG": "/k/target.kubeconfig",
    "KUBE_MIGRATE_BUCKET": "s3://kube-migrate/runs",
}
HEAD = "apiVersion: kube-migrate.io/v1alpha1\nkind: Playbook\nmetadata:\n  name: t\nspec:\n"
# HEAD is lines 1-5; a spec body starts on line 6.


def write(tmp_path: Path, text: str, name: str = "pb.yaml") -> str:
    (tmp_path / name).write_text(text)
    return name


def load_text(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str, *sets: str, env: Any = None
) -> Playbook:
    monkeypatch.chdir(tmp_path)
    return load_playbook(write(tmp_path, text), list(sets), env=env if env is not None else {})


# --------------------------------------------------------------------------- shipped files


def test_the_four_playbooks_exist() -> None:
    names = {p.name for p in ROOT.glob("playbooks/*.yaml")}
    assert {
        "migrate-cluster.yaml",
        "clone-prod-to-test.yaml",
        "preflight-report.yaml",
        "disaster-recovery.yaml",
    } <= names


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: str(p.relative_to(ROOT)))
def test_shipped_playbook_loads(path: Path) -> None:
    pb = load_playbook(path, env={})
    assert pb.document["apiVersion"] == "kube-migrate.io/v1alpha1"
    assert pb.steps and pb.description
    if path.parent.name == "playbooks":
        assert pb.name == path.stem
        assert set(pb.scope().include_namespaces) == {"shop", "shop-data"}
        # clusters and bucket come from flags/env, never from the shipped file
        assert "source" not in pb.spec and "target" not in pb.spec
        assert "url" not in pb.section("bucket") and "targetBucket" not in pb.spec
        resolve_endpoints(pb, {}, ENV)  # runnable with the usual three variables


def test_shipped_playbooks_say_what_the_issue_asks() -> None:
    def pb(name: str) -> Playbook:
        return load_playbook(ROOT / "playbooks" / f"{name}.yaml", env={})

    mc = pb("migrate-cluster")
    assert [s.name for s in mc.steps] == [
        *("preflight", "backup", "waitForSync", "restore", "waitReady", "verify")
    ]
    assert mc.gates.preflight == "error"

    clone = pb("clone-prod-to-test").mappings()
    assert clone.namespaces == {"shop": "shop-test", "shop-data": "shop-data-test"}
    assert clone.storage_classes == {"shop-fast": "standard"}
    assert clone.image("registry.example.com/shop/web:1") == "registry.test.example.com/shop/web:1"
    assert clone.replicas == 1 and clone.suspend_cronjobs

    report = pb("preflight-report")
    assert [s.name for s in report.steps] == ["preflight"]
    assert resolve_endpoints(report, {}, ENV).bucket.read_only  # type: ignore[union-attr]

    for name in ("disaster-recovery", "recover-from-schedule"):
        dr = pb(name)
        drill = name == "disaster-recovery"
        want = ["restore", "waitReady", "verify", *(["cleanup"] if drill else [])]
        assert [s.name for s in dr.steps] == want
        assert dr.backup.from_schedule == "shop" and dr.verify.from_backup
        assert dr.mappings().namespaces == ({"shop": "shop-drill", "shop-data": "shop-data-drill"}
                                           if drill else {})  # fmt: skip
        ep = resolve_endpoints(dr, {}, {k: v for k, v in ENV.items() if "SOURCE" not in k})
        assert ep.bucket is not None and ep.bucket.read_only and ep.source.kubeconfig is None


def test_schema_is_valid_2020_12_and_closed() -> None:
    Draft202012Validator.check_schema(schema())

    def walk(node: Any, where: str) -> None:
        if isinstance(node, dict):
            if node.get("type") == "object" and "additionalProperties" not in node:
                pytest.fail(f"{where} lacks additionalProperties")
            for k, v in node.items():
                walk(v, f"{where}/{k}")
        elif isinstance(node, list):
            for i, v in enumerate(node):
                walk(v, f"{where}/{i}")

    walk(schema(), "#")


def test_defaults_and_durations(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pb = load_text(tmp_path, monkeypatch, HEAD + "  steps: [preflight]\n")
    assert pb.backup.ttl == "720h0m0s" and pb.backup.ttl_seconds == 720 * 3600
    assert pb.backup.parallelism == 8 and pb.restore.parallelism == 16
    assert (pb.wait_for_sync.timeout, pb.wait_for_sync.interval) == (600.0, 1.0)
    assert pb.wait_ready_timeout == 600.0
    assert pb.restore.existing_resource_policy == "none"
    assert (pb.gates.preflight, pb.gates.restore, pb.gates.verify) == ("error", "failed", "drift")
    assert pb.scope().include_namespaces == ("*",) and pb.scope().cluster_mode == "all"
    assert pb.backup_name("t-20250101000000") == "t-20250101000000"
    assert pb.report_dir is None


def test_scale_steps(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    body = (
        "  scope: {includeNamespaces: [shop], includeClusterResources: false}\n"
        "  restore: {namespaceMappings: {shop: shop-test}}\n"
        "  steps:\n"
        "  - scale: {side: source}\n"
        "  - backup\n"
        "  - restore\n"
        "  - scale: {side: target, replicas: 2, kinds: [StatefulSet]}\n"
    )
    pb = load_text(tmp_path, monkeypatch, HEAD + body)
    first, last = pb.steps[0], pb.steps[3]
    assert (first.label, last.label) == ("scale[0]", "scale[3]")
    s = pb.scale(first)
    assert (s.side, s.replicas, s.kinds, s.namespaces) == (
        "source",
        0,
        ("Deployment", "StatefulSet"),
        ("shop",),
    )
    t = pb.scale(last)
    assert (t.replicas, t.kinds, t.namespaces) == (2, ("StatefulSet",), ("shop-test",))
    assert pb.scope().include_cluster_resources == "false"  # a YAML bool, normalised


# ------------------------------------------------------------------------- errors, table

CASES: list[tuple[str, str, str]] = [
    # (id, spec body or whole file, expected "file:line: field: message" prefix)
    (
        "min",
        "  restore:\n    replicas: -1\n  steps: [backup, restore]\n",
        "pb.yaml:7: spec.restore.replicas: -1 is less than the minimum of 0",
    ),
    (
        "unknown-key",
        "  restore:\n    replica: 1\n  steps: [backup]\n",
        "pb.yaml:7: spec.restore.replica: unknown field",
    ),
    (
        "unknown-spec-key",
        "  steps: [backup]\n  rollback: {}\n",
        "pb.yaml:7: spec.rollback: unknown field",
    ),
    (
        "unknown-step",
        "  steps:\n  - backup\n  - bakup\n",
        "pb.yaml:8: spec.steps[1]: 'bakup' is not one of: preflight, backup",
    ),
    ("scale-as-string", "  steps:\n  - scale\n", "pb.yaml:7: spec.steps[0]: 'scale' is not one of"),
    (
        "scale-no-side",
        "  steps:\n  - backup\n  - scale: {replicas: 0}\n",
        "pb.yaml:8: spec.steps[1].scale.side: is required but missing",
    ),
    (
        "scale-side",
        "  steps:\n  - scale:\n      side: both\n",
        "pb.yaml:8: spec.steps[0].scale.side: 'both' is not one of: source, target",
    ),
    (
        "scale-kind",
        "  steps:\n  - scale:\n      side: source\n      kinds: [Pod]\n",
        "pb.yaml:9: spec.steps[0].scale.kinds[0]: 'Pod' is not one of: Deployment",
    ),
    (
        "step-options",
        "  steps:\n  - backup\n  - restore:\n      timeout: 1m\n",
        "pb.yaml:9: spec.steps[1].restore.timeout: unknown field",
    ),
    (
        "step-two-keys",
        "  steps:\n  - backup\n  - {restore: null, waitReady: null}\n",
        "pb.yaml:8: spec.steps[1]: {'restore': None, 'waitReady': None} has too many properties",
    ),
    (
        "duration",
        "  waitForSync:\n    timeout: 10 minutes\n  steps: [backup]\n",
        "pb.yaml:7: spec.waitForSync.timeout: '10 minutes' is not a valid Go-style duration",
    ),
    (
        "duration-int",
        "  waitReady: {timeout: 10}\n  steps: [backup]\n",
        "pb.yaml:6: spec.waitReady.timeout: 10 is not of type 'string'",
    ),
    (
        "policy",
        "  restore:\n    existingResourcePolicy: overwrite\n  steps: [backup]\n",
        "pb.yaml:7: spec.restore.existingResourcePolicy: 'overwrite' is not one of: none, update",
    ),
    (
        "cluster-resources",
        "  scope:\n    includeClusterResources: sometimes\n  steps: [backup]\n",
        "pb.yaml:7: spec.scope.includeClusterResources: 'sometimes' is not one of: auto, true",
    ),
    (
        "ns-string",
        "  scope:\n    includeNamespaces: shop,shop-data\n  steps: [backup]\n",
        "pb.yaml:7: spec.scope.includeNamespaces: 'shop,shop-data' is not of type 'array'",
    ),
    (
        "ns-comma",
        "  scope:\n    includeNamespaces: [shop, 'a,b']\n  steps: [backup]\n",
        "pb.yaml:7: spec.scope.includeNamespaces[1]: 'a,b' is not a valid name or glob",
    ),
    (
        "ns-twice",
        "  scope:\n    includeNamespaces: [shop, shop]\n  steps: [backup]\n",
        "pb.yaml:7: spec.scope.includeNamespaces: ['shop', 'shop'] has non-unique elements",
    ),
    (
        "mapping-key",
        "  restore:\n    namespaceMappings:\n      Shop: shop\n  steps: [backup]\n",
        "pb.yaml:8: spec.restore.namespaceMappings.Shop: 'Shop' is not a valid namespace name",
    ),
    (
        "mapping-value",
        "  restore:\n    namespaceMappings:\n      shop: shop_test\n  steps: [backup]\n",
        "pb.yaml:8: spec.restore.namespaceMappings.shop: 'shop_test' is not a valid namespace",
    ),
    (
        "bucket-url",
        "  bucket:\n    url: http://minio:9000/b\n  steps: [backup]\n",
        "pb.yaml:7: spec.bucket.url: 'http://minio:9000/b' is not a valid bucket URL",
    ),
    (
        "read-only-string",
        "  bucket:\n    readOnly: 'yes'\n  steps: [backup]\n",
        "pb.yaml:7: spec.bucket.readOnly: 'yes' is not of type 'boolean'",
    ),
    (
        "endpoint",
        "  targetBucket:\n    endpoint: minio:9000\n  steps: [backup]\n",
        "pb.yaml:7: spec.targetBucket.endpoint: 'minio:9000' is not a valid S3 endpoint URL",
    ),
    (
        "gate",
        "  gates:\n    verify:\n      failOn: error\n  steps: [backup]\n",
        "pb.yaml:8: spec.gates.verify.failOn: 'error' is not one of: drift, never",
    ),
    (
        "parallelism",
        "  backup:\n    parallelism: 0\n  steps: [backup]\n",
        "pb.yaml:7: spec.backup.parallelism: 0 is less than the minimum of 1",
    ),
    ("no-steps", "  backup: {}\n", "pb.yaml:5: spec.steps: is required but missing"),
    ("empty-steps", "  steps: []\n", "pb.yaml:6: spec.steps: [] should be non-empty"),
    (
        "preflight-opts",
        "  preflight: {failOn: warning}\n  steps: [preflight]\n",
        "pb.yaml:6: spec.preflight.failOn: unknown field",
    ),
    # cross-field rules
    (
        "backup-and-schedule",
        "  backup:\n    fromSchedule: shop-\n  steps:\n  - backup\n",
        "pb.yaml:9: spec.steps[0]: the backup step is not allowed with spec.backup.fromSchedule",
    ),
    (
        "restore-no-backup",
        "  steps:\n  - preflight\n  - restore\n",
        "pb.yaml:8: spec.steps[1]: restore has no backup to work on",
    ),
    (
        "sync-no-backup",
        "  steps:\n  - waitForSync\n",
        "pb.yaml:7: spec.steps[0]: waitForSync has no backup to work on",
    ),
    (
        "verify-from-backup",
        "  verify: {fromBackup: true}\n  steps:\n  - verify\n",
        "pb.yaml:8: spec.steps[0]: verify with fromBackup has no backup to work on",
    ),
    (
        "twice",
        "  steps:\n  - backup\n  - restore\n  - backup\n",
        "pb.yaml:9: spec.steps[2]: step 'backup' is listed twice (first at spec.steps[0])",
    ),
    (
        "order",
        "  steps:\n  - backup\n  - verify\n  - restore\n",
        "pb.yaml:9: spec.steps[2]: restore must come before verify (spec.steps[1])",
    ),
    (
        "wait-ready-alone",
        "  backup: {name: b1}\n  steps:\n  - waitReady\n",
        "pb.yaml:8: spec.steps[0]: waitReady waits for restored workloads",
    ),
    (
        "selector",
        "  scope: {selector: 'app in (a'}\n  steps: [backup]\n",
        "pb.yaml:6: spec.scope.selector: invalid",
    ),
    (
        "ns-collision",
        "  restore:\n    namespaceMappings:\n      a: x\n      b: x\n  steps: [backup, restore]\n",
        "pb.yaml:9: spec.restore.namespaceMappings.b: maps 'b' to 'x', which 'a' is mapped to",
    ),
    # the document itself
    (
        "api-version",
        "apiVersion: v1\nkind: Playbook\nmetadata: {name: t}\nspec: {steps: [backup]}\n",
        "pb.yaml:1: apiVersion: 'kube-migrate.io/v1alpha1' was expected",
    ),
    (
        "kind",
        "apiVersion: kube-migrate.io/v1alpha1\nkind: Backup\nmetadata: {name: t}\n"
        "spec: {steps: [backup]}\n",
        "pb.yaml:2: kind: 'Playbook' was expected",
    ),
    (
        "no-name",
        "apiVersion: kube-migrate.io/v1alpha1\nkind: Playbook\nmetadata:\n"
        "  description: x\nspec: {steps: [backup]}\n",
        "pb.yaml:3: metadata.name: is required but missing",
    ),
    (
        "bad-name",
        "apiVersion: kube-migrate.io/v1alpha1\nkind: Playbook\nmetadata:\n"
        "  name: Migrate_Prod\nspec: {steps: [backup]}\n",
        "pb.yaml:4: metadata.name: 'Migrate_Prod' is not a valid playbook name",
    ),
    (
        "duplicate-key",
        "  restore:\n    replicas: 1\n    replicas: 2\n  steps: [backup]\n",
        "pb.yaml:8: spec.restore.replicas: duplicate key (first on line 7)",
    ),
    (
        "key-not-text",
        "  restore:\n    namespaceMappings:\n      on: x\n  steps: [backup]\n",
        "pb.yaml:8: spec.restore.namespaceMappings.on: key 'on' is not text",
    ),
    (
        "yaml-syntax",
        "  restore:\n    replicas: [1\n  steps: [backup]\n",
        "pb.yaml:8: (document): invalid YAML:",
    ),
    ("empty-file", "", "pb.yaml:1: (document): the file is empty"),
    ("not-a-map", "- backup\n", "pb.yaml:1: (document): ['backup'] is not of type 'object'"),
]


@pytest.mark.parametrize(("body", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_error_names_file_line_and_field(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, body: str, expected: str
) -> None:
    text = body if body == "" or not body.startswith("  ") else HEAD + body
    with pytest.raises(PlaybookError) as info:
        load_text(tmp_path, monkeypatch, text)
    err = info.value
    assert str(err).startswith(expected), str(err)
    assert "\n" not in str(err) and err.hint and "\n" not in err.hint
    assert err.exit_code == EXIT_USAGE


def test_first_error_in_file_order_and_count_in_hint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    body = "  restore:\n    replicas: -1\n  scope: {includeClusterResources: x}\n  steps: [bakup]\n"
    with pytest.raises(PlaybookError) as info:
        load_text(tmp_path, monkeypatch, HEAD + body)
    assert str(info.value).startswith("pb.yaml:7: spec.restore.replicas:")
    assert "(2 more errors after this one)" in info.value.hint


def test_unknown_field_hint_lists_allowed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(PlaybookError) as info:
        load_text(tmp_path, monkeypatch, HEAD + "  waitReady: {timeot: 1m}\n  steps: [backup]\n")
    assert info.value.hint == "allowed here: timeout"


def test_missing_file() -> None:
    with pytest.raises(PlaybookError, match=r"^nope\.yaml: no such playbook file"):
        load_playbook("nope.yaml", env={})


# ------------------------------------------------------------------------------ --set

BASE = HEAD + "  scope:\n    includeNamespaces: [shop]\n  steps: [preflight, backup, restore]\n"


def test_set_int_bool_list_and_map(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pb = load_text(
        tmp_path,
        monkeypatch,
        BASE,
        "restore.replicas=1",
        "restore.suspendCronJobs=true",
        "scope.includeNamespaces=[a, b]",
        "restore.namespaceMappings={a: a-test, b: b-test}",
        r"restore.imageRegistryMappings.docker\.io/acme=registry.local/acme",
        "waitReady.timeout=5m",
    )
    m = pb.mappings()
    assert m.replicas == 1 and m.suspend_cronjobs is True
    assert pb.scope().include_namespaces == ("a", "b")
    assert m.namespaces == {"a": "a-test", "b": "b-test"}
    assert m.registries == {"docker.io/acme": "registry.local/acme"}
    assert pb.wait_ready_timeout == 300.0
    assert pb.overrides[0] == "restore.replicas=1"
    assert pb.document["spec"]["restore"]["replicas"] == 1  # journaled resolved


@pytest.mark.parametrize(
    ("value", "expected"),
    [("a,b", ("a", "b")), ("[a, b]", ("a", "b")), ("a, b ,", ("a", "b")), ("a", ("a",))],
)
def test_set_list_field_accepts_commas(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, value: str, expected: tuple[str, ...]
) -> None:
    pb = load_text(
        tmp_path,
        monkeypatch,
        BASE,
        f"scope.includeNamespaces={value}",
        f"scope.excludeResources={value}",
    )
    assert pb.scope().include_namespaces == expected
    assert pb.scope().exclude_resources == expected
    # not a list field: commas stay text (a selector may hold them)
    pb = load_text(tmp_path, monkeypatch, BASE, "scope.selector=app=a,tier!=db")
    assert pb.section("scope")["selector"] == "app=a,tier!=db"


def test_set_later_wins_and_null_removes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pb = load_text(
        tmp_path, monkeypatch, BASE, "restore.replicas=1", "restore.replicas=3", "scope=null"
    )
    assert pb.mappings().replicas == 3 and "scope" not in pb.spec


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("restore.replica=1", "pb.yaml: --set restore.replica=1: spec.restore.replica: unknown"),
        ("nope=1", "pb.yaml: --set nope=1: spec.nope: unknown field"),
        ("restore.replicas=-1", "pb.yaml: --set restore.replicas=-1: spec.restore.replicas: -1 is"),
        (
            "restore.replicas=one",
            "pb.yaml: --set restore.replicas=one: spec.restore.replicas: 'one'",
        ),
        ("backup.name=", "pb.yaml: --set backup.name=: spec.backup.name: '' is not a valid"),
        ("steps.x=1", "pb.yaml: --set steps.x=1: spec.steps.x: spec.steps is a list"),
        ("restore.replicas", "pb.yaml: --set restore.replicas: expected PATH=VALUE"),
        ("restore..x=1", "pb.yaml: --set restore..x=1: expected PATH=VALUE"),
        ("scope.includeNamespaces=[a", "pb.yaml: --set scope.includeNamespaces=[a: spec.scope"),
        ("steps=[backup, bakup]", "pb.yaml: --set steps=[backup, bakup]: spec.steps[1]: 'bakup'"),
    ],
)
def test_set_errors_name_the_set(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, expr: str, expected: str
) -> None:
    with pytest.raises(PlaybookError) as info:
        load_text(tmp_path, monkeypatch, BASE, expr)
    assert str(info.value).startswith(expected), str(info.value)


def test_set_can_break_a_cross_field_rule(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(PlaybookError) as info:
        load_text(tmp_path, monkeypatch, BASE, "backup.fromSchedule=shop-")
    assert str(info.value).startswith("pb.yaml:8: spec.steps[1]: the backup step is not allowed")


# ------------------------------------------------------------------------------ paths


def test_paths_relative_to_playbook_env_and_set(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "pbs").mkdir()
    (tmp_path / "pbs" / "x.yaml").write_text(
        HEAD + "  source: {kubeconfig: ../k/source.kubeconfig}\n"
        "  target:\n    kubeconfig: ${KC_DIR}/target\n"
        "  verify: {ignoreFields: ~/ignore.yaml}\n"
        "  report: {dir: out}\n"
        "  steps: [preflight]\n"
    )
    monkeypatch.chdir(tmp_path)
    env = {"KC_DIR": "/etc/kc", "HOME": "/home/u"}
    pb = load_playbook("pbs/x.yaml", ["restore.resourceModifiers=mods.yaml"], env=env)
    assert pb.section("source")["kubeconfig"] == str(tmp_path / "k" / "source.kubeconfig")
    assert pb.section("target")["kubeconfig"] == "/etc/kc/target"
    assert pb.verify.ignore_fields == "/home/u/ignore.yaml"
    assert pb.report_dir == str(tmp_path / "out")  # outputs: relative to the cwd
    assert pb.restore.resource_modifiers == str(tmp_path / "mods.yaml")  # --set: cwd
    with pytest.raises(PlaybookError, match=r"^pbs/x\.yaml:8: spec\.target\.kubeconfig: \$KC_DIR"):
        load_playbook("pbs/x.yaml", env={})


# -------------------------------------------------------------------------- endpoints


def _migrate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, spec: str = "") -> Playbook:
    body = spec + "  steps: [preflight, backup, waitForSync, restore, waitReady, verify]\n"
    return load_text(tmp_path, monkeypatch, HEAD + body)


def test_endpoints_from_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    env = {**ENV, "KUBE_MIGRATE_SOURCE_CONTEXT": "src", "KUBE_MIGRATE_S3_ENDPOINT": "http://m"}
    ep = resolve_endpoints(_migrate(tmp_path, monkeypatch), {}, env)
    assert (ep.source.kubeconfig, ep.source.context) == ("/k/source.kubeconfig", "src")
    assert (ep.target.kubeconfig, ep.target.context) == ("/k/target.kubeconfig", None)
    assert ep.bucket is not None and ep.bucket.url == "s3://kube-migrate/runs"
    assert ep.bucket.endpoint == "http://m" and not ep.bucket.read_only
    assert ep.target_bucket == ep.bucket
    assert Endpoints.from_dict(json.loads(json.dumps(ep.as_dict()))) == ep


# Who sets what, per row: (flag, --set, playbook, env) -> expected; None: not given.
# Precedence: command-line flags > --set > playbook > environment > defaults.
PRECEDENCE = [
    ("/flag/t", "/set/t", "/pb/t", "/env/t", "/flag/t"),
    (None, "/set/t", "/pb/t", "/env/t", "/set/t"),
    (None, None, "/pb/t", "/env/t", "/pb/t"),
    (None, None, None, "/env/t", "/env/t"),
    ("/flag/t", None, "/pb/t", None, "/flag/t"),
]


@pytest.mark.parametrize(("flag", "set_", "own", "env", "expected"), PRECEDENCE)
def test_endpoint_precedence(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    flag: str | None,
    set_: str | None,
    own: str | None,
    env: str | None,
    expected: str,
) -> None:
    spec = f"  target: {{kubeconfig: {own}}}\n  bucket: {{url: 's3://pb{own}'}}\n" if own else ""
    sets = [f"target.kubeconfig={set_}", f"bucket.url=s3://set{set_}"] if set_ else []
    environ = {k: v for k, v in ENV.items() if "TARGET" not in k and "BUCKET" not in k}
    if env:
        environ |= {"KUBE_MIGRATE_TARGET_KUBECONFIG": env, "KUBE_MIGRATE_BUCKET": f"s3://env{env}"}
    flags = {"target_kubeconfig": flag, "bucket": f"s3://flag{flag}" if flag else None}
    body = spec + "  steps: [preflight, backup, waitForSync, restore, waitReady, verify]\n"
    pb = load_text(tmp_path, monkeypatch, HEAD + body, *sets)
    ep = resolve_endpoints(pb, flags, environ)
    where = expected.split("/")[1]
    assert ep.target.kubeconfig == expected
    assert ep.bucket is not None and ep.bucket.url == f"s3://{where}{expected}"


def test_setting_precedence_and_defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """--set over the playbook over the schema's defaults; --read-only-bucket ORs; a
    --target-kubeconfig drops the playbook's context (a context of another file)."""
    spec = (
        "  source: {kubeconfig: /pb/source}\n  target: {kubeconfig: /pb/t, context: pbctx}\n"
        "  bucket: {readOnly: false, region: eu}\n  restore: {parallelism: 3}\n"
    )
    pb = _migrate(tmp_path, monkeypatch, spec)
    assert pb.restore.parallelism == 3 and pb.backup.parallelism == 8  # playbook, default
    pb2 = load_text(
        tmp_path, monkeypatch, HEAD + spec + "  steps: [backup, restore]\n", "restore.parallelism=5"
    )
    assert pb2.restore.parallelism == 5  # --set over the playbook
    flags = {
        "target_kubeconfig": "flag/target",
        "bucket": "file:///flag/bucket",
        "read_only_bucket": True,
        "s3_region": "us",
    }
    ep = resolve_endpoints(pb, flags, ENV)
    assert ep.source.kubeconfig == "/pb/source"  # no flag: the playbook's value
    assert ep.target.kubeconfig == str(tmp_path / "flag" / "target")  # the flag's, absolute
    assert ep.target.context is None
    assert ep.bucket is not None and ep.bucket.url == "file:///flag/bucket"
    assert ep.bucket.region == "us" and ep.bucket.read_only  # flags win; read-only ORs
    ep = resolve_endpoints(pb, {}, ENV)
    assert (ep.target.kubeconfig, ep.target.context) == ("/pb/t", "pbctx")
    assert ep.bucket is not None and ep.bucket.region == "eu" and not ep.bucket.read_only


def test_target_bucket_field_by_field(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spec = "  bucket: {endpoint: http://a:9000, region: eu}\n  targetBucket: {region: us}\n"
    pb = _migrate(tmp_path, monkeypatch, spec)
    with pytest.raises(PlaybookError, match=r"^pb\.yaml: spec\.targetBucket\.url: .* no url"):
        resolve_endpoints(pb, {}, ENV)
    ep = resolve_endpoints(pb, {}, {**ENV, "KUBE_MIGRATE_TARGET_BUCKET": "s3://replica"})
    assert ep.target_bucket is not None and ep.target_bucket.url == "s3://replica"
    assert (ep.target_bucket.endpoint, ep.target_bucket.region) == ("http://a:9000", "us")
    kwargs = ep.target_bucket.open_kwargs()
    assert set(kwargs) <= set(inspect.signature(open_bucket).parameters)


@pytest.mark.parametrize(
    ("drop", "expected", "hint"),
    [
        (
            "KUBE_MIGRATE_SOURCE_KUBECONFIG",
            "pb.yaml: spec.source.kubeconfig: no source kubeconfig",
            "export KUBE_MIGRATE_SOURCE_KUBECONFIG",
        ),
        (
            "KUBE_MIGRATE_TARGET_KUBECONFIG",
            "pb.yaml: spec.target.kubeconfig: no target kubeconfig",
            "--target-kubeconfig",
        ),
        (
            "KUBE_MIGRATE_BUCKET",
            "pb.yaml: spec.bucket.url: no bucket, and steps backup, waitForSync, restore need one",
            "KUBE_MIGRATE_BUCKET",
        ),
    ],
)
def test_endpoints_missing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, drop: str, expected: str, hint: str
) -> None:
    env = {k: v for k, v in ENV.items() if k != drop}
    with pytest.raises(PlaybookError) as info:
        resolve_endpoints(_migrate(tmp_path, monkeypatch), {}, env)
    assert str(info.value).startswith(expected) and hint in info.value.hint


def test_endpoints_only_what_the_steps_need(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pb = load_text(tmp_path, monkeypatch, HEAD + "  steps: [preflight]\n")
    ep = resolve_endpoints(pb, {}, {k: v for k, v in ENV.items() if k != "KUBE_MIGRATE_BUCKET"})
    assert ep.bucket is None and ep.target_bucket is None
    scale = HEAD + "  steps:\n  - scale: {side: target}\n"
    pb = load_text(tmp_path, monkeypatch, scale)
    ep = resolve_endpoints(pb, {}, {"KUBE_MIGRATE_TARGET_KUBECONFIG": "/t"})
    assert ep.target.kubeconfig == "/t" and ep.source.kubeconfig is None


# ------------------------------------------------------------------------------ state


@pytest.fixture
def state_env(tmp_path: Path) -> dict[str, str]:
    return {"KUBE_MIGRATE_STATE_DIR": str(tmp_path / "state")}


NOW = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)


def test_state_root_precedence() -> None:
    assert state_root({"KUBE_MIGRATE_STATE_DIR": "/s", "XDG_STATE_HOME": "/x"}) == Path("/s")
    assert state_root({"XDG_STATE_HOME": "/x", "HOME": "/h"}) == Path("/x/kube-migrate")
    assert state_root({"HOME": "/h"}) == Path("/h/.local/state/kube-migrate")
    assert new_run_name("migrate-cluster", NOW) == "migrate-cluster-20250102030405"


def test_state_round_trip(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, state_env: dict[str, str]
) -> None:
    pb = load_text(tmp_path, monkeypatch, BASE, "restore.replicas=2")
    ep = resolve_endpoints(pb, {}, ENV)
    st = RunState.create(pb, endpoints=ep, env=state_env, now=NOW)
    assert st.run == "t-20250102030405"
    assert st.path == tmp_path / "state" / "runs" / "t-20250102030405" / "state.json"
    d = json.loads(st.path.read_text())
    assert d["playbookPath"] == str(tmp_path / "pb.yaml") and d["overrides"] == [
        "restore.replicas=2"
    ]
    assert d["playbook"]["spec"]["restore"]["replicas"] == 2
    assert [s["status"] for s in d["steps"]] == ["pending"] * 3

    st.start_step(0)
    st.finish_step(0, "succeeded", {"findings": 0})
    st.start_step(1)
    loaded = RunState.load(st.run, state_env)
    assert loaded == st
    assert [s.status for s in loaded.steps] == ["succeeded", "running", "pending"]
    assert loaded.steps[0].result == {"findings": 0} and loaded.steps[0].exit_code == 0
    assert loaded.resolved_endpoints() == ep
    (tmp_path / "pb.yaml").write_text("changed after the run started")
    assert loaded.playbook().mappings().replicas == 2  # the journal, not the file
    assert list_runs(state_env) == [st.run]
    assert not [p for p in st.directory.iterdir() if p.name.endswith(".tmp")]


def test_resume_rules(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, state_env: dict[str, str]
) -> None:
    pb = load_text(tmp_path, monkeypatch, BASE)
    st = RunState.create(pb, env=state_env, now=NOW)
    st.start_step(0)
    st.finish_step(0, "succeeded")
    st.start_step(1)  # ... and the process dies here
    r = RunState.resume(st.run, state_env)
    assert r.resumes == 1 and r.status == "running"
    assert [s.status for s in r.steps] == ["succeeded", "pending", "pending"]
    assert r.steps[1].attempts == 1  # the runner can tell a retry
    assert r.next_step() is r.steps[1]

    r.start_step(1)
    r.finish_step(1, "failed", {"error": "x"}, exit_code=5)
    r.finish(5)
    r = RunState.resume(st.run, state_env)  # a failed run can be resumed
    assert r.steps[1].status == "pending" and r.steps[1].attempts == 2
    for i in (1, 2):
        r.start_step(i)
        r.finish_step(i, "skipped" if i == 2 else "succeeded")
    assert r.next_step() is None
    r.finish(0)
    with pytest.raises(UsageError, match="already succeeded"):
        RunState.resume(st.run, state_env)


def test_resume_unknown_and_invalid(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, state_env: dict[str, str]
) -> None:
    with pytest.raises(UsageError, match="no run named 'nope-1'") as info:
        RunState.resume("nope-1", state_env)
    assert "no runs are journaled" in info.value.hint
    RunState.create(load_text(tmp_path, monkeypatch, BASE), env=state_env, now=NOW)
    with pytest.raises(UsageError) as info:
        RunState.resume("nope-1", state_env)
    assert info.value.hint == "recent runs: t-20250102030405"
    with pytest.raises(UsageError, match="invalid run name"):
        RunState.resume("../../etc", state_env)


def test_create_twice_corrupt_and_lock(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, state_env: dict[str, str]
) -> None:
    pb = load_text(tmp_path, monkeypatch, BASE)
    st = RunState.create(pb, env=state_env, now=NOW)
    with pytest.raises(UsageError, match="exists already"):
        RunState.create(pb, env=state_env, now=NOW)
    with st.lock(), pytest.raises(UsageError, match="in progress in another process"):
        RunState.resume(st.run, state_env)
    st.path.write_text("{not json")
    with pytest.raises(UsageError, match="unreadable"):
        RunState.load(st.run, state_env)


def test_save_is_atomic(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, state_env: dict[str, str]
) -> None:
    st = RunState.create(load_text(tmp_path, monkeypatch, BASE), env=state_env, now=NOW)
    before = st.path.read_text()

    def boom(src: str, dst: str) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", boom)
    st.steps[0].status = "running"
    with pytest.raises(OSError, match="disk full"):
        st.save()
    assert st.path.read_text() == before
    assert sorted(p.name for p in st.directory.iterdir()) == ["state.json"]
