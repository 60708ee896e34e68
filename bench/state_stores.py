"""Time and peak memory of the restore's state stores and the backup's tarball writer at
100k objects, without a cluster (issue 18: keep the hand-made spool, ItemTable,
ResultTable and ustar writer, or replace them with sqlite3 and tarfile, whichever is
simpler at equal speed and memory).

Each variant is a checkout (`--tree PATH`, repeatable; main's own code when none is
given), measured in fresh subprocesses with that checkout first on PYTHONPATH:
  backup:  N realistic objects (ConfigMaps, Secrets, Deployments, ~1-2 KB of JSON each)
           serialized as backup/sink.py does and written at both Velero paths through
           TarballWriter into a file:// store (+ velero-backup.json);
  restore: load_backup of that backup, make_plan, every level's items read once
           (desired object) by 16 threads that each put a ResultTable row, then the
           results iterated once.
Peak RSS is the child's ru_maxrss; `base` is its RSS after the imports (kubernetes,
networkx), before any work.  Best (lowest) of --repeat runs for each figure.

    .venv/bin/python bench/state_stores.py --tree /work/main --tree ../other-checkout
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BACKUP = "bench"
NAMESPACES = 100


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _cpu() -> float:
    """CPU seconds of this process, all threads (less swayed than wall time by other load)."""
    use = resource.getrusage(resource.RUSAGE_SELF)
    return use.ru_utime + use.ru_stime


def _noise(seed: str, n: int) -> str:
    """n hex characters that gzip cannot shrink much, different per object."""
    out, i = "", 0
    while len(out) < n:
        out += hashlib.sha256(f"{seed}/{i}".encode()).hexdigest()
        i += 1
    return out[:n]


def _meta(kind: str, ns: str, name: str, i: int) -> dict[str, Any]:
    return {
        "name": name,
        "namespace": ns,
        "uid": _noise(f"uid{i}", 32),
        "resourceVersion": str(1000 + i),
        "creationTimestamp": "2026-12-05T10:00:00Z",
        "labels": {"app": f"app-{i % 50}", "tier": "backend", "bench": kind.lower()},
        "annotations": {"owner": f"team-{i % 7}@example.com"},
        "managedFields": [
            {
                "manager": "kubectl-client-side-apply",
                "operation": "Update",
                "apiVersion": "v1",
                "time": "2026-12-05T10:00:00Z",
                "fieldsType": "FieldsV1",
                "fieldsV1": {"f:metadata": {"f:labels": {".": {}, "f:app": {}}}},
            }
        ],
    }


Resource = tuple[str, str, str, str]  # group, version, resource, kind
NS: Resource = ("", "v1", "namespaces", "Namespace")
CM: Resource = ("", "v1", "configmaps", "ConfigMap")
SECRET: Resource = ("", "v1", "secrets", "Secret")
DEPLOY: Resource = ("apps", "v1", "deployments", "Deployment")


def _doc(res: Resource, meta: dict[str, Any], **rest: Any) -> dict[str, Any]:
    api = f"{res[0]}/{res[1]}" if res[0] else res[1]
    return {"apiVersion": api, "kind": res[3], "metadata": meta, **rest}


def _container(name: str, i: int) -> dict[str, Any]:
    return {
        "name": "web",
        "image": f"registry.example.com/web:{i % 20}.0",
        "ports": [{"containerPort": 8080, "protocol": "TCP"}],
        "env": [{"name": f"VAR_{j}", "value": _noise(f"{name}{j}", 24)} for j in range(4)],
        "resources": {"limits": {"cpu": "500m", "memory": "256Mi"}},
        "terminationMessagePath": "/dev/termination-log",
        "imagePullPolicy": "IfNotPresent",
    }


def objects(n: int) -> Iterator[tuple[Resource, dict[str, Any]]]:
    """The namespaces, then ConfigMaps, Secrets and Deployments (4:3:3): n objects."""
    for k in range(NAMESPACES):
        meta = {"name": f"bench-{k:03d}", "uid": _noise(str(k), 32), "labels": {"bench": "ns"}}
        yield NS, _doc(NS, meta, spec={"finalizers": ["kubernetes"]})
    for i in range(n - NAMESPACES):
        ns, which = f"bench-{i % NAMESPACES:03d}", i % 10
        if which < 4:
            name = f"cm-{i:06d}"
            data = {"app.properties": _noise(name, 600), "mode": "production"}
            yield CM, _doc(CM, _meta("ConfigMap", ns, name, i), data=data)
        elif which < 7:
            name = f"secret-{i:06d}"
            data = {"password": _noise(name, 400), "user": "YWRtaW4="}
            yield SECRET, _doc(SECRET, _meta("Secret", ns, name, i), type="Opaque", data=data)
        else:
            name = f"web-{i:06d}"
            pod = {"containers": [_container(name, i)], "restartPolicy": "Always"}
            spec = {
                "replicas": 2,
                "selector": {"matchLabels": {"app": name}},
                "strategy": {"type": "RollingUpdate"},
                "template": {"metadata": {"labels": {"app": name}}, "spec": pod},
            }
            status = {"replicas": 2, "readyReplicas": 2, "observedGeneration": 1}
            yield DEPLOY, _doc(DEPLOY, _meta("Deployment", ns, name, i), spec=spec, status=status)


def child_backup(store_dir: str, n: int, write: bool) -> dict[str, Any]:
    import orjson

    from migrate.store import layout, open_store
    from migrate.store.archive import TarballWriter

    base = _rss_mb()
    store = open_store(f"file://{store_dir}")
    keys = layout.BackupKeys(BACKUP)
    start, cpu = time.perf_counter(), _cpu()
    size = 0
    if write:
        with TarballWriter(store, keys.tarball) as tw:
            tw.add(layout.VERSION_FILE, f"{layout.FORMAT_VERSION}\n".encode())
            for (group, version, res, _), obj in objects(n):
                data = orjson.dumps(obj, option=orjson.OPT_SORT_KEYS)  # as backup/sink.py
                meta = obj["metadata"]
                gr = layout.group_resource(res, group)
                for path in layout.item_paths(gr, version, meta.get("namespace"), meta["name"]):
                    tw.add(path, data)
        size = tw.size
    else:  # the same objects and JSON, no tarball: included in the backup's figures
        for (group, version, res, _), obj in objects(n):
            data = orjson.dumps(obj, option=orjson.OPT_SORT_KEYS)
            meta = obj["metadata"]
            layout.item_paths(
                layout.group_resource(res, group), version, meta.get("namespace"), meta["name"]
            )
    seconds, cpu = time.perf_counter() - start, _cpu() - cpu
    if write:
        now = datetime.now(UTC)
        doc = layout.backup_object(
            BACKUP,
            spec={"includedNamespaces": ["*"]},
            phase="Completed",
            started=now,
            completed=now,
            expiration=now + timedelta(days=30),
            total=n,
            backed_up=n,
            errors=0,
            warnings=0,
            git_version="v1.30.0",
            major=1,
            minor=30,
        )
        store.put(keys.metadata, json.dumps(doc).encode())
    return {"seconds": seconds, "cpu": cpu, "rss_mb": _rss_mb(), "base_mb": base, "bytes": size}


def child_restore(store_dir: str) -> dict[str, Any]:
    from concurrent.futures import ThreadPoolExecutor

    from migrate.cluster import APIResource, Discovery
    from migrate.restore.journal import ObjectResult, ResultTable
    from migrate.restore.plan import RestoreOptions, make_plan
    from migrate.restore.source import load_backup
    from migrate.restore.workers import run_all
    from migrate.store import open_store

    disc = Discovery([
        APIResource("", "v1", "namespaces", "Namespace", False, versions=("v1",)),
        APIResource("", "v1", "configmaps", "ConfigMap", True, versions=("v1",)),
        APIResource("", "v1", "secrets", "Secret", True, versions=("v1",)),
        APIResource("apps", "v1", "deployments", "Deployment", True, versions=("v1",)),
    ])  # fmt: skip
    base = _rss_mb()
    store = open_store(f"file://{store_dir}", read_only=True)
    marks, cpu = [time.perf_counter()], _cpu()
    loaded = load_backup(store, BACKUP)
    marks.append(time.perf_counter())
    plan = make_plan(loaded, RestoreOptions("bench-restore", BACKUP), disc)
    marks.append(time.perf_counter())
    results = ResultTable(plan.spool)
    read = getattr(type(plan.items[0]), "read_desired", None)  # the Item API may change

    def one(it: Any) -> None:
        desired = read(it) if read else it.desired
        uid = f"uid-{it.index}" if desired else ""
        results.put(it.index, ObjectResult(it.key, it.gr, "created", "", uid))

    with ThreadPoolExecutor(16) as pool:
        for level in plan.levels:
            run_all(pool, one, level, 64)
    marks.append(time.perf_counter())
    count = sum(1 for r in results if r.result == "created")
    marks.append(time.perf_counter())
    if count != len(plan.items):
        raise SystemExit(f"{count} results for {len(plan.items)} items")
    phases = [b - a for a, b in itertools.pairwise(marks)]
    return {
        "seconds": marks[-1] - marks[0],
        "cpu": _cpu() - cpu,
        "rss_mb": _rss_mb(),
        "base_mb": base,
        "objects": count,
        "phases": dict(zip(("load", "plan", "put", "iterate"), phases, strict=True)),
    }


def run_child(tree: Path, *args: str) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    cmd = [sys.executable, __file__, "--child", *args]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    if done.returncode:
        raise SystemExit(f"{' '.join(args)} failed:\n{done.stderr}")
    result: dict[str, Any] = json.loads(done.stdout.splitlines()[-1])
    return result


def best(runs: list[dict[str, Any]]) -> dict[str, Any]:
    out = min(runs, key=lambda r: r["seconds"])
    return {**out, "cpu": min(r["cpu"] for r in runs), "rss_mb": min(r["rss_mb"] for r in runs)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tree", action="append", type=Path, help="a checkout (default: main)")
    ap.add_argument("--objects", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--json", type=Path, help="also write the figures here")
    ap.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        tree = Path(args.child[1]).resolve()
        import migrate

        if not Path(migrate.__file__).resolve().is_relative_to(tree):
            raise SystemExit(f"imported {migrate.__file__}, not {tree}'s migrate")
        if args.child[0] == "restore":
            result = child_restore(args.child[2])  # (the object count is the backup's)
        else:
            result = child_backup(args.child[2], int(args.child[3]), args.child[0] == "backup")
        print(json.dumps(result))
        return 0
    trees = [t.resolve() for t in args.tree or [ROOT]]
    n = args.objects
    with tempfile.TemporaryDirectory(prefix="state-stores-") as tmp:
        os.environ["TMPDIR"] = tmp  # the children's scratch files, removed with it
        gen = best([run_child(trees[0], "gen", str(trees[0]), tmp, str(n))])
        runs: list[dict[str, list[dict[str, Any]]]] = [{"backup": [], "restore": []} for _ in trees]
        for step in ("backup", "restore"):  # trees take turns: outside load hits each alike
            for _ in range(args.repeat):
                for k, tree in enumerate(trees):
                    store = str(Path(tmp) / f"store{k}")
                    runs[k][step].append(run_child(tree, step, str(tree), store, str(n)))
    table = {str(t): {step: best(r[step]) for step in r} for t, r in zip(trees, runs, strict=True)}
    print(f"{n} objects; generating + serializing them alone: {gen['seconds']:.2f} s")
    print("wall s / CPU s (all threads) / peak RSS MB (RSS after imports), best of", args.repeat)
    head = ["tree", "backup", "cpu", "RSS", "base", "tar_MB", "restore", "cpu", "RSS", "base"]
    fmt = "{:<24} {:>9} {:>6} {:>5} {:>5} {:>7} {:>10} {:>6} {:>5} {:>5}"
    print(fmt.format(*head))
    for tree_name, row in table.items():
        b, r = row["backup"], row["restore"]
        cells = (b["seconds"], b["cpu"], b["rss_mb"], b["base_mb"], b["bytes"] / 1e6)
        cells += (r["seconds"], r["cpu"], r["rss_mb"], r["base_mb"])
        shown = [f"{c:.2f}" if i in (0, 1, 5, 6) else f"{c:.0f}" for i, c in enumerate(cells)]
        shown[4] = f"{cells[4]:.1f}"
        print(fmt.format(tree_name[-24:], *shown))
        print("    restore phases: " + ", ".join(f"{k} {v:.2f} s" for k, v in r["phases"].items()))
    if args.json:
        args.json.write_text(json.dumps({"objects": n, "gen": gen, "trees": table}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
