"""Client-side encryption of the backup tarball (`--encryption-key-file`).

Pure logic first: the segment format (roundtrip at every boundary, tampering,
truncation, reordering, extension, wrong key, name binding, flat memory) and key files.
Then on the real planes and MinIO: a namespace whose Secrets and ConfigMaps hold known
markers is backed up with a key, every object under the bucket prefix is read raw (and
gunzipped) and holds no marker; restore (namespace mapping) and verify --from-backup
with the key give zero drift; a missing, wrong or mismatched key, a tampered or
truncated tarball fail with their exit codes before anything is written; playbooks
take the key from spec.bucket.encryptionKeyFile.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import json
import os
import subprocess
import sys
import tracemalloc
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest

from migrate.cluster import Cluster
from migrate.errors import IntegrityError, NotFound, PlaybookError, UsageError
from migrate.playbook import load_playbook, resolve_endpoints
from migrate.store import open_store
from migrate.store.archive import read_tarball
from migrate.store.crypto import (
    HEADER,
    MAGIC,
    TAG_BYTES,
    DecryptingReader,
    EncryptingWriter,
    Encryption,
    EncryptionKey,
    check_key,
    load_key,
)
from migrate.store.manifest_mac import seal as seal_manifest
from tests.helpers import run_cli

from .helpers import apply

BIN = Path(sys.executable).parent
KEY = EncryptionKey(bytes(range(32)), "test key")
OTHER = EncryptionKey(bytes(range(1, 33)), "other key")


def seal(data: bytes, key: EncryptionKey = KEY, name: str = "b.tar.gz", seg: int = 64) -> bytes:
    out = io.BytesIO()
    w = EncryptingWriter(out, key, name, segment_bytes=seg)
    for i in range(0, len(data), 37):  # odd write sizes: segments never align with writes
        w.write(data[i : i + 37])
    w.finish()
    return out.getvalue()


def unseal(blob: bytes, key: EncryptionKey = KEY, name: str = "b.tar.gz") -> bytes:
    return DecryptingReader(io.BytesIO(blob), key, name, "test stream").read()


def segments(blob: bytes, seg: int = 64) -> tuple[bytes, list[bytes]]:
    chunk = seg + TAG_BYTES
    body = blob[HEADER.size :]
    return blob[: HEADER.size], [body[i : i + chunk] for i in range(0, len(body), chunk)]


# ------------------------------------------------------------------ the segment format


@pytest.mark.parametrize("size", [0, 1, 63, 64, 65, 128, 129, 1000])
def test_roundtrip_at_every_boundary(size: int) -> None:
    data = os.urandom(size)
    blob = seal(data)
    _, segs = segments(blob)
    assert blob.startswith(MAGIC) and len(blob) == HEADER.size + len(segs) * TAG_BYTES + size
    # every segment but the last is full; an exact multiple still ends with a sealed
    # (shorter, possibly empty) final segment
    assert all(len(s) == 64 + TAG_BYTES for s in segs[:-1]) and len(segs[-1]) <= 64 + TAG_BYTES
    assert unseal(blob) == data


def test_default_segments_and_fresh_salt() -> None:
    data = os.urandom(int(2.5 * (1 << 20)))
    out = io.BytesIO()
    w = EncryptingWriter(out, KEY, "b.tar.gz")
    w.write(data)
    w.finish()
    blob = out.getvalue()
    assert len(blob) == HEADER.size + 3 * TAG_BYTES + len(data)  # 1 MiB, 1 MiB, 0.5 MiB
    assert DecryptingReader(io.BytesIO(blob), KEY, "b.tar.gz", "t").read() == data
    again = seal(data[:1000])
    assert again != seal(data[:1000])  # a fresh salt and nonce prefix every time
    assert data[:1000] not in blob and data[:16] not in blob


def test_every_flipped_byte_is_detected() -> None:
    blob = seal(os.urandom(200))  # 4 segments: 64, 64, 64, 8
    for pos in range(len(blob)):
        bad = bytearray(blob)
        bad[pos] ^= 0x01
        with pytest.raises((IntegrityError, UsageError)) as err:
            unseal(bytes(bad))
        in_key_id = 12 <= pos < 16
        assert isinstance(err.value, UsageError) == in_key_id, pos  # key id: "wrong key"


def test_truncation_extension_and_reordering_are_detected() -> None:
    blob = seal(os.urandom(200))
    header, segs = segments(blob)
    cases = {
        "final segment dropped": header + b"".join(segs[:-1]),
        "two segments dropped": header + b"".join(segs[:-2]),
        "cut inside a segment": blob[:-5],
        "only the header": header,
        "header cut": blob[: HEADER.size - 1],
        "empty": b"",
        "a segment repeated": header + b"".join([segs[0], *segs]),
        "segments swapped": header + b"".join([segs[1], segs[0], *segs[2:]]),
        "junk appended": blob + b"\x00" * 10,
        "a full segment appended": blob + segs[0],
    }
    for what, bad in cases.items():
        with pytest.raises(IntegrityError):
            unseal(bad)
        assert what  # (named for the failure message)


def test_truncated_stream_never_looks_complete() -> None:
    """Reading a stream cut at a segment boundary releases the authenticated segments,
    then fails: the reader does not return EOF for a stream without its final segment."""
    data = os.urandom(200)
    header, segs = segments(seal(data))
    reader = DecryptingReader(io.BytesIO(header + b"".join(segs[:2])), KEY, "b.tar.gz", "t")
    assert reader.read(64) == data[:64]  # segment 0 authenticated (a successor follows)
    with pytest.raises(IntegrityError, match="fails authentication"):
        reader.read()


def test_wrong_key() -> None:
    blob = seal(b"secret payload" * 20)
    with pytest.raises(UsageError, match=f"key id {KEY.key_id}; other key has key id"):
        unseal(blob, OTHER)
    # a forged key id (the other key's) over a stream sealed with KEY: the tags fail
    forged = blob[:12] + OTHER.id_bytes + blob[16:]
    with pytest.raises(IntegrityError, match="segment 0 fails authentication"):
        unseal(forged, OTHER)


def test_stream_is_bound_to_its_file_name() -> None:
    blob = seal(b"x" * 100, name="a.tar.gz")
    assert unseal(blob, name="a.tar.gz") == b"x" * 100
    with pytest.raises(IntegrityError):
        unseal(blob, name="b.tar.gz")


def test_memory_stays_flat() -> None:
    """32 MiB through both directions, 64 KiB at a time: peak allocations stay within a
    few segments, not the stream's size."""
    chunk = os.urandom(64 << 10)

    class Discard:
        size = 0

        def write(self, data: bytes) -> int:
            self.size += len(data)
            return len(data)

    class Source:
        def __init__(self, blob_parts: Iterator[bytes]) -> None:
            self.parts, self.buf = blob_parts, b""

        def read(self, n: int = -1) -> bytes:
            while len(self.buf) < n:
                part = next(self.parts, None)
                if part is None:
                    break
                self.buf += part
            out, self.buf = self.buf[:n], self.buf[n:]
            return out

    tracemalloc.start()
    sink = Discard()
    w = EncryptingWriter(sink, KEY, "big.tar.gz")
    for _ in range(512):
        w.write(chunk)
    w.finish()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert sink.size > 32 << 20 and peak < 6 << 20, peak

    def stream() -> Iterator[bytes]:
        out = io.BytesIO()
        w = EncryptingWriter(out, KEY, "big.tar.gz")
        yield out.getvalue()  # the header
        for _ in range(512):
            out.seek(0)
            out.truncate()
            w.write(chunk)
            yield out.getvalue()
        out.seek(0)
        out.truncate()
        w.finish()
        yield out.getvalue()

    tracemalloc.start()
    reader = DecryptingReader(Source(stream()), KEY, "big.tar.gz", "t")
    total = 0
    while data := reader.read(1 << 16):
        total += len(data)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert total == 32 << 20 and peak < 8 << 20, peak


# ---------------------------------------------------------------------------- key files


def test_key_file_formats(tmp_path: Path) -> None:
    raw = os.urandom(32)
    forms = {
        "raw": raw,
        "hex": raw.hex().encode() + b"\n",
        "HEX": raw.hex().upper().encode(),
        "base64": base64.b64encode(raw) + b"\n",
    }
    for name, content in forms.items():
        (tmp_path / name).write_bytes(content)
        key = load_key(str(tmp_path / name))
        assert key.secret == raw, name
        assert key.key_id == hashlib.sha256(raw).hexdigest()[:8]
        assert raw.hex() not in repr(key) and str(raw) not in repr(key)


@pytest.mark.parametrize(
    "content",
    [b"", os.urandom(31), os.urandom(33), b"z" * 64, base64.b64encode(os.urandom(16)), b"x" * 44],
)
def test_bad_key_files(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "key"
    path.write_bytes(content)
    with pytest.raises(UsageError, match="is not an AES-256 key") as err:
        load_key(str(path))
    assert "head -c32 /dev/urandom" in err.value.hint
    with pytest.raises(UsageError, match="No such file"):
        load_key(str(tmp_path / "missing"))


def test_check_key() -> None:
    enc = Encryption.for_key(KEY, ("b.tar.gz",))
    check_key(enc, KEY, "b")
    check_key(None, None, "b")
    with pytest.raises(UsageError, match=r"is encrypted \(key id .*\); pass --encryption-key-file"):
        check_key(enc, None, "b")
    with pytest.raises(UsageError, match="not encrypted, but an encryption key was given"):
        check_key(None, KEY, "b")
    with pytest.raises(UsageError, match=f"key id {KEY.key_id}; other key has key id"):
        check_key(enc, OTHER, "b")
    assert Encryption.from_manifest({"encryption": enc.as_dict()}, "b") == enc
    with pytest.raises(IntegrityError, match="cannot read"):
        Encryption.from_manifest({"encryption": {"algorithm": "ROT13"}}, "b")


def test_bad_key_file_fails_before_anything(tmp_path: Path) -> None:
    """The CLI loads the key before it connects or writes: a nonsense kubeconfig and a
    bucket that is never touched do not matter."""
    (tmp_path / "key").write_bytes(b"too short")
    out = run_cli("backup", "create", "b1", "--kubeconfig", str(tmp_path / "none"),
             "--bucket", f"file://{tmp_path}/bucket", "--encryption-key-file",
             str(tmp_path / "key"))  # fmt: skip
    assert out.returncode == 2, out.stderr
    lines = out.stderr.strip().splitlines()
    assert lines[0].startswith("kube-migrate: error: --encryption-key-file ")
    assert "is not an AES-256 key" in lines[0] and "head -c32 /dev/urandom" in lines[1]
    assert len(lines) == 2 and not (tmp_path / "bucket").exists()


PLAYBOOK = """apiVersion: kube-migrate.io/v1alpha1
kind: Playbook
metadata: {name: t}
spec:
  bucket: %s
  targetBucket: %s
  steps: [backup, waitForSync, restore]
"""


def test_playbook_key_file_field(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """spec.bucket.encryptionKeyFile is a path relative to the playbook; the flag is
    relative to the current directory; the flag wins (command-line flags > playbook);
    the target side's bucket inherits the key unless it names its own."""
    (tmp_path / "pbs").mkdir()
    monkeypatch.chdir(tmp_path)
    env = {"KUBE_MIGRATE_SOURCE_KUBECONFIG": "/s", "KUBE_MIGRATE_TARGET_KUBECONFIG": "/t"}

    def endpoints(bucket: str, target: str = "{url: s3://replica}", **flags: Any) -> Any:
        (tmp_path / "pbs" / "pb.yaml").write_text(PLAYBOOK % (bucket, target))
        return resolve_endpoints(load_playbook("pbs/pb.yaml", env=env), flags, env)

    ep = endpoints("{url: s3://b, encryptionKeyFile: k/backup.key}", encryption_key_file="f.key")
    assert ep.bucket.encryption_key_file == str(tmp_path / "f.key")
    assert ep.target_bucket.encryption_key_file == ep.bucket.encryption_key_file
    ep = endpoints("{url: s3://b, encryptionKeyFile: k/backup.key}")
    assert ep.bucket.encryption_key_file == str(tmp_path / "pbs" / "k" / "backup.key")
    assert ep.target_bucket.encryption_key_file == ep.bucket.encryption_key_file
    ep = endpoints("{url: s3://b}", encryption_key_file="f.key")
    assert ep.bucket.encryption_key_file == ep.target_bucket.encryption_key_file
    assert ep.bucket.encryption_key_file == str(tmp_path / "f.key")
    ep = endpoints("{url: s3://b}", "{url: s3://r, encryptionKeyFile: /abs/r.key}")
    assert (ep.bucket.encryption_key_file, ep.target_bucket.encryption_key_file) == (
        None,
        "/abs/r.key",
    )
    with pytest.raises(PlaybookError, match=r"spec\.bucket\.encryptionKeyFile"):
        endpoints("{url: s3://b, encryptionKeyFile: ''}")


# ----------------------------------------------------------------- on the real planes


def error_line(out: subprocess.CompletedProcess[str]) -> str:
    """The one error line (and its hint) the CLI prints; nothing else on stderr."""
    lines = [ln for ln in out.stderr.strip().splitlines() if ln.strip()]
    assert len(lines) == 2 and lines[1].startswith("hint: "), out.stderr
    assert lines[0].startswith("kube-migrate: error: "), out.stderr
    return lines[0]


@dataclass
class Encrypted:
    """A namespace with markers, backed up with a key into a fresh bucket prefix."""

    ns: str
    bucket: str
    backup: str
    key_file: Path
    markers: tuple[str, ...]
    names: dict[str, list[str]]  # kind -> names backed up


def _s3_client() -> Any:
    return boto3.client(
        "s3",
        endpoint_url=os.environ["AWS_ENDPOINT_URL"],
        region_name=os.environ.get("AWS_REGION", "us-east-1"),
    )


def _split(url: str) -> tuple[str, str]:
    bucket, _, prefix = url.removeprefix("s3://").partition("/")
    return bucket, prefix.rstrip("/") + "/"


def raw_objects(url: str) -> dict[str, bytes]:
    """Every object under the URL's prefix, as stored; gzip ones also gunzipped."""
    s3, (bucket, prefix) = _s3_client(), _split(url)
    out = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for obj in page.get("Contents", []):
            data = s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read()
            out[obj["Key"]] = data
            if data[:2] == b"\x1f\x8b":
                out[obj["Key"] + " (gunzipped)"] = gzip.decompress(data)
    return out


def leaks(url: str, markers: tuple[str, ...]) -> list[str]:
    forms = [m.encode() for m in markers] + [base64.b64encode(m.encode()) for m in markers]
    return [k for k, data in raw_objects(url).items() for f in forms if f in data]


def _docs(ns: str, markers: tuple[str, ...]) -> list[dict[str, Any]]:
    big = base64.b64encode(os.urandom(600_000)).decode()  # > 1 MiB gzipped with its copy
    meta = {"namespace": ns, "labels": {"app": "vault"}}
    return [
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "db", **meta},
         "type": "Opaque", "stringData": {"password": markers[0]}},
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "tls", **meta},
         "data": {"tls.key": base64.b64encode(markers[1].encode()).decode()}},
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "app-config", **meta,
         "annotations": {"note": markers[2]}}, "data": {"token": markers[3]}},
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "blob-a", **meta},
         "data": {"blob": big[:400_000]}, "binaryData": {"bin": base64.b64encode(
             markers[4].encode()).decode()}},
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "blob-b", **meta},
         "data": {"blob": big[400_000:]}},
    ]  # fmt: skip


@pytest.fixture(scope="module")
def encrypted(
    source: Cluster, dev_env: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Encrypted]:
    tag = uuid.uuid4().hex[:8]
    ns = f"enc-{tag}"
    markers = tuple(f"km-marker-{i}-{uuid.uuid4().hex}" for i in range(5))
    ns_res = source.discovery().resolve("namespaces")
    source.create(ns_res, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
    apply(source, _docs(ns, markers))
    key_file = tmp_path_factory.mktemp("keys") / "backup.key"
    key_file.write_bytes(os.urandom(32))
    bucket = f"{dev_env.bucket}/enc-{tag}"
    out = run_cli("backup", "create", "vault", "--kubeconfig", dev_env.source_kubeconfig,
             "--bucket", bucket, "--include-namespaces", ns,
             "--encryption-key-file", str(key_file), "-o", "json")  # fmt: skip
    assert out.returncode == 0, out.stderr
    names = {"ConfigMap": ["app-config", "blob-a", "blob-b"], "Secret": ["db", "tls"]}
    yield Encrypted(ns, bucket, "vault", key_file, markers, names)
    source.delete(ns_res, ns)


def test_bucket_holds_no_plaintext(encrypted: Encrypted, source: Cluster, dev_env: Any) -> None:
    e = encrypted
    stored = raw_objects(e.bucket)
    prefix = _split(e.bucket)[1] + f"backups/{e.backup}/"
    tarball = stored[f"{prefix}{e.backup}.tar.gz"]
    assert tarball.startswith(MAGIC) and f"{prefix}{e.backup}.tar.gz (gunzipped)" not in stored
    assert len(tarball) > HEADER.size + (1 << 20)  # more than one segment
    assert leaks(e.bucket, e.markers) == []
    key = load_key(str(e.key_file))
    for form in (key.secret, key.secret.hex().encode(), base64.b64encode(key.secret)):
        assert not any(form in data for data in stored.values())
    manifest = json.loads(stored[f"{prefix}{e.backup}-kube-migrate.json"])
    assert manifest["encryption"]["keyId"] == hashlib.sha256(key.secret).hexdigest()[:8]
    assert manifest["encryption"]["files"] == [f"{e.backup}.tar.gz"]
    entry = manifest["files"][f"{e.backup}.tar.gz"]
    assert entry == {"size": len(tarball), "sha256": hashlib.sha256(tarball).hexdigest()}

    # the markers are in the backup (decrypted with the key) ...
    store = open_store(e.bucket)
    items = dict(read_tarball(store, f"backups/{e.backup}/{e.backup}.tar.gz", None, key))
    secret = json.loads(items[f"resources/secrets/namespaces/{e.ns}/db.json"])
    assert base64.b64decode(secret["data"]["password"]).decode() == e.markers[0]
    # ... and the same backup without a key shows them to anyone reading the bucket
    plain = f"{e.bucket}-plain"
    out = run_cli("backup", "create", "vault", "--kubeconfig", dev_env.source_kubeconfig,
             "--bucket", plain, "--include-namespaces", e.ns)  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert any(k.endswith(".tar.gz (gunzipped)") for k in leaks(plain, e.markers))
    # wait-sync checks the stored (encrypted) bytes against the manifest
    out = run_cli("backup", "wait-sync", e.backup, "--bucket", e.bucket, "--timeout", "30s",
             "-o", "json")  # fmt: skip
    assert out.returncode == 0 and json.loads(out.stdout)["done"] is True, out.stderr


def test_restore_and_verify_with_the_key(
    encrypted: Encrypted, target: Cluster, target_ns: str, dev_env: Any
) -> None:
    e = encrypted
    common = ["--bucket", e.bucket, "--encryption-key-file", str(e.key_file),
              "--namespace-mappings", f"{e.ns}:{target_ns}"]  # fmt: skip
    out = run_cli("restore", "create", "--from-backup", e.backup, "--kubeconfig",
             dev_env.target_kubeconfig, *common, "-o", "json")  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["failed"] == 0
    secret = target.get(target.discovery().resolve("secrets"), "db", target_ns)
    assert base64.b64decode(secret["data"]["password"]).decode() == e.markers[0]

    out = run_cli("verify", "--from-backup", e.backup, "--target-kubeconfig",
             dev_env.target_kubeconfig, *common, "-o", "json")  # fmt: skip
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr
    report = json.loads(out.stdout)
    assert {(o["kind"], o["name"]) for o in report["objects"] if o["status"] == "equal"} >= {
        (kind, name) for kind, names in e.names.items() for name in names
    }
    assert all(o["status"] == "equal" for o in report["objects"]), report["summary"]
    assert not any(m in out.stdout + out.stderr for m in e.markers)

    out = run_cli("preflight", "--from-backup", e.backup, "--target-kubeconfig",
             dev_env.target_kubeconfig, *common, "-o", "json")  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["settings"]["objects"] >= 5

    out = run_cli("backup", "describe", e.backup, "--details", "--bucket", e.bucket,
             "--encryption-key-file", str(e.key_file), "-o", "json")  # fmt: skip
    assert out.returncode == 0, out.stderr
    desc = json.loads(out.stdout)
    assert desc["encryption"]["keyMatches"] is True
    assert desc["encryption"]["manifestAuthenticated"] is True
    assert desc["resources"]["v1/Secret"] == [f"{e.ns}/db", f"{e.ns}/tls"]
    # the restore's results (restores/ under the same prefix) hold no marker either
    assert leaks(e.bucket, e.markers) == []


def _absent(target: Cluster, ns: str, names: dict[str, list[str]]) -> bool:
    disc = target.discovery()
    for kind, listed in names.items():
        res = disc.resolve({"ConfigMap": "configmaps", "Secret": "secrets"}[kind])
        for name in listed:
            try:
                target.get(res, name, ns)
                return False
            except NotFound:
                pass
    return True


def test_missing_and_wrong_keys_fail_before_any_write(
    encrypted: Encrypted, target: Cluster, target_ns: str, dev_env: Any, tmp_path: Path
) -> None:
    e = encrypted
    wrong = tmp_path / "wrong.key"
    wrong.write_text(os.urandom(32).hex() + "\n")
    wrong_id = load_key(str(wrong)).key_id
    right_id = load_key(str(e.key_file)).key_id
    mapping = ["--namespace-mappings", f"{e.ns}:{target_ns}"]
    tkc = dev_env.target_kubeconfig
    before = set(raw_objects(e.bucket))
    commands = {
        "restore": ["restore", "create", "--from-backup", e.backup, "--kubeconfig", tkc, *mapping],
        "verify": ["verify", "--from-backup", e.backup, "--target-kubeconfig", tkc, *mapping],
        "preflight": ["preflight", "--from-backup", e.backup, "--target-kubeconfig", tkc],
    }
    for what, cmd in commands.items():
        out = run_cli(*cmd, "--bucket", e.bucket)
        assert out.returncode == 2, (what, out.stderr)
        assert f"backup {e.backup} is encrypted (key id {right_id})" in error_line(out)
        out = run_cli(*cmd, "--bucket", e.bucket, "--encryption-key-file", str(wrong))
        assert out.returncode == 2, (what, out.stderr)
        line = error_line(out)
        assert f"encrypted with key id {right_id}" in line and f"has key id {wrong_id}" in line
    out = run_cli("backup", "describe", e.backup, "--bucket", e.bucket, "-o", "json")
    assert out.returncode == 0 and json.loads(out.stdout)["encryption"]["keyId"] == right_id
    out = run_cli("backup", "describe", e.backup, "--bucket", e.bucket, "--encryption-key-file",
             str(wrong))  # fmt: skip
    assert out.returncode == 2 and f"has key id {wrong_id}" in error_line(out)
    assert _absent(target, target_ns, e.names)
    assert set(raw_objects(e.bucket)) == before  # no results written either


def _copy_backup(src: str, dst: str, backup: str, tarball: bytes, mac: EncryptionKey) -> None:
    """backups/<backup>/ of src into dst, with another tarball (manifest updated to it and
    sealed again with the key, so only the tarball's encryption can find what changed)."""
    s3, (bucket, sp), (_, dp) = _s3_client(), _split(src), _split(dst)
    rel = f"backups/{backup}/"
    for key, data in raw_objects(src).items():
        if not key.startswith(sp + rel) or key.endswith("(gunzipped)"):
            continue
        name = key.removeprefix(sp + rel)
        body = data
        if name == f"{backup}.tar.gz":
            body = tarball
        elif name == f"{backup}-kube-migrate.json":
            doc = json.loads(data)
            doc["files"][f"{backup}.tar.gz"] = {
                "size": len(tarball),
                "sha256": hashlib.sha256(tarball).hexdigest(),
            }
            seal_manifest(doc, mac)
            body = json.dumps(doc).encode()
        s3.put_object(Bucket=bucket, Key=dp + rel + name, Body=body)


@pytest.mark.parametrize("damage", ["tampered", "truncated"])
def test_tampered_or_truncated_tarball_fails_before_any_write(
    encrypted: Encrypted, target: Cluster, target_ns: str, dev_env: Any, damage: str
) -> None:
    """With the right key: a byte changed in the last segment (the first segment's
    objects have already been decrypted when it is found), or the last segment dropped.
    Exit 6, nothing restored, no results written."""
    e = encrypted
    tarball = raw_objects(e.bucket)[f"{_split(e.bucket)[1]}backups/{e.backup}/{e.backup}.tar.gz"]
    full = (1 << 20) + TAG_BYTES
    if damage == "tampered":
        bad = bytearray(tarball)
        bad[-TAG_BYTES - 3] ^= 0x40
        broken = bytes(bad)
    else:
        broken = tarball[: HEADER.size + full]
        assert len(broken) < len(tarball)
    copy = f"{e.bucket}-{damage}"
    _copy_backup(e.bucket, copy, e.backup, broken, load_key(str(e.key_file)))
    out = run_cli("restore", "create", "--from-backup", e.backup, "--kubeconfig",
             dev_env.target_kubeconfig, "--bucket", copy, "--encryption-key-file",
             str(e.key_file), "--namespace-mappings", f"{e.ns}:{target_ns}")  # fmt: skip
    assert out.returncode == 6, out.stderr
    line = error_line(out)
    segment = 1 if damage == "tampered" else 0
    assert f"segment {segment} fails authentication" in line, line
    assert _absent(target, target_ns, e.names)
    assert not [k for k in raw_objects(copy) if "/restores/" in k]
    out = run_cli("verify", "--from-backup", e.backup, "--target-kubeconfig",
             dev_env.target_kubeconfig, "--bucket", copy, "--encryption-key-file",
             str(e.key_file))  # fmt: skip
    assert out.returncode == 6 and "fails authentication" in error_line(out)


def test_key_for_a_plain_backup_is_refused(
    encrypted: Encrypted, dev_env: Any, target_ns: str
) -> None:
    plain = f"{encrypted.bucket}-plain2"
    out = run_cli("backup", "create", "plain", "--kubeconfig", dev_env.source_kubeconfig,
             "--bucket", plain, "--include-namespaces", encrypted.ns)  # fmt: skip
    assert out.returncode == 0, out.stderr
    mapping = f"{encrypted.ns}:{target_ns}"
    out = run_cli("restore", "create", "--from-backup", "plain", "--kubeconfig",
             dev_env.target_kubeconfig, "--bucket", plain, "--encryption-key-file",
             str(encrypted.key_file), "--namespace-mappings", mapping)  # fmt: skip
    assert out.returncode == 2
    assert "backup plain is not encrypted, but an encryption key was given" in error_line(out)


def test_playbook_with_encryption_key_file(
    encrypted: Encrypted, target: Cluster, dev_env: Any, tmp_path: Path
) -> None:
    """spec.bucket.encryptionKeyFile, relative to the playbook: the backup step encrypts,
    waitForSync, restore and verify (fromBackup) decrypt; preflight (a live snapshot)
    needs no key."""
    e = encrypted
    raw = os.urandom(32)
    (tmp_path / "pb.key").write_text(base64.b64encode(raw).decode() + "\n")
    dst = f"{e.ns}-pb"
    bucket = f"{e.bucket}-pb"
    playbook = tmp_path / "enc.yaml"
    playbook.write_text(
        json.dumps(
            {
                "apiVersion": "kube-migrate.io/v1alpha1",
                "kind": "Playbook",
                "metadata": {"name": "enc"},
                "spec": {
                    "bucket": {"url": bucket, "encryptionKeyFile": "pb.key"},
                    "scope": {"includeNamespaces": [e.ns]},
                    "restore": {"namespaceMappings": {e.ns: dst}},
                    "verify": {"fromBackup": True},
                    "steps": ["preflight", "backup", "waitForSync", "restore", "verify"],
                },
            }
        )
    )
    ns_res = target.discovery().resolve("namespaces")
    try:
        out = run_cli("run", str(playbook), "--report-dir", str(tmp_path / "report"))
        assert out.returncode == 0, out.stdout + out.stderr
        report = json.loads((tmp_path / "report" / "report.json").read_text())
        assert {s["step"]: s["status"] for s in report["steps"]} == dict.fromkeys(
            ["preflight", "backup", "waitForSync", "restore", "verify"], "succeeded"
        )
        name = report["run"]
        stored = raw_objects(bucket)
        manifest = json.loads(stored[f"{_split(bucket)[1]}backups/{name}/{name}-kube-migrate.json"])
        assert manifest["encryption"]["keyId"] == hashlib.sha256(raw).hexdigest()[:8]
        assert leaks(bucket, e.markers) == []
        secret = target.get(target.discovery().resolve("secrets"), "db", dst)
        assert base64.b64decode(secret["data"]["password"]).decode() == e.markers[0]
        for path in (tmp_path / "report").iterdir():
            assert not any(m in path.read_text(errors="replace") for m in e.markers), path
    finally:
        target.delete(ns_res, dst)
