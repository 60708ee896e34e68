"""`kube-migrate run` owns its backups and restores (issue 17, section 2): a second run of
a playbook with a fixed backup.name is refused naming the run that made the backup (and
so is its --resume); `--resume` with a flag that contradicts the run is refused;
`-o json|yaml` print the report document on stdout; a run SIGKILLed mid-restore is
resumed from another machine (empty state directory: the run state and the restore
journal come from the bucket) with every object created once; Ctrl-C names
`kube-migrate run --resume RUN`; `spec.gates.restore.failOn: warning` refuses a
PartiallyFailed backup as `restore create --fail-on warning` does."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import yaml

from migrate.cluster import Cluster
from migrate.errors import NotFound
from migrate.store import open_store

from .test_restore import BIN, _bulk, _configmaps, uniq

PLAYBOOK = """apiVersion: kube-migrate.io/v1alpha1
kind: Playbook
metadata: {name: %(name)s}
spec:
  scope: {includeNamespaces: [%(src)s]}
  %(backup)s
  restore: {namespaceMappings: {%(src)s: %(dst)s}, parallelism: 1}
  steps: [backup, waitForSync, restore]
"""


def _playbook(tmp_path: Path, src: str, dst: str, backup: str = "") -> Path:
    path = tmp_path / f"{uniq('pb')}.yaml"
    name = uniq("own")
    body = f"backup: {{name: {backup}}}" if backup else "backup: {}"
    path.write_text(PLAYBOOK % {"name": name, "src": src, "dst": dst, "backup": body})
    return path


def _run(*args: str, state: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "KUBE_MIGRATE_STATE_DIR": str(state)}
    return subprocess.run(
        [str(BIN / "kube-migrate"), *args], check=False, capture_output=True, text=True, env=env
    )


def _error_lines(stderr: str) -> list[str]:
    return [ln for ln in stderr.splitlines() if ln.startswith(("kube-migrate:", "hint:"))]


def test_second_run_with_a_fixed_backup_name_is_refused(
    dev_env: Any, source: Cluster, target: Cluster, bucket_url: str, source_ns: str, tmp_path: Path
) -> None:
    _bulk(source, source_ns, 5)
    dst = uniq("own")
    fixed = uniq("fixed")
    book = _playbook(tmp_path, source_ns, dst, backup=fixed)
    state = tmp_path / "state"
    common = ["--bucket", bucket_url, "--report-dir", str(tmp_path / "r1")]
    store = open_store(bucket_url)
    try:
        first = _run("run", str(book), *common, "-o", "json", state=state)
        assert first.returncode == 0, first.stderr[-3000:]
        doc = json.loads(first.stdout)  # -o json: the report document, on stdout only
        run1 = doc["run"]
        assert doc["exitCode"] == 0 and [s["status"] for s in doc["steps"]] == ["succeeded"] * 3
        assert doc["report"] == str(tmp_path / "r1")
        labels = json.loads(store.get(f"backups/{fixed}/velero-backup.json"))["metadata"]
        assert labels["labels"]["kube-migrate.io/run"] == run1
        manifest = json.loads(store.get(f"backups/{fixed}/{fixed}-kube-migrate.json"))
        assert manifest["run"] == run1
        time.sleep(1.1)  # run names are made to the second
        second = _run("run", str(book), *common, "-o", "yaml", state=state)
        assert second.returncode == 2, second.stderr[-3000:]
        doc2 = yaml.safe_load(second.stdout)  # -o yaml, even for a failed run
        run2 = doc2["run"]
        backup_step = doc2["steps"][0]
        assert backup_step["status"] == "failed" and run1 in backup_step["result"]["error"]
        assert run2 in backup_step["result"]["error"]
        assert doc2["steps"][2]["status"] == "pending"  # nothing restored
        lines = _error_lines(second.stderr)
        assert lines[0] == f"kube-migrate: error: run {run2} stopped at step backup (exit 2)"
        # the backup is the first run's, untouched; the second run restored nothing
        labels = json.loads(store.get(f"backups/{fixed}/velero-backup.json"))["metadata"]
        assert labels["labels"]["kube-migrate.io/run"] == run1
        assert not store.exists(f"restores/{run2}/restore-{run2}-results.gz")
        # --resume does not take the other run's backup either
        again = _run("run", "--resume", run2, state=state)
        assert again.returncode == 2 and run1 in again.stderr and run2 in again.stderr
        table = [ln.split()[:2] for ln in again.stdout.splitlines()]  # the default: a table
        assert table == [["STEP", "STATUS"], ["backup", "failed"], ["waitForSync", "pending"],
                         ["restore", "pending"]]  # fmt: skip
        _resume_is_held_to_the_run(state, bucket_url, book, (run1, run2), fixed)
    finally:
        target.delete(target.discovery().resolve("namespaces"), dst)


def _resume_is_held_to_the_run(
    state: Path, bucket_url: str, book: Path, runs: tuple[str, str], fixed: str
) -> None:
    """--resume refuses flags that contradict the run; a run restores only its own backup."""
    run1, run2 = runs
    store = open_store(bucket_url)
    # --resume with a flag that contradicts the run: one error line, exit 2
    other = f"{bucket_url}-other"
    clash = _run("run", "--resume", run2, "--bucket", other, state=state)
    assert clash.returncode == 2 and clash.stdout == ""
    assert _error_lines(clash.stderr) == [
        f"kube-migrate: error: run {run2} was started with --bucket '{bucket_url}'; "
        f"--resume continues it with the same settings, not '{other}'",
        "hint: drop --bucket to resume the run as it was, or start a new run with "
        "`kube-migrate run PLAYBOOK ...`",
    ]
    for extra in (["--set", "restore.replicas=1"], [str(book)], ["--dry-run"]):
        bad = _run("run", "--resume", run2, *extra, state=state)
        assert bad.returncode == 2 and len(_error_lines(bad.stderr)) == 2, bad.stderr
    same = _run("run", "--resume", run2, "--bucket", bucket_url, state=state)
    assert same.returncode == 2 and run1 in same.stderr  # same flag: accepted
    # even a run whose journal says its backup is taken restores only its own backup
    path = state / "runs" / run2 / "state.json"
    forged = json.loads(path.read_text())
    for st in forged["steps"][:2]:
        st["status"] = "succeeded"
    path.write_text(json.dumps(forged))
    refused = _run("run", "--resume", run2, state=state)
    assert refused.returncode == 2, refused.stderr
    assert (
        f"backup '{fixed}' is not the one this run {run2} took (it belongs to run {run1})"
        in refused.stderr
    )
    assert not store.exists(f"restores/{run2}/restore-{run2}-results.gz")
    assert not store.exists(f"restores/{run2}/journal/header.json")  # nothing started


def test_run_resumed_from_another_machine(
    dev_env: Any, source: Cluster, target: Cluster, bucket_url: str, source_ns: str, tmp_path: Path
) -> None:
    _bulk(source, source_ns, 150)
    dst = uniq("far")
    book = _playbook(tmp_path, source_ns, dst)
    here, there = tmp_path / "here", tmp_path / "there"
    cmd = [str(BIN / "kube-migrate"), "--log-format", "json", "run", str(book),
           "--bucket", bucket_url, "--report-dir", str(tmp_path / "r"),
           "--qps", "25", "--burst", "1"]  # fmt: skip
    env = {**os.environ, "KUBE_MIGRATE_STATE_DIR": str(here)}
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    assert proc.stderr is not None
    run_name = ""
    for line in proc.stderr:
        msg = json.loads(line).get("msg", "")
        if msg.startswith("run ") and not run_name:
            run_name = msg.split()[1]
        if msg.startswith("step 3/3: restore"):
            time.sleep(2)
            break
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    try:
        assert run_name and 0 < len(_configmaps(target, dst)) < 150
        store = open_store(bucket_url)
        assert store.exists(f"restores/{run_name}/journal/run-{run_name}.json")
        # another machine: no local state at all; the bucket names the run
        out = _run(
            "run", "--resume", run_name, "--bucket", bucket_url, "--report-dir",
            str(tmp_path / "r2"), "-o", "json", state=there,
        )  # fmt: skip
        assert out.returncode == 0, out.stderr[-3000:]
        doc = json.loads(out.stdout)
        assert doc["run"] == run_name and doc["steps"][2]["status"] == "succeeded"
        assert doc["steps"][0]["status"] == "succeeded"  # not taken again
        assert _configmaps(target, dst) == _configmaps(source, source_ns)
        described = _run(
            "restore", "describe", run_name, "--details", "--bucket", bucket_url, "-o", "json",
            state=there,
        )  # fmt: skip
        objects = [
            o for o in json.loads(described.stdout)["objects"] if o["name"].startswith("cm-")
        ]
        assert len(objects) == 150 and {o["result"] for o in objects} == {"created"}
        assert len({o["uid"] for o in objects}) == 150
    finally:
        target.delete(target.discovery().resolve("namespaces"), dst)


def test_ctrl_c_names_run_resume(
    dev_env: Any, source: Cluster, target: Cluster, bucket_url: str, source_ns: str, tmp_path: Path
) -> None:
    _bulk(source, source_ns, 300)
    dst = uniq("int")
    book = _playbook(tmp_path, source_ns, dst)
    cmd = [str(BIN / "kube-migrate"), "run", str(book), "--bucket", bucket_url,
           "--report-dir", str(tmp_path / "r"), "--qps", "20", "--burst", "1"]  # fmt: skip
    env = {**os.environ, "KUBE_MIGRATE_STATE_DIR": str(tmp_path / "state")}
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    assert proc.stderr is not None
    seen = []
    for line in proc.stderr:
        seen.append(line)
        if "step 3/3: restore" in line:
            break
    time.sleep(1)
    proc.send_signal(signal.SIGINT)
    seen.append(proc.stderr.read())
    proc.wait(60)
    try:
        run_name = next(ln.split("run ", 1)[1].split()[0] for ln in seen if " run " in ln)
        assert proc.returncode == 130
        assert _error_lines("".join(seen)) == [
            "kube-migrate: error: interrupted",
            f"hint: continue it with `kube-migrate run --resume {run_name}`",
        ]
    finally:
        target.delete(target.discovery().resolve("namespaces"), dst)


GATED = """apiVersion: kube-migrate.io/v1alpha1
kind: Playbook
metadata: {name: %(name)s}
spec:
  scope: {includeNamespaces: [%(src)s]}
  backup: {name: %(backup)s}
  restore: {namespaceMappings: {%(src)s: %(dst)s}}
  %(gates)s
  steps: [restore]
"""


def test_restore_gate_warning_refuses_a_partially_failed_backup(
    dev_env: Any, source: Cluster, target: Cluster, bucket_url: str, source_ns: str, tmp_path: Path
) -> None:
    """`spec.gates.restore.failOn: warning` refuses a PartiallyFailed backup before any
    write, as `restore create --fail-on warning` does; the default gate restores it and
    says it is PartiallyFailed."""
    from .test_bad_input import _status, copy_backup

    _bulk(source, source_ns, 3)
    made, partial, dst = uniq("made"), uniq("partial"), uniq("gate")
    store = open_store(bucket_url)
    state = tmp_path / "state"
    kubeconfig = os.environ["KUBE_MIGRATE_SOURCE_KUBECONFIG"]
    took = _run("backup", "create", made, "--kubeconfig", kubeconfig, "--bucket", bucket_url,
                "--include-namespaces", source_ns, state=state)  # fmt: skip
    assert took.returncode == 0, took.stderr[-3000:]
    copy_backup(store, made, partial, _status(phase="PartiallyFailed"))
    namespaces = target.discovery().resolve("namespaces")

    def book(gates: str) -> Path:
        path = tmp_path / f"{uniq('pb')}.yaml"
        fields = {"name": uniq("gate"), "src": source_ns, "dst": dst, "backup": partial}
        path.write_text(GATED % {**fields, "gates": gates})
        return path

    common = ["--bucket", bucket_url, "--report-dir", str(tmp_path / "r")]
    try:
        refused = _run("run", str(book("gates: {restore: {failOn: warning}}")), *common,
                       state=state)  # fmt: skip
        assert refused.returncode == 3, refused.stderr[-3000:]
        assert f"backup {partial} is PartiallyFailed" in refused.stderr
        assert "refuses it; nothing was written" in refused.stderr
        assert not _exists(target, namespaces, dst)  # nothing restored
        taken = _run("run", str(book("gates: {restore: {failOn: failed}}")), *common,
                     state=state)  # fmt: skip
        assert taken.returncode == 0, taken.stderr[-3000:]
        assert f"backup {partial} is PartiallyFailed" in taken.stderr  # warned, restored
        assert _exists(target, namespaces, dst)
    finally:
        with contextlib.suppress(NotFound):
            target.delete(namespaces, dst)


def _exists(cluster: Cluster, res: Any, name: str) -> bool:
    try:
        cluster.get(res, name)
    except NotFound:
        return False
    return True
