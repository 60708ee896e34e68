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
  - peak RSS              of `python -m migrate backup create` and `restore create`.

Prints a table, writes JSON, deletes every namespace and the CRD it made on both planes.

    .venv/bin/python bench/run.py --objects 1000 --namespaces 10
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import yaml
from backup_memory import env, peak_rss  # bench/ is sys.path[0] when run as a script
from verify_speed import raw_list

from migrate.backup.create import BackupOptions, _tasks, create_backup
from migrate.backup.scope import resolve_resources
from migrate.cluster import Cluster, ClusterRef
from migrate.errors import AlreadyExists, NotFound
from migrate.restore.plan import RestoreOptions
from migrate.restore.run import plan_restore, run_restore
from migrate.store import layout, open_store
from migrate.sync.wait import wait_for_sync
from migrate.transform.mappings import Mappings
from migrate.transform.scope import Scope
from migrate.verify import VerifyOptions, run_verify
from migrate.verify.normalize import Transforms
from migrate.verify.scope import ResourceFilter, VerifyScope, list_tasks, resolve_types

ROOT = Path(__file__).resolve().parent.parent
CACHE = Path(os.environ.get("KUBE_MIGRATE_CACHE", Path.home() / ".cache" / "kube-migrate"))
PARALLELISM = 8  # the default of backup, restore and verify; the baselines use the same
GROUP = "bench.kube-migrate.io"
# share of the N objects per kind (Deployments also bring a ReplicaSet and a Pod each)
MIX = {"configmaps": 40, "secrets": 20, "services": 10, "deployments": 5, "crs": 15, "rb": 10}


def versions() -> dict[str, str]:
    pairs = (
        ln.split("=", 1)
        for ln in (ROOT / "hack" / "versions.env").read_text().splitlines()
        if "=" in ln and not ln.startswith("#")
    )
    return {k.strip(): v.strip() for k, v in pairs}


def velero_home() -> Path:
    return CACHE / "bin" / f"velero-{versions()['VELERO']}"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    t0 = time.monotonic()
    out = fn()
    return time.monotonic() - t0, out


def pmap(fn: Callable[[Any], Any], items: list[Any], workers: int = PARALLELISM) -> list[Any]:
    with ThreadPoolExecutor(max(1, workers)) as pool:
        return list(pool.map(fn, items))


# -- the workload -------------------------------------------------------------------------
def crd(prefix: str) -> dict[str, Any]:
    plural = f"{prefix.replace('-', '')}widgets"
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{GROUP}"},
        "spec": {
            "group": GROUP,
            "scope": "Namespaced",
            "names": {"plural": plural, "singular": plural[:-1], "kind": plural.capitalize()[:-1]},
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "x-kubernetes-preserve-unknown-fields": True,
                        }
                    },
                }
            ],
        },
    }


def ensure_crd(c: Cluster, doc: dict[str, Any]) -> None:
    res = c.discovery().resolve("customresourcedefinitions.apiextensions.k8s.io")
    with suppress(AlreadyExists):
        c.create(res, doc)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        conds = (c.get(res, doc["metadata"]["name"]).get("status") or {}).get("conditions") or []
        if any(x["type"] == "Established" and x["status"] == "True" for x in conds):
            c.discovery(refresh=True)
            return
        time.sleep(0.2)
    raise SystemExit(f"CRD {doc['metadata']['name']} not Established")


def plan_objects(n: int, namespaces: list[str], kind: str) -> list[tuple[str, str, dict[str, Any]]]:
    """(resource, namespace, body) for n objects of the MIX, round-robin over namespaces."""
    total = sum(MIX.values())
    out: list[tuple[str, str, dict[str, Any]]] = []
    for what, share in MIX.items():
        count = max(1, n * share // total)
        for i in range(count):
            ns = namespaces[i % len(namespaces)]
            name = f"{what}-{i:06d}"
            labels = {"app": f"bench-{i % 50}", "bench": "kube-migrate"}
            meta = {"name": name, "labels": labels}
            if what == "configmaps":
                out.append(("configmaps", ns, {"metadata": meta, "data": {"k": "v" * 64}}))
            elif what == "secrets":
                value = base64.b64encode(f"secret-{i}".encode()).decode()
                body = {"metadata": meta, "type": "Opaque", "data": {"v": value}}
                out.append(("secrets", ns, body))
            elif what == "services":
                spec = {"selector": {"app": labels["app"]}, "ports": [{"port": 80}]}
                out.append(("services", ns, {"metadata": meta, "spec": spec}))
            elif what == "deployments":
                pod = {"metadata": {"labels": {"app": name}}, "spec": _pod_spec()}
                spec = {"replicas": 1, "selector": {"matchLabels": {"app": name}}, "template": pod}
                out.append(("deployments.apps", ns, {"metadata": meta, "spec": spec}))
            elif what == "crs":
                body = {"apiVersion": f"{GROUP}/v1", "kind": kind, "metadata": meta}
                body["spec"] = {"size": i, "color": "blue"}
                out.append(("cr", ns, body))
            else:
                body = {
                    "metadata": meta,
                    "roleRef": {
                        "apiGroup": "rbac.authorization.k8s.io",
                        "kind": "ClusterRole",
                        "name": "view",
                    },
                    "subjects": [{"kind": "ServiceAccount", "name": "default", "namespace": ns}],
                }
                out.append(("rolebindings.rbac.authorization.k8s.io", ns, body))
    return out


def _pod_spec() -> dict[str, Any]:
    return {
        "containers": [{"name": "app", "image": "registry.example/app:1.0"}],
        "tolerations": [
            {"key": "kwok.x-k8s.io/node", "operator": "Exists", "effect": "NoSchedule"}
        ],
    }


def generate(
    src: Cluster, namespaces: list[str], n: int, crd_doc: dict[str, Any], workers: int
) -> int:
    disc = src.discovery()
    nsres = disc.resolve("namespaces")
    pmap(lambda ns: src.create(nsres, {"metadata": {"name": ns}}), namespaces, workers)
    ensure_crd(src, crd_doc)
    disc = src.discovery()
    kind = crd_doc["spec"]["names"]["kind"]
    cr = disc.for_kind(f"{GROUP}/v1", kind)
    assert cr is not None
    objs = plan_objects(n, namespaces, kind)

    def make(o: tuple[str, str, dict[str, Any]]) -> None:
        res = cr if o[0] == "cr" else disc.resolve(o[0])
        src.create(res, o[2], o[1])

    pmap(make, objs, workers)
    return len(objs)


def wait_pods_running(c: Cluster, namespaces: list[str], want: int, timeout: float) -> int:
    pods = c.discovery().resolve("pods")
    deadline = time.monotonic() + timeout
    running = 0
    while time.monotonic() < deadline:
        running = sum(
            1
            for ns in namespaces
            for p in c.list(pods, ns)
            if (p.get("status") or {}).get("phase") == "Running"
        )
        if running >= want:
            break
        time.sleep(1)
    return running


# -- the measurements ---------------------------------------------------------------------
def raw_backup_list(src: Cluster, scope: Scope) -> int:
    """LIST every (resource, namespace) task backup create lists, parsed and dropped."""
    tasks = list(_tasks(src, scope, resolve_resources(src.discovery(), scope)))

    def one(t: Any) -> int:
        return sum(1 for _ in src.list(t[0], t[1], limit=500))

    return sum(pmap(one, tasks))


def raw_restore_post(dst: Cluster, store: Any, opts: RestoreOptions) -> int:
    """POST the plan's sanitized objects, level by level, as run_restore would, minus
    its bookkeeping (journal, owner re-pointing, results)."""
    _, plan = plan_restore(dst, store, opts)
    created = 0
    lock = threading.Lock()

    def post(key: Any) -> None:
        nonlocal created
        it = plan.graph.nodes[key]["item"]
        if it.skip:
            return
        res = dst.discovery().for_kind(str(it.desired.get("apiVersion", "")), it.kind)
        if res is None:
            return
        try:
            dst.create(res, it.desired, it.target_ns if res.namespaced else None)
        except AlreadyExists:
            return
        with lock:
            created += 1

    with ThreadPoolExecutor(PARALLELISM) as pool:
        for level in plan.levels:
            list(pool.map(post, level))
    return created


def raw_verify_list(src: Cluster, dst: Cluster, scope: Scope, mappings: Mappings) -> int:
    vs = VerifyScope((scope,), mappings)
    sdisc, tdisc = src.discovery(refresh=True), dst.discovery(refresh=True)
    types = resolve_types(sdisc, vs, ResourceFilter.resolve(sdisc, vs, True))
    vers = {r.full_name: r.version for r in sdisc}
    tasks = list_tasks("source", sdisc, types, vs) + list_tasks("target", tdisc, types, vs, vers)
    return raw_list(src, dst, tasks, PARALLELISM)


def measure_wait_sync(
    src: Cluster, store: Any, opts: BackupOptions
) -> tuple[float, float, Any, float]:
    """Backup in-process while wait_for_sync polls (0.2 s) in a thread.  Returns the
    backup's seconds, the seconds from the upload of its velero-backup.json (written
    last) to its detection, the summary, and the poll's own total seconds."""
    detected: dict[str, float] = {}
    marker = layout.BackupKeys(opts.name).metadata
    put = store.put

    def timed_put(key: str, *args: Any, **kw: Any) -> Any:
        out = put(key, *args, **kw)
        if key == marker:
            detected.setdefault("uploaded", time.monotonic())
        return out

    store.put = timed_put  # the instance only: note when velero-backup.json is in

    def watch() -> None:
        wait_for_sync(store, opts.name, timeout=600, interval=0.2)
        detected["at"] = time.monotonic()

    th = threading.Thread(target=watch, daemon=True)
    th.start()
    t0 = time.monotonic()
    try:
        summary = create_backup(src, store, opts)
    finally:
        store.put = put
    done = time.monotonic()
    th.join(600)
    if "at" not in detected or "uploaded" not in detected:
        raise SystemExit("wait-sync did not detect the backup")
    sync = max(detected["at"] - detected["uploaded"], 0.0)
    return done - t0, sync, summary, detected["at"] - t0


def mig(*args: str) -> list[str]:
    return [sys.executable, "-m", "migrate", *args, "--qps", "0", "-o", "json"]


# -- Velero -------------------------------------------------------------------------------
@contextmanager
def velero_server(  # noqa: PLR0915 (one linear setup, as in the test)
    dst: Cluster, e: dict[str, str], bucket: str, prefix: str
) -> Iterator[Any]:
    """A `velero server` against the target, its default location on bucket/prefix, as in
    tests/test_velero_compat.py; stopped and its namespace deleted on exit."""
    home = velero_home()
    ns = f"velero-{uuid.uuid4().hex[:6]}"
    crds = subprocess.run(
        [str(home / "velero"), "install", "--crds-only", "--dry-run", "-o", "yaml"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    crdres = dst.discovery().resolve("customresourcedefinitions.apiextensions.k8s.io")
    for d in yaml.safe_load_all(crds):
        if d and d.get("kind") == "CustomResourceDefinition":
            with suppress(AlreadyExists):
                dst.create(crdres, d)
    time.sleep(1)
    disc = dst.discovery(refresh=True)
    deadline = time.monotonic() + 60
    while disc.for_kind("velero.io/v1", "BackupStorageLocation") is None:
        if time.monotonic() > deadline:
            raise SystemExit("Velero CRDs not served")
        time.sleep(0.5)
        disc = dst.discovery(refresh=True)
    bsl = disc.for_kind("velero.io/v1", "BackupStorageLocation")
    assert bsl is not None
    nsres = disc.resolve("namespaces")
    version = versions()["VELERO"]
    workdir = Path(tempfile.mkdtemp(prefix="bench-velero-"))
    creds = workdir / "credentials"
    creds.write_text(
        f"[default]\naws_access_key_id={e['AWS_ACCESS_KEY_ID']}\n"
        f"aws_secret_access_key={e['AWS_SECRET_ACCESS_KEY']}\n"
    )
    server: subprocess.Popen[bytes] | None = None
    log = (workdir / "server.log").open("wb")
    try:
        dst.create(nsres, {"metadata": {"name": ns}})
        labels = {"component": "velero"}
        dst.create(
            disc.resolve("deployments.apps"),
            {
                "metadata": {"name": "velero", "labels": labels},
                "spec": {
                    "replicas": 0,
                    "selector": {"matchLabels": labels},
                    "template": {
                        "metadata": {"labels": labels},
                        "spec": {
                            "containers": [{"name": "velero", "image": f"velero/velero:{version}"}]
                        },
                    },
                },
            },
            ns,
        )
        dst.create(
            bsl,
            {
                "apiVersion": "velero.io/v1",
                "kind": "BackupStorageLocation",
                "metadata": {"name": "default"},
                "spec": {
                    "provider": "aws",
                    "default": True,
                    "objectStorage": {"bucket": bucket.removeprefix("s3://"), "prefix": prefix},
                    "config": {
                        "region": e.get("AWS_REGION", "us-east-1"),
                        "s3ForcePathStyle": "true",
                        "s3Url": e["AWS_ENDPOINT_URL"],
                        "checksumAlgorithm": "",
                    },
                },
            },
            ns,
        )
        server = subprocess.Popen(
            [
                str(home / "velero"),
                "server",
                "--kubeconfig",
                e["KUBE_MIGRATE_TARGET_KUBECONFIG"],
                "--namespace",
                ns,
                "--plugin-dir",
                str(home / "plugins"),
                "--metrics-address",
                f"127.0.0.1:{free_port()}",
                "--profiler-address",
                f"127.0.0.1:{free_port()}",
                "--backup-sync-period",
                "2s",
                "--store-validation-frequency",
                "5s",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=workdir,
            env={**e, "AWS_SHARED_CREDENTIALS_FILE": str(creds)},
        )

        def cli(*args: str, timeout: float = 1800) -> str:
            out = subprocess.run(
                [str(home / "velero"), *args, "-n", ns, "--kubeconfig", dst_kubeconfig],
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
            )
            if out.returncode:
                raise SystemExit(f"velero {' '.join(args)}: {out.stderr}{out.stdout}")
            return out.stdout

        dst_kubeconfig = e["KUBE_MIGRATE_TARGET_KUBECONFIG"]
        deadline = time.monotonic() + 120
        while (dst.get(bsl, "default", ns).get("status") or {}).get("phase") != "Available":
            if server.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"Velero's location not Available; see {workdir}/server.log")
            time.sleep(0.5)
        yield cli
    finally:
        if server is not None:
            server.terminate()
            try:
                server.wait(30)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
        log.close()
        with suppress(NotFound):
            dst.delete(nsres, ns)


def measure_velero(
    dst: Cluster, e: dict[str, str], bucket: str, prefix: str, backup: str, mapping: str
) -> dict[str, float]:
    with velero_server(dst, e, bucket, prefix) as cli:
        t0 = time.monotonic()
        while backup not in cli("backup", "get"):
            if time.monotonic() - t0 > 180:
                raise SystemExit("Velero did not sync our backup")
            time.sleep(0.5)
        synced = time.monotonic() - t0
        name = f"vr-{uuid.uuid4().hex[:6]}"
        took, out = timed(
            lambda: cli(
                "restore",
                "create",
                name,
                "--from-backup",
                backup,
                "--namespace-mappings",
                mapping,
                "--wait",
            )
        )
        if "Completed" not in out and "PartiallyFailed" not in out:
            raise SystemExit(f"Velero restore did not complete: {out}")
        phase = "Completed" if "Completed" in out else "PartiallyFailed"
        return {"veleroSyncSeconds": synced, "veleroRestoreSeconds": took, "veleroPhase": phase}


# -- the run ------------------------------------------------------------------------------
class Bench:
    """One run: the clusters, the bucket prefix, the namespaces and their mapped copies."""

    def __init__(self, n: int, k: int) -> None:
        self.e = e = env()
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
        self.tags = ["ours", "raw", "rss", "velero"]

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

    def restore(self) -> dict[str, Any]:
        """restore create into <ns>-ours, raw POST into <ns>-raw, CLI RSS into <ns>-rss."""
        dst, store = self.dst, self.store
        ropts = RestoreOptions(
            name=f"bench-{self.run_id}",
            backup="bench",
            mappings=Mappings(namespaces=self.mapped("ours")),
        )
        restore_s, rsum = timed(lambda: run_restore(dst, store, ropts))
        if rsum.phase != "Completed":
            raise SystemExit(f"restore {rsum.phase}: {dict(rsum.counts)}")
        raw_opts = RestoreOptions(
            name=f"raw-{self.run_id}",
            backup="bench",
            mappings=Mappings(namespaces=self.mapped("raw")),
        )
        raw_s, posted = timed(lambda: raw_restore_post(dst, store, raw_opts))
        argv = mig("restore", "create", f"rss-{self.run_id}", "--from-backup", "bench")
        argv += ["--namespace-mappings", self.mapping_arg("rss")]
        argv += ["--kubeconfig", self.e["KUBE_MIGRATE_TARGET_KUBECONFIG"], "--bucket", self.bucket]
        rss = peak_rss(argv, self.e)
        print(f"restore {restore_s:.2f}s, raw POST {raw_s:.2f}s ({posted} objects)")
        return {
            "restoreCreated": rsum.counts["created"],
            "rawPosted": posted,
            "restoreSeconds": restore_s,
            "rawPostSeconds": raw_s,
            "restorePeakRssMiB": rss / 1024,
        }

    def verify(self) -> dict[str, Any]:
        """verify the source against <ns>-ours; best of two, as the raw LIST."""
        src, dst, scope = self.src, self.dst, self.scope
        vmap = Mappings(namespaces=self.mapped("ours"))
        vopts = VerifyOptions(scope, Transforms(mappings=vmap), parallelism=PARALLELISM)
        verify_s, report = timed(lambda: run_verify(src, dst, vopts))
        verify_s = min(verify_s, timed(lambda: run_verify(src, dst, vopts))[0])
        raw_s = min(timed(lambda: raw_verify_list(src, dst, scope, vmap))[0] for _ in range(2))
        drifted = len(report.drifted)
        print(f"verify {verify_s:.2f}s, raw LIST both {raw_s:.2f}s, drifted {drifted}")
        return {
            "verifyObjects": len(report.results),
            "verifyDrifted": drifted,
            "verifySeconds": verify_s,
            "rawVerifyListSeconds": raw_s,
        }

    def velero(self) -> dict[str, Any]:
        out = measure_velero(
            self.dst,
            self.e,
            self.e["KUBE_MIGRATE_BUCKET"],
            self.prefix,
            "bench",
            self.mapping_arg("velero"),
        )
        print(f"velero restore {out['veleroRestoreSeconds']:.2f}s")
        return out

    def cleanup(self) -> None:
        cleanup(self.src, self.dst, self.namespaces, self.crd, self.tags)


def run(n: int, k: int, with_velero: bool, workers: int) -> dict[str, Any]:
    b = Bench(n, k)
    out: dict[str, Any] = {"objects": n, "namespaces": k, "parallelism": PARALLELISM}
    try:
        out |= b.fill(workers)
        out |= b.backup()
        out |= b.restore()
        out |= b.verify()
        if with_velero:
            out |= b.velero()
    finally:
        b.cleanup()
    rounded = {key: round(v, 4) if isinstance(v, float) else v for key, v in out.items()}
    return rounded | ratios(out)


def ratios(o: dict[str, Any]) -> dict[str, float]:
    r = {
        "backupOverRawList": o["backupSeconds"] / o["rawListSeconds"],
        "restoreOverRawPost": o["restoreSeconds"] / o["rawPostSeconds"],
        "verifyOverRawList": o["verifySeconds"] / o["rawVerifyListSeconds"],
    }
    if "veleroRestoreSeconds" in o:
        r["veleroOverOurs"] = o["veleroRestoreSeconds"] / o["restoreSeconds"]
    return {k: round(v, 2) for k, v in r.items()}


def cleanup(
    src: Cluster, dst: Cluster, namespaces: list[str], crd_doc: dict[str, Any], tags: list[str]
) -> None:
    for c, names in (
        (src, namespaces),
        (dst, namespaces + [f"{ns}-{t}" for ns in namespaces for t in tags]),
    ):
        nsres = c.discovery().resolve("namespaces")
        crdres = c.discovery().resolve("customresourcedefinitions.apiextensions.k8s.io")

        def drop(name: str, c: Cluster = c, nsres: Any = nsres) -> None:
            with suppress(NotFound):
                c.delete(nsres, name)

        pmap(drop, names)
        with suppress(NotFound):
            c.delete(crdres, crd_doc["metadata"]["name"])


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
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--objects", type=int, default=1000)
    ap.add_argument("--namespaces", type=int, default=10)
    ap.add_argument("--velero", action=argparse.BooleanOptionalAction, default=None)
    ap.add_argument("--json", default=str(ROOT / "bench" / "results" / "bench.json"))
    ap.add_argument("--fill-workers", type=int, default=32, help="threads of the generator")
    args = ap.parse_args()
    with_velero = args.velero
    if with_velero is None:
        with_velero = (velero_home() / "velero").exists()
    elif with_velero and not (velero_home() / "velero").exists():
        raise SystemExit(f"no velero binary in {velero_home()} (run hack/build.sh velero)")
    result = run(args.objects, args.namespaces, with_velero, args.fill_workers)
    print(table(result))
    path = Path(args.json)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
