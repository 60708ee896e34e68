"""Progress when stderr is not a terminal (CI logs, pipes): one NOTICE line every
interval (KUBE_MIGRATE_PROGRESS_INTERVAL, default 10 s) with done/total, rate and ETA;
checked on the line builder alone and on real backups and restores run through the CLI
as subprocesses (their stderr is a pipe)."""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from migrate.cli import progress
from migrate.cli.progress import Counts, progress_lines
from migrate.cluster import Cluster
from migrate.volumes.progress import ClaimBytes
from tests.conftest import Env
from tests.helpers import BIN

STAMP = r"\d\d:\d\d:\d\d NOTICE  "
RATE_ETA = r", \d+/s, ETA (\d+s|\?)$"


def test_line_for_objects_done_of_total(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = [50.0]
    monkeypatch.setattr(progress.time, "monotonic", lambda: clock[0])
    counts = Counts("restore r")
    assert counts.line() == "restore r: 0/? objects, 0/s, ETA ?"
    counts.update("total", 1000)
    counts.update("done", 250)
    clock[0] += 5.0
    assert counts.line() == "restore r: 250/1000 objects, 50/s, ETA 15s"


def test_line_for_resources_listed_and_objects(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = [50.0]
    monkeypatch.setattr(progress.time, "monotonic", lambda: clock[0])
    counts = Counts("backup b")
    counts.update("total", 40)
    for _ in range(10):
        counts.update("listed", 1)
    counts.update("items", 3000)
    clock[0] += 2.0
    assert counts.line() == "backup b: 10/40 listed, 3000 objects, 1500/s, ETA 6s"


def test_line_for_volume_data_counts_bytes(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = [50.0]
    monkeypatch.setattr(progress.time, "monotonic", lambda: clock[0])
    counts = Counts("volume data of b")
    counts.update("total", 3)
    counts.update("bytes-total", 2**30)
    counts.update("bytes-total", 2**30)
    counts.update("bytes", 512 * 2**20)
    counts.update("done", 1)
    clock[0] += 4.0
    assert counts.line() == "volume data of b: 1/3 volumes, 512.0MiB of 2.0GiB, 128.0MiB/s, ETA 12s"


def test_claim_bytes_tells_deltas_once_per_claim() -> None:
    told: list[tuple[str, int]] = []
    cb = ClaimBytes(lambda e, n: told.append((e, n)))
    cb.expect(("a", "x"), 1000)
    watch = cb.watcher(("a", "x"))
    watch({"kind": "progress", "bytes": 300, "totalBytes": 1000})
    watch({"kind": "progress", "bytes": 250})  # a retried mover starts again: no step back
    watch({"kind": "progress", "bytes": 5000})  # a restore's disk figure counts other writers
    cb.watcher(("a", "y"))({"kind": "progress", "bytes": 40})  # total not known yet
    cb.watcher(("a", "y"))({"kind": "progress", "bytes": 60, "totalBytes": 90})
    cb.finish(("a", "y"), 90)
    assert told == [("bytes-total", 1000), ("bytes", 300), ("bytes", 700), ("bytes", 40),
                    ("bytes-total", 90), ("bytes", 20), ("bytes", 30)]  # fmt: skip
    cb.finish(("a", "z"), 0)  # an empty claim: nothing to tell
    assert len(told) == 7


def test_lines_come_every_interval_while_the_block_runs(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="migrate.progress"):
        with progress_lines("restore r", every=0.1) as update:
            update("total", 10)
            for _ in range(5):
                update("done", 1)
                time.sleep(0.1)
        count = len(caplog.records)
        time.sleep(0.3)
    assert 3 <= count <= 7  # ~0.5 s at one line a 0.1 s
    assert len(caplog.records) == count  # none once the block has ended
    assert all(r.levelname == "NOTICE" for r in caplog.records)
    done = [int(r.getMessage().split(": ")[1].split("/")[0]) for r in caplog.records]
    assert done == sorted(done) and 1 <= done[-1] <= 5
    assert all(re.fullmatch(r"restore r: \d/10 objects, \d+/s, ETA \d+s", r.getMessage())
               for r in caplog.records)  # fmt: skip


def _configmaps(c: Cluster, ns: str, n: int) -> None:
    res = c.discovery().resolve("configmaps")
    body = {"data": {"k": "v" * 64}}

    def make(i: int) -> None:
        c.create(res, {**body, "metadata": {"name": f"p-{i:04d}"}}, ns)

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(make, range(n)))


def _run_cli_with_env(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "kube-migrate"), *args],
        capture_output=True,  # stderr is a pipe, not a TTY
        text=True,
        env={**os.environ, **env},
        timeout=600,
        check=False,
    )


def test_cli_prints_progress_lines_off_a_terminal(
    dev_env: Env, source: Cluster, target: Cluster, source_ns: str, bucket_url: str
) -> None:
    _configmaps(source, source_ns, 400)
    fast = {"KUBE_MIGRATE_PROGRESS_INTERVAL": "0.02"}
    bucket = ("--bucket", bucket_url)
    backup = _run_cli_with_env(fast, "backup", "create", "prog", "--kubeconfig",
                               dev_env.source_kubeconfig,
                 *bucket, "--include-namespaces", source_ns, "-o", "json")  # fmt: skip
    assert backup.returncode == 0, backup.stderr
    assert json.loads(backup.stdout)["phase"] == "Completed"  # stdout: data only
    lines = [ln for ln in backup.stderr.splitlines() if " NOTICE  backup prog: " in ln]
    assert lines, backup.stderr
    form = re.compile(STAMP + r"backup prog: \d+/(\d+|\?) (listed, \d+ objects|objects)" + RATE_ETA)
    assert all(form.match(ln) for ln in lines), lines
    assert any(" listed, " in ln for ln in lines), lines

    dst = f"{source_ns}-p"
    try:
        restore = _run_cli_with_env(fast, "restore", "create", "prog-r", "--from-backup", "prog",
                      "--kubeconfig", dev_env.target_kubeconfig, *bucket,
                      "--namespace-mappings", f"{source_ns}:{dst}", "-o", "json")  # fmt: skip
        assert restore.returncode == 0, restore.stderr
        assert json.loads(restore.stdout)["created"] >= 400
        form = re.compile(STAMP + r"restore prog-r: (\d+)/(\d+|\?) objects" + RATE_ETA)
        found = [form.match(ln) for ln in restore.stderr.splitlines() if "prog-r: " in ln]
        assert found and all(found), restore.stderr  # (total "?" while it plans)
        done = [int(m.group(1)) for m in found if m]
        totals = {m.group(2) for m in found if m and m.group(2) != "?"}
        assert done == sorted(done) and totals and all(int(t) >= 400 for t in totals)
        # at the default interval (10 s) a short run prints no progress line
        quiet = _run_cli_with_env({}, "backup", "create", "prog-q", "--kubeconfig",
                                  dev_env.source_kubeconfig,
                    *bucket, "--include-namespaces", source_ns, "-o", "json")  # fmt: skip
        assert quiet.returncode == 0 and "NOTICE  backup prog-q" not in quiet.stderr
    finally:
        target.delete(target.discovery().resolve("namespaces"), dst)
