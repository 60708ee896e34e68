"""Every benchmark of issue 8 side by side, in one run, on the local planes.

Fills the source with N objects over K namespaces (raw parallel creates: ConfigMaps,
Secrets, Services, Deployments whose pods kwok runs, custom resources of a CRD made for
the run, RoleBindings), then measures, each next to its physical limit or peer:

  - backup create         vs a raw parallel LIST of the same resources (same client,
                            same parallelism);
  - restore create        vs a raw parallel POST of the same sanitized objects, level by
                            level in the plan's dependency order, same parallelism, into
                            other mapped namespaces;
  - restore create        vs `velero restore create --from-backup <ours>` (optional);
  - verify                vs a raw LIST of both clusters (verify's own LIST tasks);
  - wait-sync             seconds from the backup's velero-backup.json upload to its
                            detection by wait_for_sync polling every 0.2 s;
  - peak RSS              of `python -m migrate backup create` and `restore create`,
                            in this run and at each of --memory-counts small ConfigMaps
                            in one namespace (bench/memory.py: 10k and 100k by default).

Prints a table, writes JSON, deletes every namespace and the CRD it made on both planes.
This module is the run's order, its table and its CLI; the workload is bench/workload.py,
the baselines and wait-sync bench/baselines.py, Velero's restore bench/velero_bench.py
(its server: hack/devenv/velero.py, shared with tests/test_velero_compat.py).

    .venv/bin/python bench/run.py --objects 1000 --namespaces 100
"""

from __future__ import annotations

import argparse
import json
import os
import uuid
from pathlib import Path
from typing import Any

import memory
from baselines import (
    measure_wait_sync,
    raw_backup_list,
    raw_restore_post,
    raw_verify_list,
    timed,
)
from memory import ROOT, env, mig, peak_rss  # bench/ is sys.path[0] when run as a script
from velero_bench import UNTHROTTLED, measure_velero, velero_binary
from workload import (
    PARALLELISM,
    RESTORE_PARALLELISM,
    cleanup,
    crd,
    ensure_crd,
    generate,
    plan_objects,
    wait_pods_running,
    wait_quiet,
)

from migrate.backup.create import BackupOptions, create_backup
from migrate.cluster import Cluster, ClusterRef
from migrate.restore.plan import RestoreOptions
from migrate.restore.run import run_restore
from migrate.store import open_store
from migrate.transform.mappings import Mappings
from migrate.transform.scope import Scope
from migrate.verify import VerifyOptions, run_verify
from migrate.verify.normalize import Transforms


# -- the run ------------------------------------------------------------------------------
class Bench:
    """One run: the clusters, the bucket prefix, the namespaces and their mapped copies."""

    def __init__(self, n: int, k: int, settle_timeout: float = 300) -> None:
        self.e = e = env()
        for key, val in e.items():  # the in-process clients (boto3) read their credentials
            os.environ.setdefault(key, val)  # from here: `make bench` needs no `source`
        self.src = Cluster(ClusterRef(e["KUBE_MIGRATE_SOURCE_KUBECONFIG"]), qps=0, pool_size=40)
        self.dst = Cluster(ClusterRef(e["KUBE_MIGRATE_TARGET_KUBECONFIG"]), qps=0, pool_size=40)
        self.n, self.k = n, k
        self.run_id = uuid.uuid4().hex[:6]
        self.prefix = f"bench-{self.run_id}"
        self.bucket = f"{e['KUBE_MIGRATE_BUCKET']}/{self.prefix}"
        self.store = open_store(self.bucket)
        self.namespaces = [f"{self.prefix}-{i:03d}" for i in range(k)]
        self.crd = crd(self.prefix)
        self.scope = Scope(include_namespaces=tuple(self.namespaces))
        self.tags = ["ours", "ours2", "raw", "raw2", "rss", "velero", "velerou"]
        self.settle_timeout = settle_timeout  # longest wait for the planes to settle
        self.settled = 0.0  # seconds spent waiting for the planes to settle

    def mapped(self, tag: str) -> dict[str, str]:
        return {ns: f"{ns}-{tag}" for ns in self.namespaces}

    def mapping_arg(self, tag: str) -> str:
        return ",".join(f"{a}:{b}" for a, b in self.mapped(tag).items())

    def fill(self, workers: int) -> dict[str, Any]:
        t_gen, created = timed(
            lambda: generate(self.src, self.namespaces, self.n, self.crd, workers)
        )
        kinds = plan_objects(self.n, self.namespaces, "x")
        deployments = sum(1 for r, _, _ in kinds if r == "deployments.apps")
        running = wait_pods_running(self.src, self.namespaces, deployments, 120)
        ensure_crd(self.dst, self.crd)  # every restore finds the CRD there; none pays for it
        print(f"generated {created} objects in {t_gen:.1f}s ({running} pods Running)")
        return {"created": created, "generateSeconds": t_gen, "podsRunning": running}

    def backup(self) -> dict[str, Any]:
        """backup create (wait-sync polling in a thread), raw LIST, RSS in a subprocess."""
        src, scope = self.src, self.scope
        raw_s, listed = timed(lambda: raw_backup_list(src, scope))
        backup_s, sync_s, summary, _ = measure_wait_sync(
            src, self.store, BackupOptions("bench", scope)
        )
        raw_s = min(raw_s, timed(lambda: raw_backup_list(src, scope))[0])
        again = BackupOptions("bench-again", scope)  # best of two, as the raw LIST
        backup_s = min(backup_s, timed(lambda: create_backup(src, self.store, again))[0])
        argv = mig(
            "backup", "create", "bench-rss", "--include-namespaces", ",".join(self.namespaces)
        )
        argv += ["--kubeconfig", self.e["KUBE_MIGRATE_SOURCE_KUBECONFIG"], "--bucket", self.bucket]
        rss = peak_rss(argv, self.e)
        print(f"backup {backup_s:.2f}s, raw LIST {raw_s:.2f}s, wait-sync {sync_s:.2f}s")
        return {
            "backupItems": summary.items,
            "rawListedObjects": listed,
            "backupSeconds": backup_s,
            "rawListSeconds": raw_s,
            "waitSyncSeconds": sync_s,
            "backupPeakRssMiB": rss / 1024,
        }

    def settle(self) -> float:
        """Before a timed step: wait out the last step's aftermath (see wait_quiet)."""
        waited = wait_quiet([self.src, self.dst], self.settle_timeout)
        self.settled += waited
        return waited

    def restore(self) -> dict[str, Any]:
        """restore create vs the raw POST of its plan, in the order ours, raw, raw, ours
        (drift in the machine's load cancels out), best of two each, the planes settled
        before each; then the CLI's RSS into <ns>-rss."""
        dst, store = self.dst, self.store
        ours_s, raw_s, rsum, posted = [], [], None, 0
        for tag in ("ours", "raw", "raw2", "ours2"):
            ropts = RestoreOptions(
                name=f"bench-{tag}-{self.run_id}",
                backup="bench",
                mappings=Mappings(namespaces=self.mapped(tag)),
            )
            self.settle()
            if tag.startswith("ours"):
                seconds, rsum = timed(lambda o=ropts: run_restore(dst, store, o))
                if rsum.phase != "Completed":
                    raise SystemExit(f"restore {rsum.phase}: {dict(rsum.counts)}")
                ours_s.append(seconds)
            else:
                seconds, posted = timed(lambda o=ropts: raw_restore_post(dst, store, o))
                raw_s.append(seconds)
            print(f"restore ({tag}) {seconds:.2f}s")
        assert rsum is not None
        argv = mig("restore", "create", f"rss-{self.run_id}", "--from-backup", "bench")
        argv += ["--namespace-mappings", self.mapping_arg("rss")]
        argv += ["--kubeconfig", self.e["KUBE_MIGRATE_TARGET_KUBECONFIG"], "--bucket", self.bucket]
        rss = peak_rss(argv, self.e)
        print(f"restore {min(ours_s):.2f}s, raw POST {min(raw_s):.2f}s ({posted} objects)")
        return {
            "restoreCreated": rsum.counts["created"],
            "rawPosted": posted,
            "restoreSeconds": min(ours_s),
            "rawPostSeconds": min(raw_s),
            "restoreSamples": [round(x, 4) for x in ours_s],
            "rawPostSamples": [round(x, 4) for x in raw_s],
            "restorePeakRssMiB": rss / 1024,
        }

    def verify(self) -> dict[str, Any]:
        """verify the source against <ns>-ours vs the raw LIST of both, in the order
        ours, raw, raw, ours (as the restore), the planes settled before each."""
        src, dst, scope = self.src, self.dst, self.scope
        vmap = Mappings(namespaces=self.mapped("ours"))
        vopts = VerifyOptions(scope, Transforms(mappings=vmap), parallelism=PARALLELISM)
        ours_s, raw_s, report = [], [], None
        for tag in ("ours", "raw", "raw", "ours"):
            self.settle()
            if tag == "ours":
                seconds, report = timed(lambda: run_verify(src, dst, vopts))
                ours_s.append(seconds)
            else:
                raw_s.append(timed(lambda: raw_verify_list(src, dst, scope, vmap))[0])
        assert report is not None
        drifted = len(report.drifted)
        print(f"verify {min(ours_s):.2f}s, raw LIST both {min(raw_s):.2f}s, drifted {drifted}")
        return {
            "verifyObjects": len(report.results),
            "verifyDrifted": drifted,
            "verifySeconds": min(ours_s),
            "rawVerifyListSeconds": min(raw_s),
            "verifySamples": [round(x, 4) for x in ours_s],
            "rawVerifyListSamples": [round(x, 4) for x in raw_s],
        }

    def velero(self) -> dict[str, Any]:
        """Velero at its defaults (client QPS 20, burst 30), then without that limit (as
        ours runs here) into other mapped namespaces."""
        args = (self.dst, self.e, self.e["KUBE_MIGRATE_BUCKET"], self.prefix, "bench")
        out = measure_velero(*args, self.mapping_arg("velero"))
        print(f"velero restore {out['veleroRestoreSeconds']:.2f}s")
        self.settle()
        free = measure_velero(*args, self.mapping_arg("velerou"), UNTHROTTLED)
        out["veleroUnthrottledRestoreSeconds"] = free["veleroRestoreSeconds"]
        out["veleroUnthrottledPhase"] = free["veleroPhase"]
        print(f"velero restore, client QPS unlimited {free['veleroRestoreSeconds']:.2f}s")
        return out

    def cleanup(self) -> None:
        cleanup(self.src, self.dst, self.namespaces, self.crd, self.tags)


def run(
    n: int, k: int, with_velero: bool, workers: int, mem_counts: list[int], settle: float
) -> dict[str, Any]:
    b = Bench(n, k, settle)
    out: dict[str, Any] = {"objects": n, "namespaces": k, "parallelism": PARALLELISM}
    out["restoreParallelism"] = RESTORE_PARALLELISM
    try:
        b.settle()
        out |= b.fill(workers)
        b.settle()
        out |= b.backup()
        out |= b.restore()
        out |= b.verify()
        if with_velero:
            b.settle()
            out |= b.velero()
    finally:
        b.cleanup()
    out["settleSeconds"] = b.settled
    rounded = {key: round(v, 4) if isinstance(v, float) else v for key, v in out.items()}
    if mem_counts:
        rows = memory.run(mem_counts)
        print(memory.table(rows))
        rounded["memory"] = rows
    return rounded | ratios(out)


def ratios(o: dict[str, Any]) -> dict[str, float]:
    r = {
        "backupOverRawList": o["backupSeconds"] / o["rawListSeconds"],
        "restoreOverRawPost": o["restoreSeconds"] / o["rawPostSeconds"],
        "verifyOverRawList": o["verifySeconds"] / o["rawVerifyListSeconds"],
    }
    if "veleroRestoreSeconds" in o:
        r["veleroOverOurs"] = o["veleroRestoreSeconds"] / o["restoreSeconds"]
        r["veleroUnthrottledOverOurs"] = o["veleroUnthrottledRestoreSeconds"] / o["restoreSeconds"]
    return {k: round(v, 2) for k, v in r.items()}


def table(o: dict[str, Any]) -> str:
    rows = [
        ("backup create", o["backupSeconds"], o["rawListSeconds"], "raw LIST", "<= 1.3x"),
        ("restore create", o["restoreSeconds"], o["rawPostSeconds"], "raw POST", "<= 1.4x"),
        ("verify", o["verifySeconds"], o["rawVerifyListSeconds"], "raw LIST x2", "<= 1.5x"),
    ]
    if "veleroRestoreSeconds" in o:
        rows.append(
            ("restore vs Velero", o["restoreSeconds"], o["veleroRestoreSeconds"], "Velero", ">=10x")
        )
        rows.append(
            ("  Velero no QPS cap", o["restoreSeconds"], o["veleroUnthrottledRestoreSeconds"],
             "Velero", ">=10x")
        )  # fmt: skip
    lines = [f"{'measurement':<20} {'ours s':>8} {'baseline s':>11} {'ratio':>7}  target"]
    for name, ours, base, what, target in rows:
        ratio = base / ours if what == "Velero" else ours / base
        suffix = "x faster" if what == "Velero" else "x"
        lines.append(
            f"{name:<20} {ours:>8.2f} {base:>11.2f} {ratio:>6.2f}{suffix}  {target} ({what})"
        )
    lines.append(f"{'wait-sync':<20} {o['waitSyncSeconds']:>8.2f} {'':>11} {'':>7}  < 2 s")
    lines.append(f"{'backup peak RSS':<20} {o['backupPeakRssMiB']:>6.0f}MiB {'':>19} < 400 MB")
    lines.append(f"{'restore peak RSS':<20} {o['restorePeakRssMiB']:>6.0f}MiB {'':>19} < 400 MB")
    mem: list[dict[str, Any]] = o.get("memory") or []
    for what in ("backup", "restore") if len(mem) > 1 else ():
        first, last = mem[0], mem[-1]
        label = f"{what} RSS {_count(last['objects'])}/{_count(first['objects'])}"
        small, big = first[f"{what}PeakRssMiB"], last[f"{what}PeakRssMiB"]
        lines.append(
            f"{label:<20} {big:>6.0f}MiB {small:>8.0f}MiB {big / small:>6.2f}x  < 400 MB, flat"
        )
    return "\n".join(lines)


def _count(n: int) -> str:
    return f"{round(n / 1000)}k" if n >= 1000 else str(n)


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--objects", type=int, default=1000)
    ap.add_argument("--namespaces", type=int, default=100)  # as issue 8 asks
    ap.add_argument("--velero", action=argparse.BooleanOptionalAction, default=None)
    ap.add_argument("--json", default=str(ROOT / "bench" / "results" / "bench.json"))
    ap.add_argument("--fill-workers", type=int, default=32, help="threads of the generator")
    ap.add_argument(
        "--memory-counts",
        default="10000,100000",
        help="ConfigMap counts for the peak RSS comparison ('' to skip)",
    )
    ap.add_argument(
        "--settle-timeout",
        type=float,
        default=300,
        help="longest wait, before each timed step, for the planes to settle (0: no wait)",
    )
    args = ap.parse_args()
    with_velero = args.velero
    if with_velero is None:
        with_velero = velero_binary().exists()
    elif with_velero and not velero_binary().exists():
        raise SystemExit(f"no velero binary in {velero_binary().parent} (run hack/build.sh velero)")
    counts = [int(c) for c in args.memory_counts.split(",") if c]
    result = run(
        args.objects, args.namespaces, with_velero, args.fill_workers, counts, args.settle_timeout
    )
    print(table(result))
    path = Path(args.json)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
