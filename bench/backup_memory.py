"""Peak memory and time of `kube-migrate backup create` as the object count grows.

The backup streams objects into the tarball and the upload, so its peak RSS should stay
flat from 10k to 100k small ConfigMaps.  Each size fills its own namespace on the source
plane (raw parallel creates), then times a backup of that namespace and a raw parallel
LIST of the same objects.  Prints a table and writes bench/results/backup_memory.json.

    .venv/bin/python bench/backup_memory.py --counts 1000,10000,100000
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

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
        raise SystemExit(f"backup failed with exit code {proc.returncode}")
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


def run(counts: list[int]) -> list[dict[str, float]]:
    e = env()
    src = Cluster(ClusterRef(e["KUBE_MIGRATE_SOURCE_KUBECONFIG"]), qps=0, pool_size=40)
    rows = []
    for n in counts:
        ns = f"bench-mem-{n}-{uuid.uuid4().hex[:5]}"
        fill(src, ns, n)
        t0 = time.monotonic()
        listed = sum(1 for _ in src.list(src.discovery().resolve("configmaps"), ns))
        raw_list = time.monotonic() - t0
        t0 = time.monotonic()
        peak = peak_rss(
            [
                sys.executable,
                "-m",
                "migrate",
                "backup",
                "create",
                ns,
                "--include-namespaces",
                ns,
                "--kubeconfig",
                e["KUBE_MIGRATE_SOURCE_KUBECONFIG"],
                "--bucket",
                f"{e['KUBE_MIGRATE_BUCKET']}/bench",
                "--qps",
                "0",
                "-o",
                "json",
            ],
            e,
        )
        took = time.monotonic() - t0
        rows.append(
            {
                "objects": listed,
                "backupSeconds": round(took, 2),
                "rawListSeconds": round(raw_list, 2),
                "peakRssMiB": round(peak / 1024, 1),
            }
        )
        src.delete(src.discovery().resolve("namespaces"), ns)
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--counts", default="1000,10000")
    args = p.parse_args()
    rows = run([int(x) for x in args.counts.split(",")])
    print(f"{'objects':>8} {'backup s':>9} {'raw LIST s':>11} {'peak RSS MiB':>13}")
    for r in rows:
        print(
            f"{r['objects']:>8} {r['backupSeconds']:>9} {r['rawListSeconds']:>11} "
            f"{r['peakRssMiB']:>13}"
        )
    if len(rows) > 1:
        print(f"RSS ratio largest/smallest: {rows[-1]['peakRssMiB'] / rows[0]['peakRssMiB']:.2f}")
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "backup_memory.json").write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
