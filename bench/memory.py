"""Peak memory and time of `kube-migrate backup create` and `restore create` as the
object count grows (issue 8: < 400 MB, flat from 10k to 100k objects).

The backup streams objects into the tarball and the upload; the restore keeps each
object's names and key in memory and the objects and results in a scratch file
(migrate/restore/spool.py), so both should stay well under 400 MB at 100k.  Each
size fills its own namespace on the source plane (raw parallel creates), backs it up
(subprocess, peak RSS polled), restores that backup into the target under a mapped
namespace (subprocess, peak RSS polled), and times a raw LIST of the same objects
(bench/rawhttp.py: plain HTTP, not our client).  Prints a table and writes
bench/results/memory.json.

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
from pathlib import Path

from rawhttp import RawClient  # bench/ is sys.path[0] when run as a script

from migrate.cluster import Cluster, ClusterRef

ROOT = Path(__file__).resolve().parent.parent


def env() -> dict[str, str]:
    out = dict(os.environ)
    for line in (ROOT / ".dev-env" / "env").read_text().splitlines():
        key, _, val = line.removeprefix("export ").partition("=")
        out.setdefault(key, val)
    return out


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


def measure(e: dict[str, str], src: Cluster, dst: Cluster, n: int) -> dict[str, float]:
    ns = f"bench-mem-{n}-{uuid.uuid4().hex[:5]}"
    bucket = f"{e['KUBE_MIGRATE_BUCKET']}/bench"
    try:
        fill(src, ns, n)
        path = src.discovery().resolve("configmaps").path(ns)
        raw = RawClient(e["KUBE_MIGRATE_SOURCE_KUBECONFIG"])
        t0 = time.monotonic()
        listed = raw.list_count(path)
        raw_list = time.monotonic() - t0
        raw.close()
        backup_s, backup_rss = timed_rss(
            ["backup", "create", ns, "--include-namespaces", ns, "--bucket", bucket,
             "--kubeconfig", e["KUBE_MIGRATE_SOURCE_KUBECONFIG"]],
            e,
        )  # fmt: skip
        restore_s, restore_rss = timed_rss(
            ["restore", "create", ns, "--from-backup", ns, "--bucket", bucket,
             "--namespace-mappings", f"{ns}:{ns}-r",
             "--kubeconfig", e["KUBE_MIGRATE_TARGET_KUBECONFIG"]],
            e,
        )  # fmt: skip
    finally:
        for c, name in ((src, ns), (dst, f"{ns}-r")):
            with contextlib.suppress(Exception):  # cleanup of what may not exist
                c.delete(c.discovery().resolve("namespaces"), name)
    return {
        "objects": listed,
        "backupSeconds": backup_s,
        "rawListSeconds": round(raw_list, 2),
        "backupPeakRssMiB": backup_rss,
        "restoreSeconds": restore_s,
        "restorePeakRssMiB": restore_rss,
    }


def run(counts: list[int]) -> list[dict[str, float]]:
    e = env()
    src = Cluster(ClusterRef(e["KUBE_MIGRATE_SOURCE_KUBECONFIG"]), qps=0, pool_size=40)
    dst = Cluster(ClusterRef(e["KUBE_MIGRATE_TARGET_KUBECONFIG"]), qps=0, pool_size=40)
    return [measure(e, src, dst, n) for n in counts]


COLUMNS = [
    ("objects", "objects"),
    ("backupSeconds", "backup s"),
    ("rawListSeconds", "raw LIST s"),
    ("backupPeakRssMiB", "backup RSS MiB"),
    ("restoreSeconds", "restore s"),
    ("restorePeakRssMiB", "restore RSS MiB"),
]


def table(rows: list[dict[str, float]]) -> str:
    lines = [" ".join(f"{title:>15}" for _, title in COLUMNS)]
    lines += [" ".join(f"{r[key]:>15}" for key, _ in COLUMNS) for r in rows]
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
    p.add_argument("--json", type=Path, default=ROOT / "bench" / "results" / "memory.json")
    args = p.parse_args()
    rows = run([int(x) for x in args.counts.split(",")])
    print(table(rows))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
