"""The typed command options without clusters: every command's flags bind to its options
dataclass (none left over, none missing), the shared flag groups build what their
flags name, and each `validate()` refuses bad values with a usage error and a hint
before anything is opened.  The arguments are parsed by the commands' real click
parsers (no cluster, no bucket is contacted)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import click
import pytest

from migrate.cli import (
    backup_cmd,
    backup_read_cmd,
    cluster_cmd,
    preflight_cmd,
    restore_cmd,
    restore_read_cmd,
    run_cmd,
    verify_cmd,
)
from migrate.cli.binding import Command, bind_params
from migrate.cli.flags_bucket import BucketFlags
from migrate.cli.flags_cluster import ClusterFlags, SourceTargetFlags
from migrate.cli.options import KeyFlags, ScopeFlags
from migrate.errors import UsageError

BUCKET = "--bucket=file:///nonexistent/bucket"


@pytest.fixture(autouse=True)
def _no_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """The dev environment's KUBE_MIGRATE_* and AWS_* variables would fill flags."""
    for key in list(os.environ):
        if key.startswith(("KUBE_MIGRATE_", "AWS_")) and key != "KUBE_MIGRATE_STATE_DIR":
            monkeypatch.delenv(key)


def parse(cmd: click.Command, argv: list[str]) -> dict[str, Any]:
    """click's values for `argv`, as the command's callback would receive them."""
    with cmd.make_context(cmd.name or "cmd", list(argv)) as ctx:
        return dict(ctx.params)


C = TypeVar("C", bound=Command)


def args_of(cls: type[C], cmd: click.Command, *argv: str) -> C:
    return bind_params(cls, parse(cmd, list(argv)))


# (options class, command, the shortest argv it accepts)
COMMANDS: list[tuple[type[Command], click.Command, tuple[str, ...]]] = [
    (cluster_cmd.InfoArgs, cluster_cmd.info, ()),
    (backup_cmd.CreateArgs, backup_cmd.create, ("b1", BUCKET)),
    (backup_read_cmd.GetArgs, backup_read_cmd.get, (BUCKET,)),
    (backup_read_cmd.DescribeArgs, backup_read_cmd.describe, ("b1", BUCKET)),
    (backup_read_cmd.NameArgs, backup_read_cmd.logs, ("b1", BUCKET)),
    (backup_read_cmd.DeleteArgs, backup_read_cmd.delete, ("b1", BUCKET)),
    (backup_read_cmd.GcArgs, backup_read_cmd.gc, (BUCKET,)),
    (backup_read_cmd.WaitSyncArgs, backup_read_cmd.wait_sync, ("b1", BUCKET)),
    (restore_cmd.CreateArgs, restore_cmd.create, ("--from-backup=b1", BUCKET)),
    (restore_read_cmd.GetArgs, restore_read_cmd.get, (BUCKET,)),
    (restore_read_cmd.DescribeArgs, restore_read_cmd.describe, ("r1", BUCKET)),
    (restore_read_cmd.LogsArgs, restore_read_cmd.logs, ("r1", BUCKET)),
    (verify_cmd.VerifyArgs, verify_cmd.verify, ()),
    (run_cmd.RunArgs, run_cmd.run, ()),
    (preflight_cmd.PreflightArgs, preflight_cmd.preflight, ()),
]


@pytest.mark.parametrize(("cls", "cmd", "argv"), COMMANDS, ids=lambda v: getattr(v, "name", ""))
def test_every_flag_of_a_command_binds_to_its_options(
    cls: type[Command], cmd: click.Command, argv: tuple[str, ...]
) -> None:
    params = parse(cmd, list(argv))
    args = bind_params(cls, params)
    assert isinstance(args, cls)
    with pytest.raises(TypeError, match="no field for the flags \\['bogus'\\]"):
        bind_params(cls, {**params, "bogus": 1})


def test_default_values_of_backup_create() -> None:
    args = args_of(backup_cmd.CreateArgs, backup_cmd.create, "b1", BUCKET)
    assert (args.name, args.ttl, args.parallelism, args.detect_changes) == (
        "b1", "720h0m0s", 8, True)  # fmt: skip
    assert args.bucket == BucketFlags(bucket="file:///nonexistent/bucket")
    assert args.cluster.client.qps is None and args.cluster.client.burst == 100
    assert args.scope.to_scope().include_namespaces == ("*",)
    assert args.key == KeyFlags(None) and args.key.load() is None
    args.validate()


def test_cluster_flags_take_the_environment_and_the_command_line(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("KUBE_MIGRATE_KUBECONFIG", "/env/kc")
    args = args_of(cluster_cmd.InfoArgs, cluster_cmd.info, "--context=ctx", "--qps=5")
    assert args.cluster.kubeconfig == "/env/kc" and args.cluster.context == "ctx"
    assert args.cluster.client.qps == 5.0 and args.cluster.given


def test_source_and_target_flags_share_the_client_flags(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KUBE_MIGRATE_SOURCE_CONTEXT", "src-ctx")
    args = args_of(
        verify_cmd.VerifyArgs, verify_cmd.verify, "--target-kubeconfig=/t/kc", "--burst=7"
    )
    clusters = args.clusters
    assert clusters.source == ClusterFlags(None, "src-ctx", clusters.target.client)
    assert (clusters.target.kubeconfig, clusters.target.context) == ("/t/kc", None)
    assert clusters.target.client.burst == 7 and clusters.source.given


def test_source_target_flags_from_params_takes_exactly_its_keys() -> None:
    params: dict[str, Any] = {
        "source_kubeconfig": "s",
        "source_context": None,
        "target_kubeconfig": None,
        "target_context": "t",
        "qps": 1.5,
        "burst": 3,
        "other": "left",
    }
    flags = SourceTargetFlags.from_params(params)
    assert params == {"other": "left"}
    assert (flags.source.kubeconfig, flags.target.context, flags.source.client.qps) == (
        "s", "t", 1.5)  # fmt: skip
    assert not ClusterFlags(None, None, flags.source.client).given


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (("--ttl=3days",), ("--ttl", "'3days'")),
        (("--ttl=-1h",), ("--ttl", "'-1h'")),
        (("--labels=team=a,nokey",), ("--labels", "'nokey'")),
        (("--labels==v",), ("--labels", "'=v'")),
        (("-l", "a in b"), ("'a in b'",)),
    ],
)
def test_backup_create_validate_refuses(argv: tuple[str, ...], words: tuple[str, ...]) -> None:
    args = args_of(backup_cmd.CreateArgs, backup_cmd.create, "b1", BUCKET, *argv)
    with pytest.raises(UsageError) as err:
        args.validate()
    assert all(w in err.value.message for w in words), err.value.message
    assert err.value.hint and err.value.hint != UsageError.default_hint


def test_backup_create_labels_parse() -> None:
    assert backup_cmd.parse_labels("team=a,empty=") == {"team": "a", "empty": ""}
    assert backup_cmd.parse_labels(None) == {}


def test_backup_delete_needs_confirm() -> None:
    args = args_of(backup_read_cmd.DeleteArgs, backup_read_cmd.delete, "good", BUCKET)
    with pytest.raises(UsageError, match="refusing to delete backup 'good' without --confirm"):
        args.validate()
    args_of(
        backup_read_cmd.DeleteArgs, backup_read_cmd.delete, "good", "--confirm", BUCKET
    ).validate()


@pytest.mark.parametrize(("flag", "value"), [("--timeout", "never"), ("--interval", "1x")])
def test_wait_sync_validate_refuses_bad_durations(flag: str, value: str) -> None:
    args = args_of(
        backup_read_cmd.WaitSyncArgs, backup_read_cmd.wait_sync, "b1", BUCKET, f"{flag}={value}"
    )
    with pytest.raises(UsageError, match=f"invalid {flag} '{value}'"):
        args.validate()


RESTORE = ("--from-backup=b1", BUCKET)


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (("--dry-run=server", "--resume"), ("--resume", "dry run")),
        (("--dry-run=server", "--wait-ready"), ("--wait-ready", "dry run")),
        (("--ready-timeout=soon",), ("--ready-timeout", "'soon'")),
        (("--namespace-mappings=a",), ("--namespace-mappings", "'a'")),
        (("--namespace-mappings=a:b,a:c",), ("--namespace-mappings", "'a' twice")),
        (("--image-registry-mappings=a.io:b.io",), ("--image-registry-mappings",)),
        (("-l", "app=web,tier in ("), ("'tier in ('",)),
    ],
)
def test_restore_create_validate_refuses(argv: tuple[str, ...], words: tuple[str, ...]) -> None:
    args = args_of(restore_cmd.CreateArgs, restore_cmd.create, *RESTORE, *argv)
    with pytest.raises(UsageError) as err:
        args.validate()
    assert all(w in err.value.message for w in words), err.value.message


@pytest.mark.parametrize(
    "argv",
    [
        ("--dry-run", "--resume"),  # a client dry run plans only: --resume is harmless
        ("--dry-run=server", "--namespace-mappings=a:b"),
        ("--resume", "--wait-ready", "--ready-timeout=90s"),
    ],
)
def test_restore_create_validate_accepts(argv: tuple[str, ...]) -> None:
    args = args_of(restore_cmd.CreateArgs, restore_cmd.create, *RESTORE, *argv)
    args.validate()
    assert args.mappings.to_mappings().namespaces == (
        {"a": "b"} if "--namespace-mappings=a:b" in argv else {}
    )


def test_restore_bare_dry_run_means_client() -> None:
    args = args_of(restore_cmd.CreateArgs, restore_cmd.create, "--dry-run", "r1", *RESTORE)
    assert (args.dry_run, args.name) == ("client", "r1")


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (("--show-secrets",), ("never prints Secret values", "--show-secrets")),
        (("--show-secrets=yes",), ("never prints Secret values",)),
        (("--from-backup=b1",), ("--from-backup needs --bucket",)),
        (("--encryption-key-file=/k", BUCKET), ("--encryption-key-file", "--from-backup only")),
        (("--namespace-mappings=a:x,b:x",), ("onto 'x'",)),
        (("-l", "=web"), ("'=web'",)),
    ],
)
def test_verify_validate_refuses(argv: tuple[str, ...], words: tuple[str, ...]) -> None:
    args = args_of(verify_cmd.VerifyArgs, verify_cmd.verify, *argv)
    with pytest.raises(UsageError) as err:
        args.validate()
    assert all(w in err.value.message for w in words), err.value.message


@pytest.mark.parametrize(
    "argv",
    [
        (),
        ("--show-secrets=false",),
        ("--from-backup=b1", BUCKET, "--encryption-key-file=/k"),
    ],
)
def test_verify_validate_accepts(argv: tuple[str, ...]) -> None:
    args_of(verify_cmd.VerifyArgs, verify_cmd.verify, *argv).validate()


def test_verify_bucket_is_optional_but_named_when_given() -> None:
    assert args_of(verify_cmd.VerifyArgs, verify_cmd.verify).bucket.bucket is None
    with pytest.raises(UsageError, match="no bucket"):
        BucketFlags(bucket=None).open()


def test_scope_flags_name_the_scope() -> None:
    scope = ScopeFlags("a,b", "c", "", "secrets", "app=web", None).to_scope()
    assert scope.include_namespaces == ("a", "b") and scope.exclude_namespaces == ("c",)
    assert scope.include_resources == ("*",) and scope.exclude_resources == ("secrets",)
    assert scope.include_cluster_resources == "auto"


def test_bucket_and_key_flags_open_what_they_name(tmp_path: Path) -> None:
    store = BucketFlags(bucket=f"file://{tmp_path}/b").open(read_only=True)
    assert store.read_only and not BucketFlags(bucket=f"file://{tmp_path}/b").open().read_only
    key = tmp_path / "k"
    key.write_bytes(bytes(range(32)))
    assert KeyFlags(str(key)).load() is not None and KeyFlags(None).load() is None


@dataclass(frozen=True)
class _Nested(Command):
    bucket: BucketFlags
    key: KeyFlags
    plain: int = 3


def test_nested_groups_take_their_fields_and_defaults_fill_missing_ones() -> None:
    params = {"bucket": "s3://b", "s3_region": "eu", "encryption_key_file": "/k"}
    args = bind_params(_Nested, params)
    assert args == _Nested(BucketFlags("s3://b", s3_region="eu"), KeyFlags("/k"), 3)
    assert params == {"bucket": "s3://b", "s3_region": "eu", "encryption_key_file": "/k"}
    with pytest.raises(TypeError):  # a flag the options need but the command lacks
        bind_params(_Nested, {"s3_region": "eu"})
