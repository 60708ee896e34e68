"""How long `verify` takes next to the time it takes just to LIST both clusters.

The goal (issue 6): verify of 10k objects within 1.5x of the raw LIST of both sides.
Fills one namespace on each plane with the same objects (80% ConfigMaps, 20% Secrets,
raw parallel creates, as if restored), then times, five times each, best kept:
  - list: every LIST verify makes (the same tasks, both clusters, same parallelism),
    objects parsed and dropped, by a plain HTTP client (bench/rawhttp.py), not ours;
  - verify: run_verify in-process (list + normalize + compare + report);
  - cli: `kube-migrate verify -o json` as a user runs it (adds interpreter start-up).
Prints a table and writes bench/results/verify_speed.json.

    .venv/bin/python bench/verify_speed.py --counts 1000,10000
"""

from __future__ import annotations

import argparse
import base64
import json
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from memory import env  # bench/ is sys.path[0] when run as a script
from rawhttp import RawClient

from migrate.cluster import Cluster, ClusterRef
from migrate.transform.mappings import Mappings
from migrate.transform.scope import Scope
from migrate.verify import VerifyOptions, run_verify
from migrate.verify.scope import ListTask, ResourceFilter, VerifyScope, list_tasks, resolve_types

ROOT = Path(__file__).resolve().parent.parent


def fill(c: Cluster, ns: str, n: int) -> None:
    disc = c.discovery()
    c.create(disc.resolve("namespaces"), {"metadata": {"name": ns}})
    cm, secret = disc.resolve("configmaps"), disc.resolve("secrets")

    def make(i: int) -> None:
        meta = {"name": f"obj-{i:06d}", "labels": {"app": "bench", "shard": str(i % 16)}}
        if i % 5 == 4:
            value = base64.b64encode(f"secret-{i}".encode()).decode()
            c.create(secret, {"metadata": meta, "type": "Opaque", "data": {"v": value}}, ns)
        else:
            c.create(cm, {"metadata": meta, "data": {"k": "v" * 64, "i": str(i)}}, ns)

    with ThreadPoolExecutor(32) as pool:
        list(pool.map(make, range(n)))


def raw_list(clients: dict[str, RawClient], tasks: list[ListTask], parallelism: int) -> int:
    def one(t: ListTask) -> int:
        return clients[t.side].list_count(t.res.path(t.namespace))

    with ThreadPoolExecutor(parallelism) as pool:
        return sum(pool.map(one, tasks))


def best(fn: Callable[[], object], runs: int = 5) -> float:
    times = []
    for _ in range(runs):
        t0 = time.monotonic()
        fn()
        times.append(time.monotonic() - t0)
    return min(times)


def measure(n: int, e: dict[str, str], parallelism: int) -> dict[str, float]:
    src = Cluster(ClusterRef(e["KUBE_MIGRATE_SOURCE_KUBECONFIG"]), qps=0, pool_size=40)
    dst = Cluster(ClusterRef(e["KUBE_MIGRATE_TARGET_KUBECONFIG"]), qps=0, pool_size=40)
    ns = f"bench-verify-{n}-{uuid.uuid4().hex[:5]}"
    try:
        fill(src, ns, n)
        fill(dst, ns, n)
        vs = VerifyScope((Scope(include_namespaces=(ns,)),), Mappings())
        sdisc, tdisc = src.discovery(), dst.discovery()
        types = resolve_types(sdisc, vs, ResourceFilter.resolve(sdisc, vs, True))
        versions = {r.full_name: r.version for r in sdisc}
        tasks = list_tasks("source", sdisc, types, vs)
        tasks += list_tasks("target", tdisc, types, vs, versions)
        raw = {
            s: RawClient(e[f"KUBE_MIGRATE_{s.upper()}_KUBECONFIG"]) for s in ("source", "target")
        }
        listed = raw_list(raw, tasks, parallelism)
        t_list = best(lambda: raw_list(raw, tasks, parallelism))
        opts = VerifyOptions(Scope(include_namespaces=(ns,)), parallelism=parallelism)
        report = run_verify(src, dst, opts)
        assert not report.drift, report.summary()
        t_verify = best(lambda: run_verify(src, dst, opts))
        argv = [
            sys.executable,
            "-m",
            "migrate",
            "verify",
            "--include-namespaces",
            ns,
            "-o",
            "json",
            "--qps",
            "0",
            "--parallelism",
            str(parallelism),
        ]
        t_cli = best(lambda: subprocess.run(argv, env=e, check=True, capture_output=True))
    finally:
        for c in (src, dst):
            c.delete(c.discovery().resolve("namespaces"), ns)
    return {
        "objects": len(report.results),
        "listedBothSides": listed,
        "listSeconds": round(t_list, 2),
        "verifySeconds": round(t_verify, 2),
        "cliSeconds": round(t_cli, 2),
        "verifyOverList": round(t_verify / t_list, 2),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else "")
    ap.add_argument("--counts", default="1000,10000")
    ap.add_argument("--parallelism", type=int, default=8)
    args = ap.parse_args()
    e = env()
    rows = [measure(int(n), e, args.parallelism) for n in args.counts.split(",")]
    cols = list(rows[0])
    print("  ".join(f"{c:>16}" for c in cols))
    for r in rows:
        print("  ".join(f"{r[c]:>16}" for c in cols))
    out = ROOT / "bench" / "results" / "verify_speed.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
