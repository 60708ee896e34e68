"""The registry-free images of the real nodes (hack/devenv/images.py): a docker-archive whose
manifest, config and layer agree, built byte-identically, cached, and imported only once."""

from __future__ import annotations

import hashlib
import io
import json
import os
import stat
import sys
import tarfile
from pathlib import Path

import pytest

from .helpers import ROOT

if str(ROOT / "hack") not in sys.path:
    sys.path.insert(0, str(ROOT / "hack"))
from devenv import images

needs_busybox = pytest.mark.skipif(
    not images.BUSYBOX.is_file(), reason="busybox-static missing (hack/host-deps.sh)"
)


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(images, "CACHE", tmp_path / "cache")
    return tmp_path / "cache"


def _sample(tmp_path: Path) -> tuple[images.Rootfs, images.Config]:
    tool = tmp_path / "tool"
    tool.write_bytes(b"#!/bin/sh\necho hi\n")
    tool.chmod(0o755)
    rootfs = images.Rootfs(
        files={"/usr/local/bin/tool": tool, "/etc/motd": b"hello\n"},
        symlinks={"/bin/t": "/usr/local/bin/tool"},
        dirs={"/tmp": 0o1777},
    )
    config = images.Config(entrypoint=["/bin/t"], cmd=["--flag"], user="65534", working_dir="/tmp")
    return rootfs, config


def _read(tar: Path) -> dict[str, bytes]:
    """The archive's regular files by name."""
    out = {}
    with tarfile.open(tar) as t:
        for m in t:
            f = t.extractfile(m) if m.isfile() else None
            if f is not None:
                out[m.name] = f.read()
    return out


def _layer(tar: Path) -> tarfile.TarFile:
    files = _read(tar)
    manifest = json.loads(files["manifest.json"])
    return tarfile.open(fileobj=io.BytesIO(files[manifest[0]["Layers"][0]]))


def test_archive_manifest_config_and_layer_agree(cache: Path, tmp_path: Path) -> None:
    ref, tar = images.build("sample", "1:2.0+b1", *_sample(tmp_path))
    files = _read(tar)
    [manifest] = json.loads(files["manifest.json"])
    assert manifest["RepoTags"] == [ref]
    assert ref.startswith("kube-migrate.local/sample:2.0_b1-")
    config_bytes = files[manifest["Config"]]
    image_id = hashlib.sha256(config_bytes).hexdigest()
    assert manifest["Config"] == f"{image_id}.json"
    assert ref.endswith(f"-{image_id[:8]}")
    [layer_name] = manifest["Layers"]
    diff_id = hashlib.sha256(files[layer_name]).hexdigest()
    assert layer_name == f"{diff_id}/layer.tar"
    config = json.loads(config_bytes)
    assert config["rootfs"] == {"type": "layers", "diff_ids": [f"sha256:{diff_id}"]}
    assert config["os"] == "linux"
    assert config["config"]["Entrypoint"] == ["/bin/t"]
    assert config["config"]["Cmd"] == ["--flag"]
    assert config["config"]["User"] == "65534"
    assert config["config"]["WorkingDir"] == "/tmp"
    assert any(e.startswith("PATH=") for e in config["config"]["Env"])
    repo, tag = ref.rsplit(":", 1)
    assert json.loads(files["repositories"]) == {repo: {tag: diff_id}}


def test_layer_has_parents_modes_links_and_no_host_metadata(cache: Path, tmp_path: Path) -> None:
    _, tar = images.build("sample", "1", *_sample(tmp_path))
    with _layer(tar) as layer:
        members = {m.name: m for m in layer}
        names = [m.name for m in layer]
        assert names == sorted(names)
        assert {"usr", "usr/local", "usr/local/bin", "etc", "bin"} <= set(members)
        assert all(members[d].isdir() for d in ("usr", "usr/local", "usr/local/bin"))
        assert members["bin/t"].issym() and members["bin/t"].linkname == "/usr/local/bin/tool"
        assert stat.S_IMODE(members["tmp"].mode) == 0o1777
        assert stat.S_IMODE(members["usr/local/bin/tool"].mode) == 0o755
        assert stat.S_IMODE(members["etc/motd"].mode) == 0o644
        assert all(m.mtime == 0 and m.uid == 0 and m.gid == 0 for m in layer)
        assert all(m.uname == "" and m.gname == "" for m in layer)
        tool = layer.extractfile("usr/local/bin/tool")
        assert tool is not None and tool.read() == b"#!/bin/sh\necho hi\n"


def test_two_builds_are_byte_identical(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rootfs, config = _sample(tmp_path)
    built = []
    for name in ("a", "b"):
        monkeypatch.setattr(images, "CACHE", tmp_path / name)
        built.append(images.build("sample", "1", rootfs, config))
    (ref_a, tar_a), (ref_b, tar_b) = built
    assert tar_a != tar_b
    assert ref_a == ref_b
    assert tar_a.read_bytes() == tar_b.read_bytes()


def test_warm_call_reuses_the_tar_and_a_changed_file_replaces_it(
    cache: Path, tmp_path: Path
) -> None:
    rootfs, config = _sample(tmp_path)
    ref, tar = images.build("sample", "1", rootfs, config)
    mtime = tar.stat().st_mtime_ns
    assert images.build("sample", "1", rootfs, config) == (ref, tar)
    assert tar.stat().st_mtime_ns == mtime
    (tmp_path / "tool").write_bytes(b"#!/bin/sh\necho changed\n")
    ref2, tar2 = images.build("sample", "1", rootfs, config)
    assert ref2 != ref
    assert tar2.is_file()
    assert not tar.exists()  # the earlier build of the same image is pruned


@needs_busybox
def test_busybox_and_pause_images(cache: Path) -> None:
    ref, tar = images.busybox_image()
    version = images.busybox_version()
    assert ref.startswith(f"kube-migrate.local/busybox:{images._tag(version)}-")
    with _layer(tar) as layer:
        members = {m.name: m for m in layer}
        assert members["bin/busybox"].isfile()
        assert stat.S_IMODE(members["bin/busybox"].mode) == 0o755
        for applet in ("bin/sh", "bin/sleep", "bin/mkdir", "bin/rm"):
            assert members[applet].issym() and members[applet].linkname == "/bin/busybox"
        assert stat.S_IMODE(members["tmp"].mode) == 0o1777
        passwd = layer.extractfile("etc/passwd")
        assert passwd is not None
        users = {line.split(":")[0]: line.split(":")[2] for line in passwd.read().decode().split()}
        assert users == {"root": "0", "nobody": "65534"}

    pause_ref, pause_tar = images.pause_image()
    assert pause_ref.startswith("kube-migrate.local/pause:")
    files = _read(pause_tar)
    [manifest] = json.loads(files["manifest.json"])
    cfg = json.loads(files[manifest["Config"]])["config"]
    assert cfg["User"] == "65534"
    assert cfg["Entrypoint"][:2] == ["/bin/sh", "-c"]
    assert 'trap "exit 0" TERM' in cfg["Entrypoint"][2]
    # the same layer as busybox: containerd stores it once
    assert manifest["Layers"][0] in _read(tar)


def test_tag_is_a_valid_docker_tag() -> None:
    assert images._tag("1:1.35.0-4+deb12u1+b1") == "1.35.0-4_deb12u1_b1"
    assert images._tag("v0.0.37") == "v0.0.37"


def test_import_skips_a_reference_containerd_already_lists(
    cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ref, tar = images.build("sample", "1", *_sample(tmp_path))
    calls, listed = tmp_path / "calls", tmp_path / "listed"
    fake = tmp_path / "bin" / "ctr"
    fake.parent.mkdir()
    fake.write_text(
        f'#!/bin/sh\necho "$*" >> {calls}\n'
        f'case "$*" in *" ls -q"*) cat {listed} 2>/dev/null ;; esac\nexit 0\n'
    )
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake.parent}:{os.environ['PATH']}")

    assert images.import_image(tmp_path / "sock", tar) == ref
    log = calls.read_text().splitlines()
    assert log == [
        f"-a {tmp_path / 'sock'} -n k8s.io images ls -q",
        f"-a {tmp_path / 'sock'} -n k8s.io images import --all-platforms {tar}",
    ]
    listed.write_text(f"other:1\n{ref}\n")
    calls.unlink()
    images.import_image(tmp_path / "sock", tar)
    assert calls.read_text().splitlines() == [f"-a {tmp_path / 'sock'} -n k8s.io images ls -q"]
