"""`hack/dev-env up|down|status`: two local clusters (`source` on the older Kubernetes,
`target` on the primary one) and one MinIO with a bucket, all on 127.0.0.1.

Each cluster has 3 kwok nodes and one real node (a kubelet on its own containerd, see
devenv/node.py, with a CSI driver and snapshots, devenv/csi.py) that only pods tolerating
its taint use.

`up` writes .dev-env/{source,target}.kubeconfig and .dev-env/env (shell-sourceable);
it is a no-op when everything is already up.  `down` stops exactly the processes
`up` started (pids recorded in .dev-env/state.json) and removes what the real nodes left
(containers, mounts, cgroups, interfaces: found from the state dir alone, so it also
works after a crash).  Progress goes to stderr.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from devenv import node_host, procs
from devenv.images import versions  # (re-exported: velero.py and tests read it here)
from devenv.plane import Plane, say, wait_http

HACK = Path(__file__).resolve().parent.parent
ROOT = HACK.parent
STATE = Path(os.environ.get("KUBE_MIGRATE_DEV_ENV_DIR", ROOT / ".dev-env"))
CACHE = Path(os.environ.get("KUBE_MIGRATE_CACHE", Path.home() / ".cache" / "kube-migrate"))
BUCKET = "kube-migrate"
PLANES = ("source", "target")


def clean_nodes() -> int:
    """Remove every trace of the real nodes of this state dir, both at once (mostly
    waiting for processes and deleting image layers); the number of things removed."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(len(PLANES)) as pool:
        results = list(
            pool.map(lambda name: node_host.cleanup(node_host.Layout.of(STATE, name)), PLANES)
        )
    for name, done in zip(PLANES, results, strict=True):
        if done:
            say(f"{name} node: removed {', '.join(done)}")
    return sum(len(done) for done in results)


def load_state() -> dict[str, Any] | None:
    try:
        state: dict[str, Any] = json.loads((STATE / "state.json").read_text())
        return state
    except (OSError, ValueError):
        return None


def is_up(state: dict[str, Any] | None) -> bool:
    return bool(state) and all(procs.alive(p) for p in state["processes"])  # type: ignore[index]


def start_minio(bindir: Path, v: dict[str, str], started: list[dict[str, Any]]) -> dict[str, str]:
    """Start MinIO (recorded in `started` at once, so a failure stops it) with a bucket."""
    port, console = procs.free_port(), procs.free_port()
    user, password = "kube-migrate", secrets.token_hex(16)
    data = STATE / "minio" / "data"
    data.mkdir(parents=True, exist_ok=True)
    env = {
        "MINIO_ROOT_USER": user,
        "MINIO_ROOT_PASSWORD": password,
        "MINIO_BROWSER": "off",
        "MINIO_UPDATE": "off",
    }
    p = procs.start(
        "minio",
        [
            str(bindir / f"minio-{v['MINIO']}" / "minio"),
            "server",
            str(data),
            "--address",
            f"127.0.0.1:{port}",
            "--console-address",
            f"127.0.0.1:{console}",
            "--quiet",
        ],
        STATE / "minio" / "minio.log",
        env,
    )
    started.append(p)
    endpoint = f"http://127.0.0.1:{port}"
    wait_http(f"{endpoint}/minio/health/live", None, "minio", p["log"])
    import boto3

    s3 = boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=user,
        aws_secret_access_key=password,
        region_name="us-east-1",
    )
    deadline = time.monotonic() + 30
    while True:
        try:
            s3.create_bucket(Bucket=BUCKET)
            break
        except s3.exceptions.BucketAlreadyOwnedByYou:  # data kept from a failed start
            break
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)
    say(f"minio on {endpoint}, bucket s3://{BUCKET}")
    return {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": user,
        "AWS_SECRET_ACCESS_KEY": password,
        "AWS_REGION": "us-east-1",
        "KUBE_MIGRATE_BUCKET": f"s3://{BUCKET}",
    }


def wipe_data() -> None:
    for sub in ("source", "target", "minio"):
        for data in ("etcd", "data"):
            shutil.rmtree(STATE / sub / data, ignore_errors=True)


def up() -> int:
    state = load_state()
    if is_up(state):
        say(f"already up ({STATE}/env)")
        return 0
    if state:
        say("a previous dev-env is partly down; cleaning it up")
        down()
    clean_nodes()  # leftovers of a run that died before it recorded anything
    v = versions()
    t0 = time.monotonic()
    subprocess.run([str(HACK / "build.sh")], check=True)
    bindir = CACHE / "bin"
    STATE.mkdir(parents=True, exist_ok=True)
    planes = [
        Plane("source", v["K8S_OLDER"], bindir, STATE),
        Plane("target", v["K8S_PRIMARY"], bindir, STATE),
    ]
    started: list[dict[str, Any]] = []
    errors: list[BaseException] = []

    def run(plane: Plane) -> None:
        try:
            plane.up(bindir / f"etcd-{v['ETCD']}" / "etcd", bindir / f"kwok-{v['KWOK']}" / "kwok")
        except BaseException as exc:  # reported below, after every plane stopped
            errors.append(exc)

    try:
        env = start_minio(bindir, v, started)
        threads = [threading.Thread(target=run, args=(p,)) for p in planes]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        for p in planes:
            started += p.procs
        if errors:
            raise errors[0]
        for p in planes:
            if p.node:
                p.node.wait_app_image()
    except Exception as exc:  # any failure: stop what started, then report
        for p in planes:
            started += [x for x in p.procs if x not in started]
        procs.stop(started)
        clean_nodes()
        wipe_data()
        print(f"dev-env: error: {exc}", file=sys.stderr)
        return 1
    env |= {
        "KUBE_MIGRATE_SOURCE_KUBECONFIG": str(planes[0].kubeconfig),
        "KUBE_MIGRATE_TARGET_KUBECONFIG": str(planes[1].kubeconfig),
        "KUBE_MIGRATE_SOURCE_VERSION": v["K8S_OLDER"],
        "KUBE_MIGRATE_TARGET_VERSION": v["K8S_PRIMARY"],
        "KUBE_MIGRATE_TEST_IMAGE": planes[0].node.images["busybox"] if planes[0].node else "",
        "KUBE_MIGRATE_MOVER_IMAGE": planes[0].node.images["mover"] if planes[0].node else "",
        "KUBE_MIGRATE_IMAGE": planes[0].node.images.get("kube-migrate", "")
        if planes[0].node
        else "",
    }
    (STATE / "env").write_text("".join(f"export {k}={val}\n" for k, val in env.items()))
    (STATE / "env").chmod(0o600)
    (STATE / "state.json").write_text(json.dumps({"processes": started, "env": env}, indent=1))
    say(f"up in {time.monotonic() - t0:.1f}s; `source {STATE}/env` to use it")
    return 0


def down() -> int:
    state = load_state()
    if not state:
        if not clean_nodes():
            say("not up")
        return 0
    # the data is wiped next, so nothing needs a graceful end (a kube-apiserver waits
    # seconds for its clients on SIGTERM): 3 s, then SIGKILL
    procs.stop(state["processes"], timeout=3.0)
    clean_nodes()
    wipe_data()
    (STATE / "state.json").unlink(missing_ok=True)
    (STATE / "env").unlink(missing_ok=True)
    say(f"stopped {len(state['processes'])} processes")
    return 0


def status() -> int:
    state = load_state()
    if not state:
        print("dev-env: down")
        return 3
    for p in state["processes"]:
        print(f"{p['name']:<32} pid {p['pid']:<8} {'up' if procs.alive(p) else 'DOWN'}")
    return 0 if is_up(state) else 1


def image() -> int:
    """Rebuild the kube-migrate image from the working tree and import it into the running
    nodes (a code change, tested in a pod, without a new dev-env); its reference in env."""
    from devenv import app_image, images

    state = load_state()
    if not state:
        print("dev-env: down", file=sys.stderr)
        return 3
    ref, tar = app_image.image()
    for plane in ("source", "target"):
        images.import_image(node_host.Layout.of(STATE, plane).sock, tar)
    state["env"]["KUBE_MIGRATE_IMAGE"] = ref
    env = state["env"]
    (STATE / "env").write_text("".join(f"export {k}={val}\n" for k, val in env.items()))
    (STATE / "state.json").write_text(json.dumps(state, indent=1))
    say(f"image {ref} imported")
    return 0


def main() -> None:
    cmds = {"up": up, "down": down, "status": status, "image": image}
    if len(sys.argv) != 2 or sys.argv[1] not in cmds:
        print("usage: hack/dev-env up|down|status|image", file=sys.stderr)
        sys.exit(2)
    sys.exit(cmds[sys.argv[1]]())
