"""What a real node claims on the host, and how to give it all back.

Every name comes from the dev-env's state directory and the plane (a short hash of both),
so two dev-envs on one machine never share an interface, address, cgroup, socket or
directory, and `cleanup` can find a node's leftovers with no record of the run that made
them (after a SIGKILL, say). Only what matches that hash is ever touched.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import hashlib
import ipaddress
import os
import shutil
import signal
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

LABEL = ("kube-migrate.dev/node", "real")  # on the node: pods select it with this
TAINT = {"key": "kube-migrate.dev/real-node", "value": "true", "effect": "NoSchedule"}
NET = ipaddress.ip_network("198.18.0.0/15")  # RFC 2544 benchmarking range: never routed
CONTAINER_LOGS = Path("/var/log/containers")  # kubelet's hard-coded symlink dir
CNI_CACHE = Path("/var/lib/cni/results")  # libcni's hard-coded result cache
SHIM_SOCKETS = Path("/run/containerd/s")  # containerd 1.6's hard-coded shim socket dir
# csi.py's processes: each names the node's paths (a socket, or the kubeconfig in its dir)
CSI_EXES = (
    "hostpathplugin",
    "csi-node-driver-registrar",
    "csi-provisioner",
    "csi-snapshotter",
    "snapshot-controller",
)
_pick = threading.Lock()


@dataclass(frozen=True)
class Layout:
    """Paths and names of one plane's real node."""

    plane: str
    dir: Path  # <state>/<plane>/node: configs, containerd root and state, kubelet root
    data: Path  # <state>/<plane>/local-path: the provisioner's volumes
    run: Path  # /run/kmn-<id>: sockets, the kubelet root (unix socket paths stay short)
    id: str

    @classmethod
    def of(cls, state: Path, plane: str) -> Layout:
        state = state.resolve()
        ident = hashlib.sha256(f"{state}\0{plane}".encode()).hexdigest()[:10]
        return cls(
            plane,
            state / plane / "node",
            state / plane / "local-path",
            Path("/run") / f"kmn-{ident}",
            ident,
        )

    @property
    def node_name(self) -> str:
        return f"real-{self.plane}"

    @property
    def iface(self) -> str:
        return f"kmn{self.id}"  # 13 chars (the kernel allows 15)

    @property
    def cgroup_root(self) -> str:
        return f"/kube-migrate-{self.id}"

    @property
    def cni_name(self) -> str:
        return f"kmn-{self.id}"

    @property
    def sock(self) -> Path:
        return self.run / "containerd.sock"

    @property
    def pod_logs(self) -> Path:
        return self.dir / "pod-logs"

    @property
    def kubelet_root(self) -> Path:
        """The kubelet's --root-dir: a short path (it makes unix sockets in it) bound to
        <dir>/kubelet, so volumes stay on the state dir's disk."""
        return self.run / "kubelet"


def bind_kubelet_root(lay: Layout) -> None:
    src = lay.dir / "kubelet"
    src.mkdir(parents=True, exist_ok=True)
    lay.kubelet_root.mkdir(parents=True, exist_ok=True)
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.mount(str(src).encode(), str(lay.kubelet_root).encode(), None, 4096, None) != 0:
        err = ctypes.get_errno()  # 4096 = MS_BIND
        raise OSError(err, f"bind {src} on {lay.kubelet_root}: {os.strerror(err)}")


def _ip(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=False)


def _assigned() -> set[ipaddress.IPv4Address]:
    out = _ip("-o", "-4", "addr", "show").stdout
    return {ipaddress.IPv4Interface(line.split()[3]).ip for line in out.splitlines()}


def add_interface(lay: Layout) -> str:
    """Create the node's interface with a free 198.18.0.0/15 address; return the address.
    A dummy device if the kernel has the module, else an empty bridge (same effect)."""
    with _pick:
        used = _assigned()
        start = int(lay.id, 16) % (NET.num_addresses - 2) + 1
        for i in range(NET.num_addresses - 2):
            addr = NET[(start + i) % (NET.num_addresses - 2) + 1]
            if addr not in used:
                break
        else:
            raise RuntimeError(f"no free address in {NET}")
        for kind in ("dummy", "bridge"):
            made = _ip("link", "add", lay.iface, "type", kind)
            if made.returncode == 0:
                break
        else:
            raise RuntimeError(f"ip link add {lay.iface}: {made.stderr.strip()}")
        for args in (
            ("addr", "add", f"{addr}/32", "dev", lay.iface),
            ("link", "set", lay.iface, "up"),
        ):
            r = _ip(*args)
            if r.returncode != 0:
                _ip("link", "del", lay.iface)
                raise RuntimeError(f"ip {' '.join(args)}: {r.stderr.strip()}")
        return str(addr)


def _hierarchies() -> list[Path]:
    """Mount points of every cgroup hierarchy (v1 controllers, name=systemd, unified)."""
    out = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        pre, post = line.split(" - ", 1)
        if post.split()[0] in ("cgroup", "cgroup2"):
            out.append(Path(pre.split()[4]))
    return out


def make_cgroup_root(lay: Layout) -> None:
    """The kubelet's cgroupRoot must exist in every v1 hierarchy; cpuset needs its cpus
    and mems set before anything can join it."""
    for h in _hierarchies():
        d = h / lay.cgroup_root.lstrip("/")
        d.mkdir(exist_ok=True)
        for f in ("cpuset.cpus", "cpuset.mems"):
            if (h / f).exists() and not (d / f).read_text().strip():
                (d / f).write_text((h / f).read_text())


def _cgroup_dirs(lay: Layout) -> list[Path]:
    dirs: list[Path] = []
    for h in _hierarchies():
        root = h / lay.cgroup_root.lstrip("/")
        if root.is_dir():
            dirs += [Path(p) for p, _, _ in os.walk(root)]
    return sorted(dirs, key=lambda p: len(p.parts), reverse=True)


def _cgroup_pids(lay: Layout) -> set[int]:
    pids: set[int] = set()
    for d in _cgroup_dirs(lay):
        with contextlib.suppress(OSError):
            pids |= {int(x) for x in (d / "cgroup.procs").read_text().split()}
    return pids


def _our_processes(lay: Layout, exes: set[str]) -> set[int]:
    """Processes of these executables whose arguments name this node's paths."""
    marks = (str(lay.dir), str(lay.run))
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            exe = os.path.basename(os.readlink(entry / "exe"))
            argv = (entry / "cmdline").read_bytes().decode(errors="replace")
        except OSError:
            continue
        if exe in exes and any(m in argv for m in marks):
            found.add(int(entry.name))
    return found


def _kill(pids: set[int]) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def _running(pid: int) -> bool:
    """Alive and not a zombie (an orphan's zombie may wait a long time for its reaper)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()[0] != "Z"
    except OSError:
        return False


def _wait_gone(pids: set[int], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(_running(p) for p in pids):
        time.sleep(0.05)


def _mounts_under(roots: tuple[Path, ...]) -> list[str]:
    out = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        point = line.split()[4].replace("\\040", " ")
        if any(point == str(r) or point.startswith(f"{r}/") for r in roots):
            out.append(point)
    return sorted(out, key=len, reverse=True)  # stacked mounts appear once per layer


def _umount(point: str) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.umount2(point.encode(), 2) != 0:  # MNT_DETACH
        err = ctypes.get_errno()
        if err not in (errno.EINVAL, errno.ENOENT):
            raise OSError(err, f"umount {point}: {os.strerror(err)}")


def _stop_processes(lay: Layout) -> list[str]:
    """The daemons first (so nothing restarts a container), then every process in the
    node's cgroups, then the shims (after their children, which they reap)."""
    done: list[str] = []
    daemons = _our_processes(lay, {"kubelet", "containerd", "ctr", *CSI_EXES})
    _kill(daemons)
    _wait_gone(daemons, 10)
    if daemons:
        done.append(f"{len(daemons)} node daemons")
    for _ in range(20):  # containers may still fork while they are being killed
        pids = _cgroup_pids(lay)
        if not pids:
            break
        _kill(pids)
        _wait_gone(pids, 2)
        done.append(f"{len(pids)} container processes")
    shims = _our_processes(lay, {"containerd-shim-runc-v2", "runc"})
    _kill(shims)
    _wait_gone(shims, 10)
    if shims:
        done.append(f"{len(shims)} shims")
    for addr in (lay.dir / "containerd-state").glob("io.containerd.runtime.v2.task/*/*/address"):
        with contextlib.suppress(OSError):
            sock = Path(addr.read_text().strip().removeprefix("unix://"))
            if sock.parent == SHIM_SOCKETS:
                sock.unlink(missing_ok=True)
    return done


def _remove_cgroups(lay: Layout) -> list[str]:
    dirs = _cgroup_dirs(lay)
    deadline = time.monotonic() + 15
    for d in dirs:  # deepest first
        while True:
            try:
                d.rmdir()
                break
            except FileNotFoundError:
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                with contextlib.suppress(OSError):
                    _kill({int(x) for x in (d / "cgroup.procs").read_text().split()})
                time.sleep(0.1)
    return [f"{len(dirs)} cgroups"] if dirs else []


def _remove_host_files(lay: Layout) -> None:
    """Files the kubelet and libcni keep in fixed host paths, found by what they name."""
    if CONTAINER_LOGS.is_dir():
        for link in CONTAINER_LOGS.iterdir():
            with contextlib.suppress(OSError):
                if link.is_symlink() and os.readlink(link).startswith(f"{lay.pod_logs}/"):
                    link.unlink()
    for cached in CNI_CACHE.glob(f"{lay.cni_name}-*"):
        cached.unlink(missing_ok=True)
    # containerd's own `lo` network is named cni-loopback on every node: ours by sandbox id
    for sandbox in (lay.dir / "containerd-state" / "io.containerd.grpc.v1.cri" / "sandboxes").glob(
        "*"
    ):
        (CNI_CACHE / f"cni-loopback-{sandbox.name}-lo").unlink(missing_ok=True)


def cleanup(lay: Layout) -> list[str]:
    """Remove every trace of this node: processes, mounts, cgroups, the interface,
    host-wide files that point at it, and its directories. Returns what it removed."""
    done = _stop_processes(lay)
    roots = (lay.dir, lay.run, lay.data)
    removed = 0
    for _ in range(10):  # a layer may only show once the one above it is gone
        mounts = _mounts_under(roots)
        if not mounts:
            break
        for point in mounts:
            _umount(point)
        removed += len(mounts)
    if removed:
        done.append(f"{removed} mounts")
    done += _remove_cgroups(lay)
    if _ip("link", "show", lay.iface).returncode == 0:
        _ip("link", "del", lay.iface)
        done.append(f"interface {lay.iface}")
    _remove_host_files(lay)
    if _mounts_under(roots):
        raise OSError(f"mounts left under {lay.dir}; not deleting it")
    for d in roots:
        shutil.rmtree(d, ignore_errors=True)
    return done
