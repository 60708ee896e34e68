"""A plane's real node: its own containerd (+ runc) and a kubelet of the plane's version,
beside the kwok nodes, so pods with the test image really run, log, exec and store data.

The node is tainted and labelled (TAINT, LABEL) so only pods that ask for it land there.
Its address lives on an interface the dev-env creates (node_host); ordinary pods get a
loopback-only network (LO_ONLY); in-cluster clients use hostNetwork and 127.0.0.1.
Settings and why they are needed: ../shared/reference/real-nodes.md.
"""

from __future__ import annotations

import json
import os
import threading
import time
import urllib.error
from collections.abc import Callable
from pathlib import Path
from typing import Any

from devenv import app_image, csi, images, pki, procs, storage
from devenv.node_host import (
    LABEL,
    TAINT,
    Layout,
    add_interface,
    bind_kubelet_root,
    cleanup,
    make_cgroup_root,
)

LOOPBACK = "/usr/lib/cni/loopback"  # Debian's containernetworking-plugins
# The pod network: containerd always brings up a pod's `lo` (the loopback plugin); the one
# configured network must then report an address for the pod's default interface, which
# the loopback plugin does not (it reports `lo`, so every sandbox fails with "failed to
# find network info"). This plugin creates nothing and reports the pod's loopback address:
# pods keep a namespace with `lo` only.
LO_ONLY = """#!/bin/sh
cat >/dev/null
case "$CNI_COMMAND" in
ADD) printf '{"cniVersion":"0.4.0","ips":[{"version":"4","address":"127.0.0.1/8"}],"dns":{}}' ;;
VERSION) printf '{"cniVersion":"0.4.0","supportedVersions":["0.3.0","0.3.1","0.4.0"]}' ;;
esac
"""
# kubelet runs without /usr/sbin on its PATH: it then finds no iptables and leaves the
# host's tables alone (it only adds canary chains nobody here needs; pods use loopback).
KUBELET_PATH = "/usr/local/bin:/usr/bin:/bin"

Start = Callable[[str, list[str], dict[str, str] | None], dict[str, Any]]


class Node:
    def __init__(self, plane: str, version: str, bindir: Path, state: Path) -> None:
        self.lay = Layout.of(state, plane)
        self.version = version
        self.minor = int(version.split(".")[1])
        self.kubelet_bin = bindir / f"kubelet-{version}" / "kubelet"
        self.csi = csi.Driver(self.lay, bindir)
        self.ip = ""
        self.images: dict[str, str] = {}  # busybox, pause, provisioner -> image reference
        self._import: threading.Thread | None = None
        self._import_error: BaseException | None = None
        self._app: threading.Thread | None = None
        self._app_error: BaseException | None = None
        self.kubelet_log = ""

    @property
    def name(self) -> str:
        return self.lay.node_name

    def claim(self) -> str:
        """Clean any leftovers of an earlier run, then take an interface + address and the
        cgroup root; returns the node address (for the kubelet serving certificate)."""
        cleanup(self.lay)
        for d in (self.lay.dir, self.lay.run, self.lay.data, self.lay.pod_logs):
            d.mkdir(parents=True, exist_ok=True)
        bind_kubelet_root(self.lay)
        self.ip = add_interface(self.lay)
        make_cgroup_root(self.lay)
        return self.ip

    def start_runtime(self, start: Start) -> None:
        """Start containerd and import the images in the background (see wait_images)."""
        lay = self.lay
        refs = {
            "busybox": images.busybox_image(),
            "pause": images.pause_image(),
            "provisioner": images.local_path_provisioner_image(),
            "mover": images.mover_image(),
        }
        self.images = {k: ref for k, (ref, _) in refs.items()}
        cni, cni_bin = lay.dir / "cni", lay.dir / "cni-bin"
        cni.mkdir(exist_ok=True)
        cni_bin.mkdir(exist_ok=True)
        (cni_bin / "loopback").symlink_to(LOOPBACK)
        (cni_bin / "lo-only").write_text(LO_ONLY)
        (cni_bin / "lo-only").chmod(0o755)
        (cni / "10-lo-only.conflist").write_text(
            json.dumps(
                {"cniVersion": "0.4.0", "name": lay.cni_name, "plugins": [{"type": "lo-only"}]}
            )
        )
        cfg = lay.dir / "containerd.toml"
        cfg.write_text(self._containerd_toml())
        p = start("containerd", ["/usr/bin/containerd", "--config", str(cfg)], None)

        def load() -> None:
            try:
                deadline = time.monotonic() + 60
                while not lay.sock.exists():
                    if time.monotonic() > deadline or not procs.alive(p):
                        raise RuntimeError(
                            f"containerd did not start; log {p['log']}:\n{procs.tail(p['log'])}"
                        )
                    time.sleep(0.05)
                for _, tar in refs.values():
                    images.import_image(lay.sock, tar)
            except BaseException as exc:
                self._import_error = exc

        self._import = threading.Thread(target=load, daemon=True)
        self._import.start()
        if os.environ.get("KUBE_MIGRATE_DEV_ENV_APP_IMAGE", "1") != "0":
            self._app = threading.Thread(target=self._app_image, daemon=True)
            self._app.start()

    def _app_image(self) -> None:
        """The kube-migrate image (a cold build takes ~25 s): built and imported beside
        the plane's start, waited for only at the end of `up` (wait_app_image)."""
        try:
            ref, tar = app_image.image()
            if self._import:
                self._import.join()  # containerd is up
            images.import_image(self.lay.sock, tar)
            self.images["kube-migrate"] = ref
        except BaseException as exc:
            self._app_error = exc

    def wait_app_image(self) -> None:
        if self._app:
            self._app.join()
        if self._app_error:
            raise self._app_error

    def wait_images(self) -> None:
        if self._import:
            self._import.join()
        if self._import_error:
            raise self._import_error

    def _containerd_toml(self) -> str:
        lay = self.lay
        cri = '[plugins."io.containerd.grpc.v1.cri"'
        return f"""version = 2
root = "{lay.dir / "containerd"}"
state = "{lay.dir / "containerd-state"}"
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.zfs",
  "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"]
[grpc]
  address = "{lay.sock}"
[ttrpc]
  address = "{lay.sock}.ttrpc"
[debug]
  address = ""
  level = "warn"
[metrics]
  address = ""
[plugins."io.containerd.internal.v1.opt"]
  path = "{lay.dir / "opt"}"
{cri}]
  sandbox_image = "{self.images["pause"]}"
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  enable_selinux = false
{cri}.containerd]
  snapshotter = "overlayfs"
  default_runtime_name = "runc"
{cri}.containerd.runtimes.runc]
  runtime_type = "io.containerd.runc.v2"
{cri}.containerd.runtimes.runc.options]
  SystemdCgroup = false
  Root = "{lay.dir / "runc"}"
{cri}.cni]
  bin_dir = "{lay.dir / "cni-bin"}"
  conf_dir = "{lay.dir / "cni"}"
  max_conf_num = 1
"""

    def _kubelet_config(self, pki_dir: Path) -> dict[str, Any]:
        lay = self.lay
        cfg: dict[str, Any] = {
            "apiVersion": "kubelet.config.k8s.io/v1beta1",
            "kind": "KubeletConfiguration",
            "address": self.ip,
            "port": procs.free_port(),
            "readOnlyPort": 0,
            "healthzBindAddress": "127.0.0.1",
            "healthzPort": procs.free_port(),
            "tlsCertFile": str(pki_dir / "kubelet-server.crt"),
            "tlsPrivateKeyFile": str(pki_dir / "kubelet-server.key"),
            "authentication": {
                "x509": {"clientCAFile": str(pki_dir / "ca.crt")},
                "webhook": {"enabled": False},
                "anonymous": {"enabled": False},
            },
            "authorization": {"mode": "AlwaysAllow"},  # only holders of our CA's certs get in
            "containerRuntimeEndpoint": f"unix://{lay.sock}",
            "cgroupDriver": "cgroupfs",
            "cgroupRoot": lay.cgroup_root,
            "failSwapOn": False,
            "podLogsDir": str(lay.pod_logs),
            "volumePluginDir": str(lay.dir / "volume-plugins"),
            "registerWithTaints": [TAINT],
            "evictionHard": {
                "memory.available": "100Mi",
                "nodefs.available": "1%",
                "nodefs.inodesFree": "1%",
                "imagefs.available": "1%",
                "imagefs.inodesFree": "1%",
            },
            "imageGCHighThresholdPercent": 100,
            "imageGCLowThresholdPercent": 99,
            "kubeAPIQPS": 50,
            "kubeAPIBurst": 100,
            "serializeImagePulls": False,
            "resolvConf": "",  # pods get no resolver: no traffic leaves the machine
        }
        if self.minor >= 35:
            cfg["failCgroupV1"] = False
        return cfg

    def start_kubelet(self, start: Start, pki_dir: Path, port: int) -> None:
        self.wait_images()
        lay = self.lay
        kubeconfig = lay.dir / "kubelet.kubeconfig"
        kubeconfig.write_text(
            pki.kubeconfig(f"https://127.0.0.1:{port}", pki_dir, lay.plane, user="kubelet")
        )
        kubeconfig.chmod(0o600)
        cfg = lay.dir / "kubelet.json"
        cfg.write_text(json.dumps(self._kubelet_config(pki_dir), indent=1))
        argv = [
            str(self.kubelet_bin),
            f"--config={cfg}",
            f"--kubeconfig={kubeconfig}",
            f"--root-dir={lay.kubelet_root}",
            f"--cert-dir={lay.dir / 'kubelet-pki'}",
            f"--hostname-override={self.name}",
            f"--node-ip={self.ip}",
            f"--node-labels={LABEL[0]}={LABEL[1]}",
        ]
        if self.minor < 31:  # removed later; 1.30 still keeps the image out of image GC
            argv.append(f"--pod-infra-container-image={self.images['pause']}")
        p = start("kubelet", argv, {"PATH": KUBELET_PATH})
        self.kubelet_log = p["log"]

    def start_csi(self, start: Start, api: Callable[..., Any], pki_dir: Path, port: int) -> None:
        """The CSI driver and snapshots (csi.py); serve() waits for them."""
        kubeconfig = pki.kubeconfig(f"https://127.0.0.1:{port}", pki_dir, self.lay.plane, "csi")
        self.csi.begin(start, api, kubeconfig)

    def serve(self, api: Callable[..., Any], port: int) -> None:
        """Deploy the local-path provisioner; wait until the node is Ready, it runs and
        the CSI driver is registered."""
        objs = storage.objects(
            self.name, self.lay.data, port, self.images["provisioner"], self.images["busybox"]
        )
        storage.deploy(api, objs)
        self.wait_ready(api)
        storage.wait_running(api, self.lay.plane)
        self.csi.finish(api)

    def wait_ready(self, api: Callable[..., Any], timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        last = "not registered"
        while time.monotonic() < deadline:
            try:
                node = api("GET", f"/api/v1/nodes/{self.name}")
                conds = {c["type"]: c for c in node.get("status", {}).get("conditions", [])}
                ready = conds.get("Ready", {})
                if ready.get("status") == "True":
                    return
                last = f"Ready={ready.get('status')} ({ready.get('message', '')})"
            except urllib.error.HTTPError as exc:
                if exc.code != 404:
                    raise
            time.sleep(0.25)
        raise RuntimeError(
            f"node {self.name} not Ready after {timeout:.0f}s: {last}; "
            f"log {self.kubelet_log}:\n{procs.tail(self.kubelet_log)}"
        )
