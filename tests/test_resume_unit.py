"""Resuming a run that began elsewhere (another machine, or a pod of `run --in-cluster`),
pure logic on a file:// bucket: its journaled kubeconfig paths are not here, so this
machine's variables stand in (or a one-line error says which flag to pass); `peek_run`
reads the bucket's copy without journaling it here; `refresh_journal` brings this
machine's stale journal up to the bucket's copy after a pod continued the run."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from migrate.errors import UsageError
from migrate.pipeline.resume import (
    mirror_to,
    peek_run,
    refresh_journal,
    resume_run,
)
from migrate.playbook import BucketEndpoint, ClusterEndpoint, Endpoints, RunState, load_playbook
from migrate.playbook.state import runs_dir
from migrate.store import open_store

PLAYBOOK = """apiVersion: kube-migrate.io/v1alpha1
kind: Playbook
metadata:
  name: far
spec:
  scope:
    includeNamespaces: [shop]
  backup:
    name: nightly
  verify:
    fromBackup: true
  steps: [restore, verify]
"""
POD = "/etc/kube-migrate/run"


@pytest.fixture
def started_in_a_pod(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[str, BucketEndpoint]:
    """A run journaled by "a pod" (its own state directory, its kubeconfig paths), its
    state mirrored to the bucket; this machine's state directory is another one."""
    bucket = BucketEndpoint(url=f"file://{tmp_path / 'bucket'}")
    monkeypatch.setenv("KUBE_MIGRATE_STATE_DIR", str(tmp_path / "pod-state"))
    (tmp_path / "pb.yaml").write_text(PLAYBOOK)
    pb = load_playbook(tmp_path / "pb.yaml", env={})
    pod_side = ClusterEndpoint(f"{POD}/target.kubeconfig")
    endpoints = Endpoints(ClusterEndpoint(f"{POD}/source.kubeconfig"), pod_side, bucket, None)
    state = RunState.create(pb, endpoints=endpoints)
    mirror_to(state, pb, open_store(bucket.url))
    state.steps[0].status = "succeeded"
    state.status = "failed"
    state.save()
    monkeypatch.setenv("KUBE_MIGRATE_STATE_DIR", str(tmp_path / "laptop-state"))
    return state.run, bucket


def kubeconfig_here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str) -> Path:
    """A target kubeconfig on this machine, named by KUBE_MIGRATE_TARGET_KUBECONFIG."""
    kc = tmp_path / name
    kc.write_text("{}")
    monkeypatch.setenv("KUBE_MIGRATE_TARGET_KUBECONFIG", str(kc))
    return kc


def test_peek_reads_the_bucket_copy_and_journals_nothing_here(
    started_in_a_pod: tuple[str, BucketEndpoint], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run, bucket = started_in_a_pod
    kc = kubeconfig_here(tmp_path, monkeypatch, "target.kubeconfig")
    monkeypatch.setenv("KUBE_MIGRATE_TARGET_CONTEXT", "lab")
    pb, endpoints = peek_run(run, {}, replace(bucket, read_only=True))
    assert pb.name == "far" and [s.name for s in pb.steps] == ["restore", "verify"]
    assert endpoints.target == ClusterEndpoint(str(kc), "lab")  # the pod's path is not here
    assert endpoints.source.kubeconfig == f"{POD}/source.kubeconfig"  # no step needs it
    assert not (runs_dir() / run).exists()
    with pytest.raises(UsageError, match="no run named 'nope' here nor in file://"):
        peek_run("nope", {}, bucket)


def test_a_missing_kubeconfig_without_a_variable_names_the_flag(
    started_in_a_pod: tuple[str, BucketEndpoint], monkeypatch: pytest.MonkeyPatch
) -> None:
    run, bucket = started_in_a_pod
    monkeypatch.delenv("KUBE_MIGRATE_TARGET_KUBECONFIG", raising=False)
    with pytest.raises(UsageError) as err:
        resume_run(run, {}, bucket)
    assert str(err.value) == (
        f"run {run}'s target kubeconfig {POD}/target.kubeconfig is not on this machine"
    )
    assert err.value.hint == ("pass --target-kubeconfig (or export KUBE_MIGRATE_TARGET_KUBECONFIG)")


def test_a_flag_given_beats_the_variable(
    started_in_a_pod: tuple[str, BucketEndpoint], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run, bucket = started_in_a_pod
    kubeconfig_here(tmp_path, monkeypatch, "var.kubeconfig")
    flag = tmp_path / "flag.kubeconfig"
    flag.write_text("{}")
    state, _, endpoints = resume_run(run, {"target_kubeconfig": str(flag)}, bucket)
    assert endpoints.target.kubeconfig == str(flag)
    assert [s.status for s in state.steps] == ["succeeded", "pending"]  # adopted, resumed
    assert (state.endpoints or {})["target"]["kubeconfig"] == str(flag)  # journaled next save


def test_refresh_journal_takes_the_bucket_copy_after_a_pod_ran_on(
    started_in_a_pod: tuple[str, BucketEndpoint], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run, bucket = started_in_a_pod
    kubeconfig_here(tmp_path, monkeypatch, "t.kubeconfig")
    _, pb, _ = resume_run(run, {}, bucket)  # journaled here now, step 2 pending
    store = open_store(bucket.url)
    there = RunState.from_text(run, next(store.get(o.key) for o in store.list("restores/")))
    there.steps[1].status, there.status = "succeeded", "succeeded"
    (tmp_path / "elsewhere").mkdir()
    mirror_to(replace(there, directory=tmp_path / "elsewhere"), pb, store)  # "the pod"
    assert RunState.load(run).status == "running"
    refresh_journal(run, bucket)
    assert RunState.load(run).status == "succeeded"
    with pytest.raises(UsageError, match="already succeeded"):
        resume_run(run, {}, bucket)
    with pytest.raises(UsageError, match="already succeeded"):
        peek_run(run, {}, bucket)
