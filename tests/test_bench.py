"""`bench/run.py` runs end to end at a small N, emits every field and exits 3 exactly
when a figure misses its target (timings are not checked: absolute times on a shared
machine are noise); the verdicts of bench/targets.py, as pure logic, without a cluster."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from .helpers import ROOT


def _targets() -> ModuleType:
    """bench/targets.py (bench/ is not a package: loaded from its file)."""
    spec = importlib.util.spec_from_file_location("bench_targets", ROOT / "bench" / "targets.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses look their module up by name
    spec.loader.exec_module(mod)
    return mod


T = _targets()

# a run where every figure is measured and comfortably met
GOOD: dict[str, Any] = {
    "backupSeconds": 2.5,
    "rawListSeconds": 2.3,
    "restoreSeconds": 3.3,
    "restoreDefaultSeconds": 3.4,
    "rawPostSeconds": 3.2,
    "verifySeconds": 5.6,
    "rawVerifyListSeconds": 4.8,
    "veleroRestoreSeconds": 40.0,
    "veleroUnthrottledRestoreSeconds": 34.0,
    "waitSyncSeconds": 0.6,
    "backupPeakRssMiB": 119.0,
    "restorePeakRssMiB": 105.0,
    "memory": [
        {
            "objects": 10001,
            "backupSeconds": 1.6,
            "rawListSeconds": 1.5,
            "backupPeakRssMiB": 119.0,
            "restoreDefaultSeconds": 20.0,
            "rawPostSeconds": 18.0,
            "restorePeakRssMiB": 106.0,
        },
        {
            "objects": 100001,
            "backupSeconds": 7.5,
            "rawListSeconds": 7.0,
            "backupPeakRssMiB": 124.0,
            "restoreDefaultSeconds": 190.0,
            "rawPostSeconds": 180.0,
            "restorePeakRssMiB": 113.0,
        },
    ],
    "startupPythonSeconds": 0.02,
    "startupVersionSeconds": 0.09,
    "startupHelpSeconds": 0.09,
    "startupBackupHelpSeconds": 0.2,
    "startupBackupGetSeconds": 0.25,
    "volumeBackupSeconds": 9.0,
    "rawTarUploadSeconds": 8.0,
    "volumeRestoreSeconds": 7.0,
    "rawDownloadUntarSeconds": 6.5,
    "volumeUnchangedUploadPercent": 0.002,
    "volumeUnchangedSeconds": 1.2,
    "volumeChangedUploadBytes": 12e6,
    "changedBytes": 10.7e6,
    "moverPeakRssMiB": 300.0,
    "snapshotFrozenSeconds": 2.6,
    "snapshotCutSeconds": 2.0,
    "liveFrozenSeconds": 14.0,
    "cloneSeconds": 1.5,
    "moverRestoreWallSeconds": 20.0,
    "liveDowntimeSeconds": 7.0,
    "liveWholeDowntimeSeconds": 9.0,
    "oneShotDowntimeSeconds": 90.0,
    "liveDeltaBytes": 12e6,
    "liveChangedBytes": 10.7e6,
}


def _states(run: dict[str, Any]) -> dict[str, bool | None]:
    return {v.target.figure: v.met for v in T.verdicts(run)}


def test_targets_table_is_well_formed() -> None:
    figures = [t.figure for t in T.TARGETS]
    assert len(figures) == len(set(figures))
    assert all(t.op in T.OPS and t.limit > 0 for t in T.TARGETS)
    for t in T.TARGETS:  # the keys a row shows are the ones its figure is made of
        for key in (t.ours, t.base):
            assert not key or key in GOOD, (t.figure, key)


def test_every_target_is_judged_and_met_in_a_good_run() -> None:
    assert _states(GOOD) == {t.figure: True for t in T.TARGETS}
    assert T.missed(T.verdicts(GOOD)) == []
    assert "MISSED" not in T.table(GOOD, T.verdicts(GOOD))


def _memory(row: int, **change: float) -> dict[str, Any]:
    """GOOD with one of its memory rows changed."""
    rows = [dict(r) for r in GOOD["memory"]]
    rows[row] |= change
    return {"memory": rows}


@pytest.mark.parametrize(
    ("change", "figure"),
    [
        (_memory(0, backupSeconds=1.5 * 1.21), "memoryBackupOverRawListSmallest"),
        (_memory(-1, backupSeconds=7.0 * 1.21), "memoryBackupOverRawListLargest"),
        (_memory(-1, restoreDefaultSeconds=180.0 * 1.21), "memoryRestoreOverRawPostLargest"),
        # the smallest count's restore is not judged; the largest's raw LIST is
        (_memory(0, restoreDefaultSeconds=18.0 * 2), None),
        (_memory(-1, rawListSeconds=7.5 / 1.21), "memoryBackupOverRawListLargest"),
    ],
)
def test_backup_and_restore_at_scale_are_judged_on_their_own_row(
    change: dict[str, Any], figure: str | None
) -> None:
    """Issue 18: backup / raw LIST at the smallest and the largest memory count, restore
    (default flags) / raw POST at the largest, each <= 1.2x."""
    assert [v.target.figure for v in T.missed(T.verdicts(GOOD | change))] == (
        [figure] if figure else []
    )


@pytest.mark.parametrize(
    ("change", "figure"),
    [
        ({"backupSeconds": 2.3 * 1.21}, "backupOverRawList"),  # <= 1.2x (issue 18)
        # (a slower restore, Velero as much slower: still 10x)
        (
            {"restoreSeconds": 3.2 * 1.41, "veleroUnthrottledRestoreSeconds": 50},
            "restoreOverRawPost",
        ),
        # >= 70% of the raw create rate: 3.2 / 0.69 is below it
        (
            {"restoreDefaultSeconds": 3.2 / 0.69, "veleroRestoreSeconds": 50},
            "restoreDefaultOverRawPost",
        ),
        ({"verifySeconds": 4.8 * 1.51}, "verifyOverRawList"),
        ({"veleroRestoreSeconds": 3.4 * 9.9}, "veleroOverOurs"),
        ({"veleroUnthrottledRestoreSeconds": 3.3 * 9.9}, "veleroUnthrottledOverOurs"),
        ({"waitSyncSeconds": 2.0}, "waitSyncSeconds"),
        ({"restorePeakRssMiB": 400e6 / 2**20}, "restorePeakRssMiB"),
        ({"startupVersionSeconds": 0.3}, "startupVersionSeconds"),  # < 0.3 s: on it misses
        ({"startupBackupGetSeconds": 0.7}, "startupBackupGetSeconds"),
    ],
)
def test_a_missed_figure_is_named_and_only_it(change: dict[str, Any], figure: str) -> None:
    vs = T.verdicts(GOOD | change)
    assert [v.target.figure for v in T.missed(vs)] == [figure]
    (miss,) = T.missed(vs)
    assert "MISSED" in miss.line() and miss.target.label in miss.line()
    row = next(line for line in T.table(GOOD | change, vs).splitlines() if "MISSED" in line)
    assert row.startswith(miss.target.label)


def test_startup_alone_is_judged_on_the_startup_targets() -> None:
    """bench/startup.py judges only its own rows: a run of it measures nothing else."""
    startup = {k: v for k, v in GOOD.items() if k.startswith("startup")}
    assert {t.figure for t in T.STARTUP} == set(startup) - {"startupPythonSeconds"}
    vs = T.verdicts(startup, T.STARTUP)
    assert [v.target for v in vs] == list(T.STARTUP) and all(v.met for v in vs)
    slow = T.verdicts(startup | {"startupHelpSeconds": 0.31}, T.STARTUP)
    assert [v.target.figure for v in T.missed(slow)] == ["startupHelpSeconds"]
    row = next(line for line in T.table(startup, vs).splitlines() if "--version" in line)
    # the command's seconds, `python -c pass`'s next to them, the figure, the verdict
    assert row.split()[2:] == ["0.09s", "0.02s", "0.09s", "<", "0.30", "s:", "met"]


def test_limits_are_inclusive_where_the_target_says_so() -> None:
    at = {"backupSeconds": 2.3 * 1.2, "veleroRestoreSeconds": 3.4 * 10}  # exactly on the line
    at |= _memory(-1, restoreDefaultSeconds=180.0 * 1.2)
    states = _states(GOOD | at)
    assert states["backupOverRawList"] is True and states["veleroOverOurs"] is True
    assert states["memoryRestoreOverRawPostLargest"] is True


def test_memory_that_grows_or_exceeds_400_mb_misses() -> None:
    grows = [dict(GOOD["memory"][0]), dict(GOOD["memory"][1], restorePeakRssMiB=106.0 * 1.25)]
    assert [v.target.figure for v in T.missed(T.verdicts(GOOD | {"memory": grows}))] == [
        "memoryRestoreRssGrowth"
    ]
    big = [dict(row, backupPeakRssMiB=390.0) for row in GOOD["memory"]]
    assert [v.target.figure for v in T.missed(T.verdicts(GOOD | {"memory": big}))] == [
        "memoryBackupPeakRssMiB"
    ]


def test_what_a_run_did_not_measure_is_neither_met_nor_missed() -> None:
    run = {k: v for k, v in GOOD.items() if not k.startswith("velero") and k != "memory"}
    states = _states(run)
    unmeasured = {k for k, v in states.items() if v is None}
    assert unmeasured == {
        "veleroOverOurs",
        "veleroUnthrottledOverOurs",
        "memoryBackupPeakRssMiB",
        "memoryRestorePeakRssMiB",
        "memoryBackupRssGrowth",
        "memoryRestoreRssGrowth",
        "memoryBackupOverRawListSmallest",
        "memoryBackupOverRawListLargest",
        "memoryRestoreOverRawPostLargest",
    }
    assert T.missed(T.verdicts(run)) == []
    assert "not measured" in T.table(run, T.verdicts(run))
    single = GOOD | {"memory": GOOD["memory"][:1]}  # one count: no growth to judge
    assert _states(single)["memoryRestoreRssGrowth"] is None
    # ... but its speed, that one row being the smallest and the largest
    slow = T.verdicts(single | {"memory": [dict(GOOD["memory"][0], backupSeconds=1.5 * 1.3)]})
    assert {v.target.figure for v in T.missed(slow)} == {
        "memoryBackupOverRawListSmallest",
        "memoryBackupOverRawListLargest",
    }
    # rows without the in-process seconds (before issue 18): their RSS judged only
    rss_only = [{k: v for k, v in r.items() if "Seconds" not in k} for r in GOOD["memory"]]
    states = _states(GOOD | {"memory": rss_only})
    assert states["memoryBackupRssGrowth"] is True
    assert [k for k, v in states.items() if v is None] == [
        "memoryBackupOverRawListSmallest",
        "memoryBackupOverRawListLargest",
        "memoryRestoreOverRawPostLargest",
    ]


def test_ratios_for_the_json_are_rounded_and_skip_what_was_not_measured() -> None:
    r = T.ratios({k: v for k, v in GOOD.items() if not k.startswith("velero")})
    assert r["backupOverRawList"] == round(2.5 / 2.3, 2)
    assert r["memoryRestoreRssGrowth"] == round(113 / 106, 2)
    assert r["memoryRestoreOverRawPostLargest"] == round(190 / 180, 2)
    assert "veleroOverOurs" not in r and "waitSyncSeconds" not in r


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
    "restoreDefaultSeconds",
    "rawPostSeconds",
    "restorePeakRssMiB",
    "verifyObjects",
    "verifySeconds",
    "rawVerifyListSeconds",
    "backupOverRawList",
    "restoreOverRawPost",
    "restoreDefaultOverRawPost",
    "verifyOverRawList",
    "memoryRestoreRssGrowth",
    "memoryBackupOverRawListSmallest",
    "memoryBackupOverRawListLargest",
    "memoryRestoreOverRawPostLargest",
    "startupPythonSeconds",
    "startupVersionSeconds",
    "startupHelpSeconds",
    "startupBackupHelpSeconds",
    "startupBackupGetSeconds",
)


def test_bench_runs_and_emits_every_field(dev_env: Any, tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    argv = [sys.executable, "bench/run.py", "--objects", "60", "--namespaces", "2"]
    argv += ["--no-velero", "--json", str(out), "--memory-counts", "20,40"]
    # no settling: the suite's own namespaces are always going away somewhere (the
    # namespace controller waits 5 s before it starts on one), and at this size no figure
    # is judged for real (below)
    argv += ["--settle-timeout", "0"]
    env = dict(os.environ)
    proc = subprocess.run(
        argv, check=False, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600
    )
    # at this size fixed costs dominate and a ratio may miss its target: then exit 3,
    # the misses named on stderr; any other failure is a failure of the run
    assert proc.returncode in (0, 3), proc.stdout + proc.stderr
    doc = json.loads(out.read_text())
    verdicts = {key: v["verdict"] for key, v in doc["targets"].items()}
    assert set(verdicts) == {t.figure for t in T.MAIN}  # the volume data: volume_data.py
    missed = sorted(key for key, v in verdicts.items() if v == "MISSED")
    assert (proc.returncode == 3) == bool(missed), (proc.returncode, verdicts)
    named = [T.TARGETS[[t.figure for t in T.TARGETS].index(key)].label for key in missed]
    reported = [x for x in proc.stderr.splitlines() if x.startswith("bench: target missed: ")]
    assert len(reported) == len(missed) and all(any(n in x for x in reported) for n in named)
    # no Velero in this run; everything else measured
    assert {k for k, v in verdicts.items() if v == "not measured"} == {
        "veleroOverOurs",
        "veleroUnthrottledOverOurs",
    }
    for key in NUMBERS:
        assert isinstance(doc.get(key), (int, float)) and doc[key] > 0, (key, doc.get(key))
    # detection can land within the same millisecond as the upload: >= 0, not > 0
    assert isinstance(doc.get("waitSyncSeconds"), (int, float)) and doc["waitSyncSeconds"] >= 0
    assert isinstance(doc.get("verifyDrifted"), int)  # reported, not judged here
    assert all(t.label in proc.stdout for t in T.MAIN)  # the table: one row per target
    assert [row["objects"] for row in doc["memory"]] == [21, 41]  # + kube-root-ca.crt
    for row in doc["memory"]:
        for key in (
            "backupPeakRssMiB",
            "restorePeakRssMiB",
            "cliBackupSeconds",  # the subprocesses' (start-up included)
            "cliRestoreSeconds",
            "backupSeconds",  # in-process, as their raw baselines
            "rawListSeconds",
            "restoreDefaultSeconds",
            "rawPostSeconds",
            "restoreCreated",
            "rawPosted",
        ):
            assert row[key] > 0, (key, row)
        # backup: raw, ours, ours, raw, the best of two each
        assert row["backupSeconds"] == min(row["backupSamples"]) and len(row["backupSamples"]) == 2
        assert row["rawListSeconds"] == min(row["rawListSamples"])
        assert row["rawListedObjects"] >= row["objects"]  # the backup's tasks: all of <ns>
    assert "restore peak RSS 41 vs 21 objects" in proc.stdout
    assert doc["waitSyncInterval"] == 1.0  # `backup wait-sync`'s default --interval
    # restore and its raw POST: two samples each (ours, raw, raw, ours), the best reported
    assert len(doc["restoreSamples"]) == 2 and len(doc["rawPostSamples"]) == 2
    assert len(doc["restoreDefaultSamples"]) == 2
    assert doc["restoreDefaultSeconds"] == min(doc["restoreDefaultSamples"]) > 0
    assert doc["restoreDefaults"]["parallelism"] == 16  # read from `restore create`'s flags
    # the same plan, into fresh namespaces; but for each namespace's `default`
    # ServiceAccount: created when the controller has not made it yet, else merged (ours)
    # or dropped (raw)
    assert abs(doc["rawPosted"] - doc["restoreCreated"]) <= doc["namespaces"]
    assert doc["restoreSeconds"] == min(doc["restoreSamples"]) > 0
    assert doc["rawPostSeconds"] == min(doc["rawPostSamples"]) > 0
    assert len(doc["verifySamples"]) == 2 and len(doc["rawVerifyListSamples"]) == 2
    assert doc["verifySeconds"] == min(doc["verifySamples"]) > 0
    assert doc["rawVerifyListSeconds"] == min(doc["rawVerifyListSamples"]) > 0
    assert 0 <= doc["settleSeconds"] < 1  # --settle-timeout 0: no wait


def test_volume_targets_judge_the_data_path() -> None:
    vs = {v.target.figure: v for v in T.verdicts(GOOD, T.VOLUMES)}
    assert set(vs) == {
        "volumeBackupOverRawUpload", "volumeRestoreOverRawDownload",
        "volumeUnchangedUploadPercent", "volumeUnchangedSeconds",
        "volumeChangedUploadOverChanged", "moverPeakRssMiB",
    }  # fmt: skip
    assert all(v.met for v in vs.values())
    slow = T.verdicts(GOOD | {"volumeBackupSeconds": 10.0}, T.VOLUMES)
    assert [v.target.figure for v in T.missed(slow)] == ["volumeBackupOverRawUpload"]
    chatty = T.verdicts(GOOD | {"volumeChangedUploadBytes": 22e6}, T.VOLUMES)
    assert [v.target.figure for v in T.missed(chatty)] == ["volumeChangedUploadOverChanged"]


def test_snapshot_targets_judge_the_hold_and_the_clone() -> None:
    vs = {v.target.figure: v for v in T.verdicts(GOOD, T.SNAPSHOTS)}
    assert set(vs) == {"snapshotHoldBeyondCutSeconds", "cloneSpeedup"}
    assert all(v.met for v in vs.values())
    assert vs["cloneSpeedup"].value == 20.0 / 1.5
    assert vs["snapshotHoldBeyondCutSeconds"].value == 2.6 - 2.0
    held = T.verdicts(GOOD | {"snapshotFrozenSeconds": 3.2}, T.SNAPSHOTS)
    assert [v.target.figure for v in T.missed(held)] == ["snapshotHoldBeyondCutSeconds"]
    slow = T.verdicts(GOOD | {"cloneSeconds": 4.0}, T.SNAPSHOTS)
    assert [v.target.figure for v in T.missed(slow)] == ["cloneSpeedup"]
