"""wait-sync: a backup copied into the target's view of the bucket by a slow replica
(tests/builders.copy_backup) is only "in sync" once every file is there and intact."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

import pytest

from migrate.cli import backup_read_cmd
from migrate.cli.backup_cmd import backup as backup_group
from migrate.cli.main import run
from migrate.errors import (
    EXIT_INTEGRITY,
    EXIT_OK,
    EXIT_TIMEOUT,
    IntegrityError,
    StoreError,
    UsageError,
    WaitTimeout,
)
from migrate.store import Store, open_store
from migrate.sync.wait import SyncState, check, wait_for_sync, wait_for_velero_sync

from .builders import copy_backup, crd_manifest, write_backup
from .helpers import apply


@pytest.fixture(params=["file", pytest.param("s3", marks=[pytest.mark.s3, pytest.mark.cluster])])
def stores(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Store, Store]]:
    """(source view, target view): two separate locations, like a bucket and its replica."""
    if request.param == "file":
        yield open_store(f"file://{tmp_path}/src"), open_store(f"file://{tmp_path}/dst")
        return
    url = request.getfixturevalue("bucket_url")
    pair = open_store(f"{url}/src"), open_store(f"{url}/dst")
    yield pair
    for s in pair:
        s.delete_prefix("backups/")


def test_waits_for_slow_replica(stores: tuple[Store, Store]) -> None:
    src, dst = stores
    built = write_backup(src, "b1", padding=3 << 20)
    copied: dict[str, float] = {}
    thread = threading.Thread(
        target=lambda: copied.update(last=copy_backup(src, dst, "b1", delay=0.3)), daemon=True
    )
    polls: list[SyncState] = []
    thread.start()
    state = wait_for_sync(dst, "b1", timeout=60, interval=0.1, on_poll=polls.append)
    returned = time.monotonic()
    thread.join(30)
    assert state.done and state.phase == "Completed"
    assert returned >= copied["last"]
    assert len(polls) > 3 and not any(p.done for p in polls[:-1])
    seen_missing = {m for p in polls for m in p.missing}
    assert "velero-backup.json" in seen_missing and "b1.tar.gz" in seen_missing
    assert len(built.files) == 6


def test_corrupted_tarball_times_out_naming_it(stores: tuple[Store, Store]) -> None:
    src, dst = stores
    write_backup(src, "b1")
    copy_backup(src, dst, "b1", damage={"b1.tar.gz"})
    assert dst.head("backups/b1/b1.tar.gz").size == src.head("backups/b1/b1.tar.gz").size  # type: ignore[union-attr]
    start = time.monotonic()
    with pytest.raises(WaitTimeout) as info:
        wait_for_sync(dst, "b1", timeout=1.0, interval=0.2)
    assert 1.0 <= time.monotonic() - start < 10
    msg = info.value.message
    assert "mismatched b1.tar.gz: sha256" in msg and "missing" not in msg
    assert info.value.exit_code == EXIT_TIMEOUT


def test_missing_and_wrong_size_named(stores: tuple[Store, Store]) -> None:
    src, dst = stores
    write_backup(src, "b1")
    copy_backup(src, dst, "b1", skip={"b1-results.gz"})
    dst.put("backups/b1/b1-logs.gz", b"short")
    with pytest.raises(WaitTimeout) as info:
        wait_for_sync(dst, "b1", timeout=0.3, interval=0.1)
    msg = info.value.message
    assert "missing b1-results.gz" in msg
    assert "mismatched b1-logs.gz: size 5, expected" in msg


def test_failed_phase_fails_at_once(stores: tuple[Store, Store]) -> None:
    src, _ = stores
    write_backup(src, "b1", phase="Failed", failure_reason="out of disk")
    start = time.monotonic()
    with pytest.raises(IntegrityError) as info:
        wait_for_sync(src, "b1", timeout=60, interval=0.5)
    assert time.monotonic() - start < 5
    assert info.value.message == "backup b1 failed on the source: phase Failed (out of disk)"
    assert info.value.exit_code == EXIT_INTEGRITY


def test_velero_backup_without_manifest(stores: tuple[Store, Store]) -> None:
    src, dst = stores
    write_backup(src, "v1", ours=False)
    copy_backup(src, dst, "v1", skip={"v1.tar.gz"})
    state = check(dst, "v1", {})
    assert not state.done and state.missing == ["v1.tar.gz"]
    copy_backup(src, dst, "v1")
    state = wait_for_sync(dst, "v1", timeout=5, interval=0.1)
    assert state.done and "no kube-migrate manifest" in state.message


def test_in_progress_is_not_done(tmp_path: Path) -> None:
    store = open_store(f"file://{tmp_path}/b")
    write_backup(store, "v1", ours=False, phase="InProgress")
    state = check(store, "v1", {})
    assert not state.done and state.message == "backup v1 is still InProgress"
    with pytest.raises(WaitTimeout, match="still InProgress"):
        wait_for_sync(store, "v1", timeout=0.2, interval=0.1)


def test_ours_without_manifest_is_not_done(tmp_path: Path) -> None:
    """The marker says kube-migrate wrote it, so the manifest must arrive too."""
    store = open_store(f"file://{tmp_path}/b")
    write_backup(store, "b1")
    store.delete("backups/b1/b1-kube-migrate.json")
    state = check(store, "b1", {})
    assert not state.done and state.missing == ["b1-kube-migrate.json"]


def test_tarball_hashed_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = open_store(f"file://{tmp_path}/b")
    write_backup(store, "b1")
    opened: list[str] = []
    real_open = store.open

    def spy(key: str) -> BinaryIO:
        opened.append(key)
        return real_open(key)

    monkeypatch.setattr(store, "open", spy)
    verified: dict[tuple[str, int, str], str] = {}
    assert check(store, "b1", verified).done
    assert check(store, "b1", verified).done
    assert opened.count("backups/b1/b1.tar.gz") == 1


def test_transient_store_errors_are_retried(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = open_store(f"file://{tmp_path}/b")
    write_backup(store, "b1")
    failures = iter(range(3))
    real_get = store.get

    def flaky(key: str) -> bytes:
        if next(failures, None) is not None:
            raise StoreError("connection reset by peer")
        return real_get(key)

    monkeypatch.setattr(store, "get", flaky)
    polls: list[SyncState] = []
    state = wait_for_sync(store, "b1", timeout=10, interval=0.05, on_poll=polls.append)
    assert state.done and len(polls) == 4
    assert polls[0].message == "bucket error: connection reset by peer"


# ---------------------------------------------------------------------- Velero CRs


VELERO_BACKUP_CRD = crd_manifest("velero.io", "backups", "Backup")


def test_velero_sync_polls_until_the_backup_appears(source: Any, target: Any) -> None:
    """On a real plane: Velero's Backup CRD (as `velero install --crds-only` makes it) and a
    Backup object that appears a second later, as Velero's sync controller would create it."""
    apply(source, [VELERO_BACKUP_CRD])
    ns = f"velero-{uuid.uuid4().hex[:6]}"
    ns_res = source.discovery().resolve("namespaces")
    source.create(ns_res, {"metadata": {"name": ns}})
    backups = source.discovery(refresh=True).get("velero.io", "backups")
    body = {"apiVersion": "velero.io/v1", "kind": "Backup", "metadata": {"name": "b1"},
            "status": {"phase": "Completed"}}  # fmt: skip
    timer = threading.Timer(1.0, lambda: source.create(backups, body, ns))
    start = time.monotonic()
    timer.start()
    try:
        obj = wait_for_velero_sync(source, ns, "b1", timeout=30, interval=0.2)
        assert obj["metadata"]["name"] == "b1" and time.monotonic() - start >= 1.0
        with pytest.raises(WaitTimeout, match=f"did not sync backup b2 into namespace {ns}"):
            wait_for_velero_sync(source, ns, "b2", 1, 0.2)
    finally:
        timer.join()
        source.delete(ns_res, ns)
    if target.discovery(refresh=True).get("velero.io", "backups") is None:
        with pytest.raises(UsageError) as info:
            wait_for_velero_sync(target, "velero", "b1", 1, 0.05)
        assert info.value.hint == "is Velero installed on the target?"


# ---------------------------------------------------------------------------- CLI


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch) -> None:
    for cmd in backup_read_cmd.COMMANDS:
        assert cmd.name is not None
        if cmd.name not in backup_group.commands:
            monkeypatch.setitem(backup_group.commands, cmd.name, cmd)


@pytest.mark.usefixtures("cli")
def test_cli_wait_sync(stores: tuple[Store, Store], capsys: pytest.CaptureFixture[str]) -> None:
    src, dst = stores
    write_backup(src, "b1")
    write_backup(src, "bad", phase="FailedValidation")
    dst_url = str(dst.url)
    code = run(["backup", "wait-sync", "b1", "--bucket", dst_url, "--timeout", "300ms"])
    out, err = capsys.readouterr()
    assert code == EXIT_TIMEOUT and out == ""
    assert "not in sync" in err and "missing velero-backup.json" in err
    copy_backup(src, dst, "b1")
    args = ["--bucket", dst_url, "--timeout", "10s", "--interval", "100ms", "-o", "json"]
    code = run(["backup", "wait-sync", "b1", *args])
    out, err = capsys.readouterr()
    assert code == EXIT_OK, err
    assert json.loads(out)["done"] is True and json.loads(out)["phase"] == "Completed"
    code = run(["backup", "wait-sync", "bad", "--bucket", str(src.url)])
    _, err = capsys.readouterr()
    assert code == EXIT_INTEGRITY and "failed on the source: phase FailedValidation" in err
    code = run(["backup", "wait-sync", "b1", "--bucket", dst_url, "--timeout", "soon"])
    _, err = capsys.readouterr()
    assert code == 2 and "invalid --timeout 'soon'" in err
