"""backup get/describe/logs/delete/gc on backups written the way Velero and kube-migrate
write them (tests/builders.py), in a file:// store and (marked s3) in MinIO."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml

from migrate.backup import catalog, describe
from migrate.cli import backup_read_cmd
from migrate.cli.backup_cmd import backup as backup_group
from migrate.cli.main import run
from migrate.errors import EXIT_ACCESS, EXIT_USAGE, StoreReadOnly, UsageError
from migrate.store import Store, open_store
from migrate.volumes import records
from migrate.volumes.records import VolumeCopy

from .builders import ITEMS, write_backup

NOW = datetime.now(UTC)
BIN = Path(sys.executable).parent


@pytest.fixture(params=["file", pytest.param("s3", marks=[pytest.mark.s3, pytest.mark.cluster])])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    if request.param == "file":
        yield open_store(f"file://{tmp_path}/bucket")
        return
    s = open_store(request.getfixturevalue("bucket_url"))
    yield s
    s.delete_prefix("backups/")


def keys_of(store: Store) -> list[str]:
    return [o.key for o in store.list("")]


@pytest.fixture
def three(store: Store) -> Store:
    """Ours (2h old), Velero's (1h old), and an interrupted one (files, no marker)."""
    write_backup(store, "ours", started=NOW - timedelta(hours=2))
    write_backup(
        store,
        "velero1",
        ours=False,
        started=NOW - timedelta(hours=1),
        items=ITEMS[:3],
        phase="PartiallyFailed",
        errors={"app": ["error restoring x"]},
        warnings={"cluster": ["w1"], "other": ["w2"]},
        spec={"includedNamespaces": ["app", "other"], "labelSelector": {"matchLabels": {"a": "b"}}},
        git_version="v1.29.3",
    )
    write_backup(store, "killed", complete=False)
    return store


def test_get_lists_all_kinds_newest_first(three: Store) -> None:
    rows = catalog.list_backups(three)
    assert [r.name for r in rows] == ["killed", "velero1", "ours"]
    by = {r.name: r for r in rows}
    assert (by["ours"].phase, by["ours"].made_by, by["ours"].items) == (
        "Completed",
        "kube-migrate",
        len(ITEMS),
    )
    assert by["ours"].size == three.head("backups/ours/ours.tar.gz").size  # type: ignore[union-attr]
    assert by["ours"].size > 0 and by["ours"].source_version == "v1.30.14"
    assert by["ours"].expires == (NOW - timedelta(hours=2) + timedelta(hours=720)).replace(
        microsecond=0
    )
    v = by["velero1"]
    assert (v.phase, v.made_by, v.items, v.source_version) == (
        "PartiallyFailed",
        "velero",
        3,
        "v1.29.3",
    )
    k = by["killed"]
    assert (k.phase, k.made_by, k.items, k.expires) == ("Incomplete", "kube-migrate", 0, None)
    assert k.size > 0 and k.created is not None and not k.expired


def test_get_corrupt_marker_and_prefix_names(store: Store) -> None:
    write_backup(store, "b1")
    write_backup(store, "b10")
    store.put("backups/b1/velero-backup.json", b'{"kind": "Backup", trunc')
    rows = {r.name: r for r in catalog.list_backups(store)}
    assert rows["b1"].phase == "Corrupt" and rows["b10"].phase == "Completed"
    described = describe.describe(store, "b1")
    assert described["phase"] == "Corrupt" and "not JSON" in described["problems"][0]


def test_get_empty_bucket(store: Store) -> None:
    assert catalog.list_backups(store) == []


def test_describe_ours_counts_from_manifest(three: Store) -> None:
    d = describe.describe(three, "ours")
    assert d["phase"] == "Completed" and d["madeBy"] == "kube-migrate"
    assert d["counts"]["from"] == "manifest" and d["counts"]["items"] == len(ITEMS)
    assert d["counts"]["byResource"] == {
        "clusterroles.rbac.authorization.k8s.io": 1,
        "configmaps": 2,
        "deployments.apps": 1,
        "namespaces": 2,
    }
    assert d["counts"]["byNamespace"] == {"app": 2, "other": 1}
    assert d["clusterIncluded"] == {
        "clusterroles.rbac.authorization.k8s.io": {"reader": "bound by rb"}
    }
    assert d["skippedResources"] == {"events": "never backed up"}
    assert d["ttl"] == "720h0m0s" and d["expiration"] and not d["expired"]
    assert (d["errors"], d["warnings"]) == (0, 0)
    assert "resources" not in d and "errorMessages" not in d
    full = describe.describe(three, "ours", details=True)
    assert full["resources"]["apps/v1/Deployment"] == ["app/web"]
    assert full["resources"]["v1/Namespace"] == ["app", "other"]
    assert full["files"]["ours.tar.gz"] == d["tarballBytes"]


def test_describe_velero_counts_from_resource_list(three: Store) -> None:
    d = describe.describe(three, "velero1")
    assert d["madeBy"] == "velero" and d["phase"] == "PartiallyFailed"
    assert d["sourceVersion"] == "v1.29.3"
    assert d["counts"] == {
        "from": "resource-list",
        "items": 3,
        "byResource": {"apps/v1/Deployment": 1, "v1/Namespace": 2},
        "byNamespace": {"app": 1},
    }
    assert d["filters"] == {
        "includedNamespaces": ["app", "other"],
        "labelSelector": {"matchLabels": {"a": "b"}},
    }
    assert (d["errors"], d["warnings"]) == (1, 2)
    assert "clusterIncluded" not in d
    full = describe.describe(three, "velero1", details=True)
    assert full["errorMessages"]["namespaces"] == {"app": ["error restoring x"]}
    assert full["warningMessages"]["cluster"] == ["w1"]


def test_describe_incomplete_and_missing(three: Store) -> None:
    d = describe.describe(three, "killed")
    assert d["phase"] == "Incomplete" and d["counts"]["from"] == "manifest"
    with pytest.raises(UsageError) as info:
        describe.describe(three, "nope")
    assert info.value.message == f"backup 'nope' not found in {three.url}"
    assert "backup get" in info.value.hint


def test_logs(three: Store) -> None:
    assert "backup ours started" in describe.logs(three, "ours")
    assert "backup velero1 started" in describe.logs(three, "velero1")
    with pytest.raises(UsageError, match="not found"):
        describe.logs(three, "nope")
    three.delete("backups/ours/ours-logs.gz")
    with pytest.raises(UsageError, match="has no logs"):
        describe.logs(three, "ours")


def test_delete(store: Store) -> None:
    write_backup(store, "b1")
    write_backup(store, "b10", ours=False)
    others = [k for k in keys_of(store) if k.startswith("backups/b10/")]
    assert catalog.delete(store, "b1") == 6  # tarball, 3 sidecars, manifest, marker
    assert keys_of(store) == others
    assert [r.name for r in catalog.list_backups(store)] == ["b10"]
    with pytest.raises(UsageError, match="not found"):
        catalog.delete(store, "b1")
    with pytest.raises(UsageError, match="invalid backup name"):
        catalog.delete(store, "../b10")


def test_delete_read_only_leaves_everything(store: Store) -> None:
    write_backup(store, "b1")
    before = keys_of(store)
    ro = open_store(store.url, read_only=True)
    with pytest.raises(StoreReadOnly):
        catalog.delete(ro, "b1")
    assert keys_of(store) == before
    assert catalog.list_backups(ro)[0].phase == "Completed"


def test_gc_deletes_only_expired(store: Store) -> None:
    write_backup(store, "old", started=NOW - timedelta(hours=3), ttl=timedelta(hours=1))
    write_backup(store, "old-velero", ours=False, started=NOW - timedelta(days=40))
    write_backup(store, "fresh", started=NOW - timedelta(hours=3), ttl=timedelta(hours=4))
    write_backup(  # expired while still running: left alone, like Velero
        store, "running", phase="InProgress", started=NOW - timedelta(hours=3), ttl=timedelta(0)
    )
    write_backup(store, "killed", complete=False, started=NOW - timedelta(days=90))
    ro = open_store(store.url, read_only=True)
    before = keys_of(store)
    with pytest.raises(StoreReadOnly):
        catalog.gc(ro)
    assert keys_of(store) == before
    assert catalog.gc(store) == ["old", "old-velero"]
    assert sorted(r.name for r in catalog.list_backups(store)) == ["fresh", "killed", "running"]
    assert catalog.gc(store, now=NOW + timedelta(hours=2)) == ["fresh"]


# ---------------------------------------------------------------------------- CLI


def test_read_commands_are_in_the_backup_group() -> None:
    """`backup get|describe|logs|delete|gc|wait-sync` are the group's own commands (the
    CLI tests below run them through `kube-migrate backup ...`)."""
    names = {cmd.name for cmd in backup_read_cmd.COMMANDS}
    assert names == {"get", "describe", "logs", "delete", "gc", "wait-sync"}
    for cmd in backup_read_cmd.COMMANDS:
        assert cmd.name is not None and backup_group.commands[cmd.name] is cmd


def run_cli_in_process(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = run(["backup", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_get_describe_logs(three: Store, capsys: pytest.CaptureFixture[str]) -> None:
    url = str(three.url)
    code, out, _ = run_cli_in_process(capsys, "get", "--bucket", url)
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == [
        "NAME",
        "PHASE",
        "CREATED",
        "EXPIRES",
        "ITEMS",
        "SIZE",
        "SOURCE",
        "MADE-BY",
    ]
    assert [line.split()[0] for line in lines[1:]] == ["killed", "velero1", "ours"]
    ours = lines[3].split()
    assert len(ours) == 8 and ours[1] == "Completed" and ours[3] == "29d"
    assert ours[4] == str(len(ITEMS)) and ours[6:] == ["v1.30.14", "kube-migrate"]
    assert lines[1].split()[1:4:2] == ["Incomplete", "n/a"]
    code, out, _ = run_cli_in_process(capsys, "get", "velero1", "--bucket", url, "-o", "json")
    assert code == 0 and json.loads(out)["phase"] == "PartiallyFailed"
    code, out, _ = run_cli_in_process(capsys, "get", "--bucket", url, "-o", "yaml")
    assert [r["name"] for r in yaml.safe_load(out)] == ["killed", "velero1", "ours"]
    code, out, _ = run_cli_in_process(capsys, "describe", "ours", "--bucket", url)
    assert code == 0 and yaml.safe_load(out)["counts"]["items"] == len(ITEMS)
    code, out, _ = run_cli_in_process(
        capsys, "describe", "velero1", "--details", "--bucket", url, "-o", "json"
    )
    assert json.loads(out)["errorMessages"]["namespaces"]["app"] == ["error restoring x"]
    code, out, _ = run_cli_in_process(capsys, "logs", "ours", "--bucket", url)
    assert code == 0 and "backup ours started" in out
    code, out, err = run_cli_in_process(capsys, "get", "nope", "--bucket", url)
    assert code == EXIT_USAGE and out == "" and "backup 'nope' not found" in err


def test_cli_delete_and_gc(store: Store, capsys: pytest.CaptureFixture[str]) -> None:
    url = str(store.url)
    write_backup(store, "b1")
    write_backup(store, "old", started=NOW - timedelta(hours=3), ttl=timedelta(hours=1))
    code, _, err = run_cli_in_process(capsys, "delete", "b1", "--bucket", url)
    assert code == EXIT_USAGE and "hint: pass --confirm" in err
    assert store.exists("backups/b1/velero-backup.json")
    code, _, err = run_cli_in_process(
        capsys, "delete", "b1", "--bucket", url, "--confirm", "--read-only-bucket"
    )
    assert code == EXIT_ACCESS and "read-only" in err
    assert store.exists("backups/b1/velero-backup.json")
    code, out, _ = run_cli_in_process(capsys, "delete", "b1", "--bucket", url, "--confirm")
    assert code == 0 and out == 'backup "b1" deleted (6 objects)\n'
    code, out, err = run_cli_in_process(capsys, "delete", "b1", "--bucket", url, "--confirm")
    assert code == EXIT_USAGE and "backup 'b1' not found" in err
    code, out, _ = run_cli_in_process(capsys, "gc", "--bucket", url)
    assert code == 0 and out == "old\n"
    code, out, _ = run_cli_in_process(capsys, "get", "--bucket", url)
    assert code == 0 and out == "No resources found.\n"


def test_deleting_a_backup_says_its_volume_data_stays(
    store: Store, capsys: pytest.CaptureFixture[str]
) -> None:
    """Without a cluster to run the mover deleting it in, `backup delete` and `gc` say, per
    backup, that its volume data stays and in which repositories (nothing said without)."""
    url = str(store.url)
    copied = [
        VolumeCopy("shop", "data-db-0", snapshot="k1", manifest_snapshot="m1"),
        VolumeCopy("shop", "uploads", snapshot="k2", manifest_snapshot="m2"),
        VolumeCopy("shop", "scratch", skip="excluded"),  # no data of it in the bucket
    ]
    for name, started in (("withdata", NOW), ("old", NOW - timedelta(hours=3))):
        write_backup(store, name, started=started, ttl=timedelta(hours=1))
        for key, blob in records.files(name, copied, None).items():
            store.put(key, blob)
    write_backup(store, "plain")
    said = (
        "backup withdata: its volume data (4 kopia snapshots in kopia/shop/) stays in the "
        "bucket: no cluster given to run the mover deleting it in; pass --kubeconfig/--context "
        "of its source cluster to delete it with the backup"
    )
    code, out, err = run_cli_in_process(capsys, "delete", "withdata", "--bucket", url, "--confirm")
    assert code == 0 and out.startswith('backup "withdata" deleted')
    assert said in err and err.count("stays in the bucket") == 1
    code, out, err = run_cli_in_process(capsys, "delete", "plain", "--bucket", url, "--confirm")
    assert code == 0 and "stays in the bucket" not in err
    code, out, err = run_cli_in_process(capsys, "gc", "--bucket", url)
    assert code == 0 and out == "old\n"
    assert said.replace("withdata", "old") in err


@pytest.mark.s3
def test_cli_get_unknown_bucket(bucket_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    missing = f"s3://kube-migrate-missing-{uuid.uuid4().hex[:12]}"
    code, out, err = run_cli_in_process(capsys, "get", "--bucket", missing)
    assert code == EXIT_ACCESS and out == "" and "kube-migrate: error:" in err
    assert "AWS_SECRET_ACCESS_KEY" not in err and os.environ["AWS_SECRET_ACCESS_KEY"] not in err


def test_cli_subprocess_exit_codes(tmp_path: Path) -> None:
    """The installed console script: exit codes and output of the backup commands."""
    url = f"file://{tmp_path}/bucket"
    write_backup(open_store(url), "b1")
    env = {**os.environ, "KUBE_MIGRATE_BUCKET": url}

    def km_proc(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(BIN / "kube-migrate"), "backup", *args],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
            check=False,
        )

    out = km_proc("get", "-o", "json")
    assert out.returncode == 0 and json.loads(out.stdout)[0]["name"] == "b1"
    out = km_proc("delete", "missing", "--confirm")
    assert out.returncode == EXIT_USAGE and "not found" in out.stderr
    out = km_proc("describe", "missing")
    assert out.returncode == EXIT_USAGE
