"""The kube-migrate image (`make image`, hack/devenv/app_image.py): small, non-root, every
module precompiled for a read-only root filesystem, an archive that containerd, docker and
podman load; and the Containerfile builds the same image with buildah (no registry).
The image running for real, as a CronJob's pod with a read-only root: test_schedule.py."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any

import pytest

from .helpers import ROOT

if str(ROOT / "hack") not in sys.path:
    sys.path.insert(0, str(ROOT / "hack"))
from devenv import app_image

LIMIT = 150e6  # the README's promise: compressed size under 150 MB


@pytest.fixture(scope="module")
def built() -> tuple[str, Path]:
    return app_image.image()  # cached: milliseconds when nothing changed


def _members(tar: Path) -> dict[str, Any]:
    with tarfile.open(tar) as t:
        index = json.load(t.extractfile("index.json"))  # type: ignore[arg-type]
        manifest = json.load(t.extractfile("manifest.json"))[0]  # type: ignore[arg-type]
        config = json.load(t.extractfile(manifest["Config"]))  # type: ignore[arg-type]
    return {"index": index, "manifest": manifest, "config": config}


def test_image_is_small_non_root_and_oci(built: tuple[str, Path]) -> None:
    ref, tar = built
    assert tar.stat().st_size < LIMIT, f"{tar.stat().st_size / 1e6:.1f} MB"
    m = _members(tar)
    annotations = m["index"]["manifests"][0]["annotations"]
    assert annotations["io.containerd.image.name"] == ref == m["manifest"]["RepoTags"][0]
    cfg = m["config"]["config"]
    assert cfg["User"] == "65532:65532" and cfg["Entrypoint"] == ["/usr/local/bin/kube-migrate"]
    assert "HOME=/tmp" in cfg["Env"]


def test_rootfs_holds_the_runtime_and_no_more(built: tuple[str, Path]) -> None:
    _, tar = built
    with tarfile.open(fileobj=__import__("io").BytesIO(app_image.rootfs_tar(tar))) as t:
        members = {m.name: m for m in t.getmembers()}
        names = set(members)
        lib = "usr/local/lib/python3.11"
        assert f"{lib}/site-packages/migrate/cli/main.py" in names
        assert "usr/local/bin/kopia" in names and members["usr/local/bin/kopia"].mode & 0o111
        assert not any(n.startswith((f"{lib}/test/", f"{lib}/site-packages/pytest")) for n in names)
        assert not any("/mypy/" in n or "/ruff" in n for n in names)  # no lint extras
        assert members["tmp"].mode & 0o1777 == 0o1777
        # every module of ours precompiled, unchecked-hash (flags 0b01): read-only root
        # filesystems never recompile, and the sources' mtimes (0 in the layer) do not matter
        pycs = [n for n in names if "/site-packages/migrate/" in n and n.endswith(".pyc")]
        pys = [n for n in names if "/site-packages/migrate/" in n and n.endswith(".py")]
        assert len(pycs) == len(pys) > 100
        head = t.extractfile(pycs[0]).read(8)  # type: ignore[union-attr]
        assert int.from_bytes(head[4:8], "little") == 0b01


def test_containerfile_builds_the_same_image_with_buildah(built: tuple[str, Path]) -> None:
    buildah = shutil.which("buildah")
    assert buildah, "buildah missing: hack/host-deps.sh installs it"
    app_image.write_rootfs(built[1])  # dist/kube-migrate-rootfs.tar, as `make image`
    tag = "localhost/kube-migrate:containerfile-test"

    def sh(*args: str) -> subprocess.CompletedProcess[str]:
        argv = [buildah, "--storage-driver", "vfs", *args]
        return subprocess.run(argv, capture_output=True, text=True, check=False, cwd=ROOT)

    r = sh("bud", "-q", "-f", "Containerfile", "-t", tag, ".")
    assert r.returncode == 0, r.stderr
    try:
        inspected = json.loads(sh("inspect", tag).stdout)
        got = inspected["OCIv1"]["config"]
        want = _members(built[1])["config"]["config"]
        assert got["User"] == want["User"] and got["Entrypoint"] == want["Entrypoint"]
        assert got["Env"] == want["Env"] and got["WorkingDir"] == want["WorkingDir"]
        ctr = sh("from", "-q", tag).stdout.strip()
        out = sh("run", ctr, "--", "/usr/local/bin/kube-migrate", "--version")
        sh("rm", ctr)
        assert out.returncode == 0 and "kube-migrate, version" in out.stdout, out.stderr
    finally:
        sh("rmi", "-f", tag)
