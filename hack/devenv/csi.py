"""Real CSI volumes and snapshots on a plane's real node: the hostpath CSI driver with its
registrar, provisioner and snapshotter sidecars, and the plane's snapshot controller, so
VolumeSnapshots, restores from them and clones really happen (local-path has none of it).

Versions (hack/versions.env, built by hack/build.sh): external-snapshotter v8.2.0
(csi-snapshotter, snapshot-controller, the snapshot.storage.k8s.io/v1 CRDs copied from its
client module into the binary cache), external-provisioner v5.2.0, csi-driver-host-path
v1.18.0 (hostpathplugin) and node-driver-registrar v2.17.0 (from ../shared/third_party when
the module proxy refuses them).  No external-resizer (the proxy refuses it), so the class
does not allow expansion; no csi-attacher, so the CSIDriver says attachRequired: false
(hostpath without --enable-attach has no ControllerPublish to call anyway).

Why processes beside the kubelet, not pods (started, logged and stopped like etcd and the
kubelet, recorded in state.json): the driver must mount in the kubelet's mount namespace,
which a host process is in by birth (a pod would need privileged + Bidirectional propagation
on a kubelet root that is itself a bind mount); there is no kube-proxy, so a pod could reach
the API server only as hostNetwork with 127.0.0.1 overrides, while a process just takes a
kubeconfig; and there is no registry, so pods would need four more offline images.  As
processes they start in parallel with the node, cost no image imports, and `down` (or the
leftover sweep in node_host) finds them by pid or by the node paths in their arguments.

Names: driver `hostpath.csi.k8s.io` (CSIDriver), StorageClass `csi-hostpath-sc` (not the
default: `standard`/local-path stays it; Immediate binding, Delete), VolumeSnapshotClass
`csi-hostpath-snapclass` (deletionPolicy Delete).  The clients use their own certificate
(CN kube-migrate-csi, group system:masters, like kwok's): upstream's RBAC would add five
ClusterRoles and bindings to every plane, objects that backups and verify would then see.

Layout, per node (<run> = /run/kmn-<id>, whose kubelet/ is the kubelet's --root-dir; the
kubelet's own CSI dirs are <run>/kubelet/plugins/kubernetes.io/csi and the pods' mounts
<run>/kubelet/pods/<uid>/volumes/kubernetes.io~csi/<pv>/mount):
  <run>/kubelet/plugins/csi-hostpath/csi.sock      the driver's endpoint, dialled by all
  <run>/kubelet/plugins_registry/hostpath.csi.k8s.io-reg.sock   the registrar's, which the
                                                   kubelet's plugin watcher finds
  <state>/<plane>/node/csi-hostpath/               the driver's --statedir: volumes
                                                   (directories), snapshots (tarballs)
  <state>/<plane>/node/csi.kubeconfig              the sidecars' and controller's client
  <state>/<plane>/logs/csi-*.log                   one log per process
Everything is under the node's own paths, so two planes or dev-envs share nothing, and
node_host.cleanup unmounts and deletes it like the kubelet's.
"""

from __future__ import annotations

import threading
import time
import urllib.error
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from devenv import images, procs
from devenv.node_host import Layout

DRIVER = "hostpath.csi.k8s.io"
STORAGE_CLASS = "csi-hostpath-sc"
SNAPSHOT_CLASS = "csi-hostpath-snapclass"
CRDS = ("volumesnapshotclasses", "volumesnapshotcontents", "volumesnapshots")
GROUP = "snapshot.storage.k8s.io"
Api = Callable[..., Any]
Start = Callable[[str, list[str], dict[str, str] | None], dict[str, Any]]


@dataclass(frozen=True)
class Paths:
    socket: Path
    registry: Path
    statedir: Path
    kubeconfig: Path

    @classmethod
    def of(cls, lay: Layout) -> Paths:
        root = lay.kubelet_root
        return cls(
            root / "plugins" / "csi-hostpath" / "csi.sock",
            root / "plugins_registry",
            lay.dir / "csi-hostpath",
            lay.dir / "csi.kubeconfig",
        )


def binaries(bindir: Path, v: dict[str, str]) -> dict[str, Path]:
    snap = bindir / f"external-snapshotter-{v['EXTERNAL_SNAPSHOTTER']}"
    return {
        "hostpathplugin": bindir / f"csi-driver-host-path-{v['CSI_HOSTPATH']}" / "hostpathplugin",
        "registrar": bindir
        / f"node-driver-registrar-{v['CSI_NODE_DRIVER_REGISTRAR']}"
        / "csi-node-driver-registrar",
        "provisioner": bindir
        / f"external-provisioner-{v['EXTERNAL_PROVISIONER']}"
        / "csi-provisioner",
        "snapshotter": snap / "csi-snapshotter",
        "controller": snap / "snapshot-controller",
        "crds": snap / "crd",
    }


def objects() -> list[tuple[str, dict[str, Any]]]:
    """(collection path, object): the driver, its classes (after the CRDs exist)."""
    driver = {
        "apiVersion": "storage.k8s.io/v1",
        "kind": "CSIDriver",
        "metadata": {"name": DRIVER},
        "spec": {  # upstream's deploy/ (csi-hostpath-driverinfo.yaml), but no attacher
            "attachRequired": False,
            "volumeLifecycleModes": ["Persistent", "Ephemeral"],
            "podInfoOnMount": True,
            "fsGroupPolicy": "File",
        },
    }
    sc = {
        "apiVersion": "storage.k8s.io/v1",
        "kind": "StorageClass",
        "metadata": {"name": STORAGE_CLASS},
        "provisioner": DRIVER,
        "reclaimPolicy": "Delete",
        "volumeBindingMode": "Immediate",
        "allowVolumeExpansion": False,
    }
    vsc = {
        "apiVersion": f"{GROUP}/v1",
        "kind": "VolumeSnapshotClass",
        "metadata": {"name": SNAPSHOT_CLASS},
        "driver": DRIVER,
        "deletionPolicy": "Delete",
    }
    return [
        ("/apis/storage.k8s.io/v1/csidrivers", driver),
        ("/apis/storage.k8s.io/v1/storageclasses", sc),
        (f"/apis/{GROUP}/v1/volumesnapshotclasses", vsc),
    ]


def _create(api: Api, path: str, obj: dict[str, Any], timeout: float = 30) -> None:
    """POST, taking 409 as done; a 404 right after a CRD is Established is retried."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            api("POST", path, obj)
            return
        except urllib.error.HTTPError as exc:
            if exc.code == 409:
                return
            if exc.code != 404 or time.monotonic() > deadline:
                raise
        time.sleep(0.1)


def deploy(api: Api, crd_dir: Path, timeout: float = 60) -> None:
    """The snapshot CRDs (waited for until Established), the CSIDriver and both classes."""
    import yaml

    crds = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
    for name in CRDS:
        _create(api, crds, yaml.safe_load((crd_dir / f"{GROUP}_{name}.yaml").read_text()))
    deadline = time.monotonic() + timeout
    for name in CRDS:
        while True:
            crd = api("GET", f"{crds}/{name}.{GROUP}")
            conds = crd.get("status", {}).get("conditions", [])
            if any(c["type"] == "Established" and c["status"] == "True" for c in conds):
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"CRD {name}.{GROUP} not Established after {timeout:.0f}s")
            time.sleep(0.1)
    for path, obj in objects():
        _create(api, path, obj)


NODE_PROCESSES = ("csi-hostpath", "csi-node-driver-registrar")  # need no CRD: start first


def argvs(lay: Layout, bins: dict[str, Path]) -> dict[str, list[str]]:
    """Each process's command line, by the name of its log and state.json record."""
    p = Paths.of(lay)
    csi, kc, v = f"--csi-address={p.socket}", f"--kubeconfig={p.kubeconfig}", "--v=3"
    return {
        "csi-hostpath": [
            str(bins["hostpathplugin"]),
            f"--drivername={DRIVER}",
            f"--endpoint=unix://{p.socket}",
            f"--nodeid={lay.node_name}",
            f"--statedir={p.statedir}",
            v,
        ],
        "csi-node-driver-registrar": [
            str(bins["registrar"]),
            csi,
            f"--kubelet-registration-path={p.socket}",
            f"--plugin-registration-path={p.registry}",
            v,
        ],
        "csi-provisioner": [
            str(bins["provisioner"]),
            csi,
            kc,
            "--feature-gates=Topology=true",  # PVs get the node's topology as node affinity
            "--extra-create-metadata",
            "--leader-election=false",
            v,
        ],
        "csi-snapshotter": [
            str(bins["snapshotter"]),
            csi,
            kc,
            "--extra-create-metadata",
            "--leader-election=false",
            v,
        ],
        "csi-snapshot-controller": [str(bins["controller"]), kc, "--leader-election=false", v],
    }


def start_processes(
    start: Start, lay: Layout, bins: dict[str, Path], names: tuple[str, ...]
) -> list[dict[str, Any]]:
    """Start these processes (of argvs); their records."""
    p = Paths.of(lay)
    for d in (p.socket.parent, p.registry, p.statedir):
        d.mkdir(parents=True, exist_ok=True)
    cmd = argvs(lay, bins)
    return [start(name, cmd[name], None) for name in names]


class Driver:
    """One real node's CSI processes and its plane's snapshot objects, in two steps so
    they overlap the node's start: begin() starts the driver and registrar and creates
    the objects in the background (seconds while the API server is busy starting),
    finish() then starts the sidecars and the controller and waits for registration."""

    def __init__(self, lay: Layout, bindir: Path) -> None:
        self.lay = lay
        self.bins = binaries(bindir, images.versions())
        self.procs: list[dict[str, Any]] = []
        self._start: Start | None = None
        self._deploy: threading.Thread | None = None
        self._error: BaseException | None = None

    def begin(self, start: Start, api: Api, kubeconfig: str) -> None:
        path = Paths.of(self.lay).kubeconfig
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(kubeconfig)
        path.chmod(0o600)
        self._start = start
        self.procs = start_processes(start, self.lay, self.bins, NODE_PROCESSES)

        def run() -> None:
            try:
                deploy(api, self.bins["crds"])
            except BaseException as exc:  # raised by finish()
                self._error = exc

        self._deploy = threading.Thread(target=run, daemon=True)
        self._deploy.start()

    def finish(self, api: Api) -> None:
        assert self._deploy and self._start, "begin() first"
        self._deploy.join()
        if self._error:
            raise self._error
        rest = tuple(n for n in argvs(self.lay, self.bins) if n not in NODE_PROCESSES)
        self.procs += start_processes(self._start, self.lay, self.bins, rest)
        wait_registered(api, self.lay.node_name, self.procs)


def wait_registered(
    api: Api, node: str, started: list[dict[str, Any]], timeout: float = 120, grace: float = 0.5
) -> None:
    """Wait until the kubelet lists the driver in the node's CSINode (driver up, registrar
    registered, kubelet's plugin watcher done), and `grace` seconds have passed with every
    process still running (a sidecar that cannot talk to the driver dies at once)."""
    t0 = time.monotonic()
    registered = False
    while time.monotonic() < t0 + timeout:
        dead = [p for p in started if not procs.alive(p)]
        if dead:
            p = dead[0]
            raise RuntimeError(f"{p['name']} exited; log {p['log']}:\n{procs.tail(p['log'])}")
        if registered and time.monotonic() >= t0 + grace:
            return
        if not registered:
            try:
                node_drivers = api("GET", f"/apis/storage.k8s.io/v1/csinodes/{node}")["spec"]
                registered = any(d["name"] == DRIVER for d in node_drivers.get("drivers") or [])
            except urllib.error.HTTPError as exc:
                if exc.code != 404:
                    raise
        time.sleep(0.1)
    logs = "\n".join(f"{p['log']}:\n{procs.tail(p['log'], 5)}" for p in started[:2])
    raise RuntimeError(f"CSI driver {DRIVER} not registered on {node} after {timeout:.0f}s\n{logs}")
