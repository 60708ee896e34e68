"""Bad input, table-driven (issue #9): every row runs the real CLI in-process
(`migrate.cli.main.run`) against the real planes and MinIO, and asserts that it fails
safe:

(a) the exit code of migrate/errors.py's table (2 usage, 3 preflight, 4 access,
    6 integrity; never 70 or 0);
(b) stderr is exactly `kube-migrate: error: <one line>` and `hint: <the fix>` (no
    traceback, no log lines, no multi-line dump, no Python warning) and the error line
    names the offending thing (file, context, key, field, URL...); stdout is empty;
(c) nothing was written: the bucket prefix (every key with its size and etag), the
    module's namespaces on both clusters and the objects in the target namespaces the
    rows restore into are the same before and after.

One module fixture (`world`) builds what the rows need once: two namespaces on the
source backed up by the CLI into a unique bucket prefix, damaged copies of that backup
made by hand (flipped byte, cut in half, checksum mismatch, unknown format versions, an
ownerReference cycle...), a namespace on the target that collides with the backup, a
restore that already ran, ServiceAccount tokens without any permission (TokenRequest),
and bad kubeconfig, modifier and playbook files.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import json
import logging
import re
import socket
import tarfile
import uuid
import warnings
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from migrate.cli.main import run
from migrate.cluster import Cluster, ClusterRef
from migrate.errors import (
    EXIT_ACCESS,
    EXIT_INTEGRITY,
    EXIT_PREFLIGHT,
    EXIT_USAGE,
    AlreadyExists,
    Forbidden,
    NotFound,
)
from migrate.restore.journal import state_dir
from migrate.store import Store, layout, open_store

from .conftest import Env
from .helpers import apply, wait_for

# --------------------------------------------------------------------------- the table


@dataclass(frozen=True)
class Case:
    id: str
    argv: tuple[str, ...]  # `{name}` is replaced by the world's value of that name
    code: int
    names: tuple[str, ...]  # each must appear in the error line (formatted like argv)
    env: dict[str, str | None] = field(default_factory=dict)  # None: unset


def case(id: str, code: int, names: str | tuple[str, ...], *argv: str, **env: str | None) -> Case:
    return Case(id, argv, code, (names,) if isinstance(names, str) else names, env)


SOURCE_KUBECONFIG_FLAG, TARGET_KUBECONFIG_FLAG, BUCKET_FLAG = (
    "--kubeconfig={SK}",
    "--kubeconfig={TK}",
    "--bucket={B}",
)
BACKUP = (
    "backup",
    "create",
    "new-{tok}",
    SOURCE_KUBECONFIG_FLAG,
    BUCKET_FLAG,
    "--include-namespaces={src}",
)
RESTORE = ("restore", "create", "--from-backup=good", TARGET_KUBECONFIG_FLAG, BUCKET_FLAG,
           "--include-namespaces={src}",
           "--namespace-mappings={src}:{dst}")  # fmt: skip
VERIFY = ("verify", "--source-kubeconfig={SK}", "--target-kubeconfig={TK}",
          "--include-namespaces={src}")  # fmt: skip
PREFLIGHT = ("preflight", "--source-kubeconfig={SK}", "--target-kubeconfig={TK}",
             "--include-namespaces={src}")  # fmt: skip


def restore_from(backup: str, *more: str) -> tuple[str, ...]:
    return ("restore", "create", f"--from-backup={backup}", TARGET_KUBECONFIG_FLAG, BUCKET_FLAG,
            "--namespace-mappings={src}:{dst},{src2}:{dst2}", *more)  # fmt: skip


CLUSTERS = [
    case("kubeconfig-missing", EXIT_USAGE, ("kubeconfig not found", "{D}/missing.kubeconfig"),
         "cluster", "info", "--kubeconfig={D}/missing.kubeconfig"),
    case("kubeconfig-malformed-yaml", EXIT_USAGE,
         ("malformed.kubeconfig", "not valid YAML", "line 3"),
         "cluster", "info", "--kubeconfig={D}/malformed.kubeconfig"),
    case("kubeconfig-not-a-mapping", EXIT_USAGE, ("scalar.kubeconfig", "is not a kubeconfig"),
         "cluster", "info", "--kubeconfig={D}/scalar.kubeconfig"),
    case("kubeconfig-empty", EXIT_USAGE, ("empty.kubeconfig", "empty"),
         "cluster", "info", "--kubeconfig={D}/empty.kubeconfig"),
    case("kubeconfig-context-names-missing-cluster", EXIT_USAGE,
         ("ghost-cluster.kubeconfig", "ghost"),
         "cluster", "info", "--kubeconfig={D}/ghost-cluster.kubeconfig"),
    case("kubeconfig-client-cert-file-missing", EXIT_USAGE, ("/nonexistent/client.crt",),
         *BACKUP[:3], "--kubeconfig={D}/no-cert.kubeconfig", BUCKET_FLAG),
    case("kubeconfig-no-current-context", EXIT_USAGE, ("current-context", "no-current.kubeconfig"),
         "cluster", "info", "--kubeconfig={D}/no-current.kubeconfig"),
    case("context-unknown", EXIT_USAGE, ("context 'nope' not found", "{SK}"),
         "cluster", "info", SOURCE_KUBECONFIG_FLAG, "--context=nope"),
    case("context-unknown-backup", EXIT_USAGE, "context 'ghost' not found", *BACKUP,
         "--context=ghost"),
    case("target-context-unknown-verify", EXIT_USAGE, ("context 'ghost' not found", "{TK}"),
         *VERIFY, "--target-context=ghost"),
    case("source-context-unknown-env", EXIT_USAGE, "context 'ghost' not found", *PREFLIGHT[:1],
         "--target-kubeconfig={TK}", KUBE_MIGRATE_SOURCE_KUBECONFIG="{SK}",
         KUBE_MIGRATE_SOURCE_CONTEXT="ghost"),
    case("server-unreachable", EXIT_ACCESS, ("cannot reach", "127.0.0.1:{port}"),
         *BACKUP[:3], "--kubeconfig={D}/closed-port.kubeconfig", BUCKET_FLAG),
    case("credentials-invalid-token", EXIT_ACCESS, ("source", "401"),
         *BACKUP[:3], "--kubeconfig={D}/bogus-token.kubeconfig", BUCKET_FLAG),
    case("credentials-revoked-token", EXIT_ACCESS, ("target", "401"),
         *RESTORE[:3], "--kubeconfig={D}/revoked.kubeconfig", *RESTORE[4:]),
    case("rbac-forbidden-source-backup", EXIT_ACCESS, ("source", "may not list", "namespace {src}"),
         *BACKUP[:3], "--kubeconfig={D}/nobody-source.kubeconfig", *BACKUP[4:]),
    case("rbac-forbidden-source-preflight", EXIT_ACCESS, ("source", "may not list"),
         *PREFLIGHT[:1], "--source-kubeconfig={D}/nobody-source.kubeconfig", *PREFLIGHT[2:]),
    case("rbac-forbidden-source-verify", EXIT_ACCESS, ("source", "403", "forbidden"),
         *VERIFY[:1], "--source-kubeconfig={D}/nobody-source.kubeconfig", *VERIFY[2:]),
    case("rbac-forbidden-target-restore", EXIT_ACCESS, ("target", "may not create"),
         *RESTORE[:3], "--kubeconfig={D}/nobody-target.kubeconfig", *RESTORE[4:]),
    case("rbac-forbidden-target-info", EXIT_ACCESS, ("target", "403", "namespaces"),
         "cluster", "info", "--kubeconfig={D}/nobody-target.kubeconfig"),
]  # fmt: skip

BUCKETS = [
    case("bucket-unknown", EXIT_ACCESS, ("'bi-missing-{tok}' does not exist",),
         "backup", "get", "--bucket=s3://bi-missing-{tok}"),
    case("bucket-unknown-backup", EXIT_ACCESS, "'bi-missing-{tok}' does not exist",
         *BACKUP[:4], "--bucket=s3://bi-missing-{tok}/x", *BACKUP[5:]),
    case("s3-wrong-secret", EXIT_ACCESS, ("refused", "SignatureDoesNotMatch", "{B}"), *BACKUP,
         AWS_SECRET_ACCESS_KEY="wrong-secret"),
    case("s3-unknown-access-key", EXIT_ACCESS, ("refused", "{B}"), *RESTORE,
         AWS_ACCESS_KEY_ID="nobody-{tok}"),
    case("s3-endpoint-not-a-url", EXIT_USAGE, "'not a url'", "backup", "get", BUCKET_FLAG,
         "--s3-endpoint=not a url"),
    case("bucket-url-no-scheme", EXIT_USAGE, ("'kube-migrate/x'", "no scheme"),
         "backup", "get", "--bucket=kube-migrate/x"),
    case("bucket-url-http", EXIT_USAGE, ("'http://127.0.0.1:9/b'", "unsupported scheme"),
         "backup", "get", "--bucket=http://127.0.0.1:9/b"),
    case("bucket-url-empty-bucket", EXIT_USAGE, ("'s3://'", "bucket name is missing"),
         *BACKUP[:4], "--bucket=s3://"),
    case("bucket-url-bad-name", EXIT_USAGE, "'Bad_Bucket' is not a valid S3 bucket name",
         *RESTORE[:4], "--bucket=s3://Bad_Bucket/p", *RESTORE[5:]),
    case("bucket-url-name-too-short", EXIT_USAGE, "'ab' is not a valid S3 bucket name",
         "backup", "get", "--bucket=s3://ab"),
    case("bucket-url-ip-shaped", EXIT_USAGE, "'192.168.0.1' is not a valid S3 bucket name",
         "backup", "get", "--bucket=s3://192.168.0.1"),
    case("bucket-url-dotdot-prefix", EXIT_USAGE, ("'a/../b'", "'..' segment"),
         "backup", "get", "--bucket=s3://kube-migrate/a/../b"),
    case("bucket-url-query", EXIT_USAGE, ("s3://kube-migrate/x?versionId=1", "query"),
         "backup", "get", "--bucket=s3://kube-migrate/x?versionId=1"),
    case("bucket-url-relative-file", EXIT_USAGE, ("'file://relative/dir'", "absolute path"),
         "backup", "get", "--bucket=file://relative/dir"),
    case("s3-sse-bad-value", EXIT_USAGE, ("--s3-sse", "'AES128'"), *BACKUP, "--s3-sse=AES128"),
    case("s3-sse-bad-env", EXIT_USAGE, ("--s3-sse", "'aes'"), *RESTORE, KUBE_MIGRATE_S3_SSE="aes"),
    case("s3-kms-key-without-sse", EXIT_USAGE, "--s3-kms-key-id needs --s3-sse aws:kms", *BACKUP,
         "--s3-kms-key-id=alias/backups"),
    case("s3-kms-key-with-aes256", EXIT_USAGE, "--s3-kms-key-id needs --s3-sse aws:kms", *RESTORE,
         "--s3-sse=AES256", "--s3-kms-key-id=alias/backups"),
    case("s3-sse-server-without-kms", EXIT_ACCESS,
         ("{B}/backups/new-{tok}", "KMS is not configured"),
         *BACKUP, "--s3-sse=AES256"),
    case("s3-sse-file-bucket", EXIT_USAGE, ("--s3-sse", "file://{D}/fb"), *BACKUP[:4],
         "--bucket=file://{D}/fb", "--s3-sse=AES256", *BACKUP[5:]),
    case("s3-kms-key-empty", EXIT_USAGE, "--s3-kms-key-id is empty", "backup", "delete", "good",
         BUCKET_FLAG,
         "--confirm", "--s3-sse=aws:kms", "--s3-kms-key-id= "),
]  # fmt: skip

BACKUPS = [
    case("backup-not-found", EXIT_USAGE, ("'nope-{tok}' not found", "{B}"),
         *restore_from("nope-{tok}")),
    case("backup-not-found-describe", EXIT_USAGE, "'nope-{tok}' not found", "backup", "describe",
         "nope-{tok}", BUCKET_FLAG),
    case("backup-not-found-verify", EXIT_USAGE, "'nope-{tok}' not found",
         "verify", "--from-backup=nope-{tok}", "--target-kubeconfig={TK}", BUCKET_FLAG),
    case("backup-name-invalid", EXIT_USAGE, "invalid backup name 'Bad_Name'",
         *restore_from("Bad_Name")),
    case("backup-incomplete", EXIT_USAGE, ("'incomplete'", "not complete"),
         *restore_from("incomplete")),
    case("backup-phase-failed", EXIT_USAGE, ("failedphase", "is Failed"),
         *restore_from("failedphase")),
    case("backup-exists", EXIT_USAGE, "'good' already exists", "backup", "create", "good",
         SOURCE_KUBECONFIG_FLAG, BUCKET_FLAG,
         "--include-namespaces={src}"),
    case("tarball-corrupted", EXIT_INTEGRITY, "backups/corrupt/corrupt.tar.gz",
         *restore_from("corrupt")),
    case("tarball-corrupted-preflight", EXIT_INTEGRITY, "backups/corrupt/corrupt.tar.gz",
         "preflight",
         "--from-backup=corrupt",
         "--target-kubeconfig={TK}", BUCKET_FLAG),
    case("tarball-truncated", EXIT_INTEGRITY, ("truncated.tar.gz", "truncated"),
         *restore_from("truncated")),
    case("tarball-truncated-verify", EXIT_INTEGRITY, ("truncated.tar.gz", "truncated"), "verify",
         "--from-backup=truncated", "--target-kubeconfig={TK}", BUCKET_FLAG),
    case("checksum-mismatch", EXIT_INTEGRITY, ("badsum.tar.gz", "sha256", "does not match"),
         *restore_from("badsum")),
    case("format-version-velero-backup-json", EXIT_INTEGRITY,
         ("v2json", "'2.0.0'", "velero-backup.json"),
         *restore_from("v2json")),
    case("format-version-metadata-version", EXIT_INTEGRITY,
         ("v9tar", "'9.0.0'", "metadata/version"),
         *restore_from("v9tar")),
    case("velero-backup-json-not-json", EXIT_INTEGRITY,
         ("notjson", "velero-backup.json is not JSON"),
         *restore_from("notjson")),
    case("manifest-corrupted", EXIT_INTEGRITY, ("badmanifest", "manifest is corrupted"),
         *restore_from("badmanifest")),
    case("owner-reference-cycle", EXIT_USAGE, ("dependency cycle", "ConfigMap {dst}/loop-a",
                                      "ConfigMap {dst}/loop-b"), *restore_from("cycle")),
    case("owner-reference-cycle-preflight", EXIT_USAGE, "dependency cycle", "preflight",
         "--from-backup=cycle", "--target-kubeconfig={TK}", BUCKET_FLAG),
]  # fmt: skip

FILTERS = [
    case("backup-include-unknown-resource", EXIT_USAGE, "'foos.example.com'", *BACKUP,
         "--include-resources=configmaps,foos.example.com"),
    case("backup-exclude-unknown-resource", EXIT_USAGE, "'nothings'",
         *BACKUP, "--exclude-resources=nothings"),
    case("restore-include-unknown-resource", EXIT_USAGE,
         ("'foos.example.com'", "--include-resources"),
         *RESTORE, "--include-resources=foos.example.com"),
    case("restore-exclude-unknown-resource", EXIT_USAGE, ("'nothings'", "--exclude-resources"),
         *RESTORE, "--exclude-resources=nothings"),
    case("verify-include-unknown-resource", EXIT_USAGE, "'foos.example.com'", *VERIFY,
         "--include-resources=foos.example.com"),
    case("backup-bad-selector", EXIT_USAGE, ("'a in b'",), *BACKUP, "--selector=a in b"),
    case("restore-bad-selector", EXIT_USAGE, "'tier in ('", *RESTORE,
         "--selector=app=web,tier in ("),
    case("preflight-bad-selector", EXIT_USAGE, "'=web'", *PREFLIGHT, "-l", "=web"),
    case("include-cluster-resources-bad", EXIT_USAGE, ("--include-cluster-resources", "'maybe'"),
         *BACKUP,
         "--include-cluster-resources=maybe"),
]  # fmt: skip

MAPPINGS = [
    case("ns-mapping-no-separator", EXIT_USAGE, ("--namespace-mappings", "'{src}'"),
         *RESTORE[:-1], "--namespace-mappings={src}"),
    case("ns-mapping-empty-source", EXIT_USAGE, ("--namespace-mappings", "':{dst}'"),
         *RESTORE[:-1], "--namespace-mappings=:{dst}"),
    case("ns-mapping-source-twice", EXIT_USAGE, ("--namespace-mappings", "'{src}' twice"),
         *RESTORE[:-1], "--namespace-mappings={src}:{dst},{src}:{dst2}"),
    case("ns-mapping-invalid-name", EXIT_USAGE, ("'Bad_NS' is not a namespace name",),
         *RESTORE[:-1], "--namespace-mappings={src}:Bad_NS"),
    case("ns-mapping-two-onto-one", EXIT_USAGE, ("'{src}'", "'{src2}'", "onto '{dst}'"),
         *RESTORE[:-2], "--namespace-mappings={src}:{dst},{src2}:{dst}"),
    case("ns-mapping-two-onto-one-verify", EXIT_USAGE, "onto '{dst}'", *VERIFY,
         "--namespace-mappings={src}:{dst},{src2}:{dst}"),
    case("ns-mapping-onto-restored-namespace", EXIT_USAGE,
         ("'{src}' onto '{src2}'", "also restores"),
         *RESTORE[:-2], "--namespace-mappings={src}:{src2}"),
    case("ns-mapping-onto-restored-preflight", EXIT_USAGE, ("'{src}' onto '{src2}'",), "preflight",
         "--from-backup=good", "--target-kubeconfig={TK}", BUCKET_FLAG,
         "--namespace-mappings={src}:{src2}"),
    case("sc-mapping-no-separator", EXIT_USAGE, ("--storage-class-mappings", "'fast'"),
         *RESTORE, "--storage-class-mappings=fast"),
    case("registry-mapping-wrong-separator", EXIT_USAGE,
         ("--image-registry-mappings", "'a.io:b.io'"),
         *RESTORE, "--image-registry-mappings=a.io:b.io"),
    case("replicas-negative", EXIT_USAGE, "--replicas", *RESTORE, "--replicas=-1"),
]  # fmt: skip

RESTORES = [
    case("collision-existing-policy-fail", EXIT_PREFLIGHT,
         ("ConfigMap {collide}/cfg", "--existing-resource-policy is fail", "nothing was written"),
         *RESTORE[:-1], "--namespace-mappings={src}:{collide}", "--existing-resource-policy=fail"),
    case("restore-name-used-in-bucket", EXIT_USAGE, ("'used-{tok}' already exists", "{B}"),
         *RESTORE[:2], "used-{tok}", *RESTORE[2:]),
    case("restore-name-used-elsewhere", EXIT_USAGE, ("'elsewhere-{tok}' already exists", "{B}"),
         *RESTORE[:2], "elsewhere-{tok}", *RESTORE[2:]),
    case("restore-name-used-on-this-machine", EXIT_USAGE, ("'journal-{tok}'", "has run before"),
         *RESTORE[:2], "journal-{tok}", *RESTORE[2:]),
    case("restore-resume-unknown", EXIT_USAGE, ("'never-{tok}'", "no journal"), *RESTORE[:2],
         "never-{tok}", *RESTORE[2:], "--resume"),
    case("restore-name-invalid", EXIT_USAGE, "invalid restore name 'Bad_Name'", *RESTORE[:2],
         "Bad_Name",
         *RESTORE[2:]),
    case("existing-policy-unknown", EXIT_USAGE, ("--existing-resource-policy", "'replace'"),
         *RESTORE,
         "--existing-resource-policy=replace"),
    case("pv-policy-unknown", EXIT_USAGE, ("--pv-policy", "'share'"), *RESTORE,
         "--pv-policy=share"),
]  # fmt: skip

MODIFIERS = [
    case("modifiers-file-missing", EXIT_USAGE, "{D}/no-such-mods.yaml", *RESTORE,
         "--resource-modifiers={D}/no-such-mods.yaml"),
    case("modifiers-yaml-error", EXIT_USAGE, ("mods-yaml.yaml", "not YAML", "line 4"), *RESTORE,
         "--resource-modifiers={D}/mods-yaml.yaml"),
    case("modifiers-yaml-error-verify", EXIT_USAGE, ("mods-yaml.yaml", "not YAML"), *VERIFY,
         "--resource-modifiers={D}/mods-yaml.yaml"),
    case("modifiers-unknown-version", EXIT_USAGE, ("mods-version.yaml", "version: v1", "'v2'"),
         *RESTORE,
         "--resource-modifiers={D}/mods-version.yaml"),
    case("modifiers-bad-json-patch-op", EXIT_USAGE, ("mods-op.yaml", "rule 1", "'frobnicate'"),
         *RESTORE,
         "--resource-modifiers={D}/mods-op.yaml"),
    case("modifiers-patch-without-path", EXIT_USAGE, ("mods-nopath.yaml", "rule 2", "path None"),
         *RESTORE, "--resource-modifiers={D}/mods-nopath.yaml"),
    case("modifiers-bad-regex", EXIT_USAGE, ("mods-regex.yaml", "resourceNameRegex", "'web-[('"),
         *RESTORE, "--resource-modifiers={D}/mods-regex.yaml"),
    case("modifiers-bad-patch-data", EXIT_USAGE, ("mods-merge.yaml", "patchData is not YAML/JSON"),
         *RESTORE, "--resource-modifiers={D}/mods-merge.yaml"),
    case("modifiers-no-conditions", EXIT_USAGE, ("mods-noconditions.yaml", "conditions"), *RESTORE,
         "--resource-modifiers={D}/mods-noconditions.yaml"),
    case("modifiers-no-patches", EXIT_USAGE, ("mods-nopatches.yaml", "no patches"), *RESTORE,
         "--resource-modifiers={D}/mods-nopatches.yaml"),
    case("modifiers-patch-path-not-in-object", EXIT_USAGE,
         ("mods-missing-path.yaml: rule 1", "configmaps", "cfg in namespace {src}", "nope"),
         *RESTORE, "--resource-modifiers={D}/mods-missing-path.yaml"),
]  # fmt: skip

FLAGS = [
    case("ttl-word", EXIT_USAGE, ("--ttl", "'3days'"), *BACKUP, "--ttl=3days"),
    case("ttl-negative", EXIT_USAGE, ("--ttl", "'-1h'"), *BACKUP, "--ttl=-1h"),
    case("ttl-with-space", EXIT_USAGE, ("--ttl", "'1 h'"), *BACKUP, "--ttl=1 h"),
    case("wait-sync-timeout", EXIT_USAGE, ("--timeout", "'never'"), "backup", "wait-sync", "good",
         BUCKET_FLAG,
         "--timeout=never"),
    case("wait-sync-interval", EXIT_USAGE, ("--interval", "'1x'"), "backup", "wait-sync", "good",
         BUCKET_FLAG,
         "--interval=1x"),
    case("ready-timeout", EXIT_USAGE, ("--ready-timeout", "'soon'"), *RESTORE, "--wait-ready",
         "--ready-timeout=soon"),
    case("output-backup-get", EXIT_USAGE, ("--output", "'xml'"), "backup", "get", BUCKET_FLAG, "-o",
         "xml"),
    case("output-restore", EXIT_USAGE, ("--output", "'svg'"), *RESTORE, "-o", "svg"),
    case("output-preflight", EXIT_USAGE, ("--output", "'yaml'"), *PREFLIGHT, "-o", "yaml"),
    case("output-verify", EXIT_USAGE, ("--output", "'dot'"), *VERIFY, "-o", "dot"),
    case("output-cluster-info", EXIT_USAGE, ("--output", "'wide'"), "cluster", "info",
         SOURCE_KUBECONFIG_FLAG, "-o", "wide"),
    case("parallelism-zero-backup", EXIT_USAGE, ("--parallelism", "0"), *BACKUP, "--parallelism=0"),
    case("parallelism-zero-restore", EXIT_USAGE, ("--parallelism", "0"), *RESTORE,
         "--parallelism=0"),
    case("parallelism-zero-verify", EXIT_USAGE, ("--parallelism", "0"), *VERIFY, "--parallelism=0"),
    case("parallelism-negative-preflight", EXIT_USAGE, ("--parallelism", "-2"), *PREFLIGHT,
         "--parallelism=-2"),
    case("backup-labels", EXIT_USAGE, ("--labels", "'nokey'"), *BACKUP, "--labels=team=a,nokey"),
    case("backup-name-invalid-create", EXIT_USAGE, "invalid backup name 'Bad_Name'", "backup",
         "create",
         "Bad_Name", SOURCE_KUBECONFIG_FLAG, BUCKET_FLAG),
    case("conflict-preflight-from-backup-cluster-resources", EXIT_USAGE,
         "--include-cluster-resources",
         "preflight", "--from-backup=good", "--target-kubeconfig={TK}", BUCKET_FLAG,
         "--include-cluster-resources=true"),
    case("conflict-preflight-from-backup-no-bucket", EXIT_USAGE, "--from-backup needs --bucket",
         "preflight", "--from-backup=good", "--target-kubeconfig={TK}", KUBE_MIGRATE_BUCKET=None),
    case("conflict-verify-from-backup-no-bucket", EXIT_USAGE, "--from-backup needs --bucket",
         "verify", "--from-backup=good", "--target-kubeconfig={TK}", KUBE_MIGRATE_BUCKET=None),
    case("preflight-no-target", EXIT_USAGE, "no target cluster",
         *PREFLIGHT[:2], "--include-namespaces={src}",
         KUBE_MIGRATE_TARGET_KUBECONFIG=None, KUBE_MIGRATE_TARGET_CONTEXT=None),
    case("preflight-no-source", EXIT_USAGE, "no source", "preflight", "--target-kubeconfig={TK}",
         KUBE_MIGRATE_SOURCE_KUBECONFIG=None, KUBE_MIGRATE_SOURCE_CONTEXT=None),
    case("backup-delete-without-confirm", EXIT_USAGE, ("'good'", "--confirm"),
         "backup", "delete", "good", BUCKET_FLAG),
    case("restore-without-from-backup", EXIT_USAGE, "--from-backup", "restore", "create",
         TARGET_KUBECONFIG_FLAG, BUCKET_FLAG),
    case("dry-run-bogus", EXIT_USAGE, ("--dry-run", "'bogus'"), *RESTORE, "--dry-run=bogus"),
    case("dry-run-server-resume", EXIT_USAGE, ("--resume", "dry run"), *RESTORE, "--dry-run=server",
         "--resume"),
    case("dry-run-server-wait-ready", EXIT_USAGE, ("--wait-ready", "dry run"), *RESTORE,
         "--dry-run=server", "--wait-ready"),
    case("qps-negative", EXIT_USAGE, ("--qps", "-1"), *RESTORE, "--qps=-1"),
    case("backup-create-without-name", EXIT_USAGE, "NAME", "backup", "create",
         SOURCE_KUBECONFIG_FLAG, BUCKET_FLAG),
    case("unknown-flag", EXIT_USAGE, "--frobnicate", *BACKUP, "--frobnicate"),
    case("unknown-command", EXIT_USAGE, "'frob'", "backup", "frob"),
    case("run-without-playbook", EXIT_USAGE, "PLAYBOOK", "run", BUCKET_FLAG),
    case("run-resume-unknown", EXIT_USAGE, "'nope-{tok}'", "run", "--resume=nope-{tok}",
         BUCKET_FLAG),
    case("run-resume-with-playbook", EXIT_USAGE, ("--resume nope-{tok}", "PLAYBOOK"), "run",
         "{D}/pb/empty.yaml", "--resume=nope-{tok}", BUCKET_FLAG),
    case("run-resume-with-set", EXIT_USAGE, ("--resume nope-{tok}", "--set"), "run",
         "--resume=nope-{tok}", "--set=restore.replicas=1", BUCKET_FLAG),
    case("restore-resume-nothing-unfinished", EXIT_USAGE, "no unfinished restore of backup 'good'",
         *RESTORE, "--resume"),
    case("restore-fail-on-bogus", EXIT_USAGE, ("--fail-on", "'bogus'"), *RESTORE,
         "--fail-on=bogus"),
    case("restore-partially-failed-fail-on-warning", EXIT_PREFLIGHT,
         ("backup partial is PartiallyFailed", "--fail-on warning", "nothing was written"),
         *restore_from("partial", "--fail-on=warning")),
    case("verify-show-secrets", EXIT_USAGE, ("never prints Secret values", "--show-secrets"),
         *VERIFY,
         "--show-secrets"),
]  # fmt: skip

# ------------------------------------------------------------------------ playbooks

PB_HEAD = "apiVersion: kube-migrate.io/v1alpha1\nkind: Playbook\nmetadata:\n  name: bad-input\n"
PB_STEPS = "  steps: [preflight, backup, restore, verify]\n"


def pb(spec: str, steps: str = PB_STEPS, head: str = PB_HEAD) -> str:
    """A playbook whose spec has `spec` (indented lines) before its steps; the scope is a
    namespace nobody has, so a row that were wrongly accepted would move nothing."""
    return head + "spec:\n  scope: {includeNamespaces: [bi-nothing-here]}\n" + spec + steps


# (id, playbook text or None for "no such file", substrings of the error, --set values)
PLAYBOOKS: list[tuple[str, str | None, tuple[str, ...], tuple[str, ...]]] = [
    ("file-missing", None, ("no such playbook file",), ()),
    ("empty", "", ("the file is empty",), ()),
    ("yaml-syntax", pb("  backup: {ttl: 1h\n"), ("invalid YAML",), ()),
    ("duplicate-key", pb("  backup: {}\n  backup: {}\n"), ("spec.backup", "duplicate key"), ()),
    ("key-not-text", pb("  yes: 1\n"), ("'yes' is not text",), ()),
    ("not-a-mapping", "- backup\n- restore\n", ("(document)", "not of type 'object'"), ()),
    ("api-version", pb("", head=PB_HEAD.replace("v1alpha1", "v2")), ("apiVersion",), ()),
    ("kind", pb("", head=PB_HEAD.replace("Playbook", "Runbook")), ("kind",), ()),
    ("metadata-missing", "apiVersion: kube-migrate.io/v1alpha1\nkind: Playbook\nspec:\n"
     "  steps: [backup]\n", ("metadata", "is required"), ()),
    ("steps-missing", pb("", steps=""), ("spec.steps", "is required"), ()),
    ("unknown-top-field", pb("") + "status: {}\n", ("status", "unknown field"), ()),
    ("unknown-spec-field", pb("  bogus: 1\n"), ("spec.bogus", "unknown field"), ()),
    ("unknown-metadata-field", pb("", head=PB_HEAD + "  labels: {a: b}\n"),
     ("metadata.labels", "unknown field"), ()),
    ("name-pattern", pb("", head=PB_HEAD.replace("bad-input", "Bad_Input")),
     ("metadata.name", "'Bad_Input'"), ()),
    ("name-too-long", pb("", head=PB_HEAD.replace("bad-input", "x" * 49)),
     ("metadata.name",), ()),
    ("name-type", pb("", head=PB_HEAD.replace("bad-input", "42")), ("metadata.name",), ()),
    ("ttl-pattern", pb("  backup: {ttl: 3days}\n"), ("spec.backup.ttl", "'3days'"), ()),
    ("sync-timeout-pattern", pb("  waitForSync: {timeout: 10 minutes}\n"),
     ("spec.waitForSync.timeout",), ()),
    ("ready-timeout-pattern", pb("  waitReady: {timeout: soon}\n"),
     ("spec.waitReady.timeout",), ()),
    ("parallelism-minimum", pb("  backup: {parallelism: 0}\n"), ("spec.backup.parallelism",), ()),
    ("parallelism-type", pb("  restore: {parallelism: fast}\n"),
     ("spec.restore.parallelism",), ()),
    ("replicas-minimum", pb("  restore: {replicas: -1}\n"), ("spec.restore.replicas",), ()),
    ("policy-enum", pb("  restore: {existingResourcePolicy: replace}\n"),
     ("spec.restore.existingResourcePolicy", "'replace'"), ()),
    ("gate-enum", pb("  gates: {verify: {failOn: always}}\n"),
     ("spec.gates.verify.failOn", "'always'"), ()),
    ("cluster-resources-enum", "" , ("spec.scope.includeClusterResources", "'maybe'"),
     ("scope.includeClusterResources=maybe",)),
    ("ns-mapping-key", pb("  restore: {namespaceMappings: {Bad_NS: shop}}\n"),
     ("spec.restore.namespaceMappings", "Bad_NS"), ()),
    ("ns-mapping-value", pb("  restore: {namespaceMappings: {shop: Shop_Test}}\n"),
     ("spec.restore.namespaceMappings.shop", "'Shop_Test'"), ()),
    ("sc-mapping-value", pb("  restore: {storageClassMappings: {fast: Fast Disk}}\n"),
     ("spec.restore.storageClassMappings.fast",), ()),
    ("pvc-size-mapping-value", pb("  restore: {pvcSizeMappings: {data: big}}\n"),
     ("spec.restore.pvcSizeMappings.data", "'big'"), ()),
    ("registry-mapping-value", pb("  restore: {imageRegistryMappings: {docker.io: a=b}}\n"),
     ("spec.restore.imageRegistryMappings",), ()),
    ("ns-mapping-two-onto-one", pb("  restore: {namespaceMappings: {a: x, b: x}}\n"),
     ("spec.restore.namespaceMappings.b", "'x'"), ()),
    ("scope-item-with-comma", "", ("spec.scope.includeNamespaces[0]", "'a,b'"),
     ("scope.includeNamespaces=['a,b']",)),
    ("scope-items-not-unique", "", ("spec.scope.includeNamespaces",),
     ("scope.includeNamespaces=[a, a]",)),
    ("scope-not-a-list", "", ("spec.scope.excludeNamespaces",),
     ("scope.excludeNamespaces={shop: x}",)),  # plain text is a list: `a,b` is [a, b]
    ("selector-invalid", "", ("spec.scope.selector", "'a in b'"), ("scope.selector=a in b",)),
    ("steps-empty", pb("", steps="  steps: []\n"), ("spec.steps",), ()),
    ("step-unknown", pb("", steps="  steps: [backup, migrate]\n"), ("spec.steps[1]",), ()),
    ("step-with-options", pb("", steps="  steps: [backup, {restore: {replicas: 1}}]\n"),
     ("spec.steps[1]",), ()),
    ("step-two-keys", pb("", steps="  steps: [{backup: null, restore: null}]\n"),
     ("spec.steps[0]",), ()),
    ("scale-without-side", pb("", steps="  steps: [{scale: {replicas: 0}}, backup]\n"),
     ("spec.steps[0].scale.side", "is required"), ()),
    ("scale-kind-enum", pb("", steps="  steps: [{scale: {side: source, kinds: [Pod]}}]\n"),
     ("spec.steps[0].scale.kinds[0]", "'Pod'"), ()),
    ("scale-side-enum", pb("", steps="  steps: [{scale: {side: both}}]\n"),
     ("spec.steps[0].scale.side", "'both'"), ()),
    ("bucket-url", pb("  bucket: {url: 'http://127.0.0.1:9/b'}\n"), ("spec.bucket.url",), ()),
    ("bucket-endpoint", pb("  bucket: {endpoint: 'minio:9000'}\n"), ("spec.bucket.endpoint",), ()),
    ("bucket-sse", pb("  bucket: {sse: AES128}\n"), ("spec.bucket.sse", "'AES128'"), ()),
    ("bucket-kms-key-without-sse", pb("  bucket: {kmsKeyId: alias/backups}\n"),
     ("spec.bucket.sse", "missing"), ()),
    ("bucket-kms-key-with-aes256", pb("  bucket: {sse: AES256, kmsKeyId: alias/backups}\n"),
     ("spec.bucket.sse", "'aws:kms'"), ()),
    ("verify-show-secrets", pb("  verify: {showSecrets: true}\n"),
     ("spec.verify.showSecrets", "unknown field"), ()),
    ("kubeconfig-empty", pb("  source: {kubeconfig: ''}\n"), ("spec.source.kubeconfig",), ()),
    ("context-empty", pb("  target: {context: ''}\n"), ("spec.target.context",), ()),
    ("from-schedule-pattern", pb("  backup: {fromSchedule: Shop_}\n", steps="  steps: [restore]\n"),
     ("spec.backup.fromSchedule", "'Shop_'"), ()),
    ("verify-option-type", pb("  verify: {fromBackup: yes please}\n"),
     ("spec.verify.fromBackup",), ()),
    ("preflight-options", pb("  preflight: {strict: true}\n"),
     ("spec.preflight.strict", "unknown field"), ()),
    ("step-twice", pb("", steps="  steps: [backup, backup]\n"), ("spec.steps[1]", "twice"), ()),
    ("step-order", pb("", steps="  steps: [backup, verify, restore]\n"),
     ("spec.steps[2]", "restore must come before verify"), ()),
    ("backup-with-from-schedule", pb("  backup: {fromSchedule: shop-}\n"),
     ("spec.steps[1]", "fromSchedule"), ()),
    ("restore-without-backup", pb("", steps="  steps: [restore]\n"),
     ("spec.steps[0]", "no backup"), ()),
    ("wait-ready-without-restore", pb("", steps="  steps: [backup, waitReady]\n"),
     ("spec.steps[1]", "waitReady"), ()),
    ("path-variable-unset", pb("  source: {kubeconfig: '$BI_UNSET_@TOK@/kc'}\n"),
     ("spec.source.kubeconfig", "$BI_UNSET_@TOK@ is not set"), ()),
    ("set-syntax", "", ("--set nonsense", "PATH=VALUE"), ("nonsense",)),
    ("set-value-not-yaml", "", ("--set scope.includeNamespaces=[a", "invalid value"),
     ("scope.includeNamespaces=[a",)),
    ("set-into-a-list", "", ("--set scope.includeNamespaces.x=1", "is a list"),
     ("scope.includeNamespaces.x=1",)),
    ("set-schema", "", ("--set restore.replicas=-1", "spec.restore.replicas"),
     ("restore.replicas=-1",)),
]  # fmt: skip


def _playbook_case(
    pid: str, text: str | None, names: tuple[str, ...], sets: tuple[str, ...]
) -> Case:
    path = f"{{D}}/pb/{pid}.yaml"
    argv = (
        "run",
        path,
        "--dry-run",
        BUCKET_FLAG,
        "--report-dir={D}/reports",
        *(f"--set={s}" for s in sets),
    )
    where = (f"{{D}}/pb/{pid}.yaml",)  # every playbook error names the file
    return Case(
        f"playbook-{pid}",
        argv,
        EXIT_USAGE,
        where + tuple(n.replace("@TOK@", "{tok}") for n in names),
    )


CASES = [*CLUSTERS, *BUCKETS, *BACKUPS, *FILTERS, *MAPPINGS, *RESTORES, *MODIFIERS, *FLAGS,
         *(_playbook_case(*p) for p in PLAYBOOKS)]  # fmt: skip

# ----------------------------------------------------------------------------- files

MODS = "version: v1\nresourceModifierRules:\n"
RULE = (
    "- conditions: {groupResource: configmaps}\n  patches: [{operation: remove, path: /data/a}]\n"
)
MODIFIER_FILES = {
    "mods-yaml.yaml": MODS + "- conditions: {groupResource: configmaps\n  patches: []\n",
    "mods-version.yaml": "version: v2\nresourceModifierRules: []\n",
    "mods-op.yaml": MODS + "- conditions: {groupResource: configmaps}\n  patches:\n"
    "  - {operation: frobnicate, path: /data/a}\n",
    "mods-nopath.yaml": MODS + RULE + "- conditions: {groupResource: secrets}\n  patches:\n"
    "  - {operation: remove}\n",
    "mods-regex.yaml": MODS + "- conditions: {groupResource: deployments.apps, "
    "resourceNameRegex: 'web-[('}\n  patches:\n  - {operation: remove, path: /spec/replicas}\n",
    "mods-merge.yaml": MODS + "- conditions: {groupResource: configmaps}\n  mergePatches:\n"
    "  - patchData: '{a: [}'\n",
    "mods-noconditions.yaml": MODS + "- patches:\n  - {operation: remove, path: /data/a}\n",
    "mods-nopatches.yaml": MODS + "- conditions: {groupResource: configmaps}\n",
    "mods-missing-path.yaml": MODS + "- conditions: {groupResource: configmaps, "
    "resourceNameRegex: '^cfg$'}\n  patches:\n  - {operation: remove, path: /data/nope}\n",
}


def _kubeconfigs(d: Path, env: Env, port: int) -> None:
    """Bad kubeconfigs, each derived from the source's working one."""

    def derive(name: str, change: Callable[[dict[str, Any]], None]) -> None:
        kc = yaml.safe_load(Path(env.source_kubeconfig).read_text())
        change(kc)
        (d / name).write_text(yaml.safe_dump(kc))

    (d / "malformed.kubeconfig").write_text("apiVersion: v1\nclusters: [\n  - name: : x\n")
    (d / "scalar.kubeconfig").write_text("just some text\n")
    (d / "empty.kubeconfig").write_text("")
    derive(
        "ghost-cluster.kubeconfig", lambda kc: kc["contexts"][0]["context"].update(cluster="ghost")
    )
    derive(
        "no-cert.kubeconfig",
        lambda kc: kc["users"][0].update(
            user={"client-certificate": "/nonexistent/client.crt", "client-key": "/nonexistent/k"}
        ),
    )
    derive("no-current.kubeconfig", lambda kc: kc.pop("current-context"))
    derive(
        "closed-port.kubeconfig",
        lambda kc: kc["clusters"][0]["cluster"].update(server=f"https://127.0.0.1:{port}"),
    )
    derive("bogus-token.kubeconfig", lambda kc: kc["users"][0].update(
        user={"token": "bogus-" + uuid.uuid4().hex}))  # fmt: skip


def _token_kubeconfig(c: Cluster, admin: str, ns: str, sa: str, path: Path) -> None:
    """A kubeconfig for ServiceAccount ns/sa (a TokenRequest), with the admin's server."""
    token = c.request(
        "POST", f"/api/v1/namespaces/{ns}/serviceaccounts/{sa}/token",
        body={"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
              "spec": {"expirationSeconds": 3600}},
    )["status"]["token"]  # fmt: skip
    kc = yaml.safe_load(Path(admin).read_text())
    kc["users"][0]["user"] = {"token": token}
    path.write_text(yaml.safe_dump(kc))


def _closed_port() -> int:
    with socket.socket() as s:  # bound then closed: nothing listens there
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# ------------------------------------------------------------- hand-made backups


def _rename(rel: str, src: str, dst: str) -> str:
    return dst + rel[len(src) :] if rel.startswith(src) else rel


def copy_backup(
    store: Store, src: str, dst: str, tweak: Callable[[str, bytes], bytes | None] | None = None
) -> None:
    """backups/src -> backups/dst, names inside renamed; `tweak(file, data)` may change a
    file's bytes or drop it (None).  velero-backup.json last, as a backup writes it."""
    ks, kd = layout.BackupKeys(src), layout.BackupKeys(dst)
    files = {}
    for obj in store.list(ks.dir):
        rel = _rename(obj.key.removeprefix(ks.dir), src, dst)
        data = store.get(obj.key)
        if rel == "velero-backup.json":
            doc = json.loads(data)
            doc["metadata"]["name"] = dst
            data = json.dumps(doc).encode()
        elif rel.endswith("-kube-migrate.json"):
            doc = json.loads(data)
            doc["name"] = dst
            doc["files"] = {_rename(k, src, dst): v for k, v in doc["files"].items()}
            data = json.dumps(doc).encode()
        files[rel] = tweak(rel, data) if tweak else data
    for rel in sorted(files, key=lambda r: r == "velero-backup.json"):
        if files[rel] is not None:
            store.put(kd.dir + rel, files[rel])  # type: ignore[arg-type]


def _entries(tarball: bytes) -> list[tuple[str, bytes]]:
    with tarfile.open(fileobj=io.BytesIO(tarball), mode="r:gz") as tar:
        return [(m.name, tar.extractfile(m).read()) for m in tar if m.isfile()]  # type: ignore[union-attr]


def _tarball(entries: list[tuple[str, bytes]]) -> bytes:
    buf = io.BytesIO()
    with (
        gzip.GzipFile(fileobj=buf, mode="wb", mtime=0) as gz,
        tarfile.open(fileobj=gz, mode="w") as tar,
    ):
        for name, data in entries:
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o755
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def rebuild_backup(
    store: Store,
    src: str,
    dst: str,
    change: Callable[[list[tuple[str, bytes]]], list[tuple[str, bytes]]],
    *,
    fix_manifest: bool = True,
) -> None:
    """A copy of backup src whose tarball entries went through `change`; the manifest's
    size and sha256 of the tarball updated, unless fix_manifest=False."""
    new = _tarball(change(_entries(store.get(layout.BackupKeys(src).tarball))))

    def tweak(rel: str, data: bytes) -> bytes:
        if rel == f"{dst}.tar.gz":
            return new
        if rel.endswith("-kube-migrate.json") and fix_manifest:
            doc = json.loads(data)
            doc["files"][f"{dst}.tar.gz"] = {"size": len(new), "sha256": layout.sha256(new)}
            return json.dumps(doc).encode()
        return data

    copy_backup(store, src, dst, tweak)


def _flip_middle_byte(rel: str, data: bytes) -> bytes:
    if not rel.endswith(".tar.gz"):
        return data
    mid = len(data) // 2
    return data[:mid] + bytes([data[mid] ^ 0xFF]) + data[mid + 1 :]


def _status(**changes: str) -> Callable[[str, bytes], bytes]:
    """Change fields of velero-backup.json's status."""

    def tweak(rel: str, data: bytes) -> bytes:
        if rel != "velero-backup.json":
            return data
        doc = json.loads(data)
        doc["status"].update(changes)
        return json.dumps(doc).encode()

    return tweak


def _cycle(ns: str) -> Callable[[list[tuple[str, bytes]]], list[tuple[str, bytes]]]:
    """Two ConfigMaps each owning the other: an ownerReference cycle."""

    def change(entries: list[tuple[str, bytes]]) -> list[tuple[str, bytes]]:
        out = list(entries)
        for me, owner in (("loop-a", "loop-b"), ("loop-b", "loop-a")):
            ref = {"apiVersion": "v1", "kind": "ConfigMap", "name": owner, "uid": f"uid-{owner}"}
            meta = {"name": me, "namespace": ns, "uid": f"uid-{me}", "ownerReferences": [ref]}
            obj = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": {"k": "v"}}
            for path in layout.item_paths("configmaps", "v1", ns, me):
                out.append((path, json.dumps(obj).encode()))
        return out

    return change


def _tamper(ns: str) -> Callable[[list[tuple[str, bytes]]], list[tuple[str, bytes]]]:
    def change(entries: list[tuple[str, bytes]]) -> list[tuple[str, bytes]]:
        out = []
        for path, data in entries:
            if path.startswith(f"resources/configmaps/namespaces/{ns}/cfg"):
                obj = json.loads(data)
                obj["data"]["a"] = "tampered"
                out.append((path, json.dumps(obj).encode()))
            else:
                out.append((path, data))
        return out

    return change


def make_bad_backups(store: Store, ns: str) -> None:
    copy_backup(store, "good", "corrupt", _flip_middle_byte)
    copy_backup(
        store,
        "good",
        "truncated",
        lambda rel, d: d[: len(d) // 2] if rel.endswith(".tar.gz") else d,
    )
    rebuild_backup(store, "good", "badsum", _tamper(ns), fix_manifest=False)
    copy_backup(store, "good", "v2json", _status(formatVersion="2.0.0"))
    rebuild_backup(store, "good", "v9tar", lambda e: [
        (p, b"9.0.0\n" if p == layout.VERSION_FILE else d) for p, d in e])  # fmt: skip
    copy_backup(
        store, "good", "notjson", lambda rel, d: b"{not json" if rel == "velero-backup.json" else d
    )
    copy_backup(
        store,
        "good",
        "badmanifest",
        lambda rel, d: b"[]" if rel.endswith("-kube-migrate.json") else d,
    )
    copy_backup(
        store, "good", "incomplete", lambda rel, d: None if rel == "velero-backup.json" else d
    )
    copy_backup(store, "good", "failedphase", _status(phase="Failed"))
    copy_backup(store, "good", "partial", _status(phase="PartiallyFailed"))
    rebuild_backup(store, "good", "cycle", _cycle(ns))


# ---------------------------------------------------------------------------- world


@dataclass
class World:
    values: dict[str, str]
    store: Store
    source: Cluster
    target: Cluster
    resources: dict[str, list[Any]]  # cluster name -> resources snapshotted per namespace

    def fmt(self, text: str) -> str:
        return re.sub(r"\{(\w+)\}", lambda m: self.values.get(m.group(1), m.group(0)), text)


SNAPSHOT_RESOURCES = (
    "configmaps",
    "secrets",
    "serviceaccounts",
    "services",
    "deployments.apps",
    "roles.rbac.authorization.k8s.io",
    "rolebindings.rbac.authorization.k8s.io",
)


def _obj(kind: str, name: str, ns: str, **fields: Any) -> dict[str, Any]:
    api = "apps/v1" if kind == "Deployment" else "v1"
    return {"apiVersion": api, "kind": kind, "metadata": {"name": name, "namespace": ns}, **fields}


def _deployment(name: str, ns: str) -> dict[str, Any]:
    labels = {"app": name}
    pod = {"containers": [{"name": name, "image": f"registry.example/{name}:1"}]}
    spec = {"metadata": {"labels": labels}, "spec": pod}
    return _obj("Deployment", name, ns, spec={"replicas": 1, "selector": {"matchLabels": labels},
                                              "template": spec})  # fmt: skip


def _namespaces(c: Cluster, *names: str) -> None:
    res = c.discovery().resolve("namespaces")
    for name in names:
        with contextlib.suppress(AlreadyExists):
            c.create(res, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})


@contextlib.contextmanager
def _logging_kept() -> Iterator[None]:
    """run() points the root logger at this test's stderr; put it back afterwards, so
    no later test logs into a capture that is gone."""
    root, ours = logging.getLogger(), logging.getLogger("migrate")
    saved = (root.handlers[:], root.level, ours.level)
    try:
        yield
    finally:
        handlers, root_level, our_level = saved
        root.handlers[:] = handlers
        root.setLevel(root_level)
        ours.setLevel(our_level)


def _cli(*argv: str) -> None:
    with _logging_kept():
        code = run(list(argv))
    assert code == 0, f"setup step failed ({code}): {' '.join(argv)}"


def _values(env: Env, tok: str, d: Path) -> dict[str, str]:
    ns = {k: f"bi-{tok}-{k}" for k in ("src", "src2", "dst", "dst2", "collide", "used", "rbac")}
    return {
        **ns,
        "tok": tok,
        "D": str(d),
        "SK": env.source_kubeconfig,
        "TK": env.target_kubeconfig,
        "B": f"{env.bucket}/t-bad-input-{tok}",
        "port": str(_closed_port()),
    }


def _setup_source(source: Cluster, store: Store, v: dict[str, str]) -> None:
    """Two namespaces on the source, backed up by the CLI as `good`, and its bad copies."""
    _namespaces(source, v["src"], v["src2"], v["rbac"])
    apply(source, [
        _obj("ConfigMap", "cfg", v["src"], data={"a": "1"}),
        _obj("Secret", "sec", v["src"], stringData={"password": "bad-input-marker"}),
        _deployment("web", v["src"]),
        _obj("ConfigMap", "other", v["src2"], data={"b": "2"}),
        _obj("ServiceAccount", "nobody", v["rbac"]),
    ])  # fmt: skip
    _cli("backup", "create", "good", f"--kubeconfig={v['SK']}", f"--bucket={v['B']}",
         f"--include-namespaces={v['src']},{v['src2']}", "-o", "json")  # fmt: skip
    make_bad_backups(store, v["src"])


def _setup_target(target: Cluster, store: Store, v: dict[str, str]) -> None:
    """A namespace colliding with the backup; a restore that ran (its results copied as
    if another machine had made restore `elsewhere`); a journal of one that ran here."""
    _namespaces(target, v["collide"], v["rbac"])
    apply(target, [
        _obj("ConfigMap", "cfg", v["collide"], data={"a": "on-target"}),
        _obj("ServiceAccount", "nobody", v["rbac"]),
        _obj("ServiceAccount", "revoked", v["rbac"]),
    ])  # fmt: skip
    tok = v["tok"]
    _cli("restore", "create", f"used-{tok}", "--from-backup=good", f"--kubeconfig={v['TK']}",
         f"--bucket={v['B']}", f"--include-namespaces={v['src']}",
         f"--namespace-mappings={v['src']}:{v['used']}")  # fmt: skip
    for obj in store.list(f"restores/used-{tok}/"):
        rel = obj.key.removeprefix(f"restores/used-{tok}/").replace("used-", "elsewhere-", 1)
        store.put(f"restores/elsewhere-{tok}/{rel}", store.get(obj.key))
    journal = state_dir() / "restores" / f"journal-{tok}.journal.jsonl"
    journal.parent.mkdir(parents=True, exist_ok=True)
    journal.write_text("")  # killed before it wrote any result


def _write_files(d: Path, tok: str) -> None:
    for name, text in MODIFIER_FILES.items():
        (d / name).write_text(text)
    (d / "pb").mkdir()
    for pid, text, _, _ in PLAYBOOKS:
        if text is not None:
            body = text or (pb("") if pid != "empty" else "")  # "": a --set row
            (d / "pb" / f"{pid}.yaml").write_text(body.replace("@TOK@", tok))


@pytest.fixture(scope="module")
def world(
    dev_env: Env, source: Cluster, target: Cluster, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[World]:
    tok = uuid.uuid4().hex[:6]
    d = tmp_path_factory.mktemp("bad-input")
    v = _values(dev_env, tok, d)
    store = open_store(v["B"])
    try:
        _setup_source(source, store, v)
        _setup_target(target, store, v)
        # credentials: no permissions at all; a token whose ServiceAccount is gone
        _kubeconfigs(d, dev_env, int(v["port"]))
        _token_kubeconfig(source, v["SK"], v["rbac"], "nobody", d / "nobody-source.kubeconfig")
        _token_kubeconfig(target, v["TK"], v["rbac"], "nobody", d / "nobody-target.kubeconfig")
        _token_kubeconfig(target, v["TK"], v["rbac"], "revoked", d / "revoked.kubeconfig")
        target.delete(target.discovery().resolve("serviceaccounts"), "revoked", v["rbac"])
        wait_for("the revoked token to be refused", lambda: _refused(d / "revoked.kubeconfig"), 30)
        _write_files(d, tok)
        # controllers fill new namespaces (default ServiceAccount, kube-root-ca.crt) and
        # roll out the restored Deployment: let them settle before the first snapshot
        for ns in (v["collide"], v["used"]):
            wait_for(f"{ns} filled", lambda ns=ns: _settled(target, ns), 60)
        # snapshots read through clients of their own, without the client-side rate limit
        src = Cluster(ClusterRef(v["SK"]), name="source", qps=0)
        dst = Cluster(ClusterRef(v["TK"]), name="target", qps=0)
        resources = {c.name: [c.discovery().resolve(r) for r in SNAPSHOT_RESOURCES]
                     for c in (src, dst)}  # fmt: skip
        yield World(v, store, src, dst, resources)
    finally:
        mine = {source: ("src", "src2", "rbac"),
                target: ("collide", "used", "rbac", "dst", "dst2", "src", "src2")}  # fmt: skip
        for c, keys in mine.items():
            for key in keys:
                with contextlib.suppress(NotFound):
                    c.delete(c.discovery().resolve("namespaces"), v[key])
        for prefix in ("backups/", "restores/"):
            store.delete_prefix(prefix)


def _refused(kubeconfig: Path) -> bool:
    try:
        Cluster(ClusterRef(str(kubeconfig))).version()
    except Forbidden:
        return True
    return False


def _settled(c: Cluster, ns: str) -> bool:
    names = {(o["kind"], o["metadata"]["name"]) for r in ("configmaps", "serviceaccounts")
             for o in c.list(c.discovery().resolve(r), ns)}  # fmt: skip
    deployments = list(c.list(c.discovery().resolve("deployments.apps"), ns))
    rolled = all((d.get("status") or {}).get("observedGeneration") == d["metadata"]["generation"]
                 for d in deployments)  # fmt: skip
    return (
        ("ConfigMap", "kube-root-ca.crt") in names
        and ("ServiceAccount", "default") in names
        and rolled
    )


def snapshot(w: World) -> dict[str, Any]:
    """What a failed command must not change: every key under the bucket prefix (size,
    etag), the module's namespaces on both clusters, and the objects in them (uid and
    generation, else resourceVersion: a status update by a controller is not a write of
    ours).  The LISTs go out in parallel."""
    tok = w.values["tok"]
    snap: dict[str, Any] = {"bucket": {o.key: (o.size, o.etag) for o in w.store.list("")}}
    lists: list[tuple[Cluster, str, Any]] = []
    for c in (w.source, w.target):
        ns_res = c.discovery().resolve("namespaces")
        names = sorted(
            o["metadata"]["name"] for o in c.list(ns_res) if tok in o["metadata"]["name"]
        )
        snap[f"{c.name}/namespaces"] = names
        # -rbac holds the ServiceAccounts of the credentials rows; nothing restores there
        lists += [
            (c, ns, r) for ns in names if not ns.endswith("-rbac") for r in w.resources[c.name]
        ]

    def objects(task: tuple[Cluster, str, Any]) -> dict[str, tuple[str, Any]]:
        c, ns, res = task
        out = {}
        for o in c.list(res, ns):
            meta = o["metadata"]
            version = meta.get("generation") or meta["resourceVersion"]
            out[f"{c.name}/{ns}/{res.full_name}/{meta['name']}"] = (meta["uid"], version)
        return out

    with ThreadPoolExecutor(max_workers=8) as pool:
        for found in pool.map(objects, lists):
            snap.update(found)
    return snap


# ----------------------------------------------------------------------------- test

# Python warnings a real run would print on stderr (the default filters hide these).
HIDDEN_WARNINGS = (DeprecationWarning, PendingDeprecationWarning, ImportWarning, ResourceWarning)


def test_table_is_large_and_ids_are_unique() -> None:
    ids = [c.id for c in CASES]
    assert len(ids) >= 50 and len(set(ids)) == len(ids)


@pytest.mark.parametrize("row", CASES, ids=[c.id for c in CASES])
def test_bad_input(
    row: Case, world: World, capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    argv = [world.fmt(a) for a in row.argv]
    before = snapshot(world)
    capfd.readouterr()
    with (
        monkeypatch.context() as m,
        warnings.catch_warnings(record=True) as caught,
        _logging_kept(),
    ):
        warnings.simplefilter("always")
        for key, value in row.env.items():
            if value is None:
                m.delenv(key, raising=False)
            else:
                m.setenv(key, world.fmt(value))
        code = run(argv)
    out, err = capfd.readouterr()
    shown = [str(w.message) for w in caught if not issubclass(w.category, HIDDEN_WARNINGS)]

    lines = err.splitlines()
    assert code == row.code, f"exit {code}, expected {row.code}; stderr:\n{err}"
    assert out == "", f"stdout must be empty, got:\n{out}"
    assert "Traceback" not in err
    assert len(lines) == 2, f"stderr must be one error line and one hint, got:\n{err}"
    assert lines[0].startswith("kube-migrate: error: "), err
    assert lines[1].startswith("hint: ") and len(lines[1].strip()) > len("hint:"), err
    for name in row.names:
        assert world.fmt(name) in lines[0], f"{world.fmt(name)!r} not named in: {lines[0]}"
    assert not shown, f"Python warnings would be printed: {shown}"
    after = snapshot(world)
    changed = {k for k in before.keys() | after.keys() if before.get(k) != after.get(k)}
    assert not changed, f"written although the command failed: {sorted(changed)}"


def test_snapshot_sees_writes(world: World) -> None:
    """The nothing-written check can fail: what a command that succeeds writes (a backup
    in the bucket) and an object added to a target namespace both show in a snapshot."""
    v = world.values
    before = snapshot(world)
    argv = ["backup", "create", f"probe-{v['tok']}", f"--kubeconfig={v['SK']}",
            f"--bucket={v['B']}", f"--include-namespaces={v['src2']}", "-o", "json"]  # fmt: skip
    with _logging_kept():
        assert run(argv) == 0
    res = world.target.discovery().resolve("configmaps")
    world.target.create(res, _obj("ConfigMap", "probe", v["collide"]), v["collide"])
    try:
        after = snapshot(world)
    finally:
        world.target.delete(res, "probe", v["collide"])
    new = {k for k in after["bucket"] if k not in before["bucket"]}
    assert f"backups/probe-{v['tok']}/velero-backup.json" in new
    assert f"target/{v['collide']}/configmaps/probe" in after.keys() - before.keys()
