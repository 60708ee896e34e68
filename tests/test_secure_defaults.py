"""Secure by default (issue 17, section 3).

Pure logic first: a file:// bucket's files are 0600 and the folders it creates 0700; the
scratch store (preflight's copy of a live source) is private and removed on every way
out; the S3 server-side-encryption settings and their bad values; the manifest's HMAC
(sealed, tampered, another key, unsealed); the log redaction, on patterns and on
botocore's real debug lines.

Then on the real planes and MinIO: a `kube-migrate preflight` killed with SIGTERM or
SIGINT while it writes its temporary copy removes it (whose files were 0600 in 0700
folders); a backup holding Secrets warns once when not encrypted; an encrypted backup
whose manifest, velero-backup.json or tarball was altered is refused with exit 6 by
restore, verify, preflight --from-backup and describe, nothing written; `--debug` runs
with an STS session token, a ServiceAccount bearer token and client-certificate
kubeconfigs print none of them; `restore create` finds the target in
KUBE_MIGRATE_TARGET_*.  S3 server-side encryption is in tests/test_sse.py.
"""

from __future__ import annotations

import base64
import contextlib
import copy
import io
import json
import logging
import os
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from migrate.cli import logs
from migrate.cluster import Cluster
from migrate.errors import IntegrityError, NotFound, UsageError
from migrate.runlog import redact
from migrate.store import StoreOptions, layout, open_store
from migrate.store.crypto import EncryptionKey
from migrate.store.local import LocalStore
from migrate.store.manifest_mac import ACCEPT_UNSEALED_ENV, FIELD, check_manifest
from migrate.store.scratch import ScratchStore
from migrate.store.url import BucketURL

from .conftest import Env
from .helpers import run_cli, wait_for

BIN = Path(sys.executable).parent
KEY = EncryptionKey(bytes(range(32)), "test key")
OTHER = EncryptionKey(bytes(range(1, 33)), "other key")


def mode(path: Path | str) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


# ------------------------------------------------------------------ file:// buckets


def test_local_store_files_are_0600_and_its_folders_0700(tmp_path: Path) -> None:
    root = tmp_path / "bucket" / "deep"  # both made by the store
    old = os.umask(0o022)  # the usual umask: without our modes, 0644 files, 0755 folders
    try:
        store = LocalStore(BucketURL.parse(f"file://{root}"))
        store.put("backups/b1/velero-backup.json", b"{}")
        store.put_stream("backups/b1/b1.tar.gz", io.BytesIO(os.urandom(3 << 20)))
        store.put_all({"backups/b1/a.gz": b"a", "restores/r1/r1-logs.gz": b"b"})
    finally:
        os.umask(old)
    files = [p for p in (tmp_path / "bucket").rglob("*") if p.is_file()]
    folders = [tmp_path / "bucket", *(p for p in (tmp_path / "bucket").rglob("*") if p.is_dir())]
    assert len(files) == 4 and len(folders) == 6
    assert {str(p): mode(p) for p in files} == {str(p): 0o600 for p in files}
    assert {str(p): mode(p) for p in folders} == {str(p): 0o700 for p in folders}
    # a folder the user made keeps the mode the user gave it
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o755)
    LocalStore(BucketURL.parse(f"file://{shared}")).put("k", b"1")
    assert (mode(shared), mode(shared / "k")) == (0o755, 0o600)


def test_scratch_store_is_private_and_always_removed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    with pytest.raises(KeyboardInterrupt), ScratchStore("km-test-") as store:
        store.put("backups/preflight/preflight.tar.gz", b"secret")
        made = Path(store.root)
        assert made.parent == tmp_path and mode(made) == 0o700
        assert mode(made / "backups" / "preflight") == 0o700
        raise KeyboardInterrupt  # what SIGTERM and SIGINT become
    assert not made.exists()
    scratch = ScratchStore("km-test-")
    scratch.store.put("a", b"1")
    scratch.cleanup()
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------ S3 encryption settings


def test_sse_options() -> None:
    assert StoreOptions().sse_args() == {}
    assert StoreOptions(sse="AES256").sse_args() == {"ServerSideEncryption": "AES256"}
    assert StoreOptions(sse="aws:kms", kms_key_id="alias/b").sse_args() == {
        "ServerSideEncryption": "aws:kms",
        "SSEKMSKeyId": "alias/b",
    }
    with pytest.raises(UsageError, match="invalid --s3-sse 'AES128'"):
        StoreOptions(sse="AES128")
    for sse in (None, "AES256"):
        with pytest.raises(UsageError, match="needs --s3-sse aws:kms"):
            StoreOptions(sse=sse, kms_key_id="alias/b")
    with pytest.raises(UsageError, match="applies to s3:// buckets"):
        open_store("file:///tmp/km-x", StoreOptions(sse="AES256"))


def test_sse_playbook_fields_and_precedence(tmp_path: Path) -> None:
    from migrate.playbook import load_playbook, resolve_endpoints

    def endpoints(bucket: str, flags: dict[str, Any], env: dict[str, str]) -> dict[str, Any]:
        book = tmp_path / "pb.yaml"
        book.write_text(
            "apiVersion: kube-migrate.io/v1alpha1\nkind: Playbook\nmetadata: {name: sse}\n"
            f"spec:\n  bucket: {bucket}\n  backup: {{name: b}}\n  steps: [waitForSync]\n"
        )
        ep = resolve_endpoints(load_playbook(str(book)), flags, env).bucket
        assert ep is not None
        return ep.open_kwargs()

    both = "{url: s3://b, sse: 'aws:kms', kmsKeyId: alias/pb}"
    kw = endpoints(both, {}, {"KUBE_MIGRATE_S3_SSE": "AES256"})
    assert (kw["s3_sse"], kw["s3_kms_key_id"]) == ("aws:kms", "alias/pb")  # playbook > env
    kw = endpoints(both, {"s3_sse": "AES256"}, {})  # the flag first, without the
    assert (kw["s3_sse"], kw["s3_kms_key_id"]) == ("AES256", None)  # playbook's key id
    kw = endpoints(both, {"s3_kms_key_id": "alias/flag"}, {})
    assert (kw["s3_sse"], kw["s3_kms_key_id"]) == ("aws:kms", "alias/flag")
    kw = endpoints("{url: s3://b}", {}, {"KUBE_MIGRATE_S3_SSE": "aws:kms"})
    assert (kw["s3_sse"], kw["s3_kms_key_id"]) == ("aws:kms", None)  # then the variable


# ------------------------------------------------------------------ the manifest's HMAC


def _sealed(key: EncryptionKey | None = KEY) -> dict[str, Any]:
    files = {"backups/b/velero-backup.json": (2, layout.sha256(b"{}"))}
    extra = {"counts": {"items": 3}, "encryption": {"keyId": KEY.key_id}}
    doc: dict[str, Any] = json.loads(
        layout.manifest("b", files, "backups/b/", {"gitVersion": "v1.30.14"}, extra, key)
    )
    return doc


def test_manifest_is_sealed_and_tampering_is_refused(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    doc = _sealed()
    assert doc[FIELD]["algorithm"] == "HMAC-SHA256" and doc[FIELD]["keyId"] == KEY.key_id
    assert KEY.secret.hex() not in json.dumps(doc)
    check_manifest(doc, KEY, "b", {"velero-backup.json": b"{}"})
    # parsed and written again in another layout: still the same manifest
    check_manifest(json.loads(json.dumps(doc, sort_keys=True)), KEY, "b")
    tampered = copy.deepcopy(doc)
    tampered["counts"]["items"] = 4
    with pytest.raises(IntegrityError, match="fails authentication"):
        check_manifest(tampered, KEY, "b")
    with pytest.raises(IntegrityError, match="fails authentication"):
        check_manifest(doc, OTHER, "b")
    with pytest.raises(IntegrityError, match=r"velero-backup\.json does not match"):
        check_manifest(doc, KEY, "b", {"velero-backup.json": b"{ }"})
    with pytest.raises(IntegrityError, match=r"velero-backup\.json does not match"):
        check_manifest(doc, KEY, "b", {"velero-backup.json": b""} | {"x.gz": b""})
    assert FIELD not in _sealed(None)  # a plain backup has no key to seal with
    unsealed = {k: v for k, v in doc.items() if k != FIELD}
    with pytest.raises(IntegrityError, match="carries no authentication") as exc:
        check_manifest(unsealed, KEY, "b")
    assert ACCEPT_UNSEALED_ENV in exc.value.hint
    monkeypatch.setenv(ACCEPT_UNSEALED_ENV, "1")
    with caplog.at_level(logging.WARNING):
        check_manifest(unsealed, KEY, "b")
    assert "not authenticated" in caplog.text
    with pytest.raises(IntegrityError, match="fails authentication"):  # only when absent
        check_manifest(tampered, KEY, "b")


# ------------------------------------------------------------------ log redaction

SESSION = "FQoGZXIvYXdzEJr" + "M4RK3RSESSION" + uuid.uuid4().hex
BEARER = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzeXN0ZW0" + uuid.uuid4().hex + ".c2lnbmF0dXJl"


def test_redact_patterns() -> None:
    lines = {
        "botocore request": "Sending http request: <AWSPreparedRequest method=PUT, url=http://"
        "h/b/k, headers={'X-Amz-Date': b'20261205T081200Z', 'X-Amz-Security-Token': "
        f"b'{SESSION}', 'Authorization': b'AWS4-HMAC-SHA256 Credential=AKIAM4RK3R/2026/"
        "us-east-1/s3/aws4_request, SignedHeaders=host, Signature=abc123'}>",
        "signing input": f"PUT\n/b/k\n\nhost:h\nx-amz-security-token:{SESSION}\n\nhost",
        "signature": "Signature:\n" + "9f" * 32,
        "presigned url": "GET /b/k?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAM4RK3R"
        f"%2F2026&X-Amz-Signature=abc123&X-Amz-Security-Token={SESSION} HTTP/1.1",
        "http.client": f"send: b'GET / HTTP/1.1\\r\\nAuthorization: Bearer {BEARER}\\r\\n'",
        "a bare jwt": f"token {BEARER}",
        "json header": f'{{"authorization": "Bearer {BEARER}"}}',
        "pem": "-----BEGIN EC PRIVATE KEY-----\nM4RK3RKEY\n-----END EC PRIVATE KEY-----",
    }
    for what, line in lines.items():
        out = redact(line)
        for secret in (SESSION, BEARER, "AKIAM4RK3R", "abc123", "9f" * 32, "M4RK3RKEY"):
            assert secret not in out, (what, out)
        assert "<redacted>" in out, what
    plain = "backup shop-1 Completed: 12 items (listing secrets, serviceaccounts)"
    assert redact(plain) == plain


@pytest.fixture
def logging_kept() -> Iterator[None]:
    root, migrate_logger = logging.getLogger(), logging.getLogger("migrate")
    saved = (root.handlers[:], root.level, migrate_logger.level)
    levels = {n: logging.getLogger(n).level for n in ("urllib3", "botocore", "boto3")}
    yield
    root.handlers[:], root.level = saved[0], saved[1]
    migrate_logger.setLevel(saved[2])
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)


def test_debug_logs_of_a_real_s3_request_are_redacted(
    logging_kept: None, capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """botocore at debug level logs every request's headers and its signing input; the
    request goes nowhere (a closed port), the log lines are real."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAM4RK3RACCESS")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "M4RK3R-secret-" + uuid.uuid4().hex)
    monkeypatch.setenv("AWS_SESSION_TOKEN", SESSION)
    logs.setup(0, True, "plain")
    store = open_store(
        "s3://bucket/p", StoreOptions(endpoint_url=f"http://127.0.0.1:{port}", max_attempts=1)
    )
    with pytest.raises(Exception, match="cannot"):
        store.put("k", b"data")
    err = capfd.readouterr().err
    assert "X-Amz-Security-Token" in err and "Authorization" in err  # headers were logged
    assert "<redacted>" in err
    for secret in (SESSION, os.environ["AWS_SECRET_ACCESS_KEY"], "AKIAM4RK3RACCESS"):
        assert secret not in err


# ------------------------------------------------------------------ on the real planes


def _kubectl_like_objects(c: Cluster, ns: str, secrets: int = 2, configmaps: int = 3) -> None:
    sec, cm = c.discovery().resolve("secrets"), c.discovery().resolve("configmaps")
    for i in range(secrets):
        c.create(sec, {"metadata": {"name": f"s{i}"}, "stringData": {"pw": f"M4RK3R-{i}"}}, ns)
    for i in range(configmaps):
        c.create(cm, {"metadata": {"name": f"c{i}"}, "data": {"k": f"v{i}"}}, ns)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_preflight_copy_is_private_and_removed_when_killed(
    dev_env: Env, source: Cluster, source_ns: str, tmp_path: Path, sig: signal.Signals
) -> None:
    _kubectl_like_objects(source, source_ns)
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    env = {**os.environ, "TMPDIR": str(tmp)}
    args = [str(BIN / "kube-migrate"), "preflight", "--source-kubeconfig",
            dev_env.source_kubeconfig, "--target-kubeconfig", dev_env.target_kubeconfig,
            "--include-namespaces", source_ns]  # fmt: skip
    done = subprocess.run(args, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode in (0, 3), done.stderr  # ran to its end: nothing left behind
    assert list(tmp.iterdir()) == []
    # slowed down (a LIST every half second) so that it is killed while it copies
    proc = subprocess.Popen(
        [*args, "--qps", "2", "--burst", "1"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        made = wait_for("the temporary copy", lambda: next(tmp.glob("kube-migrate-*"), None), 60)
        files = wait_for("its tarball", lambda: [p for p in made.rglob("*") if p.is_file()], 60)
        folders = [made, *(p for p in made.rglob("*") if p.is_dir())]
        assert len(folders) >= 3  # the copy, backups/, backups/preflight/
        assert {mode(p) for p in folders} == {0o700}
        assert {mode(p) for p in files} == {0o600}
        assert proc.poll() is None, "preflight ended before it could be killed"
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    assert "kube-migrate: error: interrupted" in err
    assert not made.exists() and list(tmp.iterdir()) == []


def test_plaintext_secrets_warn_once(
    dev_env: Env, source: Cluster, source_ns: str, bucket_url: str, tmp_path: Path
) -> None:
    _kubectl_like_objects(source, source_ns, secrets=3)
    key = tmp_path / "backup.key"
    key.write_bytes(os.urandom(32))
    base = ["--kubeconfig", dev_env.source_kubeconfig, "--bucket", bucket_url,
            "--include-namespaces", source_ns]  # fmt: skip
    plain = run_cli("backup", "create", "plain", *base)
    assert plain.returncode == 0, plain.stderr
    warned = [ln for ln in plain.stderr.splitlines() if "stored unencrypted" in ln]
    assert len(warned) == 1, plain.stderr
    assert "WARNING" in warned[0] and "3 Secrets" in warned[0]
    assert "--encryption-key-file" in warned[0] and "head -c32 /dev/urandom" in warned[0]
    logs_out = run_cli("backup", "logs", "plain", "--bucket", bucket_url)
    assert logs_out.stdout.count("stored unencrypted") == 1  # in the backup's log too
    enc = run_cli("backup", "create", "enc", *base, "--encryption-key-file", str(key))
    no_secrets = run_cli("backup", "create", "cms", *base, "--include-resources", "configmaps")
    for out in (enc, no_secrets):
        assert out.returncode == 0, out.stderr
        assert "unencrypted" not in out.stderr


def _damages(keys: layout.BackupKeys, original: dict[str, bytes]) -> dict[str, dict[str, bytes]]:
    """What a tamperer with write access to the bucket may change: description -> files."""
    manifest = json.loads(original[keys.manifest])
    counted = copy.deepcopy(manifest)
    counted["counts"]["items"] += 1  # one byte of the JSON: a count
    metadata = json.loads(original[keys.metadata])
    metadata["status"]["expiration"] = "2099-01-01T00:00:00Z"
    tarball = bytearray(original[keys.tarball])
    tarball[len(tarball) // 2] ^= 0x01
    unsealed = {k: v for k, v in manifest.items() if k != FIELD}
    return {
        "a count in the manifest": {keys.manifest: json.dumps(counted, indent=1).encode()},
        "the manifest's MAC removed": {keys.manifest: json.dumps(unsealed).encode()},
        "velero-backup.json": {keys.metadata: json.dumps(metadata, indent=2).encode()},
        "a byte of the tarball": {keys.tarball: bytes(tarball)},
    }


def test_tampered_encrypted_backup_is_refused(
    dev_env: Env,
    source: Cluster,
    target: Cluster,
    source_ns: str,
    bucket_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _kubectl_like_objects(source, source_ns)
    key = tmp_path / "backup.key"
    key.write_bytes(os.urandom(32))
    dst = f"{source_ns[:50]}-dst"
    out = run_cli("backup", "create", "enc", "--kubeconfig", dev_env.source_kubeconfig,
             "--bucket", bucket_url, "--include-namespaces", source_ns,
             "--encryption-key-file", str(key))  # fmt: skip
    assert out.returncode == 0, out.stderr
    store = open_store(bucket_url)
    keys = layout.BackupKeys("enc")
    original = {k: store.get(k) for k in (keys.manifest, keys.metadata, keys.tarball)}
    with_key = ["--bucket", bucket_url, "--encryption-key-file", str(key)]

    def restore(*extra: str) -> subprocess.CompletedProcess[str]:
        return run_cli("restore", "create", "--from-backup", "enc", "--kubeconfig",
                  dev_env.target_kubeconfig, *with_key, "--namespace-mappings",
                  f"{source_ns}:{dst}", *extra)  # fmt: skip

    def nothing_written() -> bool:
        try:
            target.get(target.discovery().resolve("namespaces"), dst)
        except NotFound:
            return not list(store.list("restores/"))
        return False

    assert json.loads(original[keys.manifest])[FIELD]["algorithm"] == "HMAC-SHA256"
    damages = _damages(keys, original)
    try:
        for what, blobs in damages.items():
            store.put_all({**original, **blobs})
            out = restore()
            assert out.returncode == 6, (what, out.stderr)
            assert out.stderr.startswith("kube-migrate: error: "), (what, out.stderr)
            assert "enc" in out.stderr.splitlines()[0], (what, out.stderr)
            assert nothing_written(), what
            for step in ("verify", "preflight"):
                out = run_cli(step, "--from-backup", "enc", "--target-kubeconfig",
                         dev_env.target_kubeconfig, *with_key)  # fmt: skip
                assert out.returncode == 6, (what, step, out.stderr)
            if keys.tarball not in blobs:  # describe reads no tarball
                out = run_cli("backup", "describe", "enc", *with_key)
                assert out.returncode == 6, (what, out.stderr)
                assert run_cli("backup", "describe", "enc", "--bucket", bucket_url).returncode == 0
        # an unsealed manifest (an older kube-migrate) is taken when the user says so
        store.put_all({**original, **damages["the manifest's MAC removed"]})
        with monkeypatch.context() as m:
            m.setenv(ACCEPT_UNSEALED_ENV, "1")
            out = restore("--dry-run")
        assert out.returncode == 0 and "not authenticated" in out.stderr, out.stderr
        assert nothing_written()
        # the control: the backup as it was written restores
        store.put_all(original)
        out = restore()
        assert out.returncode == 0, out.stderr
        names = {
            o["metadata"]["name"] for o in target.list(target.discovery().resolve("secrets"), dst)
        }
        assert {"s0", "s1"} <= names
    finally:
        store.put_all(original)
        with contextlib.suppress(NotFound):
            target.delete(target.discovery().resolve("namespaces"), dst)


def _token_kubeconfig(c: Cluster, admin_file: str, ns: str, path: Path) -> str:
    """A ServiceAccount in ns, cluster-admin, and a kubeconfig with its bearer token."""
    c.create(c.discovery().resolve("serviceaccounts"), {"metadata": {"name": "km-debug"}}, ns)
    token: str = c.request(
        "POST", f"/api/v1/namespaces/{ns}/serviceaccounts/km-debug/token",
        body={"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
              "spec": {"expirationSeconds": 3600}},
    )["status"]["token"]  # fmt: skip
    admin = yaml.safe_load(Path(admin_file).read_text())
    current = next(x for x in admin["contexts"] if x["name"] == admin["current-context"])
    server = next(
        x["cluster"] for x in admin["clusters"] if x["name"] == current["context"]["cluster"]
    )
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "current-context": "sa",
                "clusters": [{"name": "c", "cluster": server}],
                "users": [{"name": "sa", "user": {"token": token}}],
                "contexts": [{"name": "sa", "context": {"cluster": "c", "user": "sa"}}],
            }
        )
    )
    return token


def _client_key_lines(kubeconfig: str) -> list[str]:
    """The base64 lines of the kubeconfig user's private key (what must never be printed)."""
    doc = yaml.safe_load(Path(kubeconfig).read_text())
    user = doc["users"][0]["user"]
    if "client-key-data" in user:
        pem = base64.b64decode(user["client-key-data"]).decode()
        return [user["client-key-data"][:40], *(ln for ln in pem.splitlines() if len(ln) > 40)]
    if "client-key" in user:
        pem = Path(user["client-key"]).read_text()
        return [ln for ln in pem.splitlines() if len(ln) > 40]
    return []


def _sts_credentials() -> dict[str, str] | None:
    """Temporary credentials from MinIO's STS AssumeRole, if this MinIO grants them."""
    import boto3

    sts = boto3.client("sts", endpoint_url=os.environ["AWS_ENDPOINT_URL"], region_name="us-east-1")
    try:
        got = sts.assume_role(
            RoleArn="arn:xxx:xxx:xxx:xxxx", RoleSessionName="km", DurationSeconds=900
        )["Credentials"]
    except Exception:  # an S3 server without STS
        return None
    return {
        "AWS_ACCESS_KEY_ID": got["AccessKeyId"],
        "AWS_SECRET_ACCESS_KEY": got["SecretAccessKey"],
        "AWS_SESSION_TOKEN": got["SessionToken"],
    }


def test_debug_never_prints_credentials(
    dev_env: Env, source: Cluster, source_ns: str, bucket_url: str, tmp_path: Path
) -> None:
    _kubectl_like_objects(source, source_ns)
    crb = source.discovery().resolve("clusterrolebindings.rbac.authorization.k8s.io")
    binding = f"km-debug-{uuid.uuid4().hex[:8]}"
    source.create(crb, {
        "metadata": {"name": binding},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                    "name": "cluster-admin"},
        "subjects": [{"kind": "ServiceAccount", "name": "km-debug", "namespace": source_ns}],
    })  # fmt: skip
    try:
        sa_kubeconfig = tmp_path / "sa.kubeconfig"
        bearer = _token_kubeconfig(source, dev_env.source_kubeconfig, source_ns, sa_kubeconfig)
        sts = _sts_credentials()  # MinIO grants them to non-root users only: maybe none
        secrets = [bearer, os.environ["AWS_SECRET_ACCESS_KEY"], SESSION]
        secrets += list((sts or {}).values())[1:]  # secret key and session token
        secrets += _client_key_lines(dev_env.source_kubeconfig)
        secrets += _client_key_lines(dev_env.target_kubeconfig)
        outputs: dict[str, str] = {}

        def run(what: str, env: dict[str, str], *args: str) -> int:
            out = subprocess.run([str(BIN / "kube-migrate"), "--debug", *args],
                                 env={**os.environ, **env}, capture_output=True, text=True,
                                 timeout=600, check=False)  # fmt: skip
            outputs[what] = out.stdout + out.stderr
            return out.returncode

        bucket = ["--bucket", bucket_url]
        ns = ["--include-namespaces", source_ns]
        backup = ["backup", "create", "dbg", "--kubeconfig", str(sa_kubeconfig), *bucket, *ns]
        # a session token MinIO does not know: refused, but its request was logged first
        assert run("session token", {"AWS_SESSION_TOKEN": SESSION}, *backup) == 4
        assert "X-Amz-Security-Token" in outputs["session token"]  # the header was logged
        if sts is not None:
            assert run("STS credentials", sts, "backup", "get", *bucket) == 0
            assert "X-Amz-Security-Token" in outputs["STS credentials"]
        assert run("bearer token", {}, *backup) == 0
        assert "Authorization" in outputs["bearer token"]  # S3's, redacted
        assert run("client certificates", {}, "--log-format", "json", "preflight",
                   "--source-kubeconfig", dev_env.source_kubeconfig, "--target-kubeconfig",
                   dev_env.target_kubeconfig, *ns) in (0, 3)  # fmt: skip
        assert run("restore dry-run", {}, "restore", "create", "--from-backup", "dbg",
                   "--kubeconfig", dev_env.target_kubeconfig, *bucket, "--dry-run",
                   "--namespace-mappings", f"{source_ns}:{source_ns}-x") == 0  # fmt: skip
        assert run("backup logs", {}, "backup", "logs", "dbg", *bucket) == 0
        assert "<redacted>" in "\n".join(outputs.values())
        leaked = {w: [s[:12] for s in secrets if s in t] for w, t in outputs.items()}
        assert not any(leaked.values()), leaked
    finally:
        source.delete(crb, binding)


def test_restore_create_reads_the_target_variables(
    dev_env: Env, source: Cluster, target: Cluster, source_ns: str, bucket_url: str
) -> None:
    _kubectl_like_objects(source, source_ns, secrets=0, configmaps=1)
    out = run_cli("backup", "create", "b", "--kubeconfig", dev_env.source_kubeconfig,
             "--bucket", bucket_url, "--include-namespaces", source_ns)  # fmt: skip
    assert out.returncode == 0, out.stderr
    dst = f"{source_ns[:50]}-env"
    env = {**os.environ, "KUBE_MIGRATE_TARGET_KUBECONFIG": dev_env.target_kubeconfig}
    env.pop("KUBE_MIGRATE_KUBECONFIG", None)
    env["KUBECONFIG"] = dev_env.source_kubeconfig  # would be the source: must not be used
    context = yaml.safe_load(Path(dev_env.target_kubeconfig).read_text())["current-context"]

    def restore(*args: str, **more: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(BIN / "kube-migrate"), "restore", "create", "--from-backup", "b", "--bucket",
             bucket_url, "--namespace-mappings", f"{source_ns}:{dst}", "-o", "json", *args],
            env={**env, **more}, capture_output=True, text=True, timeout=300, check=False,
        )  # fmt: skip

    try:
        bad = restore(KUBE_MIGRATE_TARGET_CONTEXT="ghost")
        assert bad.returncode == 2 and "context 'ghost' not found" in bad.stderr, bad.stderr
        assert dev_env.target_kubeconfig in bad.stderr
        out = restore(KUBE_MIGRATE_TARGET_CONTEXT=context)
        assert out.returncode == 0, out.stderr
        cms = target.list(target.discovery().resolve("configmaps"), dst)
        assert "c0" in {o["metadata"]["name"] for o in cms}
        with pytest.raises(NotFound):  # not restored into the $KUBECONFIG cluster
            source.get(source.discovery().resolve("namespaces"), dst)
        # the flag wins over the variable
        flag = restore("--kubeconfig", "/nonexistent/km.kubeconfig", "--dry-run")
        assert flag.returncode == 2 and "/nonexistent/km.kubeconfig" in flag.stderr
    finally:
        target.delete(target.discovery().resolve("namespaces"), dst)
