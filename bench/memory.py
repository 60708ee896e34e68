"""Backup and restore as the object count grows: their speed next to the raw LIST and
POST of the same objects (issue 18: <= 1.2x at 1k, 10k and 100k), and the CLI's peak
memory (issue 8: < 400 MB, flat from 10k to 100k objects).

The backup streams objects into the tarball and the upload; the restore keeps each
object's names and key in memory and the objects and results in a scratch file
(migrate/restore/spool.py), so both should stay well under 400 MB at 100k.  Each
size fills its own namespace on the source plane (raw parallel creates), then, each
step after the planes settled:
- the raw LIST of the backup's own tasks (bench/rawhttp.py: plain HTTP, not our
  client) and `create_backup` in-process, order raw, ours, ours, raw, best of two each;
- `kube-migrate backup create` as a subprocess, its peak RSS polled;
- the raw POST of the restore plan into <ns>-sr, then `run_restore` in-process at the
  CLI's default flags into <ns>-sd, one sample each (ours last, against the larger
  etcd);
- `kube-migrate restore create` as a subprocess into <ns>-r, its peak RSS polled.
In-process against in-process, so no ratio carries the interpreter's start-up; the
subprocesses' seconds (cliBackupSeconds, cliRestoreSeconds) include it and are shown
for the record only.  Prints a table and writes bench/results/memory.json.

    .venv/bin/python bench/memory.py --counts 10000,100000
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import Any

import click
from baselines import backup_list_paths, raw_list, raw_restore_post, restore_posts, timed
from rawhttp import RawClient  # bench/ is sys.path[0] when run as a script
from workload import RESTORE_PARALLELISM, wait_quiet

from migrate.backup.create import BackupOptions, create_backup
from migrate.cli.main import cli
from migrate.cluster import Cluster, ClusterRef
from migrate.restore.plan import RestoreOptions
from migrate.restore.run import run_restore
from migrate.store import open_store
from migrate.transform.mappings import Mappings
from migrate.transform.scope import Scope

ROOT = Path(__file__).resolve().parent.parent


def env() -> dict[str, str]:
    out = dict(os.environ)
    for line in (ROOT / ".dev-env" / "env").read_text().splitlines():
        key, _, val = line.removeprefix("export ").partition("=")
        out.setdefault(key, val)
    return out


def cli_defaults(*command: str) -> dict[str, Any]:
    """The defaults `kube-migrate <command>` declares for its options: what a user gets
    without flags.  Read from the CLI itself, so the benchmark follows a default that
    moves (the restore's rate limit, wait-sync's poll interval)."""
    cmd: Any = cli
    for name in command:  # the root group imports a command's module when asked for it
        cmd = cmd.get_command(click.Context(cmd), name)
    return {p.name: p.default for p in cmd.params if p.name}


def peak_rss(argv: list[str], e: dict[str, str]) -> int:
    """Run argv; return its peak RSS in KiB (VmHWM, polled until it exits)."""
    proc = subprocess.Popen(argv, env=e, stdout=subprocess.DEVNULL)
    peak = 0
    while proc.poll() is None:
        try:
            status = Path(f"/proc/{proc.pid}/status").read_text()
            peak = max(peak, int(status.split("VmHWM:")[1].split()[0]))
        except (OSError, IndexError, ValueError):
            pass
        time.sleep(0.05)
    if proc.returncode:
        raise SystemExit(f"{' '.join(argv[2:5])} failed with exit code {proc.returncode}")
    return peak


def fill(c: Cluster, ns: str, n: int) -> None:
    disc = c.discovery()
    c.create(disc.resolve("namespaces"), {"metadata": {"name": ns}})
    cm = disc.resolve("configmaps")
    body = {"k": "v" * 64}

    def make(i: int) -> None:
        c.create(cm, {"metadata": {"name": f"cm-{i:06d}"}, "data": body}, ns)

    with ThreadPoolExecutor(32) as pool:
        list(pool.map(make, range(n)))


def mig(*args: str) -> list[str]:
    """argv of a kube-migrate subprocess as the benchmarks run it (no client-side limit)."""
    return [sys.executable, "-m", "migrate", *args, "--qps", "0", "-o", "json"]


def timed_rss(argv: list[str], e: dict[str, str]) -> tuple[float, float]:
    """(seconds, peak RSS MiB) of one kube-migrate subprocess."""
    t0 = time.monotonic()
    peak = peak_rss(mig(*argv), e)
    return round(time.monotonic() - t0, 2), round(peak / 1024, 1)


class Planes:
    """What every count shares: the planes' clients (ours fills and plans, the raw ones
    are the baselines), the run's bucket prefix and the restore's default flags."""

    def __init__(self, bucket: str | None, settle_timeout: float) -> None:
        self.e = e = env()
        for key, val in e.items():  # the in-process clients (boto3) read their credentials
            os.environ.setdefault(key, val)  # from here, as bench/run.py's
        self.src = Cluster(ClusterRef(e["KUBE_MIGRATE_SOURCE_KUBECONFIG"]), qps=0, pool_size=40)
        self.dst = Cluster(ClusterRef(e["KUBE_MIGRATE_TARGET_KUBECONFIG"]), qps=0, pool_size=40)
        self.raw_src = RawClient(e["KUBE_MIGRATE_SOURCE_KUBECONFIG"])
        self.raw_dst = RawClient(e["KUBE_MIGRATE_TARGET_KUBECONFIG"])
        self.bucket = bucket or f"{e['KUBE_MIGRATE_BUCKET']}/bench-mem-{uuid.uuid4().hex[:6]}"
        self.store = open_store(self.bucket)
        self.defaults = cli_defaults("restore", "create")
        self.settle_timeout = settle_timeout

    def settle(self) -> float:
        """Before a timed step: wait out the last step's aftermath (see wait_quiet)."""
        return wait_quiet([self.src, self.dst], self.settle_timeout)

    def close(self) -> None:
        self.raw_src.close()
        self.raw_dst.close()


def backup_vs_list(p: Planes, ns: str) -> dict[str, Any]:
    """create_backup in-process (backups <ns>-b1, <ns>-b2) vs the raw LIST of its own
    (resource, namespace) tasks: raw, ours, ours, raw, best of two each.  Ours runs on
    a client of its own, made as bench/run.py's (no rate limit, a pool of 40)."""
    scope = Scope(include_namespaces=(ns,))
    paths = backup_list_paths(p.src, scope)  # worked out before the clock
    ours = Cluster(ClusterRef(p.e["KUBE_MIGRATE_SOURCE_KUBECONFIG"]), qps=0, pool_size=40)
    samples: dict[str, list[float]] = {"ours": [], "raw": []}
    listed = items = 0
    for i, kind in enumerate(("raw", "ours", "ours", "raw")):
        if kind == "raw":
            seconds, listed = timed(lambda: raw_list(p.raw_src, paths))
        else:
            opts = BackupOptions(f"{ns}-b{i}", scope)
            seconds, summary = timed(partial(create_backup, ours, p.store, opts))
            if summary.phase != "Completed":
                raise SystemExit(f"backup {opts.name} {summary.phase}")
            items = summary.items
        samples[kind].append(seconds)
    return {
        "backupItems": items,
        "rawListedObjects": listed,
        "backupSeconds": round(min(samples["ours"]), 3),
        "rawListSeconds": round(min(samples["raw"]), 3),
        "backupSamples": [round(x, 3) for x in samples["ours"]],
        "rawListSamples": [round(x, 3) for x in samples["raw"]],
    }


def restore_vs_post(p: Planes, ns: str, backup: str) -> tuple[dict[str, Any], float]:
    """The raw POST of the restore plan into <ns>-sr, then run_restore in-process at the
    CLI's default flags (its rate limit, burst and parallelism, on a new client as each
    CLI run's) into <ns>-sd: one sample each, raw first, the planes settled before
    each.  Returns the figures and the seconds spent settling."""
    d = p.defaults

    def opts(tag: str, parallelism: int) -> RestoreOptions:
        mapped = Mappings(namespaces={ns: f"{ns}-{tag}"})
        return RestoreOptions(f"{ns}-{tag}", backup, mappings=mapped, parallelism=parallelism)

    posts = restore_posts(p.dst, p.store, opts("sr", RESTORE_PARALLELISM))  # before the clock
    settled = p.settle()
    raw_s, posted = timed(lambda: raw_restore_post(p.raw_dst, posts))
    posts.clear()  # 100k planned objects: not held through our restore
    ref = ClusterRef(p.e["KUBE_MIGRATE_TARGET_KUBECONFIG"])
    target = Cluster(ref, qps=d["qps"], burst=d["burst"], pool_size=d["parallelism"] + 4)
    target.discovery()  # warmed up, as bench/run.py's
    ropts = opts("sd", d["parallelism"])
    settled += p.settle()
    ours_s, rsum = timed(lambda: run_restore(target, p.store, ropts))
    if rsum.phase != "Completed":
        raise SystemExit(f"restore {ropts.name} {rsum.phase}: {dict(rsum.counts)}")
    return {
        "rawPosted": posted,
        "restoreCreated": rsum.counts["created"],
        "rawPostSeconds": round(raw_s, 3),
        "restoreDefaultSeconds": round(ours_s, 3),
    }, settled


def measure(p: Planes, n: int) -> dict[str, Any]:
    ns = f"bench-mem-{n}-{uuid.uuid4().hex[:5]}"
    e, src, dst = p.e, p.src, p.dst
    try:
        fill(src, ns, n)
        objects = p.raw_src.list_count(src.discovery().resolve("configmaps").path(ns))
        settled = p.settle()
        row: dict[str, Any] = {"objects": objects} | backup_vs_list(p, ns)
        # the CLI as a subprocess, for its peak RSS; its seconds include the start-up
        # of the interpreter and the CLI, so they are no match for the raw LIST's
        cli_backup_s, backup_rss = timed_rss(
            ["backup", "create", ns, "--include-namespaces", ns, "--bucket", p.bucket,
             "--kubeconfig", e["KUBE_MIGRATE_SOURCE_KUBECONFIG"]],
            e,
        )  # fmt: skip
        restored, waited = restore_vs_post(p, ns, f"{ns}-b1")
        cli_restore_s, restore_rss = timed_rss(
            ["restore", "create", ns, "--from-backup", ns, "--bucket", p.bucket,
             "--namespace-mappings", f"{ns}:{ns}-r",
             "--kubeconfig", e["KUBE_MIGRATE_TARGET_KUBECONFIG"]],
            e,
        )  # fmt: skip
    finally:
        for c, name in ((src, ns), (dst, f"{ns}-r"), (dst, f"{ns}-sd"), (dst, f"{ns}-sr")):
            with contextlib.suppress(Exception):  # cleanup of what may not exist
                c.delete(c.discovery().resolve("namespaces"), name)
    return (
        row
        | restored
        | {
            "cliBackupSeconds": cli_backup_s,  # subprocess: start-up included
            "backupPeakRssMiB": backup_rss,
            "cliRestoreSeconds": cli_restore_s,  # subprocess: start-up included
            "restorePeakRssMiB": restore_rss,
            "settleSeconds": round(settled + waited, 1),
        }
    )


def run(counts: list[int], bucket: str | None = None, settle: float = 300) -> list[dict[str, Any]]:
    """One row per count, smallest first; `bucket`: the run's prefix (default: one of
    its own)."""
    p = Planes(bucket, settle)
    try:
        return [measure(p, n) for n in counts]
    finally:
        p.close()


COLUMNS = [
    ("objects", "objects"),
    ("rawListSeconds", "raw LIST s"),
    ("backupSeconds", "backup s"),
    ("cliBackupSeconds", "CLI backup s"),
    ("backupPeakRssMiB", "backup MiB"),
    ("rawPostSeconds", "raw POST s"),
    ("restoreDefaultSeconds", "restore s"),
    ("cliRestoreSeconds", "CLI restore s"),
    ("restorePeakRssMiB", "restore MiB"),
]


def table(rows: list[dict[str, Any]]) -> str:
    """The rows; backup / raw LIST and restore (default flags) / raw POST at each count
    (in-process both; the CLI's seconds include its start-up); the RSS growth."""
    lines = [" ".join(f"{title:>13}" for _, title in COLUMNS)]
    lines += [" ".join(f"{r[key]:>13}" for key, _ in COLUMNS) for r in rows]
    for r in rows:
        lines.append(
            f"{r['objects']} objects: backup / raw LIST "
            f"{r['backupSeconds'] / r['rawListSeconds']:.2f}x, restore (default flags) / "
            f"raw POST {r['restoreDefaultSeconds'] / r['rawPostSeconds']:.2f}x (target: <= 1.2x)"
        )
    if len(rows) > 1:
        first, last = rows[0], rows[-1]
        for what in ("backup", "restore"):
            ratio = last[f"{what}PeakRssMiB"] / first[f"{what}PeakRssMiB"]
            lines.append(
                f"{what} peak RSS {int(last['objects'])} vs {int(first['objects'])} objects: "
                f"{ratio:.2f}x (target: < 400 MB, flat)"
            )
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--counts", default="10000,100000")
    p.add_argument("--settle-timeout", type=float, default=300, help="as bench/run.py's")
    p.add_argument("--json", type=Path, default=ROOT / "bench" / "results" / "memory.json")
    args = p.parse_args()
    rows = run([int(x) for x in args.counts.split(",")], settle=args.settle_timeout)
    print(table(rows))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
