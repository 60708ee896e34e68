"""Live migration next to a stop-everything one-shot migration of the same app (issue 22),
source plane to target plane, on the real nodes: one namespace with 10,000 ConfigMaps
(1 KiB each) and a Deployment whose claim holds 1 GiB (100 files of 10 MiB, random).

- one-shot: the app scaled to 0 (until its pod is gone), then `kube-migrate run` with
  backup, waitForSync, restore and waitReady into a namespace of its own on the target,
  then the target's app scaled to 1: its downtime is from the scale-down to the target's
  app Ready;
- live: `kube-migrate run playbooks/live-migrate.yaml`'s steps into another namespace,
  paused before the cut-over (`--stop-before cutover`); then 1% changes (100 ConfigMaps
  rewritten, one 10 MiB file rewritten) and `run --resume` cuts over: its downtime is the
  cut-over's own measure (the source's first stop to the target's app Ready), less the
  target app's start-up for the 10-second target.
Prints both downtimes side by side, writes bench/results/live_migration.json, exits 3 on a
missed target.

    .venv/bin/python bench/live_migration.py [--objects 10000]
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
from typing import Any

from targets import LIVE, conclude, verdicts  # bench/ is sys.path[0] as a script
from volume_data import NODE, ROOT, TOLERATE, env_file

from migrate.cluster import Cluster, ClusterRef
from migrate.errors import NotFound

BIN = Path(sys.executable).parent
FILES, FILE_MIB = 100, 10
APP = f"""
set -e
if [ ! -e /data/.filled ]; then
  i=0; while [ $i -lt {FILES} ]; do
    head -c {FILE_MIB << 20} /dev/urandom > /data/f$i; i=$((i+1)); done
  touch /data/.filled
fi
touch /tmp/ready
exec sleep 3600000
"""
VALUE = "x" * 1024


def app(image: str) -> list[dict[str, Any]]:
    return [
        {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "data"},
         "spec": {"accessModes": ["ReadWriteOnce"],
                  "resources": {"requests": {"storage": "2Gi"}}}},
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "app"},
         "spec": {"replicas": 1, "strategy": {"type": "Recreate"},
                  "selector": {"matchLabels": {"app": "bench"}},
                  "template": {"metadata": {"labels": {"app": "bench"}},
                               "spec": {"nodeSelector": NODE, "tolerations": TOLERATE,
                                        "terminationGracePeriodSeconds": 1,
                                        "containers": [{
                                            "name": "app", "image": image,
                                            "imagePullPolicy": "IfNotPresent",
                                            "command": ["sh", "-c", APP],
                                            "readinessProbe": {
                                                "exec": {"command": ["test", "-e", "/tmp/ready"]},
                                                "periodSeconds": 1},
                                            "volumeMounts": [{"name": "d",
                                                              "mountPath": "/data"}]}],
                                        "volumes": [{"name": "d", "persistentVolumeClaim":
                                                     {"claimName": "data"}}]}}}},
    ]  # fmt: skip


def cluster(side: str) -> Cluster:
    return Cluster(ClusterRef(os.environ[f"KUBE_MIGRATE_{side.upper()}_KUBECONFIG"]), name=side)


def ready(c: Cluster, ns: str, timeout: float = 900) -> float:
    deploy = c.discovery().resolve("deployments.apps")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if (c.get(deploy, "app", ns).get("status") or {}).get("readyReplicas") == 1:
            return time.monotonic()
        time.sleep(0.2)
    raise SystemExit(f"bench: app in {ns} not ready after {timeout}s")


def gone(c: Cluster, ns: str) -> None:
    pods = c.discovery().resolve("pods")
    while list(c.list(pods, ns, label_selector="app=bench")):
        time.sleep(0.2)


def playbook(path: Path, ns: str, to: str, live: bool) -> Path:
    steps = "[backup, waitForSync, restore, precopy, cutover]" if live else (
        "[backup, waitForSync, restore, waitReady]")  # fmt: skip
    held = "holdWorkloads: true, " if live else ""
    extra = f"  restore: {{{held}namespaceMappings: {{{ns}: {to}}}}}\n"
    if live:
        extra += "  precopy: {passes: 1}\n"
    path.write_text(
        "apiVersion: kube-migrate.io/v1alpha1\nkind: Playbook\nmetadata: {name: bench}\n"
        f"spec:\n  scope: {{includeNamespaces: [{ns}]}}\n  volumes: {{mode: all}}\n"
        f"  waitForSync: {{interval: 200ms}}\n{extra}  steps: {steps}\n"
    )
    return path


def km(*args: str, log: Path | None = None) -> str:
    """kube-migrate's JSON output; with `log`, its debug log (JSON lines) is kept there."""
    debug = ["-vv", "--log-format", "json"] if log else []
    out = subprocess.run([str(BIN / "kube-migrate"), *debug, *args, "-o", "json"],
                         capture_output=True, text=True, check=False, cwd=ROOT)  # fmt: skip
    if log:
        log.write_text(out.stderr)
    if out.returncode != 0:
        raise SystemExit(f"bench: kube-migrate {' '.join(args)}: {out.stderr[-2000:]}")
    return out.stdout


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--objects", type=int, default=10_000)
    a = p.parse_args()
    env_file()
    os.environ.setdefault("KUBE_MIGRATE_STATE_DIR", str(ROOT / ".dev-env" / "bench-state"))
    source, target = cluster("source"), cluster("target")
    ns = f"bench-live-{uuid.uuid4().hex[:5]}"
    work = ROOT / ".dev-env" / "bench-live"
    work.mkdir(parents=True, exist_ok=True)
    bucket = f"{os.environ['KUBE_MIGRATE_BUCKET'].rstrip('/')}/bench-live-{uuid.uuid4().hex[:6]}"
    ns_res, cms = source.discovery().resolve("namespaces"), source.discovery().resolve("configmaps")
    source.create(ns_res, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
    made: list[tuple[Cluster, str]] = [(source, ns)]
    try:
        print(f"bench: {a.objects} ConfigMaps and {FILES * FILE_MIB} MiB in {ns}", file=sys.stderr)
        with ThreadPoolExecutor(16) as pool:
            list(pool.map(lambda i: source.create(cms, {"apiVersion": "v1", "kind": "ConfigMap",
                          "metadata": {"name": f"c{i}"}, "data": {"v": VALUE}}, ns),
                          range(a.objects)))  # fmt: skip
        for obj in app(os.environ["KUBE_MIGRATE_TEST_IMAGE"]):
            source.create(source.discovery().for_kind(obj["apiVersion"], obj["kind"]), obj, ns)  # type: ignore[arg-type]
        ready(source, ns)
        result = one_shot(source, target, ns, bucket, work, made)
        result |= live(source, target, ns, bucket, work, made, a.objects)
    finally:
        for c, name in made:
            with contextlib.suppress(NotFound):
                c.delete(ns_res, name)
    result["objects"] = a.objects
    print(f"downtime: one-shot {result['oneShotDowntimeSeconds']:.1f} s, live cut-over "
          f"{result['liveWholeDowntimeSeconds']:.1f} s ({result['liveDowntimeSeconds']:.1f} s "
          "without the target app's start-up)")  # fmt: skip
    conclude(result, verdicts(result, LIVE), str(ROOT / "bench/results/live_migration.json"))


def one_shot(source: Cluster, target: Cluster, ns: str, bucket: str, work: Path,
             made: list[tuple[Cluster, str]]) -> dict[str, Any]:  # fmt: skip
    to = f"{ns}-1"
    made.append((target, to))
    deploy = source.discovery().resolve("deployments.apps")
    start = time.monotonic()
    source.patch(deploy, "app", {"spec": {"replicas": 0}}, ns, sub="scale")
    gone(source, ns)
    km("run", str(playbook(work / "oneshot.yaml", ns, to, False)), "--bucket", bucket,
       "--report-dir", str(work / "oneshot"))  # fmt: skip
    target.patch(deploy, "app", {"spec": {"replicas": 1}}, to, sub="scale")  # the start
    end = ready(target, to)
    source.patch(deploy, "app", {"spec": {"replicas": 1}}, ns, sub="scale")
    ready(source, ns)
    return {"oneShotDowntimeSeconds": round(end - start, 2)}


def live(source: Cluster, target: Cluster, ns: str, bucket: str, work: Path,
         made: list[tuple[Cluster, str]], objects: int) -> dict[str, Any]:  # fmt: skip
    to = f"{ns}-2"
    made.append((target, to))
    book = playbook(work / "live.yaml", ns, to, True)
    first = json.loads(km("run", str(book), "--stop-before", "cutover", "--bucket", bucket,
                          "--report-dir", str(work / "live")))  # fmt: skip
    cms = source.discovery().resolve("configmaps")
    changed = 0
    for i in range(0, objects, 100):  # 1% of the objects
        source.patch(cms, f"c{i}", {"data": {"v": VALUE.upper()}}, ns)
        changed += len(VALUE)
    pods = source.discovery().resolve("pods")
    pod = next(iter(source.list(pods, ns, label_selector="app=bench")))["metadata"]["name"]
    kubectl = sorted((Path.home() / ".cache/kube-migrate/bin").glob("k8s-*/kubectl"))[0]
    subprocess.run([str(kubectl), "--kubeconfig",
                    os.environ["KUBE_MIGRATE_SOURCE_KUBECONFIG"], "exec", "-n", ns, pod, "--",
                    "sh", "-c", f"head -c {FILE_MIB << 20} /dev/urandom > /data/f7"],
                   check=True, capture_output=True)  # fmt: skip
    changed += FILE_MIB << 20
    done = json.loads(km("run", "--resume", first["run"], "--bucket", bucket,
                         "--report-dir", str(work / "live"), log=work / "cutover.log"))  # fmt: skip
    cut = next(s for s in done["steps"] if s["step"] == "cutover")["result"]
    whole = float(cut["downtimeSeconds"])
    return {
        "liveWholeDowntimeSeconds": whole,
        "liveDowntimeSeconds": round(whole - float(cut["phases"].get("start", 0)), 2),
        "livePhases": cut["phases"],
        "liveDeltaBytes": int(cut["bytes"]),
        "liveChangedBytes": changed,
    }


if __name__ == "__main__":
    main()
