"""Container images for the real nodes, built without a registry, Docker or network.

There is no registry here, so each image is a one-layer docker-archive tar written with
`tarfile` from host files (the static busybox of Debian's busybox-static, a Go binary from
hack/build.sh) and imported into a node's containerd with `ctr images import`. The tars are
deterministic (sorted entries, mtime 0, owner 0:0) and cached under
~/.cache/kube-migrate/images, keyed by the recipe and the host files' stat, so a warm call
costs milliseconds. A reference's tag ends with the image id's first hex digits: a changed
image gets a new reference, and import_image may skip a reference containerd already has.
"""

from __future__ import annotations

import functools
import hashlib
import io
import json
import os
import platform
import re
import subprocess
import tarfile
import threading
from dataclasses import dataclass, field
from pathlib import Path

CACHE = Path(os.environ.get("KUBE_MIGRATE_CACHE", Path.home() / ".cache" / "kube-migrate"))
HACK = Path(__file__).resolve().parent.parent
REGISTRY = "kube-migrate.local"
BUSYBOX = Path("/bin/busybox")
PATH_ENV = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
FORMAT = 1  # bump when the archive layout changes: every cached image is rebuilt
PASSWD = b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"
GROUP = b"root:x:0:\nnogroup:x:65534:\n"
# PID 1 of a pod sandbox: sleeps until SIGTERM/SIGINT, then exits 0 (`wait` is interrupted
# by a trapped signal; a bare `sleep` as PID 1 would ignore TERM).
PAUSE = 'trap "exit 0" TERM INT; while :; do sleep 3600 & wait $!; done'


@dataclass
class Rootfs:
    """What the layer holds. Paths are absolute image paths; parents are added as 0755."""

    files: dict[str, Path | bytes] = field(default_factory=dict)  # host file or content
    symlinks: dict[str, str] = field(default_factory=dict)  # path -> target
    dirs: dict[str, int] = field(default_factory=dict)  # path -> mode
    modes: dict[str, int] = field(default_factory=dict)  # file -> mode (default: host's, 0644)


@dataclass
class Config:
    entrypoint: list[str] = field(default_factory=list)
    cmd: list[str] = field(default_factory=list)
    user: str = "0"
    env: list[str] = field(default_factory=lambda: [PATH_ENV])
    working_dir: str = "/"


def build(repo: str, version: str, rootfs: Rootfs, config: Config) -> tuple[str, Path]:
    """(reference, docker-archive tar) for the image, written only on a cache miss."""
    out = CACHE / "images"
    stem = f"{repo.rsplit('/', 1)[-1]}-{_recipe_key(repo, version, rootfs, config)[:16]}"
    meta = out / f"{stem}.json"
    try:
        cached = json.loads(meta.read_text())
        if Path(cached["tar"]).is_file():
            return str(cached["ref"]), Path(cached["tar"])
    except (OSError, ValueError, KeyError):
        pass
    layer = layer_tar(rootfs)
    diff_id = hashlib.sha256(layer).hexdigest()
    cfg = json.dumps(_image_config(config, diff_id), sort_keys=True).encode()
    image_id = hashlib.sha256(cfg).hexdigest()
    ref = f"{REGISTRY}/{repo}:{_tag(version)}-{image_id[:8]}"
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob(f"{repo.rsplit('/', 1)[-1]}-*"):
        if old.stem != stem:  # an earlier build of this image (another binary or recipe)
            old.unlink(missing_ok=True)
    tar = out / f"{stem}.tar"
    _write_atomic(tar, archive(ref, layer, diff_id, cfg, image_id))
    _write_atomic(meta, json.dumps({"ref": ref, "tar": str(tar)}).encode())
    return ref, tar


def layer_tar(rootfs: Rootfs) -> bytes:
    """The layer as a deterministic tar: sorted, mtime 0, owner 0:0, parents included."""
    entries: dict[str, tuple[tarfile.TarInfo, bytes | None]] = {}

    def add_parents(path: str) -> None:
        parts = path.strip("/").split("/")[:-1]
        for i in range(1, len(parts) + 1):
            d = "/".join(parts[:i])
            if d not in entries:
                entries[d] = (_info(d, tarfile.DIRTYPE, 0o755), None)

    for path, mode in rootfs.dirs.items():
        add_parents(path)
        entries[path.strip("/")] = (_info(path.strip("/"), tarfile.DIRTYPE, mode), None)
    for path, target in rootfs.symlinks.items():
        add_parents(path)
        ti = _info(path.strip("/"), tarfile.SYMTYPE, 0o777)
        ti.linkname = target
        entries[path.strip("/")] = (ti, None)
    for path, src in rootfs.files.items():
        add_parents(path)
        if isinstance(src, Path):
            data, default = src.read_bytes(), 0o755 if os.access(src, os.X_OK) else 0o644
        else:
            data, default = src, 0o644
        ti = _info(path.strip("/"), tarfile.REGTYPE, rootfs.modes.get(path, default))
        ti.size = len(data)
        entries[path.strip("/")] = (ti, data)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
        for name in sorted(entries):
            ti, content = entries[name]
            t.addfile(ti, io.BytesIO(content) if content is not None else None)
    return buf.getvalue()


def archive(ref: str, layer: bytes, diff_id: str, config: bytes, image_id: str) -> bytes:
    """A docker-archive (`docker save` layout) holding one image with one layer."""
    repo, tag = ref.rsplit(":", 1)
    members = {
        f"{image_id}.json": config,
        f"{diff_id}/layer.tar": layer,
        "manifest.json": json.dumps(
            [{"Config": f"{image_id}.json", "RepoTags": [ref], "Layers": [f"{diff_id}/layer.tar"]}]
        ).encode(),
        "repositories": json.dumps({repo: {tag: diff_id}}).encode(),
    }
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
        t.addfile(_info(diff_id, tarfile.DIRTYPE, 0o755))
        for name in sorted(members):
            ti = _info(name, tarfile.REGTYPE, 0o644)
            ti.size = len(members[name])
            t.addfile(ti, io.BytesIO(members[name]))
    return buf.getvalue()


@functools.cache
def busybox_version() -> str:
    """The Debian package version inside the binary's banner, e.g. 1:1.35.0-4+deb12u1+b1."""
    banner = subprocess.run([str(BUSYBOX)], capture_output=True, text=True, check=False).stdout
    m = re.search(r"BusyBox (v\S+) \((?:Debian )?([^)]+)\)", banner)
    if not m:
        raise RuntimeError(f"{BUSYBOX}: no version in its banner (hack/host-deps.sh installs it)")
    return m.group(2) if "Debian" in m.group(0) else m.group(1)


def busybox_rootfs() -> Rootfs:
    """/bin/busybox + every applet as a symlink to it, root and nobody, /tmp 1777."""
    applets = subprocess.run(
        [str(BUSYBOX), "--list-full"], capture_output=True, text=True, check=True
    ).stdout.split()
    return Rootfs(
        files={"/bin/busybox": BUSYBOX, "/etc/passwd": PASSWD, "/etc/group": GROUP},
        modes={"/bin/busybox": 0o755},
        symlinks={f"/{a}": "/bin/busybox" for a in applets if a != "bin/busybox"},
        dirs={"/tmp": 0o1777, "/root": 0o700, "/etc": 0o755},
    )


def busybox_image() -> tuple[str, Path]:
    """The helper pods' image (local-path-provisioner) and a shell for tests."""
    return build("busybox", busybox_version(), busybox_rootfs(), Config(cmd=["sh"]))


def pause_image() -> tuple[str, Path]:
    """The pod sandbox image: busybox whose PID 1 sleeps until SIGTERM."""
    cfg = Config(entrypoint=["/bin/sh", "-c", PAUSE], user="65534")
    return build("pause", busybox_version(), busybox_rootfs(), cfg)


def local_path_provisioner_image() -> tuple[str, Path]:
    """rancher's local-path-provisioner (built by hack/build.sh) at upstream's path."""
    version = versions()["LOCAL_PATH_PROVISIONER"]
    binary = CACHE / "bin" / f"local-path-provisioner-{version}" / "local-path-provisioner"
    if not binary.is_file():
        raise RuntimeError(f"{binary} missing: run hack/build.sh local-path-provisioner")
    rootfs = Rootfs(
        files={"/usr/bin/local-path-provisioner": binary, "/etc/passwd": PASSWD},
        modes={"/usr/bin/local-path-provisioner": 0o755},
        dirs={"/tmp": 0o1777},
    )
    cfg = Config(cmd=["/usr/bin/local-path-provisioner"])
    return build("local-path-provisioner", version, rootfs, cfg)


def mover_hash() -> str:
    """hack/build.sh's key of the kmmover build: sha256 over `sha256sum` lines of mover/'s
    *.go and go.mod files in byte order of their paths (mover_hash there)."""
    root = HACK.parent
    files = sorted(
        p.relative_to(root).as_posix()
        for p in (root / "mover").rglob("*")
        if p.is_file() and (p.suffix == ".go" or p.name == "go.mod")
    )
    lines = "".join(f"{hashlib.sha256((root / f).read_bytes()).hexdigest()}  {f}\n" for f in files)
    return hashlib.sha256(lines.encode()).hexdigest()[:16]


def mover_image() -> tuple[str, Path]:
    """The volume-data mover: kopia and kmmover (mover/) on busybox, kmmover as entrypoint."""
    version, digest = versions()["KOPIA"], mover_hash()
    kopia = CACHE / "bin" / f"kopia-{version}" / "kopia"
    kmmover = CACHE / "bin" / f"mover-{digest}" / "kmmover"
    missing = [str(p) for p in (kopia, kmmover) if not p.is_file()]
    if missing:
        raise RuntimeError(f"{', '.join(missing)} missing: run hack/build.sh kopia mover")
    rootfs = busybox_rootfs()
    rootfs.files |= {"/usr/local/bin/kopia": kopia, "/usr/local/bin/kmmover": kmmover}
    rootfs.modes |= {"/usr/local/bin/kopia": 0o755, "/usr/local/bin/kmmover": 0o755}
    rootfs.dirs |= {"/tmp": 0o1777, "/data": 0o755}
    cfg = Config(entrypoint=["/usr/local/bin/kmmover"])
    return build("kube-migrate-mover", f"{version}-{digest}", rootfs, cfg)


def import_image(sock: str | Path, tar: Path) -> str:
    """Import the archive into containerd's k8s.io namespace (CRI's) unless its reference is
    already there; returns the reference."""
    with tarfile.open(tar) as t:
        member = t.extractfile("manifest.json")
        if member is None:
            raise RuntimeError(f"{tar}: no manifest.json")
        ref = str(json.load(member)[0]["RepoTags"][0])
    ctr = ["ctr", "-a", str(sock), "-n", "k8s.io", "images"]
    if ref not in _ctr([*ctr, "ls", "-q"]).split():
        _ctr([*ctr, "import", "--all-platforms", str(tar)])
    return ref


def _ctr(argv: list[str]) -> str:
    r = subprocess.run(argv, capture_output=True, text=True, check=False)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)}: exit {r.returncode}: {r.stderr.strip()}")
    return r.stdout


def versions() -> dict[str, str]:
    """hack/versions.env as a dict (the pins every build and the dev-env share)."""
    out = {}
    for line in (HACK / "versions.env").read_text().splitlines():
        if "=" in line and not line.startswith("#"):
            k, v = line.split("=", 1)
            out[k.strip()] = v.strip()
    return out


def _recipe_key(repo: str, version: str, rootfs: Rootfs, config: Config) -> str:
    def source(src: Path | bytes) -> object:
        if isinstance(src, bytes):
            return hashlib.sha256(src).hexdigest()
        st = src.stat()
        return [str(src), st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino]

    recipe = {
        "format": FORMAT,
        "arch": _arch(),
        "repo": repo,
        "version": version,
        "files": {p: source(s) for p, s in rootfs.files.items()},
        "symlinks": rootfs.symlinks,
        "dirs": rootfs.dirs,
        "modes": rootfs.modes,
        "config": config.__dict__,
    }
    return hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()


def _image_config(config: Config, diff_id: str) -> dict[str, object]:
    return {
        "architecture": _arch(),
        "os": "linux",
        "created": "1970-01-01T00:00:00Z",
        "config": {
            "Entrypoint": config.entrypoint or None,
            "Cmd": config.cmd or None,
            "User": config.user,
            "Env": config.env,
            "WorkingDir": config.working_dir,
        },
        "rootfs": {"type": "layers", "diff_ids": [f"sha256:{diff_id}"]},
        "history": [{"created": "1970-01-01T00:00:00Z", "created_by": "hack/devenv/images.py"}],
    }


def _info(name: str, kind: bytes, mode: int) -> tarfile.TarInfo:
    ti = tarfile.TarInfo(name)
    ti.type, ti.mode, ti.mtime = kind, mode, 0
    ti.uid = ti.gid = 0
    ti.uname = ti.gname = ""
    return ti


def _tag(version: str) -> str:
    """A Docker tag from a package version: no epoch, only [A-Za-z0-9_.-]."""
    return re.sub(r"[^A-Za-z0-9_.-]", "_", version.split(":", 1)[-1])[:100]


def _arch() -> str:
    machine = platform.machine()
    return {"x86_64": "amd64", "aarch64": "arm64"}.get(machine, machine)


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def main() -> None:
    """`make images`: build (not import) every node image; print each reference and tar."""
    for name, fn in (
        ("busybox", busybox_image),
        ("pause", pause_image),
        ("provisioner", local_path_provisioner_image),
        ("mover", mover_image),
    ):
        ref, tar = fn()
        print(f"{name}\t{ref}\t{tar}")


if __name__ == "__main__":
    main()
