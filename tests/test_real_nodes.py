"""Each local plane has one real node (a kubelet of the plane's version on its own
containerd): pods run, log and exec through the API, the default StorageClass provisions
real volumes, pods get a loopback-only network, and `hack/dev-env down` leaves nothing on
the host (also after its node daemons were SIGKILLed).

The node's label and taint are what hack/devenv/node_host.py gives it: pods ask for it with
TOLERATION and NODE_SELECTOR. Against other clusters (kind, say) these tests run when
KUBE_MIGRATE_TEST_IMAGE names an image the nodes have and one node carries that label and
taint; without the variable they are skipped.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import STATE, Env

ROOT = Path(__file__).resolve().parent.parent
CACHE = Path(os.environ.get("KUBE_MIGRATE_CACHE", Path.home() / ".cache" / "kube-migrate"))
NODE_SELECTOR = {"kube-migrate.dev/node": "real"}
TOLERATION = {"key": "kube-migrate.dev/real-node", "operator": "Exists", "effect": "NoSchedule"}
WAIT = 180.0  # a 2-core machine under load starts a pod in seconds, but not always


def kubectl_bin(version: str | None) -> str:
    exact = CACHE / "bin" / f"k8s-{version}" / "kubectl"
    if version and exact.exists():
        return str(exact)
    found = sorted((CACHE / "bin").glob("k8s-*/kubectl"))
    return str(found[-1]) if found else "kubectl"


class Kube:
    """kubectl against one cluster: what a user types, through the API server."""

    def __init__(self, kubeconfig: str, version: str | None, state: Path, side: str) -> None:
        self.kc, self.bin, self.side = kubeconfig, kubectl_bin(version), side
        self.kubelet_log = state / side / "logs" / "kubelet.log"

    def run(self, *args: str, stdin: str | None = None, check: bool = True) -> str:
        out = subprocess.run(
            [self.bin, "--kubeconfig", self.kc, *args],
            input=stdin,
            capture_output=True,
            text=True,
            timeout=WAIT,
            check=False,
        )
        if check and out.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)}: {out.stderr.strip()}")
        return out.stdout

    def json(self, *args: str) -> Any:
        return json.loads(self.run(*args, "-o", "json"))

    def create(self, ns: str, obj: dict[str, Any]) -> None:
        self.run("create", "-n", ns, "-f", "-", stdin=json.dumps(obj))

    def diagnose(self, ns: str, pod: str) -> str:
        """Why a pod is not where a test wants it: its status, events, the kubelet's log."""
        status = self.run("get", "pod", "-n", ns, pod, "-o", "json", check=False)
        events = self.run("get", "events", "-n", ns, check=False)
        try:
            log = "\n".join(self.kubelet_log.read_text().splitlines()[-20:])
        except OSError:
            log = "(kubelet log not readable here)"
        return f"pod status: {status[-1500:]}\nevents:\n{events}\nkubelet log tail:\n{log}"

    def wait_pod(self, ns: str, pod: str, phases: tuple[str, ...]) -> dict[str, Any]:
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:
            p = self.json("get", "pod", "-n", ns, pod)
            if p["status"].get("phase") in phases:
                return dict(p)
            if p["status"].get("phase") == "Failed":
                break
            time.sleep(0.5)
        raise AssertionError(f"pod {ns}/{pod} not {phases} after {WAIT}s\n{self.diagnose(ns, pod)}")


def pod(name: str, image: str, script: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {
            "nodeSelector": NODE_SELECTOR,
            "tolerations": [TOLERATION],
            "terminationGracePeriodSeconds": 1,
            "containers": [
                {
                    "name": "main",
                    "image": image,
                    "imagePullPolicy": "IfNotPresent",
                    "command": ["sh", "-c", script],
                    **spec.pop("container", {}),
                }
            ],
            **spec,
        },
    }


def kube_for(dev_env: Env, side: str) -> Kube:
    return Kube(
        getattr(dev_env, f"{side}_kubeconfig"), getattr(dev_env, f"{side}_version"), STATE, side
    )


SIDES = pytest.mark.parametrize("side", ["source", "target"])


@SIDES
def test_real_node_is_ready_with_the_planes_kubelet(dev_env: Env, side: str, image: str) -> None:
    k = kube_for(dev_env, side)
    nodes = k.json("get", "nodes", "-l", "kube-migrate.dev/node=real")["items"]
    assert len(nodes) == 1, [n["metadata"]["name"] for n in nodes]
    node = nodes[0]
    ready = next(c for c in node["status"]["conditions"] if c["type"] == "Ready")
    assert ready["status"] == "True", ready
    expected = getattr(dev_env, f"{side}_version")
    if expected:
        assert node["status"]["nodeInfo"]["kubeletVersion"] == expected
    assert {"key": "kube-migrate.dev/real-node", "value": "true", "effect": "NoSchedule"} in node[
        "spec"
    ]["taints"]
    assert node["status"]["nodeInfo"]["containerRuntimeVersion"].startswith("containerd://")


@SIDES
def test_pod_runs_logs_and_execs_through_the_api(
    dev_env: Env, side: str, image: str, request: pytest.FixtureRequest
) -> None:
    ns = request.getfixturevalue(f"{side}_ns")
    k = kube_for(dev_env, side)
    k.create(ns, pod("p", image, f"echo started-on-{side}; exec sleep 3600"))
    p = k.wait_pod(ns, "p", ("Running",))
    assert p["spec"]["nodeName"] == f"real-{side}"
    deadline = time.monotonic() + 30
    while f"started-on-{side}" not in (logs := k.run("logs", "-n", ns, "p")):
        assert time.monotonic() < deadline, f"logs: {logs!r}"
        time.sleep(0.5)
    out = k.run("exec", "-n", ns, "p", "--", "sh", "-c", "echo exec-ok $((6 * 7)); hostname")
    assert out.split() == ["exec-ok", "42", "p"]
    assert k.run("exec", "-i", "-n", ns, "p", "--", "cat", stdin="through stdin\n") == (
        "through stdin\n"
    )


@SIDES
def test_pod_network_is_loopback_only(
    dev_env: Env, side: str, image: str, request: pytest.FixtureRequest
) -> None:
    ns = request.getfixturevalue(f"{side}_ns")
    k = kube_for(dev_env, side)
    k.create(ns, pod("net", image, "cat /proc/net/dev; ls /sys/class/net", restartPolicy="Never"))
    k.wait_pod(ns, "net", ("Succeeded",))
    lines = k.run("logs", "-n", ns, "net").splitlines()
    devs = [ln.split(":")[0].strip() for ln in lines if ":" in ln]
    assert devs == ["lo"], lines
    assert lines[-1].split() == ["lo"], lines


@SIDES
def test_default_storage_class_keeps_data_across_pods(
    dev_env: Env, side: str, image: str, request: pytest.FixtureRequest
) -> None:
    ns = request.getfixturevalue(f"{side}_ns")
    k = kube_for(dev_env, side)
    k.create(
        ns,
        {
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "metadata": {"name": "data"},
            "spec": {
                "accessModes": ["ReadWriteOnce"],
                "resources": {"requests": {"storage": "1Mi"}},
            },
        },
    )
    token = uuid.uuid4().hex
    volume = {
        "volumes": [{"name": "d", "persistentVolumeClaim": {"claimName": "data"}}],
        "container": {"volumeMounts": [{"name": "d", "mountPath": "/data"}]},
        "restartPolicy": "Never",
    }
    k.create(ns, pod("writer", image, f"echo {token} > /data/f && sync", **volume))
    k.wait_pod(ns, "writer", ("Succeeded",))
    pvc = k.json("get", "pvc", "-n", ns, "data")
    assert pvc["status"]["phase"] == "Bound", pvc["status"]
    pv = k.json("get", "pv", pvc["spec"]["volumeName"])
    assert pv["spec"]["storageClassName"] == "standard"
    k.run("delete", "pod", "-n", ns, "writer", "--wait=true")
    k.create(ns, pod("reader", image, "cat /data/f", **volume))
    k.wait_pod(ns, "reader", ("Succeeded",))
    assert k.run("logs", "-n", ns, "reader").strip() == token


# --- a separate dev-env: up, a pod, SIGKILLed daemons, up again, down, nothing left ------


def _devenv(state: Path, cmd: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KUBE_MIGRATE_")}
    # this dev-env's pods are busybox ones: the kube-migrate image (~390 MB) stays out
    env |= {"KUBE_MIGRATE_DEV_ENV_DIR": str(state), "KUBE_MIGRATE_DEV_ENV_APP_IMAGE": "0"}
    if "KUBE_MIGRATE_CACHE" in os.environ:
        env["KUBE_MIGRATE_CACHE"] = os.environ["KUBE_MIGRATE_CACHE"]
    return subprocess.run(
        [str(ROOT / "hack" / "dev-env"), cmd],
        capture_output=True,
        text=True,
        env=env,
        timeout=900,
        check=False,
    )


def _traces(state: Path) -> dict[str, list[str]]:
    """What of this dev-env's real nodes is on the host."""
    sys.path.insert(0, str(ROOT / "hack"))
    from devenv.node_host import Layout

    lays = [Layout.of(state, side) for side in ("source", "target")]
    marks = [str(state.resolve())] + [str(lay.run) for lay in lays]
    procs = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                argv = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            if any(m in argv for m in marks) and entry.name != str(os.getpid()):
                procs.append(f"{entry.name}: {argv[:200]}")
    mounts = [
        ln.split()[4]
        for ln in Path("/proc/self/mountinfo").read_text().splitlines()
        if any(ln.split()[4].startswith(m) for m in marks)
    ]
    cgroups = [
        str(d)
        for lay in lays
        for d in Path("/sys/fs/cgroup").glob(f"*/{lay.cgroup_root.lstrip('/')}")
    ]
    ip_links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True, check=False)
    ifaces = [lay.iface for lay in lays if f" {lay.iface}:" in ip_links.stdout]
    runs = [str(lay.run) for lay in lays if lay.run.exists()]
    logs = Path("/var/log/containers")  # the kubelet's links to its pods' logs
    links = [str(p) for p in logs.glob("*") if any(m in str(p.resolve()) for m in marks)]
    return {
        "processes": procs,
        "mounts": mounts,
        "cgroups": cgroups,
        "interfaces": ifaces,
        "run": runs,
        "log links": links,
    }


@pytest.mark.cluster
def test_dev_env_down_leaves_nothing_even_after_sigkill(tmp_path: Path) -> None:
    state = tmp_path / "e"
    try:
        up = _devenv(state, "up")
        assert up.returncode == 0, up.stderr[-3000:]
        env = dict(
            ln.removeprefix("export ").split("=", 1)
            for ln in (state / "env").read_text().splitlines()
        )
        k = Kube(
            env["KUBE_MIGRATE_SOURCE_KUBECONFIG"],
            env["KUBE_MIGRATE_SOURCE_VERSION"],
            state,
            "source",
        )
        ns = f"t-leave-{uuid.uuid4().hex[:6]}"
        k.run("create", "namespace", ns)
        claim = {  # a CSI volume too (hack/devenv/csi.py): the driver's bind mount must go
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "metadata": {"name": "c"},
            "spec": {
                "storageClassName": "csi-hostpath-sc",
                "accessModes": ["ReadWriteOnce"],
                "resources": {"requests": {"storage": "1Mi"}},
            },
        }
        k.create(ns, claim)
        volume = {
            "volumes": [{"name": "c", "persistentVolumeClaim": {"claimName": "c"}}],
            "container": {"volumeMounts": [{"name": "c", "mountPath": "/c"}]},
        }
        k.create(ns, pod("p", env["KUBE_MIGRATE_TEST_IMAGE"], "exec sleep 3600", **volume))
        k.wait_pod(ns, "p", ("Running",))
        running = _traces(state)
        assert running["mounts"] and running["cgroups"] and len(running["interfaces"]) == 2
        assert any("kubernetes.io~csi" in m for m in running["mounts"]), running["mounts"]

        recorded = json.loads((state / "state.json").read_text())["processes"]
        for p in recorded:
            if p["name"] in ("source/kubelet", "source/containerd"):
                os.kill(p["pid"], signal.SIGKILL)
        again = _devenv(state, "up")
        assert again.returncode == 0, again.stderr[-3000:]
        assert "partly down" in again.stderr
        assert "container processes" in again.stderr, again.stderr[-3000:]
        assert _devenv(state, "status").returncode == 0
    finally:
        down = _devenv(state, "down")
    assert down.returncode == 0, down.stderr[-3000:]
    left = _traces(state)
    assert not any(left.values()), left
