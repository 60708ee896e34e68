"""Tests of migrate.store: URL parsing, the file:// store, and (marked s3) S3/MinIO."""

from __future__ import annotations

import hashlib
import io
import os
import random
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import (
    ClientError,
    EndpointConnectionError,
    NoCredentialsError,
    ReadTimeoutError,
)

from migrate.errors import StoreError, StoreNotFound, StoreReadOnly, UsageError
from migrate.store import BucketURL, ObjectInfo, Store, StoreOptions, open_store
from migrate.store.local import LocalStore
from migrate.store.s3 import MULTIPART_THRESHOLD, S3Store
from migrate.store.s3_errors import safe_endpoint, translate

# ---------------------------------------------------------------------------- URLs


@pytest.mark.parametrize(
    ("text", "fields", "canonical"),
    [
        ("s3://kube-migrate", ("s3", "kube-migrate", "", ""), "s3://kube-migrate"),
        ("s3://kube-migrate/", ("s3", "kube-migrate", "", ""), "s3://kube-migrate"),
        ("s3://my.bucket-1/a/b", ("s3", "my.bucket-1", "a/b", ""), "s3://my.bucket-1/a/b"),
        ("s3://abc/velero/prod/", ("s3", "abc", "velero/prod", ""), "s3://abc/velero/prod"),
        (" S3://abc/p ", ("s3", "abc", "p", ""), "s3://abc/p"),
        ("file:///var/backups", ("file", "", "", "/var/backups"), "file:///var/backups"),
        ("file:///var/backups/", ("file", "", "", "/var/backups"), "file:///var/backups"),
        ("file:///var/./x/../backups", ("file", "", "", "/var/backups"), "file:///var/backups"),
        ("file://localhost/srv/b", ("file", "", "", "/srv/b"), "file:///srv/b"),
        ("file:///", ("file", "", "", "/"), "file:///"),
    ],
)
def test_parse_good(text: str, fields: tuple[str, str, str, str], canonical: str) -> None:
    url = BucketURL.parse(text)
    assert (url.scheme, url.bucket, url.prefix, url.path) == fields
    assert str(url) == canonical
    assert BucketURL.parse(str(url)) == url


@pytest.mark.parametrize(
    "text",
    [
        "",
        "kube-migrate",
        "/var/backups",
        "s3://",
        "s3:///prefix",
        "s3://ab",
        "s3://" + "a" * 64,
        "s3://Upper-Case",
        "s3://under_score",
        "s3://-leading",
        "s3://trailing-",
        "s3://a..b",
        "s3://192.168.1.10",
        "s3://bkt/a//b",
        "s3://bkt/a/../b",
        "s3://bkt?versionId=1",
        "file://relative/dir",
        "file:relative",
        "file://",
        "gs://bucket",
        "https://s3.amazonaws.com/bucket",
    ],
)
def test_parse_bad(text: str) -> None:
    with pytest.raises(UsageError) as info:
        BucketURL.parse(text)
    err = info.value
    assert repr(text) in err.message
    assert "\n" not in err.message
    assert "s3://" in err.hint and "file:///" in err.hint


def test_join_and_key_url() -> None:
    s3 = BucketURL.parse("s3://bkt/velero")
    assert s3.join("backups/b1/x.json") == "velero/backups/b1/x.json"
    assert s3.key_url("backups/b1") == "s3://bkt/velero/backups/b1"
    bare = BucketURL.parse("s3://bkt")
    assert bare.join("a/b") == "a/b"
    assert bare.key_url("a") == "s3://bkt/a"
    local = BucketURL.parse("file:///srv/b")
    assert local.join("backups/x") == "/srv/b/backups/x"
    assert local.key_url("backups/x") == "file:///srv/b/backups/x"


def test_open_store_dispatch(tmp_path: Path) -> None:
    assert isinstance(open_store(f"file://{tmp_path}"), LocalStore)
    s3 = open_store("s3://bkt/p", StoreOptions(endpoint_url="http://127.0.0.1:1"), read_only=True)
    assert isinstance(s3, S3Store)
    assert s3.read_only
    with pytest.raises(UsageError):
        open_store("bkt")


def test_options_fall_back_to_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_REGION", "AWS_DEFAULT_REGION"):
        monkeypatch.delenv(name, raising=False)
    opts = StoreOptions()
    assert (opts.resolved_endpoint(), opts.resolved_region(), opts.resolved_path_style()) == (
        None,
        "us-east-1",
        False,
    )
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    assert opts.resolved_region() == "eu-west-1"
    monkeypatch.setenv("AWS_REGION", "eu-central-1")
    assert opts.resolved_region() == "eu-central-1"
    assert StoreOptions(region="ap-south-1").resolved_region() == "ap-south-1"
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://minio:9000")
    assert opts.resolved_endpoint() == "http://minio:9000"
    assert opts.resolved_path_style() is True
    assert StoreOptions(path_style=False).resolved_path_style() is False


# ----------------------------------------------------------------- error mapping


def _client_error(code: str, status: int) -> ClientError:
    response: Any = {
        "Error": {"Code": code, "Message": f"{code} happened"},
        "ResponseMetadata": {"HTTPStatusCode": status},
    }
    return ClientError(response, "GetObject")


@pytest.mark.parametrize(
    ("exc", "kind", "hint_word"),
    [
        (_client_error("NoSuchKey", 404), StoreNotFound, "backup"),
        (_client_error("404", 404), StoreNotFound, "backup"),
        (_client_error("NoSuchBucket", 404), StoreNotFound, "create the bucket"),
        (_client_error("AccessDenied", 403), StoreError, "AWS_ACCESS_KEY_ID"),
        (_client_error("InvalidAccessKeyId", 403), StoreError, "AWS_ACCESS_KEY_ID"),
        (_client_error("SignatureDoesNotMatch", 403), StoreError, "AWS_ACCESS_KEY_ID"),
        (_client_error("403", 403), StoreError, "AWS_ACCESS_KEY_ID"),
        (_client_error("InternalError", 500), StoreError, "--s3-endpoint"),
        (NoCredentialsError(), StoreError, "--s3-profile"),
        (EndpointConnectionError(endpoint_url="http://h:9000"), StoreError, "--s3-endpoint"),
    ],
)
def test_translate(exc: Exception, kind: type[StoreError], hint_word: str) -> None:
    not_found = StoreNotFound("s3://bkt/k does not exist")
    err = translate(
        exc,
        action="read",
        where="s3://bkt/k",
        bucket="bkt",
        endpoint="http://user:s3cr3t@h:9000/",
        not_found=not_found,
    )
    assert type(err) is kind
    assert hint_word in err.hint
    assert "s3cr3t" not in err.message and "s3cr3t" not in err.hint


def test_safe_endpoint_drops_userinfo() -> None:
    assert safe_endpoint("http://user:pw@minio:9000/x") == "http://minio:9000/x"
    assert safe_endpoint("https://s3.example.com") == "https://s3.example.com"


def test_unreachable_endpoint_is_store_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "KMTESTKEY")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "KMTESTSECRET")
    store = open_store(
        "s3://bkt/p", StoreOptions(endpoint_url="http://127.0.0.1:1", max_attempts=1)
    )
    with pytest.raises(StoreError) as info:
        store.get("x")
    assert not isinstance(info.value, StoreNotFound)
    assert "--s3-endpoint" in info.value.hint


# ----------------------------------------------------- behaviour shared by backends


def _keys(infos: Iterator[ObjectInfo]) -> list[str]:
    return [i.key for i in infos]


def exercise_round_trip(store: Store) -> None:
    """The contract every backend must meet; called on file:// and on S3."""
    objects = {
        "backups/b1/b1.tar.gz": os.urandom(3000),
        "backups/b1/velero-backup.json": b'{"kind": "Backup"}',
        "backups/b10/velero-backup.json": b"{}",
        "backups/b2/velero-backup.json": b"",
        "restores/r1/r1-logs.gz": b"log",
        "top": b"top-level",
    }
    for key, data in objects.items():
        store.put(key, data)
    store.put_stream("streamed/s.bin", io.BytesIO(b"x" * 5000), size_hint=5000)
    objects["streamed/s.bin"] = b"x" * 5000

    for key, data in objects.items():
        assert store.get(key) == data
        with store.open(key) as f:
            assert f.read() == data
        info = store.head(key)
        assert info is not None
        assert (info.key, info.size) == (key, len(data))
        assert info.etag
        assert info.last_modified.tzinfo is not None
        assert abs(datetime.now(UTC) - info.last_modified) < timedelta(minutes=15)
        assert store.exists(key)

    assert store.head("backups/b1") is None  # a "directory" is not an object
    assert not store.exists("backups/nope.json")
    with pytest.raises(StoreNotFound) as missing:
        store.get("backups/nope.json")
    assert store.url.key_url("backups/nope.json") in missing.value.message
    with pytest.raises(StoreNotFound):
        store.open("backups/b1")

    assert _keys(store.list()) == sorted(objects)
    assert _keys(store.list("backups/b1")) == [
        "backups/b1/b1.tar.gz",
        "backups/b1/velero-backup.json",
        "backups/b10/velero-backup.json",
    ]
    assert _keys(store.list("backups/b1/")) == [
        "backups/b1/b1.tar.gz",
        "backups/b1/velero-backup.json",
    ]
    assert _keys(store.list("", delimiter="/")) == ["top"]
    assert _keys(store.list("backups/", delimiter="/")) == []
    assert _keys(store.list("nothing/")) == []
    assert store.list_prefixes("backups") == ["b1", "b10", "b2"]
    assert store.list_prefixes("backups/") == ["b1", "b10", "b2"]
    assert store.list_prefixes() == ["backups", "restores", "streamed"]
    assert store.list_prefixes("nothing") == []

    store.put("top", b"replaced")
    assert store.get("top") == b"replaced"

    store.delete("top")
    assert not store.exists("top")
    store.delete("top")  # deleting a missing key is fine
    assert store.delete_prefix("backups/b1/") == 2
    assert store.list_prefixes("backups") == ["b10", "b2"]
    assert store.exists("backups/b10/velero-backup.json")
    assert store.delete_prefix("backups/zzz/") == 0
    with pytest.raises(UsageError):
        store.delete_prefix("")
    assert _keys(store.list()) == [
        "backups/b10/velero-backup.json",
        "backups/b2/velero-backup.json",
        "restores/r1/r1-logs.gz",
        "streamed/s.bin",
    ]

    for bad in ("", "/abs", "a//b", "../escape", "a/./b", "dir/"):
        with pytest.raises(UsageError):
            store.put(bad, b"x")


def exercise_read_only(
    writable: Store, read_only: Store, snapshot: Callable[[], object] | None = None
) -> None:
    """A read-only store refuses every write and changes nothing (per ``snapshot``)."""
    writable.put("keep/a.json", b"A")

    def listing() -> object:
        return {i.key: (i.etag, writable.get(i.key)) for i in writable.list()}

    take = snapshot or listing
    before = take()
    with pytest.raises(StoreReadOnly):
        read_only.put("keep/a.json", b"B")
    with pytest.raises(StoreReadOnly):
        read_only.put("new.json", b"B")
    with pytest.raises(StoreReadOnly):
        read_only.put_stream("new.bin", io.BytesIO(b"B"))
    with pytest.raises(StoreReadOnly):
        read_only.delete("keep/a.json")
    with pytest.raises(StoreReadOnly):
        read_only.delete_prefix("keep/")
    with pytest.raises(StoreReadOnly):
        read_only.delete_prefix("")
    assert take() == before
    assert read_only.get("keep/a.json") == b"A"
    assert read_only.list_prefixes() == ["keep"]


# ------------------------------------------------------------------------ file://


def _tree(root: Path) -> dict[str, tuple[bytes, int]]:
    return {
        str(p.relative_to(root)) + ("/" if p.is_dir() else ""): (
            (b"", 0) if p.is_dir() else (p.read_bytes(), p.stat().st_mtime_ns)
        )
        for p in root.rglob("*")
    }


def test_local_round_trip(tmp_path: Path) -> None:
    root = tmp_path / "bucket"
    store = open_store(f"file://{root}")
    exercise_round_trip(store)
    # Deletes leave no empty directories and writes leave no temporary files behind.
    files = sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())
    assert files == _keys(store.list())
    assert not (root / "backups" / "b1").exists()
    assert sorted(p.name for p in (root / "backups").iterdir()) == ["b10", "b2"]


def test_local_read_only(tmp_path: Path) -> None:
    root = tmp_path / "bucket"
    writable = open_store(f"file://{root}")
    read_only = open_store(f"file://{root}", read_only=True)
    exercise_read_only(writable, read_only, snapshot=lambda: _tree(root))


def test_local_read_only_does_not_create_root(tmp_path: Path) -> None:
    store = open_store(f"file://{tmp_path}/missing", read_only=True)
    with pytest.raises(StoreReadOnly):
        store.put("a/b", b"x")
    assert not (tmp_path / "missing").exists()
    assert list(store.list()) == []
    assert store.list_prefixes() == []
    with pytest.raises(StoreNotFound):
        store.get("a/b")


class _FailingReader(io.RawIOBase):
    """Yields some bytes, then fails like a broken pipe."""

    def __init__(self) -> None:
        self.sent = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self.sent >= 3 * 1024 * 1024:
            raise OSError("broken pipe")
        n = min(len(buffer), 64 * 1024)
        buffer[:n] = b"z" * n
        self.sent += n
        return n


def test_local_failed_stream_keeps_old_object(tmp_path: Path) -> None:
    store = open_store(f"file://{tmp_path}")
    store.put("b/x.tar.gz", b"old")
    with pytest.raises(OSError, match="broken pipe"):
        store.put_stream("b/x.tar.gz", io.BufferedReader(_FailingReader()))
    assert store.get("b/x.tar.gz") == b"old"
    assert [p.name for p in (tmp_path / "b").iterdir()] == ["x.tar.gz"]


def test_local_key_and_directory_collide(tmp_path: Path) -> None:
    store = open_store(f"file://{tmp_path}")
    store.put("a", b"file")
    with pytest.raises(StoreError) as info:
        store.put("a/b", b"x")
    assert not isinstance(info.value, StoreNotFound)
    assert store.get("a") == b"file"


# ------------------------------------------- S3 code paths on moto, in-process


@pytest.fixture
def moto_url(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """An s3:// URL on moto's in-process S3 (no server; AWS endpoints intercepted)."""
    import boto3
    from moto import mock_aws

    for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_PROFILE", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    with mock_aws():
        boto3.client("s3", region_name="us-east-1").create_bucket(Bucket="kube-migrate")
        yield "s3://kube-migrate/unit"


class _BrokenBody:
    """A GetObject body whose connection drops on the next read."""

    def __init__(self, exc: Exception) -> None:
        self.exc = exc

    def read(self, amt: int | None = None) -> bytes:
        raise self.exc

    def close(self) -> None:
        pass


def test_s3_read_resumes_after_broken_connection(moto_url: str) -> None:
    store = open_store(moto_url)
    data = os.urandom(3 * 1024 * 1024 + 17)
    store.put("backups/b/b.tar.gz", data)
    with store.open("backups/b/b.tar.gz") as f:
        head = f.read(1024 * 1024 + 5)
        raw: Any = getattr(f, "raw", None)
        raw._body = _BrokenBody(ReadTimeoutError(endpoint_url="https://s3"))
        assert head + f.read() == data


def test_s3_read_fails_if_object_changes_midway(moto_url: str) -> None:
    store = open_store(moto_url)
    store.put("k", b"a" * (3 * 1024 * 1024))
    with store.open("k") as f:
        f.read(1024 * 1024)
        store.put("k", b"b" * (3 * 1024 * 1024))
        raw: Any = getattr(f, "raw", None)
        raw._body = _BrokenBody(ReadTimeoutError(endpoint_url="https://s3"))
        with pytest.raises(StoreError, match="changed while"):
            f.read()


def test_s3_refused_credentials_on_moto(moto_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from moto.core import set_initial_no_auth_action_count

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "KMWRONGKEY")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wrong-secret-value")
    store = open_store(moto_url, StoreOptions(max_attempts=1))

    @set_initial_no_auth_action_count(0)
    def attempt() -> StoreError:
        with pytest.raises(StoreError) as info:
            store.get("x")
        return info.value

    err = attempt()
    assert not isinstance(err, StoreNotFound)
    assert "InvalidAccessKeyId" in err.message
    assert "AWS_ACCESS_KEY_ID" in err.hint
    assert "wrong-secret-value" not in err.message + err.hint


# -------------------------------------------------------------------------- S3


@pytest.mark.s3
def test_s3_round_trip(bucket_url: str) -> None:
    exercise_round_trip(open_store(bucket_url))


@pytest.mark.s3
def test_s3_read_only(bucket_url: str) -> None:
    exercise_read_only(open_store(bucket_url), open_store(bucket_url, read_only=True))


@pytest.mark.s3
def test_s3_list_pagination(bucket_url: str) -> None:
    store = open_store(bucket_url)
    keys = [f"many/k{i:04d}/o" for i in range(1100)]
    with ThreadPoolExecutor(max_workers=32) as pool:
        list(pool.map(lambda k: store.put(k, k.encode()), keys))
    store.put("other/o", b"outside the prefix")
    assert _keys(store.list("many/")) == keys
    assert store.list_prefixes("many") == [f"k{i:04d}" for i in range(1100)]
    assert store.delete_prefix("many/") == 1100
    assert _keys(store.list()) == ["other/o"]


class _Pipe(io.RawIOBase):
    """A non-seekable stream of ``size`` pseudo-random bytes, like `tar | upload`."""

    def __init__(self, size: int, seed: int) -> None:
        self._left = size
        self._rng = random.Random(seed)
        self.sha = hashlib.sha256()

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        n = min(len(buffer), self._left, 256 * 1024)
        data = self._rng.randbytes(n)
        buffer[:n] = data
        self.sha.update(data)
        self._left -= n
        return n


@pytest.mark.s3
def test_s3_multipart_stream(bucket_url: str) -> None:
    store = open_store(bucket_url)
    size = 20 * 1024 * 1024 + 12345
    assert size > 2 * MULTIPART_THRESHOLD
    pipe = _Pipe(size, seed=7)
    store.put_stream("backups/big/big.tar.gz", io.BufferedReader(pipe), size_hint=size)
    info = store.head("backups/big/big.tar.gz")
    assert info is not None
    assert info.size == size
    assert "-" in info.etag  # a multipart upload's ETag is "<md5>-<parts>"
    sha = hashlib.sha256()
    with store.open("backups/big/big.tar.gz") as f:
        while chunk := f.read(1024 * 1024):
            sha.update(chunk)
    assert sha.hexdigest() == pipe.sha.hexdigest()


@pytest.mark.s3
def test_s3_missing_key(bucket_url: str) -> None:
    store = open_store(bucket_url)
    with pytest.raises(StoreNotFound) as info:
        store.get("backups/none/velero-backup.json")
    assert f"{bucket_url}/backups/none/velero-backup.json" in info.value.message
    with pytest.raises(StoreNotFound):
        store.open("backups/none/velero-backup.json")
    assert store.head("backups/none/velero-backup.json") is None
    store.delete("backups/none/velero-backup.json")


@pytest.mark.s3
def test_s3_missing_bucket(bucket_url: str) -> None:
    store = open_store(f"s3://kube-migrate-missing-{uuid.uuid4().hex[:12]}/p")
    with pytest.raises(StoreNotFound) as info:
        store.get("x")
    assert "create the bucket" in info.value.hint
    with pytest.raises(StoreNotFound):
        list(store.list())
    with pytest.raises(StoreNotFound):
        store.put("x", b"x")


@pytest.mark.s3
def test_s3_wrong_credentials(bucket_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    secret = "wrong-secret-" + uuid.uuid4().hex
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "KMWRONGKEY" + uuid.uuid4().hex[:10].upper())
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", secret)
    for name in ("AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    store = open_store(bucket_url, StoreOptions(max_attempts=2))
    for call in (lambda: store.get("x"), lambda: list(store.list()), lambda: store.put("x", b"")):
        with pytest.raises(StoreError) as info:
            call()
        assert not isinstance(info.value, StoreNotFound)
        assert "AWS_ACCESS_KEY_ID" in info.value.hint
        assert secret not in info.value.message and secret not in info.value.hint
