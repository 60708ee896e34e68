"""`bench/run.py` runs end to end at a small N and emits every field (timings are not
checked: absolute times on a shared machine are noise)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from .helpers import ROOT

NUMBERS = (
    "objects",
    "namespaces",
    "parallelism",
    "created",
    "generateSeconds",
    "podsRunning",
    "backupItems",
    "rawListedObjects",
    "backupSeconds",
    "rawListSeconds",
    "backupPeakRssMiB",
    "restoreCreated",
    "rawPosted",
    "restoreSeconds",
    "rawPostSeconds",
    "restorePeakRssMiB",
    "verifyObjects",
    "verifySeconds",
    "rawVerifyListSeconds",
    "backupOverRawList",
    "restoreOverRawPost",
    "verifyOverRawList",
)


def test_bench_runs_and_emits_every_field(dev_env: Any, tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    argv = [sys.executable, "bench/run.py", "--objects", "60", "--namespaces", "2"]
    argv += ["--no-velero", "--json", str(out), "--memory-counts", "20,40"]
    argv += ["--settle-timeout", "5"]  # the suite's own namespaces may still be going away
    env = dict(os.environ)
    proc = subprocess.run(
        argv, check=False, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    doc = json.loads(out.read_text())
    for key in NUMBERS:
        assert isinstance(doc.get(key), (int, float)) and doc[key] > 0, (key, doc.get(key))
    # detection can land within the same millisecond as the upload: >= 0, not > 0
    assert isinstance(doc.get("waitSyncSeconds"), (int, float)) and doc["waitSyncSeconds"] >= 0
    assert isinstance(doc.get("verifyDrifted"), int)  # reported, not judged here
    assert "backup create" in proc.stdout and "wait-sync" in proc.stdout
    assert [row["objects"] for row in doc["memory"]] == [21, 41]  # + kube-root-ca.crt
    for row in doc["memory"]:
        for key in ("backupPeakRssMiB", "restorePeakRssMiB", "backupSeconds", "restoreSeconds"):
            assert row[key] > 0, (key, row)
    assert "restore RSS 41/21" in proc.stdout
    # restore and its raw POST: two samples each (ours, raw, raw, ours), the best reported
    assert len(doc["restoreSamples"]) == 2 and len(doc["rawPostSamples"]) == 2
    assert doc["restoreSeconds"] == min(doc["restoreSamples"]) > 0
    assert doc["rawPostSeconds"] == min(doc["rawPostSamples"]) > 0
    assert len(doc["verifySamples"]) == 2 and len(doc["rawVerifyListSamples"]) == 2
    assert doc["verifySeconds"] == min(doc["verifySamples"]) > 0
    assert doc["rawVerifyListSeconds"] == min(doc["rawVerifyListSamples"]) > 0
    assert 0 <= doc["settleSeconds"] <= 6 * 5 + 30  # six settles, each at most ~5 s
