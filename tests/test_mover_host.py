"""The volume-data mover (mover/, kmmover driving kopia) run directly on the host against a
MinIO of its own: backup, unchanged re-backup, restore, verify, a flipped byte, a restore of
many small files (which kmmover prefetches as whole packs), and the error reasons the Python
side acts on. No cluster: this pins kmmover's JSON-lines contract before any pod runs it.
Needs `hack/build.sh kopia mover minio` (it fails, not skips, without them).
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from .helpers import ROOT

if str(ROOT / "hack") not in sys.path:
    sys.path.insert(0, str(ROOT / "hack"))
from devenv import images

pytestmark = pytest.mark.s3

BIN = images.CACHE / "bin"
BUCKET = "mover"
PASSWORD = "kopia-" + secrets.token_hex(8)


def _binary(rel: str) -> Path:
    path = BIN / rel
    assert path.is_file(), f"{path} missing: run hack/build.sh kopia mover minio"
    return path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """A private MinIO on a free loopback port; the kmmover environment that reaches it."""
    minio = _binary(f"minio-{images.versions()['MINIO']}/minio")
    folder = tmp_path_factory.mktemp("mover-minio")
    port = _free_port()
    key, secret = "km-mover", secrets.token_hex(16)
    env = {**os.environ, "MINIO_ROOT_USER": key, "MINIO_ROOT_PASSWORD": secret}
    env |= {"MINIO_BROWSER": "off", "MINIO_UPDATE": "off"}
    log = (folder / "minio.log").open("wb")
    proc = subprocess.Popen(
        [str(minio), "server", str(folder / "data"), "--address", f"127.0.0.1:{port}",
         "--console-address", f"127.0.0.1:{_free_port()}", "--quiet"],
        env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    client = boto3.client(
        "s3",
        endpoint_url=f"http://127.0.0.1:{port}",
        aws_access_key_id=key,
        aws_secret_access_key=secret,
        region_name="us-east-1",
    )
    deadline = time.monotonic() + 30
    while True:
        try:
            client.create_bucket(Bucket=BUCKET)
            break
        except Exception:
            if time.monotonic() > deadline or proc.poll() is not None:
                proc.kill()
                raise AssertionError((folder / "minio.log").read_text()[-2000:]) from None
            time.sleep(0.2)
    yield {
        "KOPIA_PASSWORD": PASSWORD,
        "KM_S3_BUCKET": BUCKET,
        "KM_S3_PREFIX": "volumes/",
        "KM_S3_ENDPOINT": f"127.0.0.1:{port}",
        "KM_S3_REGION": "",
        "KM_S3_DISABLE_TLS": "1",
        "AWS_ACCESS_KEY_ID": key,
        "AWS_SECRET_ACCESS_KEY": secret,
    }
    proc.terminate()
    proc.wait(30)
    log.close()


@pytest.fixture(scope="module")
def mover_env(
    s3: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, dict[str, str]]:
    """kmmover's path and the environment it runs in (kopia on PATH, the bucket)."""
    kmmover = _binary(f"mover-{images.mover_hash()}/kmmover")
    kopia = _binary(f"kopia-{images.versions()['KOPIA']}/kopia")
    work = tmp_path_factory.mktemp("mover-work")
    base = {**os.environ, **s3, "KM_WORK_DIR": str(work)}
    base["PATH"] = f"{kopia.parent}{os.pathsep}{base['PATH']}"
    return kmmover, base


@pytest.fixture(scope="module")
def mover(s3: dict[str, str], mover_env: tuple[Path, dict[str, str]]) -> Any:
    """kmmover(*args, **env_overrides) -> (exit code, JSON lines of stdout, stderr)."""
    kmmover, base = mover_env

    def run(*args: str, **env: str) -> tuple[int, list[dict[str, Any]], str]:
        r = subprocess.run(
            [str(kmmover), *args], env={**base, **env}, capture_output=True, text=True,
            timeout=120, check=False,
        )  # fmt: skip
        lines = [json.loads(line) for line in r.stdout.splitlines()]
        for secret in (s3["KOPIA_PASSWORD"], s3["AWS_SECRET_ACCESS_KEY"]):
            assert secret not in r.stdout and secret not in r.stderr
        return r.returncode, lines, r.stderr

    return run


def _result(out: tuple[int, list[dict[str, Any]], str]) -> dict[str, Any]:
    code, lines, stderr = out
    assert code == 0 and lines and lines[-1]["kind"] == "result", (lines, stderr[-3000:])
    assert all(line["kind"] == "progress" for line in lines[:-1])
    return lines[-1]


def _error(out: tuple[int, list[dict[str, Any]], str], reason: str) -> None:
    code, lines, stderr = out
    assert code == 2 and lines[-1]["kind"] == "error", (lines, stderr[-3000:])
    assert lines[-1]["reason"] == reason, lines[-1]


def _tree(root: Path) -> None:
    """Big random files, many small ones, nested dirs, a symlink, a hardlink, empty file and
    dir, odd names, odd modes (and odd owners when run as root)."""
    rnd = random.Random(7)
    for i in range(2):
        (root / f"big {i}.bin").write_bytes(os.urandom(8 << 20))
    for i in range(400):
        d = root / f"d{i % 8}" / f"sub{i % 3}"
        d.mkdir(parents=True, exist_ok=True)
        (d / f"f{i}.dat").write_bytes(rnd.randbytes(rnd.randint(0, 4096)))
    (root / "empty dir").mkdir()
    (root / "empty").write_bytes(b"")
    (root / "ünï cödé ✓").write_text("utf-8\n")
    (root / "new\nline").write_text("newline\n")
    (root / "a-b").write_text("sorts before a/\n")
    (root / "a").mkdir()
    (root / "a" / "target.txt").write_text("hardlinked\n")
    os.link(root / "a" / "target.txt", root / "zz hardlink")
    (root / "link").symlink_to("a/target.txt")
    (root / "private").write_text("secret-ish\n")
    (root / "private").chmod(0o600)
    (root / "shared").mkdir(mode=0o755)
    (root / "shared").chmod(0o2775)
    if os.geteuid() == 0:
        os.chown(root / "private", 1234, 5678)
        os.chown(root / "shared", 4321, 8765)


def test_manifest_is_path_sorted_and_complete(mover: Any, tmp_path: Path) -> None:
    _tree(tmp_path)
    code, lines, stderr = mover("manifest", "--path", str(tmp_path))
    assert code == 0, stderr
    paths = [e["path"] for e in lines]
    assert paths == sorted(paths, key=lambda p: p.encode())
    by = {e["path"]: e for e in lines}
    assert len(by) == len(lines) and "" not in by
    assert by["a-b"]["type"] == "file" and paths.index("a-b") < paths.index("a/target.txt")
    assert by["new\nline"]["sha256"] and by["ünï cödé ✓"]["size"] == 6
    assert by["link"] == by["link"] | {"type": "symlink", "link": "a/target.txt"}
    assert by["zz hardlink"]["hardlink"] == "a/target.txt"
    assert "hardlink" not in by["a/target.txt"]
    assert by["private"]["mode"] == "0600" and by["shared"]["mode"] == "02775"
    assert by["empty dir"]["type"] == "dir"
    assert by["empty"]["sha256"] == hashlib.sha256(b"").hexdigest()


def test_backup_restore_verify(mover: Any, tmp_path: Path) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    src.mkdir()
    _tree(src)
    who = ("--user", "vol-a", "--host", "ns-a")
    _error(mover("backup", "--path", str(src), *who), "repository-missing")

    out = mover("backup", "--path", str(src), *who, "--create", KM_PROGRESS_SECONDS="0.01")
    first = _result(out)
    ticks = [line for line in out[1] if line["kind"] == "progress"]  # the ETA's figures
    assert ticks and [t["bytes"] for t in ticks] == sorted(t["bytes"] for t in ticks)
    totals = {t["totalBytes"] for t in ticks if "totalBytes" in t}
    assert len(totals) == 1 and abs(totals.pop() - first["totalBytes"]) < first["totalBytes"] / 100
    assert first["peakRssBytes"] > 0
    assert first["totalBytes"] > 16 << 20 and first["files"] >= 400 and first["dirs"] >= 30
    assert first["incrementalBytes"] > 16 << 20
    again = _result(mover("backup", "--path", str(src), *who))
    assert again["snapshotID"] != first["snapshotID"]
    assert again["totalBytes"] == first["totalBytes"]
    assert again["incrementalBytes"] < 256 << 10, again  # metadata only: nothing re-uploaded

    out = mover("restore", "--path", str(dst), "--snapshot", again["snapshotID"],
                KM_PROGRESS_SECONDS="0.01")  # fmt: skip
    restored = _result(out)
    ticks = [line for line in out[1] if line["kind"] == "progress"]
    assert ticks and all(t["totalBytes"] == again["totalBytes"] for t in ticks), ticks[:3]
    assert (restored["bytes"], restored["files"]) == (again["totalBytes"], again["files"])
    assert (dst / "zz hardlink").stat().st_ino == (dst / "a" / "target.txt").stat().st_ino
    verify = ("verify", "--path", str(dst), "--manifest-snapshot", again["manifestSnapshotID"])
    clean = _result(mover(*verify))
    assert clean["differences"] == 0 and clean["diffs"] == [], clean
    assert clean["bytes"] == again["totalBytes"] and clean["peakRssBytes"] > 0

    victim = dst / "d3" / "sub2" / "f11.dat"
    data = bytearray(victim.read_bytes() or b"\0")
    data[0] ^= 0xFF
    victim.write_bytes(bytes(data))
    (dst / "empty").write_bytes(b"now not")
    dirty = _result(mover(*verify, "--max-diffs", "1"))
    assert dirty["differences"] >= 2 and len(dirty["diffs"]) == 1
    dirty = _result(mover(*verify))
    whats = {(d["path"], d["what"]) for d in dirty["diffs"]}
    assert ("d3/sub2/f11.dat", "sha256") in whats or ("d3/sub2/f11.dat", "size") in whats
    assert ("empty", "size") in whats


def test_small_files_restore_prefetched(mover: Any, tmp_path: Path) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    rnd = random.Random(11)
    for i in range(2000):
        d = src / f"d{i % 40:02d}"
        d.mkdir(parents=True, exist_ok=True)
        (d / f"f{i}.txt").write_bytes(rnd.randbytes(rnd.randint(200, 400)))
    (src / "big.bin").write_bytes(os.urandom(4 << 20))
    who = ("--user", "vol-s", "--host", "ns-s")
    snap = _result(mover("backup", "--path", str(src), *who, "--create", KM_S3_PREFIX="small/"))
    out = mover(
        "restore", "--path", str(dst), "--snapshot", snap["snapshotID"], KM_S3_PREFIX="small/"
    )
    restored = _result(out)
    assert "kmmover: prefetching" in out[2] and "without prefetch" not in out[2], out[2][-3000:]
    assert restored["files"] == 2001 and restored["peakRssBytes"] > 1 << 20, restored
    verify = ("verify", "--path", str(dst), "--manifest-snapshot", snap["manifestSnapshotID"])
    clean = _result(mover(*verify, KM_S3_PREFIX="small/"))
    assert clean["differences"] == 0 and clean["files"] == 2001, clean


def test_error_reasons(mover: Any, tmp_path: Path) -> None:
    src, nowhere = tmp_path / "src", str(tmp_path / "d")
    src.mkdir()
    (src / "f").write_text("x\n")
    who = ("--user", "vol-b", "--host", "ns-b")
    errs = {"KM_S3_PREFIX": "errs/"}
    ok = _result(mover("backup", "--path", str(src), *who, "--create", **errs))
    bad = mover("backup", "--path", str(src), *who, **errs, KOPIA_PASSWORD="wrong")
    _error(bad, "wrong-password")
    _error(mover("restore", "--path", nowhere, "--snapshot", "0" * 32, **errs), "snapshot-missing")
    missing = ok["manifestSnapshotID"][::-1]
    _error(
        mover("verify", "--path", str(src), "--manifest-snapshot", missing, **errs),
        "snapshot-missing",
    )
    nope = {"KM_S3_PREFIX": "nope/"}
    _error(mover("restore", "--path", nowhere, "--snapshot", "x", **nope), "repository-missing")


def test_delta_restore_writes_only_what_changed(mover: Any, tmp_path: Path) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    src.mkdir()
    _tree(src)
    who = ("--user", "vol-d", "--host", "ns-d")
    env = {"KM_S3_PREFIX": "delta/"}
    first = _result(mover("backup", "--path", str(src), *who, "--create", **env))
    _result(mover("restore", "--path", str(dst), "--snapshot", first["snapshotID"], **env))
    kept = dst / "big 0.bin"
    before = kept.stat()

    (src / "big 1.bin").write_bytes(os.urandom(1 << 20))  # changed (and smaller)
    (src / "d1" / "sub1" / "f1.dat").write_bytes(b"changed")
    (src / "d2" / "new.dat").write_bytes(b"new file")
    (src / "brand new dir").mkdir()
    (src / "brand new dir" / "x").write_bytes(b"x" * 1000)
    (src / "empty").unlink()
    for f in (src / "d7").rglob("*"):
        if f.is_file():
            f.unlink()
    for d in sorted((src / "d7").rglob("*"), reverse=True):
        d.rmdir()
    (src / "d7").rmdir()
    (src / "link").unlink()
    (src / "link").symlink_to("a-b")
    (src / "private").chmod(0o640)
    (src / "shared").chmod(0o755)
    second = _result(mover("backup", "--path", str(src), *who, **env))
    # the claim is not what any manifest says (a copy of a running app can hold a file as
    # it was before its manifest read it): the delta goes by the claim itself
    stale = dst / "d3" / "sub2" / "f11.dat"
    stale.write_bytes(b"not what the backup holds")

    out = mover("restore", "--path", str(dst), "--snapshot", second["snapshotID"],
                "--delta", "--verify", **env)  # fmt: skip
    delta = _result(out)
    assert delta["verified"] and delta["differences"] == 0, delta
    assert delta["readFiles"] == 6, delta  # the check read what it wrote, no more
    assert "prefetching" not in out[2]
    # written: big 1, f1, new.dat, x, private (mode), the stale f11; removed: empty, d7's 50
    assert delta["files"] == 6, delta
    f11 = (src / "d3" / "sub2" / "f11.dat").stat().st_size
    assert delta["bytes"] == (1 << 20) + 7 + 8 + 1000 + len("secret-ish\n") + f11, delta
    assert delta["removed"] == 1 + 50, delta  # empty, and d7's files
    after = kept.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)  # untouched
    verify = ("verify", "--path", str(dst), "--manifest-snapshot", second["manifestSnapshotID"])
    clean = _result(mover(*verify, **env))
    assert clean["differences"] == 0, clean["diffs"]
    assert (dst / "zz hardlink").stat().st_ino == (dst / "a" / "target.txt").stat().st_ino


def test_a_second_backup_reads_only_the_files_that_changed(mover: Any, tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    for i in range(8):
        (src / f"f{i}").write_bytes(os.urandom(4 << 20))
    who = ("--user", "vol-m", "--host", "ns-m")
    env = {"KM_S3_PREFIX": "reuse/"}
    _result(mover("backup", "--path", str(src), *who, "--create", **env))
    (src / "f3").write_bytes(os.urandom(4 << 20))  # changed
    os.utime(src / "f5", ns=(1, 1))  # mtime set back: ctime still tells
    out = mover("backup", "--path", str(src), *who, **env)
    second = _result(out)
    assert "every file read" not in out[2], out[2][-2000:]
    assert second["reusedHashes"] == 6, second  # all but f3 (rewritten) and f5 (ctime)
    dst = tmp_path / "dst"
    _result(mover("restore", "--path", str(dst), "--snapshot", second["snapshotID"], **env))
    verify = ("verify", "--path", str(dst), "--manifest-snapshot", second["manifestSnapshotID"])
    clean = _result(mover(*verify, **env))
    assert clean["differences"] == 0, clean["diffs"]
    # the manifest's hashes are the files' own: f3's new content was read, not reused
    code, lines, _err = mover("manifest", "--path", str(src))
    assert code == 0
    fresh = {e["path"]: e["sha256"] for e in lines}
    assert fresh["f3"] == hashlib.sha256((src / "f3").read_bytes()).hexdigest()


def _standby(
    mover_env: tuple[Path, dict[str, str]], *args: str, **env: str
) -> subprocess.Popen[str]:
    """`kmmover standby ...`, once it says it stands by (and whether it prepared)."""
    kmmover, base = mover_env
    proc = subprocess.Popen(
        [str(kmmover), "standby", *args], env={**base, **env}, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert proc.stdout is not None
    line = json.loads(proc.stdout.readline())
    assert line == {"kind": "standby", "prepared": True}, (line, proc.stderr)
    return proc


def _stop(proc: subprocess.Popen[str]) -> None:
    proc.terminate()
    assert proc.wait(timeout=10) == 0  # SIGTERM is its normal end


def test_standbys_prepare_the_verb_exec_d_after_them(
    mover: Any, mover_env: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    src.mkdir()
    for i in range(6):
        (src / f"f{i}").write_bytes(os.urandom(1 << 20))
    who = ("--user", "vol-s", "--host", "ns-s")
    env = {"KM_S3_PREFIX": "standby/"}
    first = _result(mover("backup", "--path", str(src), *who, "--create", **env))
    _result(mover("restore", "--path", str(dst), "--snapshot", first["snapshotID"], **env))

    # the source's standby: connected as the backup will be, blobs listed, last manifest
    # fetched; the app writes on after that, until it is stopped
    work = {**env, "KM_WORK_DIR": str(tmp_path / "source-pod")}
    standby = _standby(mover_env, "--path", str(src), "--for", "backup", *who, **work)
    (src / "f2").write_bytes(os.urandom(1 << 20))
    (src / "new").write_bytes(b"written after the standby prepared")
    out = mover("backup", "--path", str(src), *who, **work)
    second = _result(out)
    _stop(standby)
    assert "kopia repository connect" not in out[2] and "blob list: " in out[2], out[2]
    assert "snapshot list" not in out[2]  # the previous manifest was the standby's
    assert second["reusedHashes"] == 5, second  # all but f2 and the new file
    assert second["incrementalBytes"] >= 1 << 20, second  # f2's upload counted as new
    assert not (tmp_path / "source-pod" / "standby" / "prepared.json").exists()  # used once

    # the target's standby: connected read-only; the delta restore is given the manifest
    work = {**env, "KM_WORK_DIR": str(tmp_path / "target-pod")}
    standby = _standby(mover_env, "--path", str(dst), "--for", "restore", **work)
    manifest = ("--manifest-snapshot", second["manifestSnapshotID"])
    out = mover("restore", "--path", str(dst), "--snapshot", second["snapshotID"], "--delta",
                "--verify", *manifest, **work)  # fmt: skip
    delta = _result(out)
    _stop(standby)
    assert "kopia repository connect" not in out[2] and "snapshot list" not in out[2], out[2]
    assert delta["verified"] and delta["differences"] == 0, delta
    assert delta["files"] == 2 and delta["bytes"] == (1 << 20) + 34, delta

    # a standby prepared for another source is not used: the verb connects as itself
    work = {**env, "KM_WORK_DIR": str(tmp_path / "other-pod")}
    standby = _standby(mover_env, "--path", str(src), "--for", "backup", "--user", "vol-x",
                       "--host", "ns-s", **work)  # fmt: skip
    out = mover("backup", "--path", str(src), *who, **work)
    _result(out)
    _stop(standby)
    assert "kopia repository connect" in out[2], out[2]
    # and a missing snapshot is refused before the claim is touched: f1, which differs from
    # the manifest, would be removed and written again
    (dst / "f1").write_bytes(b"stale")
    missing = ("--snapshot", "0" * 32, "--delta", *manifest)
    _error(mover("restore", "--path", str(dst), *missing, **env), "snapshot-missing")
    assert (dst / "f1").read_bytes() == b"stale"


def test_forget_deletes_named_snapshots_once_and_keeps_the_others(
    mover: Any, tmp_path: Path
) -> None:
    """`kmmover forget`: the named snapshots (a backup's data and manifest) go, a second run
    finds them gone, the other backup's still restore; no repository is nothing to do."""
    repo = {"KM_S3_PREFIX": "forget/"}
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.bin").write_bytes(os.urandom(1 << 20))
    who = ("--user", "vol-f", "--host", "ns-f")
    first = _result(mover("backup", "--path", str(src), *who, "--create", **repo))
    (src / "b.bin").write_bytes(os.urandom(1 << 20))
    second = _result(mover("backup", "--path", str(src), *who, **repo))
    gone = [first["snapshotID"], first["manifestSnapshotID"]]
    out = _result(mover("forget", "--snapshots", ",".join(gone), **repo))
    assert sorted(out["deleted"]) == sorted(gone) and out["missing"] == []
    assert out["maintenance"] == "full"
    again = _result(mover("forget", "--snapshots", ",".join(gone), **repo))
    assert again["deleted"] == [] and sorted(again["missing"]) == sorted(gone)
    assert again["maintenance"] == "not needed"
    _error(mover("restore", "--path", str(tmp_path / "x"), "--snapshot", gone[0], **repo),
           "snapshot-missing")  # fmt: skip
    dst = tmp_path / "dst"
    _result(mover("restore", "--path", str(dst), "--snapshot", second["snapshotID"], **repo))
    assert (dst / "b.bin").read_bytes() == (src / "b.bin").read_bytes()
    none = _result(mover("forget", "--snapshots", "k1", **{"KM_S3_PREFIX": "never/"}))
    assert none["deleted"] == [] and none["missing"] == ["k1"]
    assert none["maintenance"] == "no repository"
