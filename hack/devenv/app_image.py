"""The kube-migrate image itself (`make image`), built offline from what this machine has.

No registry and no base image: the root filesystem is assembled from the interpreter the
project's .venv runs on (its binary, libpython and standard library, less tests, IDLE and
Tk), the runtime distributions installed in .venv (the dependency closure of kube-migrate
without its test and lint extras, copied file by file from their RECORDs), the `migrate`
package itself, kopia from hack/build.sh, the shared libraries all of those link against
(resolved with ldd) and the host's CA bundle. Every .py has its .pyc, so a read-only root
filesystem starts at full speed: the host's own bytecode (valid, as the layer keeps the
sources' mtimes), and unchecked-hash bytecode compiled here for what has none (our package).

The result is an OCI image layout archive (index.json + blobs, gzip layer) that also holds
a `docker save` manifest.json: `ctr images import`, `docker load` and `podman load` take it.
It is cached under ~/.cache/kube-migrate/images, keyed by every input's content or stat.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import tarfile
import threading
import time
from pathlib import Path

from devenv.images import CACHE, HACK, PATH_ENV, Config, _arch, _image_config, versions

ROOT = HACK.parent
VENV_PY = ROOT / ".venv" / "bin" / "python"
REPO = "kube-migrate.local/kube-migrate"
UID = 65532  # the "nonroot" of distroless images
FORMAT = 2  # bump when the recipe below changes shape
PREFIX = "usr/local"
# Standard-library parts a CLI never imports (and their size): tests 123M, static lib 44M...
STDLIB_SKIP = {
    "test",
    "idlelib",
    "tkinter",
    "turtledemo",
    "ensurepip",
    "lib2to3",
    "site-packages",
    "pydoc_data",
    "unittest/test",
    "__phello__",
}
DYNLOAD_SKIP = ("_tkinter", "_curses", "readline", "_test", "xx", "_ctypes_test", "nis")
CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
# The image's environment (the Containerfile sets the same; tests compare): HOME and the
# state dir on /tmp, the only place a read-only root filesystem leaves writable (an emptyDir)
ENV = [
    "HOME=/tmp",
    "KUBE_MIGRATE_STATE_DIR=/tmp/kube-migrate",
    "LD_LIBRARY_PATH=/usr/local/lib",
    "SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt",
]
PASSWD = f"root:x:0:0:root:/root:/sbin/nologin\nkube-migrate:x:{UID}:{UID}::/tmp:/sbin/nologin\n"
GROUP = f"root:x:0:\nkube-migrate:x:{UID}:\n"
# What .venv knows: the interpreter's prefix, and the runtime closure's files.
PROBE = r"""
import json, sys, importlib.metadata as md
from packaging.requirements import Requirement
seen, todo, files = set(), ["kube-migrate"], []
while todo:
    name = todo.pop()
    dist = md.distribution(name)
    key = dist.metadata["Name"].lower().replace("_", "-")
    if key in seen:
        continue
    seen.add(key)
    for req in dist.requires or []:
        r = Requirement(req)
        if r.marker is None or r.marker.evaluate({"extra": ""}):
            todo.append(r.name)
    if key != "kube-migrate":
        files += [str(f.locate()) for f in dist.files or [] if not str(f).startswith("..")]
        files += [str(dist._path)]
print(json.dumps({"prefix": sys.base_prefix, "version": "%d.%d" % sys.version_info[:2],
                  "dists": sorted(seen), "files": sorted(files)}))
"""


_LOCK = threading.Lock()  # both planes' nodes ask at once: one build


def image() -> tuple[str, Path]:
    """(reference, OCI archive) of the kube-migrate image; built only on a cache miss."""
    with _LOCK:
        return _image()


def _image() -> tuple[str, Path]:
    out = subprocess.run([str(VENV_PY), "-c", PROBE], capture_output=True, text=True, check=True)
    probe = json.loads(out.stdout)
    kopia = CACHE / "bin" / f"kopia-{versions()['KOPIA']}" / "kopia"
    if not kopia.is_file():
        raise RuntimeError(f"{kopia} missing: run hack/build.sh kopia")
    tree = _plan(probe, kopia)
    key = _key(tree)
    out = CACHE / "images"
    meta = out / f"kube-migrate-{key[:16]}.json"
    if meta.is_file():
        cached = json.loads(meta.read_text())
        if Path(cached["tar"]).is_file():
            return cached["ref"], Path(cached["tar"])
    stage = out / f".stage-{key[:16]}"
    shutil.rmtree(stage, ignore_errors=True)
    _materialize(tree, stage)
    py = stage / PREFIX / "bin" / f"python{probe['version']}"
    env = {"LD_LIBRARY_PATH": str(stage / PREFIX / "lib"), "PATH": os.environ["PATH"]}
    subprocess.run(
        [
            str(py),
            "-m",
            "compileall",
            "-q",
            "-j0",
            "--invalidation-mode",
            "unchecked-hash",
            "-s",
            str(stage),
            "-p",
            "/",
            str(stage / PREFIX / "lib"),
        ],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    layer = _layer(stage)
    shutil.rmtree(stage)
    version = _version()
    ref = f"{REPO}:{version}-{key[:8]}"
    cfg = Config(
        entrypoint=["/usr/local/bin/kube-migrate"],
        user=f"{UID}:{UID}",
        env=[PATH_ENV, *ENV],
        working_dir="/tmp",
    )
    tar = out / f"kube-migrate-{key[:16]}.oci.tar"
    _write(tar, oci_archive(ref, layer, cfg))
    for old in out.glob("kube-migrate-*"):  # earlier builds of this image (not the mover's)
        mine = re.fullmatch(r"kube-migrate-[0-9a-f]{16}\.(json|oci\.tar)", old.name)
        if mine and key[:16] not in old.name:
            old.unlink(missing_ok=True)
    meta.write_text(json.dumps({"ref": ref, "tar": str(tar)}))
    return ref, tar


def _plan(probe: dict[str, object], kopia: Path) -> dict[str, Path | bytes]:
    """Image path -> host file (or content) for every file of the root filesystem."""
    prefix, ver = Path(str(probe["prefix"])), str(probe["version"])
    tree: dict[str, Path | bytes] = {}
    stdlib = prefix / "lib" / f"python{ver}"
    tag = f".cpython-{ver.replace('.', '')}.pyc"  # the host's own bytecode, not -O's
    for p in sorted(stdlib.rglob("*")):
        rel = p.relative_to(stdlib).as_posix()
        if p.is_dir() or _skipped(rel) or rel.startswith("config-") or _other_pyc(p, tag):
            continue
        tree[f"{PREFIX}/lib/python{ver}/{rel}"] = p
    site = f"{PREFIX}/lib/python{ver}/site-packages"
    for f in map(Path, probe["files"]):  # type: ignore[call-overload]
        for p in [f] if f.is_file() else sorted(f.rglob("*")) if f.is_dir() else []:
            if p.is_dir() or _other_pyc(p, tag):
                continue
            rel = p.as_posix().split("/site-packages/", 1)[1]
            tree[f"{site}/{rel}"] = p
    for p in sorted((ROOT / "migrate").rglob("*")):
        if p.is_file() and "__pycache__" not in p.parts:
            tree[f"{site}/{p.relative_to(ROOT).as_posix()}"] = p
    tree[f"{PREFIX}/bin/python{ver}"] = prefix / "bin" / f"python{ver}"
    tree[f"{PREFIX}/lib/libpython{ver}.so.1.0"] = prefix / "lib" / f"libpython{ver}.so.1.0"
    tree[f"{PREFIX}/bin/kube-migrate"] = (
        f"#!/usr/local/bin/python{ver} -I\n"
        "import sys\nfrom migrate.cli.main import main\nsys.exit(main())\n"
    ).encode()
    tree[f"{PREFIX}/bin/kopia"] = kopia
    for lib in _shared_libs([p for p in tree.values() if isinstance(p, Path)]):
        tree.setdefault(lib.lstrip("/"), Path(lib))
    tree["etc/ssl/certs/ca-certificates.crt"] = CA_BUNDLE
    tree["etc/passwd"], tree["etc/group"] = PASSWD.encode(), GROUP.encode()
    return tree


def _other_pyc(p: Path, tag: str) -> bool:
    """Bytecode the image does not take: -O/-OO variants, other versions, strays. The
    host's own (timestamp-checked) stays valid because the layer keeps the sources'
    mtimes; compileall then only compiles what has none (our package: unchecked-hash)."""
    if "__pycache__" not in p.parts:
        return p.suffix == ".pyc"
    return not p.name.endswith(tag) or ".opt-" in p.name


def _skipped(rel: str) -> bool:
    if any(rel == s or rel.startswith(s + "/") for s in STDLIB_SKIP):
        return True
    name = rel.rsplit("/", 1)[-1]
    return rel.startswith("lib-dynload/") and name.startswith(DYNLOAD_SKIP)


def _shared_libs(files: list[Path]) -> set[str]:
    """Every library the ELF files among `files` load (ldd), outside the image's own."""
    libs: set[str] = set()
    for f in files:
        if f.suffix != ".so" and ".so." not in f.name and os.access(f, os.X_OK) is False:
            continue
        with open(f, "rb") as fh:
            if fh.read(4) != b"\x7fELF":
                continue
        r = subprocess.run(["ldd", str(f)], capture_output=True, text=True, check=False)
        for line in r.stdout.splitlines():
            parts = line.split()
            path = parts[2] if "=>" in parts and len(parts) > 2 else parts[0]
            if path.startswith("/") and "libpython" not in path:
                libs.add(path)
                real = os.path.realpath(path)
                if real != path:
                    libs.add(real)
    return libs


def _key(tree: dict[str, Path | bytes]) -> str:
    h = hashlib.sha256(f"{FORMAT} {_arch()} {_version()}\n".encode())
    for path in sorted(tree):
        src = tree[path]
        if isinstance(src, bytes):
            sig = hashlib.sha256(src).hexdigest()
        elif src.is_relative_to(ROOT):  # our sources: by content (a checkout's mtimes vary)
            sig = hashlib.sha256(src.read_bytes()).hexdigest()
        else:
            st = src.stat()
            sig = f"{st.st_size} {st.st_mtime_ns} {st.st_ino}"
        h.update(f"{path} {sig}\n".encode())
    return h.hexdigest()


def _materialize(tree: dict[str, Path | bytes], stage: Path) -> None:
    for path, src in tree.items():
        dest = stage / path
        dest.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(src, bytes):
            dest.write_bytes(src)
            dest.chmod(0o755 if path.endswith("/kube-migrate") else 0o644)
        else:
            shutil.copyfile(os.path.realpath(src), dest)
            dest.chmod(0o755 if os.access(src, os.X_OK) else 0o644)
            st = src.stat()
            os.utime(dest, ns=(st.st_atime_ns, st.st_mtime_ns))  # keeps host .pyc valid
    for lib in (stage / "lib64", stage / "lib", stage / "usr/lib"):
        lib.mkdir(parents=True, exist_ok=True)  # ld.so's own paths


def _layer(stage: Path) -> bytes:
    """The tree as a tar (sorted, owner 0:0, the sources' mtimes) with /tmp 1777."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
        for name in ["tmp", *sorted(str(p.relative_to(stage)) for p in stage.rglob("*"))]:
            p = stage / name
            ti = t.gettarinfo(str(p), arcname=name) if name != "tmp" else tarfile.TarInfo("tmp")
            if name == "tmp":
                ti.type, ti.mode = tarfile.DIRTYPE, 0o1777
            ti.uid, ti.gid, ti.uname, ti.gname = 0, 0, "", ""  # mtimes kept: .pyc checks
            if ti.isfile():
                with open(p, "rb") as fh:
                    t.addfile(ti, fh)
            else:
                t.addfile(ti)
    return buf.getvalue()


def oci_archive(ref: str, layer: bytes, config: Config) -> bytes:
    """An OCI image layout (gzip layer) plus docker-archive's manifest.json, one image."""
    diff_id = hashlib.sha256(layer).hexdigest()
    gz = gzip.compress(layer, compresslevel=6, mtime=0)
    cfg = json.dumps(_image_config(config, diff_id), sort_keys=True).encode()
    blobs = {hashlib.sha256(b).hexdigest(): b for b in (gz, cfg)}
    layer_d, cfg_d = hashlib.sha256(gz).hexdigest(), hashlib.sha256(cfg).hexdigest()
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": f"sha256:{cfg_d}",
                "size": len(cfg),
            },
            "layers": [
                {
                    "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                    "digest": f"sha256:{layer_d}",
                    "size": len(gz),
                }
            ],
        },
        sort_keys=True,
    ).encode()
    man_d = hashlib.sha256(manifest).hexdigest()
    blobs[man_d] = manifest
    index = {
        "schemaVersion": 2,
        "manifests": [
            {
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": f"sha256:{man_d}",
                "size": len(manifest),
                "annotations": {
                    "io.containerd.image.name": ref,
                    "org.opencontainers.image.ref.name": ref.rsplit(":", 1)[1],
                },
            }
        ],
    }
    members = {f"blobs/sha256/{d}": b for d, b in blobs.items()} | {
        "oci-layout": b'{"imageLayoutVersion":"1.0.0"}',
        "index.json": json.dumps(index, sort_keys=True).encode(),
        "manifest.json": json.dumps(
            [
                {
                    "Config": f"blobs/sha256/{cfg_d}",
                    "RepoTags": [ref],
                    "Layers": [f"blobs/sha256/{layer_d}"],
                }
            ]
        ).encode(),
    }
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
        for name in sorted(members):
            ti = tarfile.TarInfo(name)
            ti.size, ti.mode = len(members[name]), 0o644
            t.addfile(ti, io.BytesIO(members[name]))
    return buf.getvalue()


def _version() -> str:
    for line in (ROOT / "migrate" / "__init__.py").read_text().splitlines():
        if line.startswith("__version__"):
            return line.split("=", 1)[1].strip().strip("\"'")
    raise RuntimeError("migrate/__init__.py: no __version__")


def _write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def rootfs_tar(oci: Path) -> bytes:
    """The image's root filesystem (its one layer, uncompressed) out of its OCI archive."""
    with tarfile.open(oci) as t:
        member = t.extractfile("manifest.json")
        assert member is not None
        layer = t.extractfile(json.load(member)[0]["Layers"][0])
        assert layer is not None
        return gzip.decompress(layer.read())


def write_rootfs(oci: Path) -> Path:
    """dist/kube-migrate-rootfs.tar: what the Containerfile adds."""
    out = ROOT / "dist" / "kube-migrate-rootfs.tar"
    out.parent.mkdir(exist_ok=True)
    _write(out, rootfs_tar(oci))
    return out


def main() -> None:
    """`make image`: build the image into dist/ as an OCI archive (`ctr images import`,
    `docker load`, `podman load`) and the root filesystem the Containerfile adds; print
    the reference, the archive and its compressed size."""
    t0 = time.monotonic()
    ref, tar = image()
    dist = ROOT / "dist"
    dist.mkdir(exist_ok=True)
    out = dist / f"kube-migrate-{_version()}.oci.tar"
    shutil.copyfile(tar, out)
    write_rootfs(tar)
    size = out.stat().st_size / 1e6
    print(f"{ref}\t{out}\t{size:.1f} MB compressed\t{time.monotonic() - t0:.0f}s")


if __name__ == "__main__":
    main()
