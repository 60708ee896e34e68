"""Every benchmark side by side, in one run, on the local planes (method: bench/README.md).

Fills the source with N objects over K namespaces, then measures each step next to its
physical limit or peer: backup create and verify vs raw LISTs, restore create (at the
CLI's default flags and with --qps 0) vs a raw POST of its plan and vs Velero, wait-sync
at the CLI's poll interval, peak RSS (here and at --memory-counts, bench/memory.py) and
the CLI's start-up (bench/startup.py).
Prints one row per target, writes JSON, deletes every namespace and the CRD it made on
both planes, and exits 3 when a figure misses its target (bench/targets.py).
This module is the run's order and its CLI; the workload is bench/workload.py, the
baselines (a plain HTTP client, bench/rawhttp.py) and wait-sync bench/baselines.py,
Velero's restore bench/velero_bench.py (its server: hack/devenv/velero.py).

    .venv/bin/python bench/run.py --objects 1000 --namespaces 100
"""

from __future__ import annotations

import argparse
import os
import uuid
from typing import Any

import memory
import startup
from baselines import (
    backup_list_paths,
    measure_wait_sync,
    raw_list,
    raw_restore_post,
    raw_verify_list,
    restore_posts,
    timed,
    verify_list_paths,
)
from memory import (
    ROOT,
    cli_defaults,
    env,
    mig,
    peak_rss,
)  # bench/ is sys.path[0] when run as a script
from rawhttp import RawClient
from targets import MAIN, conclude, ratios, verdicts
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
from migrate.units import parse_duration
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
        # the baselines' own client (plain HTTP), one per plane, connections kept alive
        self.raw = {
            "source": RawClient(e["KUBE_MIGRATE_SOURCE_KUBECONFIG"]),
            "target": RawClient(e["KUBE_MIGRATE_TARGET_KUBECONFIG"]),
        }
        self.restore_defaults = cli_defaults("restore", "create")
        interval = cli_defaults("backup", "wait-sync")["interval"]
        self.sync_interval = parse_duration(str(interval), "--interval").total_seconds()
        self.n, self.k = n, k
        self.run_id = uuid.uuid4().hex[:6]
        self.prefix = f"bench-{self.run_id}"
        self.bucket = f"{e['KUBE_MIGRATE_BUCKET']}/{self.prefix}"
        self.store = open_store(self.bucket)
        self.namespaces = [f"{self.prefix}-{i:03d}" for i in range(k)]
        self.crd = crd(self.prefix)
        self.scope = Scope(include_namespaces=tuple(self.namespaces))
        self.tags = ["ours", "ours2", "dflt", "dflt2", "raw", "raw2", "rss", "velero", "velerou"]
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
        src, scope, raw = self.src, self.scope, self.raw["source"]
        paths = backup_list_paths(src, scope)
        raw_s, listed = timed(lambda: raw_list(raw, paths))
        backup_s, sync_s, summary, _ = measure_wait_sync(
            src, self.store, BackupOptions("bench", scope), self.sync_interval
        )
        raw_s = min(raw_s, timed(lambda: raw_list(raw, paths))[0])
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
            "waitSyncInterval": self.sync_interval,
            "backupPeakRssMiB": rss / 1024,
        }

    def settle(self) -> float:
        """Before a timed step: wait out the last step's aftermath (see wait_quiet)."""
        waited = wait_quiet([self.src, self.dst], self.settle_timeout)
        self.settled += waited
        return waited

    def default_target(self) -> Cluster:
        """A target client as `restore create` without flags makes it (rate limit, pool),
        new for each sample as each CLI run's is; its discovery warmed up as the --qps 0
        client's is, so the two differ in their rate limit only."""
        d = self.restore_defaults
        ref = ClusterRef(self.e["KUBE_MIGRATE_TARGET_KUBECONFIG"])
        c = Cluster(ref, qps=d["qps"], burst=d["burst"], pool_size=d["parallelism"] + 4)
        c.discovery()
        return c

    def restore(self) -> dict[str, Any]:
        """restore create at the CLI's defaults (dflt) and with --qps 0 (ours) vs the raw
        POST of its plan, in the order ours, dflt, raw, raw, dflt, ours (drift in the
        machine's load cancels out), best of two each, the planes settled before each;
        then the CLI's RSS into <ns>-rss."""
        store, d, raw = self.store, self.restore_defaults, self.raw["target"]
        samples: dict[str, list[float]] = {"ours": [], "dflt": [], "raw": []}
        created: dict[str, int] = {}
        for tag in ("ours", "dflt", "raw", "raw2", "dflt2", "ours2"):
            kind = tag.rstrip("2")
            ropts = RestoreOptions(
                name=f"bench-{tag}-{self.run_id}",
                backup="bench",
                mappings=Mappings(namespaces=self.mapped(tag)),
                parallelism=d["parallelism"] if kind == "dflt" else RESTORE_PARALLELISM,
            )
            if kind == "raw":
                posts = restore_posts(self.dst, store, ropts)  # planned before the clock
                self.settle()
                seconds, created[kind] = timed(lambda p=posts: raw_restore_post(raw, p))
            else:
                dst = self.default_target() if kind == "dflt" else self.dst
                self.settle()
                seconds, rsum = timed(lambda c=dst, o=ropts: run_restore(c, store, o))
                if rsum.phase != "Completed":
                    raise SystemExit(f"restore ({tag}) {rsum.phase}: {dict(rsum.counts)}")
                created[kind] = rsum.counts["created"]
            samples[kind].append(seconds)
            print(f"restore ({tag}) {seconds:.2f}s")
        argv = mig("restore", "create", f"rss-{self.run_id}", "--from-backup", "bench")
        argv += ["--namespace-mappings", self.mapping_arg("rss")]
        argv += ["--kubeconfig", self.e["KUBE_MIGRATE_TARGET_KUBECONFIG"], "--bucket", self.bucket]
        rss = peak_rss(argv, self.e)
        best = {kind: min(v) for kind, v in samples.items()}
        print(
            f"restore {best['dflt']:.2f}s (defaults), {best['ours']:.2f}s (--qps 0), "
            f"raw POST {best['raw']:.2f}s ({created['raw']} objects)"
        )
        return {
            "restoreCreated": created["ours"],
            "rawPosted": created["raw"],
            "restoreSeconds": best["ours"],
            "restoreDefaultSeconds": best["dflt"],
            "rawPostSeconds": best["raw"],
            "restoreSamples": [round(x, 4) for x in samples["ours"]],
            "restoreDefaultSamples": [round(x, 4) for x in samples["dflt"]],
            "rawPostSamples": [round(x, 4) for x in samples["raw"]],
            "restoreDefaults": {k: d[k] for k in ("qps", "burst", "parallelism")},
            "restorePeakRssMiB": rss / 1024,
        }

    def verify(self) -> dict[str, Any]:
        """verify the source against <ns>-ours vs the raw LIST of both, in the order
        ours, raw, raw, ours (as the restore), the planes settled before each."""
        src, dst, scope = self.src, self.dst, self.scope
        vmap = Mappings(namespaces=self.mapped("ours"))
        vopts = VerifyOptions(scope, Transforms(mappings=vmap), parallelism=PARALLELISM)
        calls = verify_list_paths(src, dst, scope, vmap)  # worked out before the clock
        ours_s, raw_s, report = [], [], None
        for tag in ("ours", "raw", "raw", "ours"):
            self.settle()
            if tag == "ours":
                seconds, report = timed(lambda: run_verify(src, dst, vopts))
                ours_s.append(seconds)
            else:
                raw_s.append(timed(lambda: raw_verify_list(self.raw, calls))[0])
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
        """Velero at its defaults (client QPS 20, burst 30), compared with our restore at
        the CLI's defaults; then without that limit, compared with ours at --qps 0; each
        into other mapped namespaces."""
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
        for raw in self.raw.values():
            raw.close()


def run(
    n: int, k: int, with_velero: bool, workers: int, mem_counts: list[int], settle: float
) -> dict[str, Any]:
    b = Bench(n, k, settle)
    out: dict[str, Any] = {"objects": n, "namespaces": k, "parallelism": PARALLELISM}
    out["restoreParallelism"] = RESTORE_PARALLELISM
    try:
        b.settle()
        out |= startup.measure()  # the CLI's start-up (bench/startup.py): no cluster used
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
    if mem_counts:  # in the run's bucket prefix, each step after the planes settled
        rows = memory.run(mem_counts, b.bucket, settle)
        print(memory.table(rows))
        rounded["memory"] = rows
    return rounded | ratios(rounded)


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
    judged = verdicts(result, MAIN)
    conclude(result, judged, args.json)


if __name__ == "__main__":
    main()
