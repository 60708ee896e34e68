"""A restore continues from another machine: its journal lives in the bucket next to it
(restores/<name>/journal/), so `restore create --resume` with an empty state directory
finishes a SIGKILLed restore with every object created exactly once; `--resume`
without a name finds the newest unfinished restore of the backup; the restore's name
and target are announced before the first write; Ctrl-C hints name each command's own
way to continue; a --wait-ready timeout writes the results before exiting 7; a
PartiallyFailed backup is restored with a warning, or refused with --fail-on warning."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from migrate.backup.create import BackupOptions, create_backup
from migrate.cluster import Cluster
from migrate.errors import EXIT_PREFLIGHT, EXIT_TIMEOUT, UsageError
from migrate.restore.journal import Journal, ObjectResult
from migrate.store import open_store
from migrate.transform.scope import Scope

from .helpers import run_cli
from .test_restore import BIN, _bulk, _configmaps, uniq


def _env(state: Path) -> dict[str, str]:
    return {**os.environ, "KUBE_MIGRATE_STATE_DIR": str(state)}


def _stderr_lines(text: str) -> list[str]:
    return [ln for ln in text.splitlines() if ln.strip()]


def test_resume_from_another_machine_without_a_name(
    dev_env: Any, source: Cluster, target: Cluster, bucket_url: str, source_ns: str, tmp_path: Path
) -> None:
    _bulk(source, source_ns, 300)
    store = open_store(bucket_url)
    create_backup(source, store, BackupOptions("far", Scope(include_namespaces=(source_ns,))))
    dst = uniq("far")
    base = [str(BIN / "kube-migrate"), "restore", "create", "--from-backup", "far",
            "--kubeconfig", dev_env.target_kubeconfig, "--bucket", bucket_url,
            "--namespace-mappings", f"{source_ns}:{dst}", "-o", "json"]  # fmt: skip
    here, there = tmp_path / "here", tmp_path / "there"
    proc = subprocess.Popen(
        [*base[:3], "far-r", *base[3:], "--qps", "40", "--burst", "1", "--parallelism", "2"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(here),
    )
    assert proc.stderr is not None
    announced = proc.stderr.readline()  # the first line, before anything is written
    time.sleep(3)
    assert proc.poll() is None, "restore finished before the kill"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    version = str(target.version())
    assert "restore far-r of backup far into context" in announced
    assert target.host in announced and version in announced, announced
    partial = len(_configmaps(target, dst))
    assert 0 < partial < 300
    keys = [o.key for o in store.list("restores/far-r/")]
    assert "restores/far-r/journal/header.json" in keys  # the bucket knows it
    assert not any("results" in k for k in keys)  # and that it did not finish
    # another machine: no state directory at all; no restore name either
    out = subprocess.run(
        [*base, "--resume"], capture_output=True, text=True, check=False, env=_env(there)
    )
    assert out.returncode == 0, out.stderr
    assert "resuming restore far-r" in out.stderr
    doc = json.loads(out.stdout)
    assert doc["name"] == "far-r" and doc["failed"] == 0 and doc["phase"] == "Completed"
    assert _configmaps(target, dst) == _configmaps(source, source_ns)
    restored = [o for o in doc["objects"] if o["name"].startswith("cm-")]
    assert len(restored) == 300 and {o["result"] for o in restored} == {"created"}
    assert len({o["uid"] for o in restored}) == 300  # each object once, with its own uid
    again = subprocess.run(
        [*base, "--resume"], capture_output=True, text=True, check=False, env=_env(there)
    )
    assert again.returncode == 2 and "no unfinished restore of backup 'far'" in again.stderr
    target.delete(target.discovery().resolve("namespaces"), dst)


def _interrupted(argv: list[str], wait_for: str, state: Path) -> tuple[int, list[str]]:
    """Start the CLI, SIGINT it once `wait_for` shows on stderr; its exit code and the
    error and hint lines."""
    proc = subprocess.Popen(
        [str(BIN / "kube-migrate"), *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(state),
    )
    assert proc.stderr is not None
    seen = []
    for line in proc.stderr:
        seen.append(line)
        if wait_for in line:
            break
    time.sleep(0.3)
    proc.send_signal(signal.SIGINT)
    rest = proc.stderr.read()
    proc.wait(60)
    lines = _stderr_lines("".join(seen) + rest)
    return proc.returncode, [ln for ln in lines if ln.startswith(("kube-migrate:", "hint:"))]


def _unreachable_copy(kubeconfig: str, path: Path) -> str:
    """The kubeconfig with its server moved to a closed port: the client retries the
    refused connection for a few seconds, time enough to press Ctrl-C."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    text = re.sub(r"server: https://127\.0\.0\.1:\d+", f"server: https://127.0.0.1:{port}",
                  Path(kubeconfig).read_text())  # fmt: skip
    path.write_text(text)
    return str(path)


def test_ctrl_c_hints_name_each_commands_way_on(
    dev_env: Any, source: Cluster, target: Cluster, bucket_url: str, source_ns: str,
    tmp_path: Path,
) -> None:  # fmt: skip
    _bulk(source, source_ns, 600)
    store = open_store(bucket_url)
    create_backup(source, store, BackupOptions("int", Scope(include_namespaces=(source_ns,))))
    dst = uniq("int")
    slow = ["--qps", "20", "--burst", "1"]
    try:
        code, lines = _interrupted(
            ["restore", "create", "int-r", "--from-backup", "int", "--kubeconfig",
             dev_env.target_kubeconfig, "--bucket", bucket_url, "--namespace-mappings",
             f"{source_ns}:{dst}", "--parallelism", "1", *slow],
            "restore int-r of backup int", tmp_path,
        )  # fmt: skip
        assert code == 130 and lines[0] == "kube-migrate: error: interrupted"
        assert lines[1] == (
            "hint: continue it with `kube-migrate restore create int-r --from-backup int "
            "--resume` (and the same flags)"
        )
    finally:
        target.delete(target.discovery().resolve("namespaces"), dst)
    code, lines = _interrupted(
        ["-v", "backup", "create", "int-b", "--kubeconfig", dev_env.source_kubeconfig,
         "--bucket", bucket_url, "--include-namespaces", source_ns, *slow],
        "started", tmp_path,
    )  # fmt: skip
    assert code == 130 and lines[1].startswith("hint: a backup cannot be resumed: rerun")
    assert "`kube-migrate backup delete int-b`" in lines[1]
    away = _unreachable_copy(dev_env.source_kubeconfig, tmp_path / "away.kubeconfig")
    for command in ("verify", "preflight"):
        code, lines = _interrupted(
            ["--debug", command, "--source-kubeconfig", away, "--target-kubeconfig",
             dev_env.target_kubeconfig, "--include-namespaces", source_ns],
            "opening a connection to", tmp_path,
        )  # fmt: skip
        assert code == 130, (command, lines)
        assert lines == [
            "kube-migrate: error: interrupted",
            "hint: nothing to resume: rerun the command (it starts again from the beginning)",
        ]


def test_wait_ready_timeout_writes_results_then_exits_7(
    dev_env: Any, source: Cluster, target: Cluster, bucket_url: str, source_ns: str
) -> None:
    deploy = source.discovery().resolve("deployments.apps")
    source.create(deploy, {
        "metadata": {"name": "never-ready"},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "nr"}},
                 "template": {"metadata": {"labels": {"app": "nr"}},
                              "spec": {"nodeSelector": {"no-such-node": "x"},
                                       "containers": [{"name": "c", "image": "nginx"}]}}},
    }, source_ns)  # fmt: skip
    store = open_store(bucket_url)
    create_backup(source, store, BackupOptions("nr", Scope(include_namespaces=(source_ns,))))
    dst = uniq("nr")
    out = run_cli("restore", "create", "nr-r", "--from-backup", "nr", "--kubeconfig",
             dev_env.target_kubeconfig, "--bucket", bucket_url, "--namespace-mappings",
             f"{source_ns}:{dst}", "--wait-ready", "--ready-timeout", "3s")  # fmt: skip
    try:
        assert out.returncode == EXIT_TIMEOUT, out.stderr
        assert "restore nr-r:" in out.stderr and "results are in" in out.stderr
        described = run_cli("restore", "describe", "nr-r", "--bucket", bucket_url, "-o", "json")
        assert described.returncode == 0, described.stderr
        doc = json.loads(described.stdout)
        assert doc["phase"] == "Completed" and doc["created"] >= 2
        assert any("not ready" in w for w in doc["warningMessages"])
        assert target.get(target.discovery().resolve("deployments.apps"), "never-ready", dst)
    finally:
        target.delete(target.discovery().resolve("namespaces"), dst)


def _mark_partially_failed(bucket_url: str, name: str) -> None:
    store = open_store(bucket_url)
    key = f"backups/{name}/velero-backup.json"
    doc = json.loads(store.get(key))
    doc["status"]["phase"] = "PartiallyFailed"
    doc["status"]["errors"] = 1
    store.put(key, json.dumps(doc).encode())


def test_partially_failed_backup_warns_or_is_refused(
    dev_env: Any, source: Cluster, target: Cluster, bucket_url: str, source_ns: str
) -> None:
    _bulk(source, source_ns, 5)
    store = open_store(bucket_url)
    create_backup(source, store, BackupOptions("pf", Scope(include_namespaces=(source_ns,))))
    _mark_partially_failed(bucket_url, "pf")
    dst = uniq("pf")
    ns_res = target.discovery().resolve("namespaces")
    base = ["restore", "create", "--from-backup", "pf", "--kubeconfig",
            dev_env.target_kubeconfig, "--bucket", bucket_url,
            "--namespace-mappings", f"{source_ns}:{dst}", "-o", "json"]  # fmt: skip
    refused = run_cli(*base[:2], "pf-no", *base[2:], "--fail-on", "warning")
    assert refused.returncode == EXIT_PREFLIGHT, refused.stderr
    lines = _stderr_lines(refused.stderr)
    assert len(lines) == 2 and "backup pf is PartiallyFailed" in lines[0]
    assert "nothing was written" in lines[0] and lines[1].startswith("hint:")
    assert not list(store.list("restores/pf-no/"))
    assert dst not in {n["metadata"]["name"] for n in target.list(ns_res)}
    try:
        out = run_cli(*base[:2], "pf-yes", *base[2:])
        assert out.returncode == 0, out.stderr
        assert "WARNING" in out.stderr and "backup pf is PartiallyFailed" in out.stderr
        doc = json.loads(out.stdout)
        assert doc["failed"] == 0 and any("PartiallyFailed" in w for w in doc["warningMessages"])
        assert len(_configmaps(target, dst)) == 5
    finally:
        target.delete(ns_res, dst)


def test_journal_bucket_copy_and_owner_checks(tmp_path: Path) -> None:
    """Pure logic on a file:// bucket: batches reach the bucket at sync/close; another
    machine (another directory) resumes from them; the header refuses another backup or
    another run; a read-only bucket is read, never written."""
    store = open_store(f"file://{tmp_path / 'bucket'}")
    header = {"restore": "r", "backup": "b", "run": "run-1"}
    here, there = tmp_path / "here", tmp_path / "there"
    j = Journal("r", False, here, store=store, header=header, run="run-1")
    assert store.exists("restores/r/journal/header.json")
    key = ("", "ConfigMap", "ns", "a")
    j.record(ObjectResult(key, "configmaps", "created", uid="u1"))
    assert [o.key for o in store.list("restores/r/journal/")] == [
        "restores/r/journal/header.json"
    ]  # appended locally; the bucket gets it in a batch
    j.close()
    assert store.exists("restores/r/journal/000001.jsonl.gz")
    for bad, run, match in (
        ({"backup": "other"}, "run-1", "restores backup 'b', not 'other'"),
        ({"backup": "b"}, "run-2", "belongs to run 'run-1', not to run 'run-2'"),
    ):
        with pytest.raises(UsageError, match=match):
            Journal("r", True, there, store=store, header=bad, run=run)
    with pytest.raises(UsageError, match="has run before"):
        Journal("r", False, there, store=store, header=header)
    readonly = open_store(f"file://{tmp_path / 'bucket'}", read_only=True)
    resumed = Journal("r", True, there, store=readonly, header={"backup": "b"}, run="run-1")
    done = resumed.done(key)
    assert done is not None and done.uid == "u1"
    resumed.record(ObjectResult(("", "ConfigMap", "ns", "b"), "configmaps", "created"))
    resumed.close()
    assert len(list(store.list("restores/r/journal/"))) == 2  # read-only: nothing added
    assert "u1" in (there / "r.journal.jsonl").read_text()  # now local here too
