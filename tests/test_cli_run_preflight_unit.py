"""`run` and `preflight` options without clusters: every flag lands in RunArgs or
PreflightArgs, run's endpoint flags reach the playbook's endpoints and the store options
(`--s3-path-style` included) only when given on the command line, and each `validate()`
refuses what the command cannot do before anything is opened.  The arguments go through
the commands' real click parsers."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner

from migrate.cli.binding import bind_params
from migrate.cli.preflight_cmd import PreflightArgs, preflight
from migrate.cli.run_cmd import RunArgs, on_command_line, run
from migrate.errors import UsageError
from migrate.pipeline.context import open_bucket
from migrate.playbook import Endpoints, load_playbook, resolve_endpoints
from migrate.store.s3 import S3Store


@pytest.fixture(autouse=True)
def _no_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """The dev environment's KUBE_MIGRATE_* and AWS_* variables would fill flags."""
    for key in list(os.environ):
        if key.startswith(("KUBE_MIGRATE_", "AWS_")) and key != "KUBE_MIGRATE_STATE_DIR":
            monkeypatch.delenv(key)


def run_args(*argv: str) -> tuple[RunArgs, dict[str, Any]]:
    """RunArgs for `argv`, and the endpoint flags the command passes to the pipeline."""
    with run.make_context("run", list(argv)) as ctx:
        args = bind_params(RunArgs, dict(ctx.params))
        return args, args.endpoint_flags(on_command_line(ctx))


def preflight_args(*argv: str) -> PreflightArgs:
    with preflight.make_context("preflight", list(argv)) as ctx:
        return bind_params(PreflightArgs, dict(ctx.params))


RUN_ARGV = (
    "pb.yaml",
    "--set=restore.replicas=1",
    "--set=scope.includeNamespaces=[a]",
    "--report-dir=/r",
    "--source-kubeconfig=/s/kc",
    "--source-context=sc",
    "--target-kubeconfig=/t/kc",
    "--target-context=tc",
    "--qps=2.5",
    "--burst=9",
    "--bucket=s3://b/p",
    "--target-bucket=s3://replica/p",
    "--s3-endpoint=http://minio.test:9000",
    "--s3-region=eu-west-1",
    "--s3-profile=prof",
    "--s3-path-style",
    "--read-only-bucket",
    "--s3-sse=aws:kms",
    "--s3-kms-key-id=alias/k",
    "--encryption-key-file=/k/key",
    "-o",
    "json",
)


def test_run_binds_every_flag() -> None:
    args, flags = run_args(*RUN_ARGV, "--dry-run")
    sets = ("restore.replicas=1", "scope.includeNamespaces=[a]")
    assert (args.playbook, args.overrides, args.resume, args.dry_run, args.report_dir) == (
        "pb.yaml", sets, None, True, "/r")  # fmt: skip
    src, tgt = args.clusters.source, args.clusters.target
    assert (src.kubeconfig, src.context, tgt.kubeconfig, tgt.context) == (
        "/s/kc", "sc", "/t/kc", "tc")  # fmt: skip
    assert (src.client.qps, src.client.burst) == (2.5, 9) and tgt.client == src.client
    b = args.bucket
    assert (b.bucket, b.s3_endpoint, b.s3_region, b.s3_profile) == (
        "s3://b/p", "http://minio.test:9000", "eu-west-1", "prof")  # fmt: skip
    assert (b.s3_path_style, b.read_only_bucket, b.s3_sse, b.s3_kms_key_id) == (
        True, True, "aws:kms", "alias/k")  # fmt: skip
    assert (args.target_bucket, args.key.encryption_key_file, args.output) == (
        "s3://replica/p", "/k/key", "json")  # fmt: skip
    # everything given on the command line goes to the pipeline, by its option name
    assert flags == {
        "source_kubeconfig": "/s/kc",
        "source_context": "sc",
        "target_kubeconfig": "/t/kc",
        "target_context": "tc",
        "bucket": "s3://b/p",
        "s3_endpoint": "http://minio.test:9000",
        "s3_region": "eu-west-1",
        "s3_profile": "prof",
        "s3_path_style": True,
        "read_only_bucket": True,
        "s3_sse": "aws:kms",
        "s3_kms_key_id": "alias/k",
        "target_bucket": "s3://replica/p",
        "encryption_key_file": "/k/key",
    }


def test_run_defaults_give_the_pipeline_no_flags() -> None:
    args, flags = run_args("pb.yaml")
    assert flags == {"read_only_bucket": None}
    assert args.bucket.s3_path_style is None and args.resume_bucket() is None


def test_only_flags_on_the_command_line_override(monkeypatch: pytest.MonkeyPatch) -> None:
    for var, value in {
        "KUBE_MIGRATE_BUCKET": "s3://env-bucket",
        "KUBE_MIGRATE_S3_ENDPOINT": "http://env:9000",
        "KUBE_MIGRATE_SOURCE_KUBECONFIG": "/env/kc",
        "KUBE_MIGRATE_TARGET_BUCKET": "s3://env-replica",
        "KUBE_MIGRATE_S3_SSE": "AES256",
    }.items():
        monkeypatch.setenv(var, value)
    args, flags = run_args("pb.yaml", "--s3-region=r1")
    assert args.bucket.bucket == "s3://env-bucket"  # click read the variable...
    assert flags == {"s3_region": "r1", "read_only_bucket": None}  # ...the pipeline did not
    _, flags = run_args("pb.yaml", "--bucket=s3://flag", "--source-kubeconfig=/f/kc")
    assert (flags["bucket"], flags["source_kubeconfig"]) == ("s3://flag", "/f/kc")
    assert "s3_endpoint" not in flags and "target_bucket" not in flags


def _playbook(tmp_path: Path, path_style: str) -> str:
    text = (
        "apiVersion: kube-migrate.io/v1alpha1\nkind: Playbook\nmetadata:\n  name: t\nspec:\n"
        "  source:\n    kubeconfig: /pb/source.kubeconfig\n"
        "  bucket:\n    url: s3://pb-bucket/runs\n    endpoint: http://pb-minio:9000\n"
        f"{path_style}"
        "  steps:\n  - backup\n"
    )
    (tmp_path / "pb.yaml").write_text(text)
    return str(tmp_path / "pb.yaml")


def _endpoints(path: str, *argv: str) -> Endpoints:
    _, flags = run_args(path, *argv)
    return resolve_endpoints(load_playbook(path, env={}), flags, env={})


@pytest.mark.parametrize(
    ("in_playbook", "argv", "expected"),
    [
        ("", ("--s3-path-style",), True),
        ("    pathStyle: false\n", ("--s3-path-style",), True),  # the flag wins
        ("    pathStyle: true\n", ("--s3-virtual-hosted",), False),
        ("    pathStyle: false\n", (), False),  # no flag: the playbook's
        ("", (), None),  # neither: the store's default (path-style with an endpoint)
    ],
)
def test_run_s3_path_style_reaches_the_store(
    tmp_path: Path, in_playbook: str, argv: tuple[str, ...], expected: bool | None
) -> None:
    ep = _endpoints(_playbook(tmp_path, in_playbook), *argv)
    assert ep.bucket is not None and ep.bucket.path_style is expected
    assert ep.bucket.open_kwargs()["s3_path_style"] is expected
    store = open_bucket(ep.bucket, read_only=True)  # as the pipeline's Context opens it
    assert isinstance(store, S3Store) and store.options.path_style is expected
    assert store.options.resolved_path_style() is (expected is not False)
    assert ep.target_bucket == ep.bucket  # the target side reads the same bucket


def test_run_flags_beat_the_playbook_and_the_playbook_beats_variables(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _playbook(tmp_path, "")
    monkeypatch.setenv("KUBE_MIGRATE_BUCKET", "s3://env-bucket")
    assert _endpoints(path).bucket.url == "s3://pb-bucket/runs"  # type: ignore[union-attr]
    ep = _endpoints(path, "--bucket=s3://flag-bucket", "--s3-endpoint=http://flag:1")
    assert ep.bucket is not None
    assert (ep.bucket.url, ep.bucket.endpoint) == ("s3://flag-bucket", "http://flag:1")


def test_run_resume_bucket_takes_the_flags_and_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KUBE_MIGRATE_BUCKET", "s3://env-bucket")
    args, _ = run_args("--resume=r1", "--s3-path-style", "--s3-region=r")
    where = args.resume_bucket()
    assert where is not None and where.read_only
    assert (where.url, where.path_style, where.region) == ("s3://env-bucket", True, "r")
    args, _ = run_args("--resume=r1", "--target-bucket=s3://replica")
    assert args.resume_bucket().url == "s3://replica"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (("--resume=r1", "pb.yaml"), "PLAYBOOK cannot change it"),
        (("--resume=r1", "--set=a=1", "--dry-run"), "--set and --dry-run cannot change it"),
    ],
)
def test_run_validate_refuses_changing_a_resumed_run(argv: tuple[str, ...], words: str) -> None:
    args, _ = run_args(*argv)
    with pytest.raises(UsageError, match=words) as err:
        args.validate()
    assert "start a new run" in (err.value.hint or "")


def test_run_validate_needs_a_playbook_or_resume() -> None:
    with pytest.raises(click.UsageError, match="give a PLAYBOOK file, or --resume RUN"):
        run_args()[0].validate()
    run_args("--resume=r1")[0].validate()
    run_args("pb.yaml", "--dry-run")[0].validate()


def test_run_help_lists_the_shared_bucket_flags() -> None:
    result = CliRunner().invoke(run, ["--help"])
    assert result.exit_code == 0, result.output
    for flag in ("--s3-path-style / --s3-virtual-hosted", "--target-bucket", "--s3-sse", "--qps"):
        assert flag in result.output


def test_preflight_binds_every_flag() -> None:
    args = preflight_args(
        "--source-context=s", "--target-kubeconfig=/t", "--burst=5",
        "--bucket=s3://b", "--s3-path-style", "--from-backup=b1", "--encryption-key-file=/k",
        "--include-namespaces=a,b", "--exclude-resources=secrets", "-l", "app=web",
        "--include-cluster-resources=false", "--namespace-mappings=a:c",
        "--storage-class-mappings=x:y", "--existing-resource-policy=update",
        "--pv-policy=retain-as-is", "--fail-on=warning", "--parallelism=3", "-o", "html",
    )  # fmt: skip
    assert (args.clusters.source.context, args.clusters.target.kubeconfig) == ("s", "/t")
    assert args.clusters.target.client.burst == 5
    assert (args.bucket.bucket, args.bucket.s3_path_style) == ("s3://b", True)
    assert (args.from_backup, args.key.encryption_key_file) == ("b1", "/k")
    scope = args.scope.to_scope()
    assert scope.include_namespaces == ("a", "b") and scope.exclude_resources == ("secrets",)
    assert scope.include_cluster_resources == "false"
    mappings = args.mappings.to_mappings()
    assert (mappings.namespaces, mappings.storage_classes) == ({"a": "c"}, {"x": "y"})
    assert (args.existing_resource_policy, args.pv_policy, args.fail_on) == (
        "update", "retain-as-is", "warning")  # fmt: skip
    assert (args.parallelism, args.output) == (3, "html")


FROM_BACKUP = ("--target-kubeconfig=/t", "--from-backup=b1", "--bucket=s3://b")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (("--source-kubeconfig=/s",), "no target cluster"),
        (("--target-kubeconfig=/t",), "no source: pass --source-kubeconfig"),
        (("--target-kubeconfig=/t", "--from-backup=b1"), "--from-backup needs --bucket"),
        (
            (*FROM_BACKUP, "--include-cluster-resources=true"),
            "--include-cluster-resources applies to a live source only",
        ),
        (
            ("--target-kubeconfig=/t", "--source-kubeconfig=/s", "--encryption-key-file=/k"),
            "--encryption-key-file applies to --from-backup only",
        ),
        (("--target-kubeconfig=/t", "--source-kubeconfig=/s", "-l", "=x"), "'=x'"),
        (("--target-kubeconfig=/t", "--source-kubeconfig=/s", "--namespace-mappings=a"), "'a'"),
    ],
)
def test_preflight_validate_refuses(argv: tuple[str, ...], message: str) -> None:
    with pytest.raises(UsageError, match=message.replace("(", r"\(")):
        preflight_args(*argv).validate()


@pytest.mark.parametrize(
    "argv",
    [
        ("--target-context=t", "--source-context=s"),
        (*FROM_BACKUP, "--encryption-key-file=/k"),
    ],
)
def test_preflight_validate_accepts(argv: tuple[str, ...]) -> None:
    preflight_args(*argv).validate()


def test_preflight_bucket_is_optional() -> None:
    assert preflight_args().bucket.bucket is None
    result = CliRunner().invoke(preflight, ["--help"])
    assert result.exit_code == 0 and "--s3-path-style" in result.output
