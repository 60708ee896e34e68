"""The streaming tarball: what TarballWriter writes, Python's tarfile and GNU tar read
back entry for entry (short, long and very long names), and corruption is caught."""

from __future__ import annotations

import hashlib
import os
import subprocess
from pathlib import Path

import pytest

from migrate.errors import IntegrityError
from migrate.store import open_store
from migrate.store.archive import TarballWriter, read_tarball

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
