"""Volume data next to its physical baseline (issue 20): 1 GiB of mixed files (15 x 64 MiB
random, 16,384 x 4 KiB) in a claim on the source plane's real node.

- raw backup: `tar -c` of the volume's directory piped into a multipart upload (boto3,
  8 MiB parts, 10 streams) to the same MinIO, on the same machine (the node is this host);
- ours: `kube-migrate`'s mover (kopia in a pod) copying the claim: the mover's own seconds
  (pod start excluded), next to the wall time with it;
- a second backup of the unchanged claim (uploaded bytes measured in the bucket), and one
  after overwriting 1% of the bytes in one file;
- raw restore: download of that tarball piped into `tar -x`; ours: the mover restoring into
  a fresh claim;
- the mover's peak RSS (kmmover's plus its largest kopia's) backing up a claim of many small
  files (1,000,000 by default, 1,000 a directory, written from this host into the node's
  volume directory).
Prints a table, writes bench/results/volume_data.json, exits 3 on a missed target.

    .venv/bin/python bench/volume_data.py [--small-files N]   # 0: no RSS phase
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import boto3
from boto3.s3.transfer import TransferConfig
from targets import VOLUMES, conclude, verdicts  # bench/ is sys.path[0] as a script

from migrate.cluster import Cluster, ClusterRef
from migrate.pipeline.steps_data import mover_settings
from migrate.store import open_store
from migrate.transform.scope import Scope
from migrate.volumes.backup import VolumeBackupOptions, backup_volumes
from migrate.volumes.mover import MoverFailed, run_mover
from migrate.volumes.mover_pod import MoverJob

ROOT = Path(__file__).resolve().parent.parent
NODE = {"kube-migrate.dev/node": "real"}
TOLERATE = [{"key": "kube-migrate.dev/real-node", "operator": "Exists", "effect": "NoSchedule"}]
HOLD = "touch /tmp/done; exec sleep 3600"  # a pod that binds a claim on the real node
FILL = (
    "set -e; cd /data; mkdir -p big small; i=0; "
    "while [ $i -lt 15 ]; do head -c 67108864 /dev/urandom > big/f$i; i=$((i+1)); done; "
    "cd small; i=0; while [ $i -lt 16384 ]; do head -c 4096 /dev/urandom > x$i; i=$((i+1)); done; "
    + HOLD
)
CHANGED = 10 * 2**20  # ~1% of the 1 GiB, overwritten in one file


def env_file() -> None:
    for line in (ROOT / ".dev-env" / "env").read_text().splitlines():
        key, _, val = line.removeprefix("export ").partition("=")
        os.environ.setdefault(key, val)


def claim(name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": name},
            "spec": {"accessModes": ["ReadWriteOnce"],
                     "resources": {"requests": {"storage": "2Gi"}}}}  # fmt: skip


def filler(image: str, name: str = "fill", pvc: str = "data", cmd: str = FILL) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"restartPolicy": "Never", "terminationGracePeriodSeconds": 1,
                     "nodeSelector": NODE, "tolerations": TOLERATE,
                     "containers": [{"name": "fill", "image": image, "command": ["sh", "-c", cmd],
                                     "volumeMounts": [{"name": "d", "mountPath": "/data"}]}],
                     "volumes": [{"name": "d",
                                  "persistentVolumeClaim": {"claimName": pvc}}]}}  # fmt: skip


def wait_filled(
    c: Cluster, ns: str, name: str, pvc: str = "data", files: int = 16384, timeout: float = 600
) -> None:
    """Until the filler (it stays running: the mover goes next to it) has written it all."""
    pods = c.discovery().resolve("pods")
    deadline = time.monotonic() + timeout
    while True:
        pod = c.get(pods, name, ns)
        phase = pod["status"].get("phase")
        if phase == "Running" and sum(1 for _ in host_dir(c, ns, pvc).glob("small/*")) >= files:
            return
        if phase == "Failed" or time.monotonic() > deadline:
            raise SystemExit(f"bench: pod {ns}/{name} {phase}")
        time.sleep(2)


def host_dir(c: Cluster, ns: str, pvc: str) -> Path:
    """The volume's directory on this host (local-path provisions host directories)."""
    vol = c.get(c.discovery().resolve("persistentvolumeclaims"), pvc, ns)["spec"]["volumeName"]
    spec = c.get(c.discovery().resolve("persistentvolumes"), vol)["spec"]
    return Path((spec.get("hostPath") or spec.get("local"))["path"])


def kopia_bytes(bucket: str, ns: str) -> int:
    return sum(o.size for o in open_store(bucket).list(f"kopia/{ns}/"))


def s3() -> tuple[Any, str, str]:
    bucket_url = os.environ["KUBE_MIGRATE_BUCKET"].removeprefix("s3://")
    bucket, _, prefix = bucket_url.partition("/")
    client = boto3.client("s3", endpoint_url=os.environ["AWS_ENDPOINT_URL"])
    return client, bucket, prefix


def raw_backup(path: Path, key: str) -> float:
    client, bucket, _ = s3()
    cfg = TransferConfig(multipart_chunksize=8 * 2**20, max_concurrency=10)
    start = time.monotonic()
    tar = subprocess.Popen(["tar", "-C", str(path), "-cf", "-", "."], stdout=subprocess.PIPE)
    assert tar.stdout is not None
    client.upload_fileobj(tar.stdout, bucket, key, Config=cfg)
    if tar.wait() != 0:
        raise SystemExit("bench: tar failed")
    return time.monotonic() - start


def raw_restore(key: str) -> float:
    client, bucket, _ = s3()
    with tempfile.TemporaryDirectory(prefix="km-bench-untar-") as tmp:
        start = time.monotonic()
        untar = subprocess.Popen(["tar", "-C", tmp, "-xf", "-"], stdin=subprocess.PIPE)
        assert untar.stdin is not None
        body = client.get_object(Bucket=bucket, Key=key)["Body"]
        for chunk in body.iter_chunks(8 * 2**20):
            untar.stdin.write(chunk)
        untar.stdin.close()
        if untar.wait() != 0:
            raise SystemExit("bench: untar failed")
        took = time.monotonic() - start
    client.delete_object(Bucket=bucket, Key=key)
    return took


def backup_once(c: Cluster, bucket: str, ns: str, name: str) -> tuple[float, float, str]:
    """(mover seconds, wall seconds, snapshot id) of one volume backup of namespace ns."""
    store = open_store(bucket)
    start = time.monotonic()
    opts = VolumeBackupOptions(name, "all", lambda: mover_settings(store, None, None, create=True))
    s = backup_volumes(c, store, Scope(include_namespaces=(ns,)), opts)
    wall = time.monotonic() - start
    (copy,) = [v for v in s.copies if v.snapshot]
    return copy.seconds, wall, copy.snapshot


def small_files(root: Path, n: int, per_dir: int = 1000) -> None:
    """n files of 16-80 distinct bytes each (kopia stores every one: the index grows with
    them), per_dir to a directory; written here, the node being this host."""
    for i in range(n):
        d = root / f"d{i // per_dir:05d}"
        if i % per_dir == 0:
            d.mkdir(parents=True)
        fd = os.open(d / f"f{i % per_dir:04d}", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        os.write(fd, f"{i:x}".encode() * (4 + i % 17))
        os.close(fd)


def peak_rss(c: Cluster, ns: str, bucket: str, image: str, files: int) -> dict[str, Any]:
    """The mover backing up a claim of `files` small files: its peak RSS and seconds."""
    c.create(c.discovery().resolve("persistentvolumeclaims"), claim("many"), ns)
    c.create(c.discovery().resolve("pods"), filler(image, "hold", "many", HOLD), ns)
    wait_filled(c, ns, "hold", "many", files=0)
    start = time.monotonic()
    small_files(host_dir(c, ns, "many") / "small", files)
    out: dict[str, Any] = {"smallFiles": files, "smallFilesWriteSeconds": time.monotonic() - start}
    settings = mover_settings(open_store(bucket), None, None, create=True)
    job = MoverJob("backup", ns, "many", ["--user", "many", "--host", ns, "--create"],
                   tolerations=TOLERATE, node_selector=NODE)  # fmt: skip
    result = run_mover(c, job, settings)
    if int(result["files"]) != files:
        raise SystemExit(f"bench: the mover saw {result['files']} files of {files}")
    out["smallFilesBackupSeconds"] = float(result["seconds"])
    out["moverPeakRssMiB"] = int(result["peakRssBytes"]) / 2**20
    return out


def incrementals(c: Cluster, bucket: str, ns: str, path: Path, data: int) -> dict[str, Any]:
    """A second backup of the unchanged claim, then a third after CHANGED bytes of one file
    were overwritten: what the bucket grew by each time."""
    out: dict[str, Any] = {}
    before = kopia_bytes(bucket, ns)
    out["volumeUnchangedSeconds"], _, _ = backup_once(c, bucket, ns, "b2")
    grown = kopia_bytes(bucket, ns) - before
    out["volumeUnchangedUploadPercent"] = 100 * grown / data
    with open(path / "big" / "f7", "r+b") as f:  # the node is this host
        f.seek(5 * 2**20)
        f.write(os.urandom(CHANGED))
    before = kopia_bytes(bucket, ns)
    backup_once(c, bucket, ns, "b3")
    out["volumeChangedUploadBytes"] = kopia_bytes(bucket, ns) - before
    out["changedBytes"] = CHANGED
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--small-files", type=int, default=1_000_000, metavar="N")
    args = ap.parse_args()
    env_file()
    c = Cluster(ClusterRef(os.environ["KUBE_MIGRATE_SOURCE_KUBECONFIG"]), name="source")
    ns, bucket = f"vb-{uuid.uuid4().hex[:6]}", os.environ["KUBE_MIGRATE_BUCKET"]
    bucket = f"{bucket.rstrip('/')}/bench-volumes-{ns}"
    nss = c.discovery().resolve("namespaces")
    c.create(nss, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
    out: dict[str, Any] = {"namespace": ns}
    failed = ""
    try:
        c.create(c.discovery().resolve("persistentvolumeclaims"), claim("data"), ns)
        c.create(c.discovery().resolve("pods"), filler(os.environ["KUBE_MIGRATE_TEST_IMAGE"]), ns)
        wait_filled(c, ns, "fill")
        path = host_dir(c, ns, "data")
        out["dataBytes"] = sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
        key = f"{s3()[2]}/bench-raw-{ns}.tar".lstrip("/")
        out["rawTarUploadSeconds"] = raw_backup(path, key)
        out["volumeBackupSeconds"], out["volumeBackupWallSeconds"], snap = backup_once(
            c, bucket, ns, "b1"
        )
        out |= incrementals(c, bucket, ns, path, out["dataBytes"])
        out["rawDownloadUntarSeconds"] = raw_restore(key)
        c.create(c.discovery().resolve("persistentvolumeclaims"), claim("restored"), ns)
        settings = mover_settings(open_store(bucket), None, None, create=False)
        job = MoverJob("restore", ns, "restored", ["--snapshot", snap],
                       tolerations=TOLERATE, node_selector=NODE)  # fmt: skip
        start = time.monotonic()
        result = run_mover(c, job, settings)
        out["volumeRestoreWallSeconds"] = time.monotonic() - start
        out["volumeRestoreSeconds"] = float(result["seconds"])
        if args.small_files:
            image = os.environ["KUBE_MIGRATE_TEST_IMAGE"]
            try:
                out.update(peak_rss(c, ns, bucket, image, args.small_files))
            except MoverFailed as exc:  # the other figures still count; the run fails below
                failed = str(exc)
    finally:
        c.delete(nss, ns)
        for prefix in ("kopia/", "backups/"):
            open_store(bucket).delete_prefix(prefix)
    out = {k: round(v, 4) if isinstance(v, float) else v for k, v in out.items()}
    try:
        conclude(out, verdicts(out, VOLUMES), str(ROOT / "bench" / "results" / "volume_data.json"))
    finally:
        if failed:
            raise SystemExit(f"bench: the mover failed on {args.small_files} small files: {failed}")


if __name__ == "__main__":
    sys.exit(main())
