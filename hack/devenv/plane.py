"""One local Kubernetes control plane: etcd, kube-apiserver, kube-controller-manager,
kube-scheduler and kwok (3 fake nodes whose pods kwok reports Running), on 127.0.0.1,
and one real node (node.py) with a local-path provisioner for the default StorageClass
and a CSI driver with snapshots (csi.py)."""

from __future__ import annotations

import json
import os
import signal
import ssl
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from devenv import pki, procs
from devenv.node import Node

NODES = 3


def say(msg: str) -> None:
    print(f"[dev-env] {msg}", file=sys.stderr, flush=True)


class StartError(RuntimeError):
    pass


def wait_http(
    url: str, ctx: ssl.SSLContext | None, what: str, log: str, timeout: float = 90
) -> None:
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, context=ctx, timeout=5) as r:
                if r.status == 200:
                    return
        except (urllib.error.URLError, OSError) as exc:
            last = str(exc)
        time.sleep(0.25)
    raise StartError(
        f"{what} not ready after {timeout:.0f}s ({last}); log {log}:\n{procs.tail(log)}"
    )


class Plane:
    def __init__(self, name: str, version: str, bindir: Path, state: Path) -> None:
        self.name = name
        self.version = version
        self.k8s = bindir / f"k8s-{version}"
        self.bindir = bindir
        self.dir = state / name
        self.pki = self.dir / "pki"
        self.logs = self.dir / "logs"
        self.kubeconfig = state / f"{name}.kubeconfig"
        self.procs: list[dict[str, Any]] = []
        self.port = 0
        self.apiserver_argv: list[str] = []
        self.state = state
        self.node: Node | None = None

    def _ctx(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cafile=str(self.pki / "ca.crt"))
        ctx.load_cert_chain(str(self.pki / "admin.crt"), str(self.pki / "admin.key"))
        return ctx

    def api(self, method: str, path: str, body: Any = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(
            f"https://127.0.0.1:{self.port}{path}",
            data=data,
            method=method,
            headers={"Content-Type": "application/json", "Accept": "application/json"},
        )
        with urllib.request.urlopen(req, context=self._ctx(), timeout=30) as r:
            return json.loads(r.read() or b"{}")

    def _start(
        self, comp: str, argv: list[str], env: dict[str, str] | None = None
    ) -> dict[str, Any]:
        p = procs.start(f"{self.name}/{comp}", argv, self.logs / f"{comp}.log", env)
        self.procs.append(p)
        return p

    def up(self, etcd_bin: Path, kwok_bin: Path, *, minimal: bool = False) -> None:
        """Start the plane; `minimal` stops after etcd and kube-apiserver (fault tests
        that only need the API, and must not disturb the shared planes)."""
        t0 = time.monotonic()
        address = ""
        if not minimal:
            self.node = Node(self.name, self.version, self.bindir, self.state)
            address = self.node.claim()
        pki.write_pki(self.pki, (self.node.name, address) if self.node else None)
        etcd_port, peer_port = procs.free_port(), procs.free_port()
        self.port = procs.free_port()
        p = self._start(
            "etcd",
            [
                str(etcd_bin),
                f"--name={self.name}",
                f"--data-dir={self.dir / 'etcd'}",
                f"--listen-client-urls=http://127.0.0.1:{etcd_port}",
                f"--advertise-client-urls=http://127.0.0.1:{etcd_port}",
                f"--listen-peer-urls=http://127.0.0.1:{peer_port}",
                f"--initial-advertise-peer-urls=http://127.0.0.1:{peer_port}",
                f"--initial-cluster={self.name}=http://127.0.0.1:{peer_port}",
                "--unsafe-no-fsync",
                "--log-level=warn",
                "--quota-backend-bytes=8589934592",
            ],
        )
        if self.node:  # containerd and the image imports overlap the control plane's start
            self.node.start_runtime(self._start)
        wait_http(f"http://127.0.0.1:{etcd_port}/health", None, f"{self.name} etcd", p["log"])
        pk = self.pki
        self.apiserver_argv = [
            str(self.k8s / "kube-apiserver"),
            f"--etcd-servers=http://127.0.0.1:{etcd_port}",
            "--bind-address=127.0.0.1",
            f"--secure-port={self.port}",
            "--advertise-address=127.0.0.1",
            "--endpoint-reconciler-type=none",
            f"--cert-dir={pk}",
            f"--tls-cert-file={pk / 'apiserver.crt'}",
            f"--tls-private-key-file={pk / 'apiserver.key'}",
            f"--client-ca-file={pk / 'ca.crt'}",
            "--service-account-issuer=https://kubernetes.default.svc",
            f"--service-account-key-file={pk / 'sa.pub'}",
            f"--service-account-signing-key-file={pk / 'sa.key'}",
            "--service-cluster-ip-range=10.96.0.0/16",
            "--authorization-mode=Node,RBAC",
            f"--kubelet-client-certificate={pk / 'apiserver-kubelet-client.crt'}",
            f"--kubelet-client-key={pk / 'apiserver-kubelet-client.key'}",
            f"--kubelet-certificate-authority={pk / 'ca.crt'}",
            "--kubelet-preferred-address-types=InternalIP,Hostname",
            "--allow-privileged=true",
            "--max-requests-inflight=800",
            "--max-mutating-requests-inflight=400",
        ]
        p = self._start("kube-apiserver", self.apiserver_argv)
        self.kubeconfig.write_text(pki.kubeconfig(f"https://127.0.0.1:{self.port}", pk, self.name))
        self.kubeconfig.chmod(0o600)
        ctx = self._ctx()
        wait_http(
            f"https://127.0.0.1:{self.port}/readyz", ctx, f"{self.name} kube-apiserver", p["log"]
        )
        if minimal:
            say(f"{self.name}: kube-apiserver {self.version} on https://127.0.0.1:{self.port}")
            return
        kc = str(self.kubeconfig)
        common = [
            f"--kubeconfig={kc}",
            f"--authentication-kubeconfig={kc}",
            f"--authorization-kubeconfig={kc}",
            "--bind-address=127.0.0.1",
            "--leader-elect=false",
        ]
        self._start(
            "kube-controller-manager",
            [
                str(self.k8s / "kube-controller-manager"),
                *common,
                f"--secure-port={procs.free_port()}",
                f"--service-account-private-key-file={pk / 'sa.key'}",
                f"--root-ca-file={pk / 'ca.crt'}",
                f"--cluster-signing-cert-file={pk / 'ca.crt'}",
                f"--cluster-signing-key-file={pk / 'ca.key'}",
                "--kube-api-qps=200",
                "--kube-api-burst=400",
                "--concurrent-deployment-syncs=10",
                "--concurrent-replicaset-syncs=10",
                "--concurrent-gc-syncs=40",
                "--concurrent-namespace-syncs=20",
                # a claim created a moment after its pre-bound PV can miss it in the PV
                # informer and wait for the binder's next full sync (default 15 s)
                "--pvclaimbinder-sync-period=1s",
                # kwok's heartbeats can starve for a minute on a loaded 2-core machine; a
                # node marked NotReady would leave its pods NotReady for good (kwok does
                # not revive them), so allow an hour before a node counts as lost.
                "--node-monitor-grace-period=1h",
            ],
        )
        self._start(
            "kube-scheduler",
            [
                str(self.k8s / "kube-scheduler"),
                *common,
                f"--secure-port={procs.free_port()}",
            ],
        )
        kwok_cfg = self.dir / "kwok.yaml"
        kwok_cfg.write_text(
            "kind: KwokConfiguration\napiVersion: config.kwok.x-k8s.io/v1alpha1\noptions: {}\n"
        )
        self._start(
            "kwok",
            [
                str(kwok_bin),
                f"--kubeconfig={kc}",
                f"--config={kwok_cfg}",
                "--manage-all-nodes=false",
                "--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake",
                f"--server-address=127.0.0.1:{procs.free_port()}",
            ],
        )
        if self.node:
            self.node.start_kubelet(self._start, pk, self.port)
            self.node.start_csi(self._start, self.api, pk, self.port)
        self._nodes()
        self._storage_class()
        if self.node:
            try:
                self.node.serve(self.api, self.port)
            except RuntimeError as exc:
                raise StartError(f"{self.name}: {exc}") from exc
        say(
            f"{self.name}: Kubernetes {self.version} on https://127.0.0.1:{self.port} "
            f"({time.monotonic() - t0:.1f}s)"
        )

    def restart_apiserver(self, down_for: float = 1.0) -> float:
        """SIGKILL kube-apiserver, wait `down_for` seconds, start it again on the same
        port and wait until it is ready; returns the seconds it was unreachable."""
        t0 = time.monotonic()
        old = next(p for p in self.procs if p["name"] == f"{self.name}/kube-apiserver")
        os.kill(old["pid"], signal.SIGKILL)  # a crash, not a graceful shutdown
        while procs.alive(old):
            time.sleep(0.05)
        self.procs.remove(old)
        time.sleep(down_for)
        p = self._start("kube-apiserver", self.apiserver_argv)
        wait_http(f"https://127.0.0.1:{self.port}/readyz", self._ctx(), "kube-apiserver", p["log"])
        return time.monotonic() - t0

    def _storage_class(self) -> None:
        """A default StorageClass named `standard`, as kind clusters have (no provisioner
        runs here: claims bind to static PVs only)."""
        sc = {
            "apiVersion": "storage.k8s.io/v1",
            "kind": "StorageClass",
            "metadata": {
                "name": "standard",
                "annotations": {"storageclass.kubernetes.io/is-default-class": "true"},
            },
            "provisioner": "rancher.io/local-path",
            "volumeBindingMode": "WaitForFirstConsumer",
            "reclaimPolicy": "Delete",
        }
        try:
            self.api("POST", "/apis/storage.k8s.io/v1/storageclasses", sc)
        except urllib.error.HTTPError as exc:
            if exc.code != 409:
                raise

    def _nodes(self) -> None:
        for i in range(NODES):
            name = f"kwok-{self.name}-{i}"
            node = {
                "apiVersion": "v1",
                "kind": "Node",
                "metadata": {
                    "name": name,
                    "annotations": {
                        "kwok.x-k8s.io/node": "fake",
                        "node.alpha.kubernetes.io/ttl": "0",
                    },
                    "labels": {
                        "type": "kwok",
                        "kubernetes.io/hostname": name,
                        "kubernetes.io/os": "linux",
                        "kubernetes.io/arch": "amd64",
                        "node-role.kubernetes.io/agent": "",
                    },
                },
                "status": {
                    "allocatable": {"cpu": "32", "memory": "256Gi", "pods": "250"},
                    "capacity": {"cpu": "32", "memory": "256Gi", "pods": "250"},
                },
            }
            try:
                self.api("POST", "/api/v1/nodes", node)
            except urllib.error.HTTPError as exc:
                if exc.code != 409:
                    raise
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            items = self.api("GET", "/api/v1/nodes").get("items", [])
            ready = [
                n
                for n in items
                if n["metadata"]["name"].startswith("kwok-")
                and any(
                    c.get("type") == "Ready" and c.get("status") == "True"
                    for c in n.get("status", {}).get("conditions", [])
                )
            ]
            if len(ready) >= NODES:
                return
            time.sleep(0.5)
        raise StartError(
            f"{self.name}: kwok nodes not Ready after 60s; log {self.logs / 'kwok.log'}:\n"
            + procs.tail(str(self.logs / "kwok.log"))
        )
