"""Cut-over Job hooks on the target's real node, without a whole live migration (that
one's success path: test_live_migration): a Job that fails gives its pod's last log lines
in the error, one that outlasts its timeout is deleted and fails the cut-over, and the
run's facts reach every container; the playbook rules refuse a hook that is both or
neither kind, or a Job hook without a DNS-label name."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from migrate.cluster import Cluster
from migrate.errors import NotFound, PartialFailure, PlaybookError
from migrate.pipeline.cutover_hooks import job_manifest, run_hooks
from migrate.playbook import load_playbook
from migrate.playbook.live import CutoverHook
from tests.test_real_nodes import NODE_SELECTOR, TOLERATION

FACTS = {"KUBE_MIGRATE_RUN": "live-20261207000000", "KUBE_MIGRATE_TARGET_NAMESPACES": "shop"}


def hook(name: str, script: str, image: str, timeout: float = 60) -> CutoverHook:
    pod = {
        "nodeSelector": NODE_SELECTOR,
        "tolerations": [TOLERATION],
        "terminationGracePeriodSeconds": 0,
        "containers": [
            {"name": "h", "image": image, "imagePullPolicy": "IfNotPresent",
             "command": ["sh", "-c", script]}
        ],
    }  # fmt: skip
    return CutoverHook(name, (), timeout, {"spec": {"template": {"spec": pod}}})


def test_a_failed_job_hook_says_why_and_a_slow_one_is_deleted(
    target: Cluster, target_ns: str, image: str
) -> None:
    ok = hook("ok", 'test "$KUBE_MIGRATE_TARGET_NAMESPACES" = shop', image)
    bad = hook("dns", "echo switching; echo 'no record shop.example.' >&2; exit 3", image)
    rows = run_hooks((ok,), target, FACTS, {"KUBE_MIGRATE_TARGET_KUBECONFIG": "/x"}, target_ns)
    assert [(r["hook"], r["exitCode"]) for r in rows] == [("ok", 0)]
    assert rows[0]["job"].startswith(f"{target_ns}/ok-live-20261207000000-")
    with pytest.raises(PartialFailure) as err:
        run_hooks((ok, bad), target, FACTS, {}, target_ns)
    assert err.value.message.startswith(f"cut-over hook dns: Job {target_ns}/dns-")
    assert "failed: " in err.value.message and "no record shop.example." in err.value.message
    slow = hook("slow", "sleep 600", image, timeout=3)
    with pytest.raises(PartialFailure, match=r"not done after 3s \(deleted\)") as err:
        run_hooks((slow,), target, FACTS, {}, target_ns)
    name = err.value.message.split("/")[1].split()[0]
    with pytest.raises(NotFound):
        target.get(target.discovery().resolve("jobs.batch"), name, target_ns)


def test_job_manifest_keeps_the_users_spec_and_adds_the_facts() -> None:
    mine: dict[str, Any] = {"spec": {"backoffLimit": 2, "template": {
        "metadata": {"labels": {"app": "dns"}},
        "spec": {"containers": [{"name": "a", "image": "i", "env": [{"name": "X", "value": "1"}]}]},
    }}}  # fmt: skip
    h = CutoverHook("dns", (), 60, mine)
    job = job_manifest(h, FACTS, "dns-1", "ns")
    spec = job["spec"]
    assert spec["backoffLimit"] == 2 and spec["ttlSecondsAfterFinished"] == 3600
    assert spec["template"]["spec"]["restartPolicy"] == "Never"
    env = spec["template"]["spec"]["containers"][0]["env"]
    assert env[0] == {"name": "X", "value": "1"} and {e["name"] for e in env[1:]} == set(FACTS)
    assert spec["template"]["metadata"]["labels"]["app"] == "dns"
    assert job["metadata"]["labels"]["kube-migrate.io/cutover-hook"] == "dns"
    assert "env" in mine["spec"]["template"]["spec"]["containers"][0]  # not changed in place
    assert len(mine["spec"]["template"]["spec"]["containers"][0]["env"]) == 1


BOOK = """apiVersion: kube-migrate.io/v1alpha1
kind: Playbook
metadata: {name: live}
spec:
  scope: {includeNamespaces: [a]}
  restore: {holdWorkloads: true}
  cutover:
    hooks: [%s]
  steps: [backup, waitForSync, restore, precopy, cutover]
"""
JOB = "job: {spec: {template: {spec: {containers: []}}}}"


@pytest.mark.parametrize(
    ("hook_yaml", "message"),
    [
        (f"{{name: a, command: [x], {JOB}}}", "a cut-over hook is a command or a job"),
        ("{name: a}", "a cut-over hook is a command or a job"),
        (f"{{{JOB}}}", "a job hook needs a name: it names its Job"),
        (f"{{name: Switch_DNS, {JOB}}}", "'Switch_DNS' is not a DNS label"),
    ],
)
def test_playbook_refuses_a_hook_of_both_kinds_or_neither(
    hook_yaml: str, message: str, tmp_path: Path
) -> None:
    (tmp_path / "pb.yaml").write_text(BOOK % hook_yaml)
    with pytest.raises(PlaybookError, match=message):
        load_playbook(tmp_path / "pb.yaml", env={})


def test_playbook_takes_a_command_hook_named_freely_and_a_job_hook(tmp_path: Path) -> None:
    path = tmp_path / "pb.yaml"
    path.write_text(BOOK % f"{{name: Switch DNS, command: [x]}}, {{name: dns, {JOB}}}")
    hooks = load_playbook(path, env={}).cutover.hooks
    assert [(h.name, h.command, h.job is not None) for h in hooks] == [
        ("Switch DNS", ("x",), False),
        ("dns", (), True),
    ]
