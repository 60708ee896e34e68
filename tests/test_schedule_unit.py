"""A schedule's pure parts: the cron check (what the API server's parser would refuse,
refused first with the field named), and the manifests (what RBAC each flag turns on,
the locked-down pod, the overrides)."""

from __future__ import annotations

import pytest

from migrate.errors import UsageError
from migrate.schedule.cron import check_schedule
from migrate.schedule.manifests import ScheduleSpec, manifests

RESOURCES = [("", "pods"), ("", "secrets"), ("", "pods/exec"), ("apps", "deployments")]


@pytest.mark.parametrize(
    "text",
    [
        "* * * * *",
        "0 */6 * * *",
        "5,35 1-5 1 jan-mar mon-fri",
        "@daily",
        "@HOURLY",
        "0 0 * * 7",
        "  0  3 * * *  ",
        "*/15 0-23/2 ? * sun",
    ],
)
def test_valid_schedules(text: str) -> None:
    assert check_schedule(text) == " ".join(text.split())


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("61 * * * *", "minute '61': out of range 0-59"),
        ("* 24 * * *", "hour '24': out of range 0-23"),
        ("* * 0 * *", "day of month '0': out of range 1-31"),
        ("* * * 13 *", "month '13': out of range 1-12"),
        ("* * * * 8", "day of week '8': out of range 0-6"),
        ("0 * * *", "4 fields, not 5"),
        ("0 0 * * * *", "6 fields, not 5"),
        ("*/0 * * * *", "the step after / must be a positive number"),
        ("5-1 * * * *", "the range's start is after its end"),
        ("x * * * *", "minute 'x': not a number"),
        ("* * * foo *", "month 'foo': not a number or name"),
        ("@every 5m", "unknown descriptor"),
        ("TZ=UTC 0 * * * *", "a time zone does not go in the schedule"),
    ],
)
def test_invalid_schedules_name_the_field(text: str, why: str) -> None:
    with pytest.raises(UsageError) as err:
        check_schedule(text)
    assert why in err.value.message and err.value.hint


def _kinds(spec: ScheduleSpec) -> list[str]:
    return [f"{o['kind']}/{o['metadata'].get('namespace', '')}" for o in manifests(spec, RESOURCES)]


def test_objects_only_backup_gets_read_rules_and_no_subresource() -> None:
    spec = ScheduleSpec("s", "@daily", "img", "720h", namespaces=("a",))
    objs = manifests(spec, RESOURCES)
    assert _kinds(spec) == [
        "ServiceAccount/kube-migrate",
        "ClusterRole/",
        "ClusterRoleBinding/",
        "CronJob/kube-migrate",
    ]
    rules = objs[1]["rules"]
    assert rules == [
        {"apiGroups": [""], "resources": ["pods", "secrets"], "verbs": ["get", "list", "watch"]},
        {"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["get", "list", "watch"]},
    ]  # pods/exec is not there: a GET on it would run commands


def test_volume_rules_are_bound_in_the_backed_up_namespaces_only() -> None:
    spec = ScheduleSpec(
        "s",
        "@daily",
        "img",
        "1h",
        namespaces=("a", "b"),
        volumes=True,
        snapshots=True,
        quiesce=True,
    )
    objs = manifests(spec, RESOURCES)
    bindings = [o for o in objs if o["kind"] == "RoleBinding"]
    assert sorted(b["metadata"]["namespace"] for b in bindings) == ["a", "b"]
    role = next(o for o in objs if o["metadata"]["name"].endswith(":volumes"))
    resources = {r for rule in role["rules"] for r in rule["resources"]}
    assert {"pods", "pods/exec", "secrets", "volumesnapshots", "deployments/scale"} <= resources
    contents = next(o for o in objs if o["metadata"]["name"].endswith(":snapshot-contents"))
    assert contents["rules"][0]["verbs"] == ["patch"]
    every = ScheduleSpec("s", "@daily", "img", "1h", volumes=True, snapshots=False)
    kinds = _kinds(every)
    assert kinds.count("ClusterRoleBinding/") == 2 and "RoleBinding/a" not in kinds
    assert not any("snapshot-contents" in o["metadata"]["name"] for o in manifests(every, []))


def test_cronjob_pod_is_locked_down_and_carries_no_secret_value() -> None:
    spec = ScheduleSpec(
        "shop",
        "0 3 * * *",
        "img:1",
        "48h",
        backup_args=("--volumes", "none"),
        bucket_env={"KUBE_MIGRATE_BUCKET": "s3://b"},
        credentials_secret="creds",
        time_zone="Europe/Berlin",
    )
    cron = manifests(spec, RESOURCES)[-1]
    s = cron["spec"]
    assert s["concurrencyPolicy"] == "Forbid" and s["startingDeadlineSeconds"] == 300
    assert s["timeZone"] == "Europe/Berlin" and s["successfulJobsHistoryLimit"] == 3
    pod = s["jobTemplate"]["spec"]["template"]["spec"]
    c = pod["containers"][0]
    assert c["args"] == ["schedule", "fire", "shop", "--ttl", "48h", "--", "--volumes", "none"]
    assert c["securityContext"]["readOnlyRootFilesystem"] is True
    assert c["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert pod["securityContext"]["runAsUser"] == 65532 and "hostNetwork" not in pod
    env = {e["name"]: e["value"] for e in c["env"]}
    assert env == {
        "KUBE_MIGRATE_BUCKET": "s3://b",
        "AWS_SHARED_CREDENTIALS_FILE": "/credentials/cloud",
    }
    assert {"name": "credentials", "secret": {"secretName": "creds"}} in pod["volumes"]


def test_pod_overrides_patch_the_template_or_fail_in_one_line() -> None:
    ops = ({"op": "add", "path": "/spec/hostNetwork", "value": True},)
    spec = ScheduleSpec("s", "@daily", "img", "1h", pod_overrides=ops)
    pod = manifests(spec, [])[-1]["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    assert pod["hostNetwork"] is True
    bad = ScheduleSpec(
        "s",
        "@daily",
        "img",
        "1h",
        pod_overrides=({"op": "replace", "path": "/spec/nope", "value": 1},),
    )
    with pytest.raises(UsageError, match="does not apply to the pod template"):
        manifests(bad, [])


def test_a_drill_runs_its_playbook_with_no_rbac_and_no_token() -> None:
    from migrate.schedule.manifests import drill_secret

    spec = ScheduleSpec("dr", "@weekly", "img", "1h", drill=True, credentials_secret="s3")
    objs = manifests(spec, RESOURCES)
    assert [o["kind"] for o in objs] == ["ServiceAccount", "CronJob"]  # no RBAC at all
    pod = objs[-1]["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    assert pod["automountServiceAccountToken"] is False  # its identity: the kubeconfig
    c = pod["containers"][0]
    assert c["args"][:2] == ["run", "/etc/kube-migrate/drill/playbook.yaml"]
    assert {"name": "drill", "secret": {"secretName": "dr-drill"}} in pod["volumes"]
    secret = drill_secret(spec, "pb", "kc")
    assert secret["metadata"]["name"] == "dr-drill"
    assert secret["metadata"]["labels"]["kube-migrate.io/schedule"] == "dr"
