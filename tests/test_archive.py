"""The streaming tarball: what TarballWriter writes, Python's tarfile and GNU tar read
back entry for entry (short, long and very long names), and corruption is caught."""

from __future__ import annotations

import hashlib
import io
import os
import subprocess
import tarfile
from pathlib import Path

import pytest

from migrate.errors import IntegrityError
from migrate.store import open_store
from migrate.store.archive import TarballWriter, read_tarball
from migrate.store.tarread import TarFormatError, iter_files

NAMES = [
    "metadata/version",
    "resources/configmaps/namespaces/ns/short.json",
    "resources/customresourcedefinitions.apiextensions.k8s.io/v1-preferredversion/cluster/"
    "widgets.shop.example.com.json",  # > 100 bytes: ustar prefix field
    "resources/x.example.com/namespaces/" + "n" * 63 + "/" + "o" * 250 + ".json",  # PAX
]


def test_round_trip_with_python_and_gnu_tar(tmp_path: Path) -> None:
    store = open_store(f"file://{tmp_path}/bucket")
    payloads = {name: os.urandom(i * 700 + 1) for i, name in enumerate(NAMES)}
    with TarballWriter(store, "b.tar.gz") as tw:
        for name, data in payloads.items():
            tw.add(name, data)
    blob = store.get("b.tar.gz")
    assert tw.size == len(blob) and tw.sha256 == hashlib.sha256(blob).hexdigest()
    assert dict(read_tarball(store, "b.tar.gz", tw.sha256)) == payloads
    listing = subprocess.run(
        ["tar", "-tvzf", str(tmp_path / "bucket" / "b.tar.gz")],
        capture_output=True, text=True, check=True,
    ).stdout.splitlines()  # fmt: skip
    assert [line.split()[-1] for line in listing] == NAMES
    assert all(line.startswith("-rwxr-xr-x") for line in listing)


def test_corruption_and_checksum_mismatch(tmp_path: Path) -> None:
    store = open_store(f"file://{tmp_path}/bucket")
    with TarballWriter(store, "b.tar.gz") as tw:
        tw.add("resources/a/cluster/x.json", b"{}" * 5000)
    blob = store.get("b.tar.gz")
    store.put("truncated.tar.gz", blob[: len(blob) // 2])
    with pytest.raises(IntegrityError, match="corrupted or truncated"):
        list(read_tarball(store, "truncated.tar.gz"))
    with pytest.raises(IntegrityError, match="does not match the manifest"):
        list(read_tarball(store, "b.tar.gz", "0" * 64))


def test_abort_leaves_no_object(tmp_path: Path) -> None:
    store = open_store(f"file://{tmp_path}/bucket")
    with pytest.raises(RuntimeError), TarballWriter(store, "b.tar.gz") as tw:
        tw.add("resources/a/cluster/x.json", os.urandom(3 << 20))
        raise RuntimeError("listing failed")
    assert not store.exists("b.tar.gz")


@pytest.mark.parametrize("fmt", [tarfile.USTAR_FORMAT, tarfile.GNU_FORMAT, tarfile.PAX_FORMAT])
def test_reader_reads_what_tarfile_and_gnu_tar_write(tmp_path: Path, fmt: int) -> None:
    """Our tar reader against the other writers: long names in each format's way,
    non-ASCII names, directories and links skipped, empty files, exact block sizes."""
    names = [n for n in NAMES if fmt != tarfile.USTAR_FORMAT or len(n) < 256]
    names += ["resources/configmaps/namespaces/ns/caf\u00e9.json", "empty.json", "block.json"]
    payloads = {n: os.urandom(i * 333) for i, n in enumerate(names)}
    payloads["empty.json"], payloads["block.json"] = b"", b"x" * 1024
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as tar:
        folder = tarfile.TarInfo("resources/")
        folder.type = tarfile.DIRTYPE
        tar.addfile(folder)
        for name, data in payloads.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        link = tarfile.TarInfo("a-link")
        link.type, link.linkname = tarfile.SYMTYPE, "empty.json"
        tar.addfile(link)
    raw = buf.getvalue()
    assert dict(iter_files(io.BytesIO(raw))) == payloads
    gnu = tmp_path / "gnu.tar"  # GNU tar's own long names
    src = tmp_path / "src"
    for name, data in payloads.items():
        (src / name).parent.mkdir(parents=True, exist_ok=True)
        (src / name).write_bytes(data)
    subprocess.run(["tar", "-cf", str(gnu), "-C", str(src), *payloads], check=True)
    assert dict(iter_files(gnu.open("rb"))) == payloads

    bad = bytearray(raw)
    bad[148] ^= 1  # the first header's checksum
    with pytest.raises(TarFormatError, match="checksum"):
        list(iter_files(io.BytesIO(bytes(bad))))
    with pytest.raises(TarFormatError, match="truncated"):
        list(iter_files(io.BytesIO(raw[: 512 + 100])))
