"""S3 faults between kube-migrate and MinIO, injected by tests/s3proxy.py, on the real planes.

Backup and restore complete under 5xx, SlowDown, connection resets and latency (and the
objects and checksums prove it); a torn upload is never visible as a completed backup;
wait-sync never accepts a mismatched checksum; a read-only bucket receives no PUT, POST
or DELETE at all, from any read-only command or from any writing method of the store.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest

from migrate.backup.create import BackupOptions, create_backup
from migrate.cluster import Cluster
from migrate.errors import StoreError, StoreReadOnly, WaitTimeout
from migrate.store import Store, StoreOptions, layout, open_store
from migrate.store.archive import TarballWriter
from migrate.store.s3_stream import READ_RESUMES
from migrate.sync.wait import SyncState, wait_for_sync
from migrate.transform.scope import Scope
from tests.helpers import run_cli as cli

from .helpers import wait_for
from .s3proxy import Rule, S3Proxy

BIN = Path(sys.executable).parent
CONFIGMAPS = 498  # with the namespace and its default objects: ~500 objects
BIG_CONFIGMAPS = 8  # ~0.9 MiB of random text each, twice in the tarball: a 2-part upload


def uniq(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


def _namespace(c: Cluster, name: str, configmaps: dict[str, dict[str, str]]) -> None:
    fast = Cluster(c.ref, name=c.name, qps=0, pool_size=16)
    fast.create(fast.discovery().resolve("namespaces"), {"metadata": {"name": name}})
    cm = fast.discovery().resolve("configmaps")
    with ThreadPoolExecutor(16) as pool:
        list(
            pool.map(
                lambda item: fast.create(
                    cm, {"metadata": {"name": item[0]}, "data": item[1]}, name
                ),
                configmaps.items(),
            )
        )


def _drop(c: Cluster, ns: str) -> None:
    c.delete(c.discovery().resolve("namespaces"), ns)


@pytest.fixture(scope="module")
def bulk(source: Cluster) -> Iterator[str]:
    """A source namespace of ~500 objects (498 ConfigMaps)."""
    ns = uniq("faults")
    _namespace(source, ns, {f"cm-{i:04d}": {"v": f"value-{i}" * 4} for i in range(CONFIGMAPS)})
    yield ns
    _drop(source, ns)


@pytest.fixture(scope="module")
def big(source: Cluster) -> Iterator[str]:
    """A source namespace whose backup tarball (~11 MiB) is a multipart upload."""
    ns = uniq("faults-big")
    blobs = {
        f"blob-{i}": {"b": base64.b64encode(os.urandom(700_000)).decode()}
        for i in range(BIG_CONFIGMAPS)
    }
    _namespace(source, ns, blobs)
    yield ns
    _drop(source, ns)


@pytest.fixture(autouse=True)
def _tidy(request: pytest.FixtureRequest) -> Iterator[None]:
    """Delete what a test wrote under its bucket prefix (some backups are ~11 MiB)."""
    url = request.getfixturevalue("bucket_url") if "bucket_url" in request.fixturenames else ""
    yield
    if url:
        bucket, _, prefix = url.rpartition("/")
        open_store(bucket).delete_prefix(prefix + "/")


@pytest.fixture
def proxy(dev_env: Any) -> Iterator[S3Proxy]:
    with S3Proxy(os.environ["AWS_ENDPOINT_URL"], seed=9) as p:
        yield p


def configmaps(c: Cluster, ns: str) -> dict[str, Any]:
    cm = c.discovery().resolve("configmaps")
    return {
        o["metadata"]["name"]: o.get("data")
        for o in c.list(cm, ns)
        if o["metadata"]["name"] != "kube-root-ca.crt"
    }


def assert_manifest_matches(store: Store, name: str) -> layout.Manifest:
    """Every file the manifest lists is in the bucket with its recorded size and sha256."""
    keys = layout.BackupKeys(name)
    manifest = layout.Manifest.parse(store.get(keys.manifest), name)
    assert set(manifest.files) >= {f"{name}.tar.gz", "velero-backup.json"}
    for rel, (size, sha) in manifest.files.items():
        data = store.get(keys.dir + rel)
        assert (len(data), hashlib.sha256(data).hexdigest()) == (size, sha), rel
    return manifest


def backup_cli(name: str, ns: str, kubeconfig: str, bucket: str, endpoint: str) -> Any:
    out = cli("backup", "create", name, "--kubeconfig", kubeconfig, "--bucket", bucket,
              "--s3-endpoint", endpoint, "--include-namespaces", ns, "-o", "json")  # fmt: skip
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def restore_cli(backup: str, src: str, dst: str, kubeconfig: str, bucket: str, endpoint: str,
                *extra: str) -> Any:  # fmt: skip
    out = cli("restore", "create", uniq("r"), "--from-backup", backup, "--kubeconfig", kubeconfig,
              "--bucket", bucket, "--s3-endpoint", endpoint, "--namespace-mappings",
              f"{src}:{dst}", "--qps", "0", "-o", "json", *extra)  # fmt: skip
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


# ------------------------------------------------------------ the proxy itself


def test_proxy_is_transparent_and_records(proxy: S3Proxy, bucket_url: str) -> None:
    """Signatures still verify through the proxy (single and multipart), and it records."""
    store = open_store(bucket_url, StoreOptions(endpoint_url=proxy.url))
    data = os.urandom(9 << 20)
    store.put("a/one", b"1")
    store.put_stream("a/big", io.BytesIO(data))
    assert store.get("a/one") == b"1" and store.get("a/big") == data
    assert [o.key for o in store.list("a/")] == ["a/big", "a/one"]
    assert store.delete_prefix("a/") == 2
    ops = [r.operation for r in proxy.requests()]
    assert ops[0] == "PutObject" and ops[-1] == "DeleteObjects"
    assert ops.count("UploadPart") == 2 and "CompleteMultipartUpload" in ops
    assert all(r.status in (200, 204, 206) and not r.fault for r in proxy.requests())
    assert proxy.requests("GetObject")[0].path.endswith("/a/one")


# --------------------------------------------------- backup and restore survive


FAULTS: dict[str, list[Rule]] = {
    # every other request fails with 500 InternalError
    "500": [Rule("status", status=500, every=2)],
    # every other request is throttled, as S3 does: 503 SlowDown
    "slowdown": [Rule("slowdown", every=2)],
    # every third request is cut in the middle of its body, before MinIO sees it
    "reset-request": [Rule("reset", phase="request", every=3)],
    # every third response is cut in the middle of its body (GET bodies resume by Range)
    "reset-response": [Rule("reset", phase="response", every=3)],
    # every third request is done by MinIO, but its reply never arrives
    "reset-lost": [Rule("reset", phase="lost", every=3)],
    # 150 ms before every request
    "latency": [Rule("delay", seconds=0.15)],
}


@pytest.mark.parametrize("fault", list(FAULTS))
def test_backup_and_restore_survive(dev_env: Any, source: Cluster, target: Cluster,
                                    bulk: str, bucket_url: str, proxy: S3Proxy,
                                    fault: str) -> None:  # fmt: skip
    # the first tarball GET is also cut mid-body: the restore must resume it by Range
    proxy.add(Rule("reset", phase="response", op="GetObject", key=r"\.tar\.gz$", nth={1}))
    for rule in FAULTS[fault]:
        proxy.add(rule)
    summary = backup_cli("b", bulk, dev_env.source_kubeconfig, bucket_url, proxy.url)
    assert summary["phase"] == "Completed" and summary["items"] >= CONFIGMAPS + 1
    backup_faults = len(proxy.faults())
    assert backup_faults > 0
    dst = uniq("restored")
    try:
        doc = restore_cli("b", bulk, dst, dev_env.target_kubeconfig, bucket_url, proxy.url)
        assert doc["phase"] == "Completed" and doc["failed"] == 0
        assert configmaps(target, dst) == configmaps(source, bulk)
    finally:
        _drop(target, dst)
    assert len(proxy.faults()) > backup_faults  # the restore met faults too
    # the tarball read that broke was resumed (pinned to its ETag), not restarted blind
    tar_reads = [r for r in proxy.requests("GetObject") if r.path.endswith("/b.tar.gz")]
    assert tar_reads[0].fault == "reset-response"
    assert any(r.if_match and r.status in (200, 206) for r in tar_reads[1:])
    manifest = assert_manifest_matches(open_store(bucket_url), "b")
    assert manifest.raw["counts"]["items"] == summary["items"]


def test_multipart_backup_survives_lost_completion(dev_env: Any, source: Cluster,
                                                   target: Cluster, big: str, bucket_url: str,
                                                   proxy: S3Proxy) -> None:  # fmt: skip
    """A part reset, a throttled part, and a CompleteMultipartUpload that MinIO performed
    but whose reply was lost (botocore's retry is told NoSuchUpload): the store checks the
    stored object against what it uploaded and the backup completes."""
    proxy.add(Rule("reset", phase="request", op="UploadPart", nth={1}))
    proxy.add(Rule("slowdown", op="UploadPart", nth={2}))
    lost = proxy.add(Rule("reset", phase="lost", op="CompleteMultipartUpload", nth={1}))
    summary = backup_cli("big", big, dev_env.source_kubeconfig, bucket_url, proxy.url)
    assert summary["phase"] == "Completed"
    assert lost.fired == 1
    completes = proxy.requests("CompleteMultipartUpload")
    assert [(r.status, r.fault) for r in completes] == [(0, "reset-lost"), (404, "")]
    # boto3 then aborts the upload it believes failed: a no-op on a completed upload
    store = open_store(bucket_url)
    assert "-" in (store.head("backups/big/big.tar.gz") or pytest.fail("no tarball")).etag
    assert_manifest_matches(store, "big")
    dst = uniq("big")
    try:
        restore_cli("big", big, dst, dev_env.target_kubeconfig, bucket_url, proxy.url)
        assert configmaps(target, dst) == configmaps(source, big)
    finally:
        _drop(target, dst)


def test_broken_reads_resume_while_they_progress(proxy: S3Proxy, bucket_url: str) -> None:
    """Four cuts in a row, each after some progress: resumed from where each broke (by
    Range, pinned by If-Match); a read that keeps breaking without progress gives up
    after READ_RESUMES tries with a clear error."""
    store = open_store(bucket_url, StoreOptions(endpoint_url=proxy.url))
    data = os.urandom(4 << 20)
    open_store(bucket_url).put("long", data)
    proxy.add(Rule("reset", phase="response", op="GetObject", nth={1, 2, 3, 4}))
    assert store.get("long") == data
    reads = proxy.requests("GetObject")
    assert [r.fault for r in reads] == ["reset-response"] * 4 + [""]
    starts = [int(r.range.removeprefix("bytes=").rstrip("-")) for r in reads[1:]]
    assert starts == sorted(starts) and starts[0] > 0 and len(set(starts)) == 4
    assert all(r.if_match for r in reads[1:])
    proxy.clear()
    open_store(bucket_url).put("short", b"0123456789")
    proxy.add(Rule("reset", phase="response", op="GetObject"))
    with pytest.raises(StoreError, match=r"cannot read .*/short"):
        store.get("short")
    assert len(proxy.requests("GetObject")) == 1 + READ_RESUMES


# ------------------------------------------------ a torn upload is never complete


def assert_never_completed(dev_env: Any, bucket_url: str, name: str, visible: bool) -> None:
    """`backup get` does not show it Completed; restore and wait-sync refuse it."""
    out = cli("backup", "get", "--bucket", bucket_url, "-o", "json")
    assert out.returncode == 0, out.stderr
    rows = [r for r in json.loads(out.stdout) if r["name"] == name]
    assert [r["phase"] for r in rows] == (["Incomplete"] if visible else [])
    out = cli("restore", "create", "--from-backup", name, "--kubeconfig",
              dev_env.target_kubeconfig, "--bucket", bucket_url)  # fmt: skip
    assert out.returncode == 2, out.stderr
    assert f"error: backup {name!r} not found (or not complete) in {bucket_url}" in out.stderr
    out = cli("backup", "wait-sync", name, "--bucket", bucket_url, "--timeout", "1500ms",
              "--interval", "200ms")  # fmt: skip
    assert out.returncode == 7, out.stderr
    assert f"backup {name} not in sync" in out.stderr and "missing velero-backup.json" in out.stderr
    assert not list(open_store(bucket_url).list("restores/"))


def _uploads(bucket_url: str, name: str) -> list[dict[str, Any]]:
    """The unfinished multipart uploads of backup ``name``'s tarball (MinIO lists them
    only for an exact key), aborted once counted."""
    bucket, _, prefix = bucket_url.removeprefix("s3://").partition("/")
    key = f"{prefix}/backups/{name}/{name}.tar.gz"
    s3 = boto3.client("s3", endpoint_url=os.environ["AWS_ENDPOINT_URL"])
    found = s3.list_multipart_uploads(Bucket=bucket, Prefix=key).get("Uploads", [])
    for upload in found:  # tidy up what a killed upload leaves behind
        s3.abort_multipart_upload(Bucket=bucket, Key=upload["Key"], UploadId=upload["UploadId"])
    return list(found)


TORN: dict[str, tuple[str, Rule, bool]] = {
    # (namespace fixture, rule, is the backup folder visible afterwards)
    "parts-after-the-first": ("big", Rule("reset", op="UploadPart", after=1), False),
    "complete": ("big", Rule("reset", op="CompleteMultipartUpload"), False),
    "marker": ("bulk", Rule("reset", op="PutObject", key=r"/velero-backup\.json$"), True),
}


@pytest.mark.parametrize("case", list(TORN))
def test_torn_upload_is_never_completed(dev_env: Any, source: Cluster, bucket_url: str,
                                        proxy: S3Proxy, request: pytest.FixtureRequest,
                                        case: str) -> None:  # fmt: skip
    fixture, rule, visible = TORN[case]
    ns = request.getfixturevalue(fixture)
    proxy.add(rule)
    store = open_store(bucket_url, StoreOptions(endpoint_url=proxy.url, max_attempts=3))
    with pytest.raises(StoreError) as info:
        create_backup(source, store, BackupOptions("torn", Scope(include_namespaces=(ns,))))
    assert "connection to" in info.value.message and rule.fired >= 3
    puts = {r.path.rsplit("/", 1)[-1] for r in proxy.requests("PutObject") if r.status == 200}
    assert "velero-backup.json" not in puts
    if fixture == "big":  # the multipart upload was aborted, not left half-done
        assert proxy.requests("AbortMultipartUpload")
        assert not [r for r in proxy.requests("CompleteMultipartUpload") if r.status == 200]
    assert not _uploads(bucket_url, "torn")
    assert_never_completed(dev_env, bucket_url, "torn", visible)


def test_sigkilled_backup_is_never_completed(dev_env: Any, big: str, bucket_url: str,
                                             proxy: S3Proxy) -> None:  # fmt: skip
    """kube-migrate is killed while its tarball's parts are in flight."""
    held = proxy.add(Rule("delay", op="UploadPart", seconds=120))
    proc = subprocess.Popen(
        [str(BIN / "kube-migrate"), "backup", "create", "killed", "--kubeconfig",
         dev_env.source_kubeconfig, "--bucket", bucket_url, "--s3-endpoint", proxy.url,
         "--include-namespaces", big],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        wait_for("an UploadPart at the proxy", lambda: held.matched >= 1, 60)
        assert proc.poll() is None
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    assert proxy.requests("CreateMultipartUpload")
    assert not proxy.requests("CompleteMultipartUpload") and not proxy.requests("PutObject")
    assert (
        len(_uploads(bucket_url, "killed")) == 1
    )  # an orphaned upload: invisible, never an object
    assert_never_completed(dev_env, bucket_url, "killed", visible=False)


# -------------------------------------------- wait-sync never accepts a mismatch


@pytest.fixture
def small_backup(source: Cluster, bulk: str, bucket_url: str) -> str:
    """backup "w" of the bulk namespace under ``bucket_url/src`` (written directly)."""
    store = open_store(f"{bucket_url}/src")
    opts = BackupOptions("w", Scope(include_namespaces=(bulk,)), ttl=timedelta(hours=1))
    assert create_backup(source, store, opts).phase == "Completed"
    return f"{bucket_url}/src"


def _replica(src_url: str, dst_url: str, change: Callable[[str, bytes], bytes | None]) -> None:
    """Copy backup "w" to ``dst_url``, each file through ``change`` (None: not copied)."""
    src, dst = open_store(src_url), open_store(dst_url)
    for obj in src.list("backups/w/"):
        data = change(obj.key, src.get(obj.key))
        if data is not None:
            dst.put(obj.key, data)


def _flip(data: bytes) -> bytes:
    at = len(data) // 2
    return data[:at] + bytes([data[at] ^ 0x20]) + data[at + 1 :]


def wait_sync_cli(url: str, endpoint: str, timeout: str) -> subprocess.CompletedProcess[str]:
    return cli("backup", "wait-sync", "w", "--bucket", url, "--s3-endpoint", endpoint,
               "--timeout", timeout, "--interval", "200ms", "-o", "json")  # fmt: skip


def test_wait_sync_refuses_a_replica_with_one_byte_changed(small_backup: str, bucket_url: str,
                                                           proxy: S3Proxy) -> None:  # fmt: skip
    replica = f"{bucket_url}/replica"
    _replica(small_backup, replica, lambda k, d: _flip(d) if k.endswith(".tar.gz") else d)
    out = wait_sync_cli(replica, proxy.url, "2s")
    assert out.returncode == 7 and out.stdout == ""
    assert "backup w not in sync" in out.stderr
    assert "mismatched w.tar.gz: sha256" in out.stderr and "missing" not in out.stderr
    tar_reads = [r for r in proxy.requests("GetObject") if r.path.endswith("/w.tar.gz")]
    assert len(tar_reads) >= 3  # a mismatch is read again at every poll, never trusted
    assert not proxy.writes()


def test_wait_sync_refuses_bytes_corrupted_in_transit(small_backup: str,
                                                      proxy: S3Proxy) -> None:  # fmt: skip
    """The bucket is intact but every read of the tarball arrives with one byte flipped:
    it times out naming the tarball.  Once reads are intact again, it succeeds."""
    tarball = r"/w\.tar\.gz$"
    proxy.add(Rule("corrupt", op="GetObject", key=tarball))
    out = wait_sync_cli(small_backup, proxy.url, "2s")
    assert out.returncode == 7 and "mismatched w.tar.gz: sha256" in out.stderr
    assert len([r for r in proxy.requests() if r.fault == "corrupt"]) >= 3
    proxy.clear()
    proxy.add(Rule("corrupt", op="GetObject", key=tarball, nth={1, 2}))
    out = wait_sync_cli(small_backup, proxy.url, "30s")
    assert out.returncode == 0, out.stderr
    state = json.loads(out.stdout)
    assert state["done"] and state["polls"] == 3
    assert [r.fault for r in proxy.requests("GetObject") if r.path.endswith("/w.tar.gz")] == [
        "corrupt",
        "corrupt",
        "",
    ]
    assert not proxy.writes()


def test_wait_sync_is_not_fooled_by_a_stale_etag(small_backup: str, bucket_url: str,
                                                 proxy: S3Proxy) -> None:  # fmt: skip
    """The replica's tarball is hashed (intact) while velero-backup.json is still missing;
    then it is replaced by a damaged copy of the same size whose listing, through the
    proxy, still shows the old ETag, and the marker arrives: the copy is hashed again."""
    replica_url = f"{bucket_url}/replica"
    _replica(small_backup, replica_url, lambda k, d: None if k.endswith("backup.json") else d)
    replica = open_store(replica_url, StoreOptions(endpoint_url=proxy.url), read_only=True)
    direct = open_store(replica_url)
    old = direct.head("backups/w/w.tar.gz")
    assert old is not None
    polls: list[SyncState] = []

    def swap(state: SyncState) -> None:
        polls.append(state)
        if len(polls) > 1:
            return
        assert state.missing == ["velero-backup.json"] and not state.mismatched
        time.sleep(1.1)  # a later Last-Modified, to the second
        direct.put("backups/w/w.tar.gz", _flip(direct.get("backups/w/w.tar.gz")))
        new = direct.head("backups/w/w.tar.gz")
        assert new is not None and new.etag != old.etag and new.size == old.size
        proxy.add(Rule("rewrite", op="ListObjectsV2", sub=(new.etag.encode(), old.etag.encode())))
        _replica(small_backup, replica_url, lambda k, d: d if k.endswith("backup.json") else None)

    with pytest.raises(WaitTimeout, match=r"mismatched w\.tar\.gz: sha256"):
        wait_for_sync(replica, "w", timeout=4.0, interval=0.2, on_poll=swap)
    listed = [o for o in replica.list("backups/w/") if o.key.endswith(".tar.gz")]
    assert [o.etag for o in listed] == [old.etag]  # the listing did lie
    assert len(polls) >= 3 and not proxy.writes()


# ------------------------------------------------------ read-only means no writes


def test_read_only_commands_send_no_writes(dev_env: Any, source: Cluster, target: Cluster,
                                           bulk: str, small_backup: str,
                                           proxy: S3Proxy) -> None:  # fmt: skip
    dst = uniq("ro")
    bucket = ["--bucket", small_backup, "--s3-endpoint", proxy.url]
    dst_kc = dev_env.target_kubeconfig
    mapping = ["--namespace-mappings", f"{bulk}:{dst}"]
    commands: list[tuple[list[str], int]] = [
        (["backup", "get", *bucket], 0),
        (["backup", "describe", "w", "--details", *bucket], 0),
        (["backup", "logs", "w", *bucket], 0),
        (["backup", "wait-sync", "w", "--timeout", "30s", *bucket], 0),
        (["preflight", "--from-backup", "w", "--target-kubeconfig", dst_kc, *bucket,
          *mapping], 0),
        (["restore", "create", "ro", "--from-backup", "w", "--kubeconfig", dst_kc, *bucket,
          "--read-only-bucket", "--qps", "0", *mapping], 0),
        (["verify", "--from-backup", "w", "--target-kubeconfig", dst_kc, *bucket, *mapping], 0),
    ]  # fmt: skip
    try:
        for args, code in commands:
            seen = len(proxy.requests())
            out = cli(*args)
            assert out.returncode == code, (args[:2], out.stderr)
            assert len(proxy.requests()) > seen, args[:2]  # it did read the bucket
    finally:
        _drop(target, dst)
    assert not proxy.writes(), proxy.writes()
    assert {r.operation for r in proxy.requests()} <= {"ListObjectsV2", "GetObject", "HeadObject"}


def test_read_only_store_refuses_every_write_before_sending(proxy: S3Proxy,
                                                            bucket_url: str) -> None:  # fmt: skip
    """Public writes, the backends' own methods, boto3's managed upload and raw client
    calls: all raise StoreReadOnly and the proxy receives nothing at all."""
    store = open_store(bucket_url, StoreOptions(endpoint_url=proxy.url), read_only=True)
    bucket, key = store.url.bucket, f"{store.url.prefix}/x"
    client: Any = store.client
    writes: dict[str, Callable[[], object]] = {
        "put": lambda: store.put("x", b"x"),
        "put_stream": lambda: store.put_stream("x", io.BytesIO(b"x" * 100)),
        "delete": lambda: store.delete("x"),
        "delete_prefix": lambda: store.delete_prefix("backups/"),
        "_put": lambda: store._put("x", b"x"),
        "_put_stream": lambda: store._put_stream("x", io.BytesIO(bytes(9 << 20)), None),
        "_delete": lambda: store._delete("x"),
        "_delete_batch": lambda: store._delete_batch("backups/", ["backups/x"]),  # type: ignore[attr-defined]
        "tarball": lambda: TarballWriter(store, "backups/t/t.tar.gz").close(),
        "put_object": lambda: client.put_object(Bucket=bucket, Key=key, Body=b"x"),
        "delete_object": lambda: client.delete_object(Bucket=bucket, Key=key),
        "delete_objects": lambda: client.delete_objects(
            Bucket=bucket, Delete={"Objects": [{"Key": key}]}
        ),
        "copy_object": lambda: client.copy_object(
            Bucket=bucket, Key=key, CopySource={"Bucket": bucket, "Key": key + "2"}
        ),
        "create_multipart_upload": lambda: client.create_multipart_upload(Bucket=bucket, Key=key),
        "upload_part": lambda: client.upload_part(
            Bucket=bucket, Key=key, UploadId="u", PartNumber=1, Body=b"x"
        ),
        "complete_multipart_upload": lambda: client.complete_multipart_upload(
            Bucket=bucket, Key=key, UploadId="u", MultipartUpload={"Parts": []}
        ),
        "abort_multipart_upload": lambda: client.abort_multipart_upload(
            Bucket=bucket, Key=key, UploadId="u"
        ),
        "put_object_tagging": lambda: client.put_object_tagging(
            Bucket=bucket, Key=key, Tagging={"TagSet": []}
        ),
        "upload_fileobj": lambda: client.upload_fileobj(io.BytesIO(b"x"), bucket, key),
        "put_bucket_policy": lambda: client.put_bucket_policy(Bucket=bucket, Policy="{}"),
        "delete_bucket": lambda: client.delete_bucket(Bucket=bucket),
    }
    for name, write in writes.items():
        with pytest.raises(StoreReadOnly, match="read-only"):
            write()
        assert proxy.requests() == [], name
    with pytest.raises(StoreReadOnly):
        create_backup(None, store, BackupOptions("ro"))  # type: ignore[arg-type]
    assert proxy.requests() == []
    # the same store reads, so the proxy would have seen any request
    open_store(bucket_url).put("backups/r/r.txt", b"r")
    assert store.get("backups/r/r.txt") == b"r"
    assert [r.operation for r in proxy.requests()] == ["GetObject"]
    # the backend's delete_prefix lists (a read), then its DeleteObjects is refused
    with pytest.raises(StoreReadOnly, match="DeleteObjects"):
        store._delete_prefix("backups/")
    assert [r.operation for r in proxy.requests()] == ["GetObject", "ListObjectsV2"]
    assert open_store(bucket_url).get("backups/r/r.txt") == b"r"


# ----------------------------------------------------------------- the figures


def test_timings_with_and_without_faults(dev_env: Any, source: Cluster, target: Cluster,
                                         bulk: str, bucket_url: str) -> None:  # fmt: skip
    """backup + restore of ~500 objects: direct, through the proxy, with 10% 503s, with
    50 ms latency, with both; the median of $KUBE_MIGRATE_TIMING_RUNS runs each (default
    1; printed: run with -s)."""
    n = int(os.environ.get("KUBE_MIGRATE_TIMING_RUNS", "1"))
    cases: dict[str, list[Rule]] = {
        "direct": [],
        "proxy, no fault": [],
        "10% 503": [Rule("status", status=503, probability=0.1)],
        "50 ms latency": [Rule("delay", seconds=0.05)],
        "10% 503 + 50 ms": [Rule("status", status=503, probability=0.1),
                            Rule("delay", seconds=0.05)],
    }  # fmt: skip
    lines = []
    for label, rules in cases.items():
        runs: list[tuple[float, float]] = []
        requests = errors = 0
        for seed in range(n):
            with S3Proxy(os.environ["AWS_ENDPOINT_URL"], seed=seed) as proxy:
                for rule in rules:
                    proxy.add(rule)
                endpoint = os.environ["AWS_ENDPOINT_URL"] if label == "direct" else proxy.url
                url, dst = f"{bucket_url}/{uuid.uuid4().hex[:6]}", uniq("timed")
                t0 = time.monotonic()
                summary = backup_cli("t", bulk, dev_env.source_kubeconfig, url, endpoint)
                t1 = time.monotonic()
                try:
                    doc = restore_cli("t", bulk, dst, dev_env.target_kubeconfig, url, endpoint)
                    t2 = time.monotonic()
                    assert doc["phase"] == "Completed"
                    assert len(configmaps(target, dst)) == CONFIGMAPS
                finally:
                    _drop(target, dst)
                assert summary["phase"] == "Completed" and summary["items"] > CONFIGMAPS
                runs.append((t1 - t0, t2 - t1))
                requests += len(proxy.requests())
                errors += len([r for r in proxy.requests() if r.fault == "status"])
        backup_s, restore_s = (sorted(r[i] for r in runs)[n // 2] for i in (0, 1))
        lines.append(f"{label:>16}: backup {backup_s:5.2f}s  restore {restore_s:5.2f}s  "
                     f"({requests} S3 requests in {n} runs, {errors} of them 503)")  # fmt: skip
    print("\n" + "\n".join(lines))
