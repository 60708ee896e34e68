"""S3 server-side encryption: `--s3-sse AES256|aws:kms`, `--s3-kms-key-id` (playbooks:
spec.bucket.sse, spec.bucket.kmsKeyId), against MinIO.

The dev-env MinIO has no KMS configured, so it refuses a write that asks for encryption:
a backup with --s3-sse there fails cleanly (exit 4), its request carrying the header.  A
MinIO of the same build, started here with a built-in KMS key (MINIO_KMS_SECRET_KEY),
encrypts what it stores: a backup and a restore through it, every PutObject and
CreateMultipartUpload seen on the wire (tests/s3proxy.py) carrying
x-amz-server-side-encryption (and the KMS key id with aws:kms), and MinIO reporting every
stored object encrypted.
"""

from __future__ import annotations

import base64
import io
import os
import secrets
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from migrate.cluster import Cluster
from migrate.errors import StoreError
from migrate.store import StoreOptions, open_store

from .conftest import ROOT, Env
from .s3proxy import S3Proxy

BIN = Path(sys.executable).parent
CACHE = Path(os.environ.get("KUBE_MIGRATE_CACHE", Path.home() / ".cache" / "kube-migrate"))
KMS_KEY = "km-test-key"
BUCKET = "sse"
WRITES = ("PutObject", "CreateMultipartUpload")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _minio_binary() -> Path:
    versions = dict(
        line.split("=", 1)
        for line in (ROOT / "hack" / "versions.env").read_text().splitlines()
        if "=" in line and not line.startswith("#")
    )
    return CACHE / "bin" / f"minio-{versions['MINIO'].strip()}" / "minio"


@pytest.fixture(scope="module")
def kms_minio(dev_env: Env, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """A private MinIO with a built-in KMS key; the AWS_* variables that reach it."""
    binary = _minio_binary()
    assert binary.exists(), f"{binary} is not built (hack/dev-env up builds it)"
    folder = tmp_path_factory.mktemp("kms-minio")
    port = _free_port()
    creds = {"AWS_ACCESS_KEY_ID": "km-sse", "AWS_SECRET_ACCESS_KEY": secrets.token_hex(16)}
    env = {
        **os.environ,
        "MINIO_ROOT_USER": creds["AWS_ACCESS_KEY_ID"],
        "MINIO_ROOT_PASSWORD": creds["AWS_SECRET_ACCESS_KEY"],
        "MINIO_KMS_SECRET_KEY": f"{KMS_KEY}:{base64.b64encode(os.urandom(32)).decode()}",
        "MINIO_BROWSER": "off",
        "MINIO_UPDATE": "off",
    }
    log = (folder / "minio.log").open("wb")
    proc = subprocess.Popen(
        [str(binary), "server", str(folder / "data"), "--address", f"127.0.0.1:{port}",
         "--console-address", f"127.0.0.1:{_free_port()}", "--quiet"],
        env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    endpoint = f"http://127.0.0.1:{port}"
    out = {**creds, "AWS_ENDPOINT_URL": endpoint, "AWS_REGION": "us-east-1"}
    s3 = _client(out)
    deadline = time.monotonic() + 60
    while True:
        try:
            s3.create_bucket(Bucket=BUCKET)
            break
        except Exception:
            if time.monotonic() > deadline or proc.poll() is not None:
                proc.kill()
                raise AssertionError((folder / "minio.log").read_text()[-2000:]) from None
            time.sleep(0.5)
    yield out
    proc.terminate()
    proc.wait(30)
    log.close()


def _client(env: dict[str, str]) -> Any:
    return boto3.client(
        "s3",
        endpoint_url=env["AWS_ENDPOINT_URL"],
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
        region_name="us-east-1",
    )


def run_cli_with_env(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "kube-migrate"), *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def test_backup_and_restore_with_sse_s3(
    kms_minio: dict[str, str], dev_env: Env, source: Cluster, target: Cluster, source_ns: str
) -> None:
    cm = source.discovery().resolve("configmaps")
    source.create(cm, {"metadata": {"name": "cfg"}, "data": {"a": "b"}}, source_ns)
    prefix = f"t-{uuid.uuid4().hex[:8]}"
    dst = f"{source_ns[:50]}-sse"
    with S3Proxy(kms_minio["AWS_ENDPOINT_URL"]) as proxy:
        bucket = ["--bucket", f"s3://{BUCKET}/{prefix}", "--s3-endpoint", proxy.url]
        out = run_cli_with_env(kms_minio, "backup", "create", "b1", "--kubeconfig",
                               dev_env.source_kubeconfig,
                 *bucket, "--s3-sse", "AES256", "--include-namespaces", source_ns)  # fmt: skip
        assert out.returncode == 0, out.stderr
        env = {**kms_minio, "KUBE_MIGRATE_S3_SSE": "AES256"}  # the variable does it too
        out = run_cli_with_env(env, "restore", "create", "r1", "--from-backup", "b1",
                               "--kubeconfig",
                 dev_env.target_kubeconfig, *bucket, "--namespace-mappings",
                 f"{source_ns}:{dst}")  # fmt: skip
        try:
            assert out.returncode == 0, out.stderr
            assert target.get(cm, "cfg", dst)["data"] == {"a": "b"}
        finally:
            target.delete(target.discovery().resolve("namespaces"), dst)
        writes = [r for r in proxy.requests() if r.operation in WRITES]
    written = {r.path.removeprefix(f"/{BUCKET}/{prefix}/") for r in writes}
    assert {"backups/b1/b1.tar.gz", "backups/b1/velero-backup.json"} <= written
    assert any(k.startswith("restores/r1/") for k in written)
    assert {r.header("x-amz-server-side-encryption") for r in writes} == {"AES256"}
    s3 = _client(kms_minio)
    stored = s3.list_objects_v2(Bucket=BUCKET, Prefix=prefix)["Contents"]
    assert len(stored) == len(written)
    for obj in stored:  # at rest: MinIO says each one is encrypted
        head = s3.head_object(Bucket=BUCKET, Key=obj["Key"])
        assert head.get("ServerSideEncryption") == "AES256", obj["Key"]


def test_sse_kms_multipart_names_the_key(
    kms_minio: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A stream larger than the multipart threshold: the key id goes with
    CreateMultipartUpload (the parts need no header), and the object is stored under it."""
    for k, v in kms_minio.items():
        monkeypatch.setenv(k, v)
    with S3Proxy(kms_minio["AWS_ENDPOINT_URL"]) as proxy:
        opts = StoreOptions(endpoint_url=proxy.url, sse="aws:kms", kms_key_id=KMS_KEY)
        store = open_store(f"s3://{BUCKET}/kms-{uuid.uuid4().hex[:8]}", opts)
        store.put_stream("big", io.BytesIO(os.urandom(9 << 20)))
        store.put("small", b"x")
        writes = {r.operation: r for r in proxy.requests() if r.operation in WRITES}
    assert set(writes) == set(WRITES)
    for r in writes.values():
        assert r.header("x-amz-server-side-encryption") == "aws:kms"
        assert r.header("x-amz-server-side-encryption-aws-kms-key-id") == KMS_KEY
    s3 = _client(kms_minio)
    base = store.url.prefix
    for key in ("big", "small"):
        head = s3.head_object(Bucket=BUCKET, Key=f"{base}/{key}")
        assert head.get("ServerSideEncryption") == "aws:kms"
        assert KMS_KEY in head.get("SSEKMSKeyId", "")
    # a key the KMS does not have: the write is refused, the hint names the flags
    opts = StoreOptions(
        endpoint_url=kms_minio["AWS_ENDPOINT_URL"], sse="aws:kms", kms_key_id="nope"
    )
    with pytest.raises(StoreError, match="cannot write") as exc:
        open_store(f"s3://{BUCKET}/{base}", opts).put("refused", b"x")
    assert "--s3-kms-key-id" in exc.value.hint
    assert "Contents" not in s3.list_objects_v2(Bucket=BUCKET, Prefix=f"{base}/refused")


def test_a_server_without_kms_refuses_cleanly(
    dev_env: Env, source: Cluster, source_ns: str, bucket_url: str
) -> None:
    """The dev-env MinIO has no KMS: the request asks for encryption, the server says no,
    the backup fails with exit 4 and one error line, and no backup is left complete."""
    with S3Proxy(os.environ["AWS_ENDPOINT_URL"]) as proxy:
        out = run_cli_with_env({}, "backup", "create", "b1", "--kubeconfig",
                               dev_env.source_kubeconfig,
                 "--bucket", bucket_url, "--s3-endpoint", proxy.url, "--s3-sse", "AES256",
                 "--include-namespaces", source_ns)  # fmt: skip
        writes = [r for r in proxy.requests() if r.operation in WRITES]
    assert out.returncode == 4, out.stderr
    error, hint = out.stderr.splitlines()[-2:]
    assert error.startswith("kube-migrate: error: ") and "KMS is not configured" in error
    assert hint.startswith("hint: ") and "--s3-sse" in hint
    assert writes and {r.header("x-amz-server-side-encryption") for r in writes} == {"AES256"}
    assert not open_store(bucket_url).exists("backups/b1/velero-backup.json")


def test_playbook_bucket_sse(
    kms_minio: dict[str, str], dev_env: Env, source: Cluster, source_ns: str, tmp_path: Path
) -> None:
    """spec.bucket.sse and kmsKeyId: the playbook's backup step writes every object with
    them."""
    prefix = f"t-{uuid.uuid4().hex[:8]}"
    with S3Proxy(kms_minio["AWS_ENDPOINT_URL"]) as proxy:
        book = tmp_path / "sse.yaml"
        book.write_text(
            "apiVersion: kube-migrate.io/v1alpha1\nkind: Playbook\nmetadata: {name: sse}\n"
            f"spec:\n  bucket: {{url: 's3://{BUCKET}/{prefix}', endpoint: '{proxy.url}', "
            f"sse: 'aws:kms', kmsKeyId: {KMS_KEY}}}\n"
            f"  scope: {{includeNamespaces: [{source_ns}]}}\n  steps: [backup]\n"
        )
        out = run_cli_with_env(kms_minio, "run", str(book), "--source-kubeconfig",
                               dev_env.source_kubeconfig,
                 "--report-dir", str(tmp_path / "report"))  # fmt: skip
        assert out.returncode == 0, out.stderr
        writes = [r for r in proxy.requests() if r.operation in WRITES]
    assert len(writes) >= 6  # tarball, resource list, results, logs, manifest, metadata
    assert {r.header("x-amz-server-side-encryption") for r in writes} == {"aws:kms"}
    assert {r.header("x-amz-server-side-encryption-aws-kms-key-id") for r in writes} == {KMS_KEY}
