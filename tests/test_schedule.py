"""Scheduled backups on the real node: `schedule create` installs a CronJob whose pod runs
the kube-migrate image the dev-env built offline; it backs up on time and at `run-now`,
labels its backups with Velero's schedule label, collects expired ones, stops when paused,
and its ServiceAccount can read and nothing more.

The CronJobs run `* * * * *`; the module's fixture installs them first so that the wait
for the minute's run overlaps the other tests (the scheduled-run test comes last).
"""

from __future__ import annotations

import json
import os
import re
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from migrate.cluster import Cluster, ClusterRef
from migrate.errors import Forbidden
from tests.conftest import Env
from tests.helpers import ROOT, run_cli, wait_for


@dataclass
class Installed:
    ns: str  # where the schedules live
    data: str  # the namespace they back up
    bucket: str
    flags: list[str]  # what every `schedule create` here takes
    started: float


def dev_env_overrides(kubeconfig: str, path: Path) -> Path:
    """The dev-env's pod overrides (README, "Schedules"): no kube-proxy there, so the pod
    reaches the API server and MinIO on the host's loopback, on the tainted real node."""
    server = yaml.safe_load(Path(kubeconfig).read_text())["clusters"][0]["cluster"]["server"]
    host, port = server.removeprefix("https://").rsplit(":", 1)
    env = "/spec/containers/0/env/-"
    ops = [
        {"op": "add", "path": "/spec/hostNetwork", "value": True},
        {"op": "add", "path": "/spec/dnsPolicy", "value": "ClusterFirstWithHostNet"},
        {"op": "add", "path": "/spec/nodeSelector", "value": {"kube-migrate.dev/node": "real"}},
        {
            "op": "add",
            "path": "/spec/tolerations",
            "value": [{"key": "kube-migrate.dev/real-node", "operator": "Exists"}],
        },
        {"op": "add", "path": env, "value": {"name": "KUBERNETES_SERVICE_HOST", "value": host}},
        {"op": "add", "path": env, "value": {"name": "KUBERNETES_SERVICE_PORT", "value": port}},
    ]
    path.write_text(json.dumps(ops))
    return path


def _res(c: Cluster, name: str) -> Any:
    return c.discovery().resolve(name)


def prepare(
    source: Cluster, dev_env: Env, tmp: Path, bucket: str, kubeconfig: str = ""
) -> Installed:
    """A namespace for schedules (with the bucket's credentials as a Secret), one with a
    ConfigMap to back up, and the flags every `schedule create` takes on the dev-env."""
    image = os.environ.get("KUBE_MIGRATE_IMAGE")
    if not image:
        pytest.fail("KUBE_MIGRATE_IMAGE not set: `hack/dev-env up` imports the image")
    tag = uuid.uuid4().hex[:6]
    ns, data = f"km-sched-{tag}", f"t-sched-data-{tag}"
    for n in (ns, data):
        source.create(
            _res(source, "namespaces"),
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": n}},
        )
    creds = (
        f"[default]\naws_access_key_id={os.environ['AWS_ACCESS_KEY_ID']}\n"
        f"aws_secret_access_key={os.environ['AWS_SECRET_ACCESS_KEY']}\n"
    )
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s3"}}
    source.create(_res(source, "secrets"), secret | {"stringData": {"cloud": creds}}, ns)
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "app"}, "data": {"a": "1"}}
    source.create(_res(source, "configmaps"), cm, data)
    flags = [
        "--kubeconfig", kubeconfig or dev_env.source_kubeconfig, "-n", ns, "--image", image,
        "--bucket", bucket, "--s3-endpoint", os.environ["AWS_ENDPOINT_URL"],
        "--credentials-secret", "s3:cloud",
        "--pod-overrides",
        str(dev_env_overrides(kubeconfig or dev_env.source_kubeconfig, tmp / "o.json")),
    ]  # fmt: skip
    return Installed(ns, data, bucket, flags, time.time())


def tidy(source: Cluster, dev_env: Env, env: Installed, *names: str) -> None:
    for name in names:  # flags[:4]: --kubeconfig FILE -n NS
        run_cli("schedule", "delete", name, *env.flags[:4])
    for n in (env.ns, env.data):
        source.delete(_res(source, "namespaces"), n)


@pytest.fixture(scope="module")
def installed(
    dev_env: Env, source: Cluster, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Installed]:
    tmp = tmp_path_factory.mktemp("sched")
    env = prepare(source, dev_env, tmp, f"{dev_env.bucket}/sched-{uuid.uuid4().hex[:6]}")
    if time.time() % 60 > 54:  # `idle` is paused before the next minute's run, not at it
        time.sleep(61 - time.time() % 60)
    env.started = time.time()
    for name, extra in (("shop", []), ("idle", ["--ttl", "1h"])):
        r = run_cli("schedule", "create", name, "--schedule", "* * * * *", *env.flags, *extra,
                    "--include-namespaces", env.data, "--volumes", "none")  # fmt: skip
        assert r.returncode == 0, r.stderr
    r = run_cli(
        "schedule", "pause", "idle", "--kubeconfig", dev_env.source_kubeconfig, "-n", env.ns
    )
    assert r.returncode == 0, r.stderr
    yield env
    tidy(source, dev_env, env, "shop", "idle", "gc")


def _jobs(c: Cluster, ns: str, schedule: str) -> list[dict[str, Any]]:
    sel = f"kube-migrate.io/schedule={schedule}"
    return list(c.list(_res(c, "jobs.batch"), ns, label_selector=sel))


def wait_job(c: Cluster, ns: str, name: str) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        job = c.get(_res(c, "jobs.batch"), name, ns)
        conds = {x["type"] for x in (job.get("status") or {}).get("conditions") or []}
        return job if conds & {"Complete", "Failed"} else None

    job = wait_for(f"job {name}", done, 90)
    assert job["status"].get("succeeded") == 1, job["status"]
    return job


def _backups(env: Installed, bucket: str = "") -> dict[str, dict[str, Any]]:
    r = run_cli("backup", "get", "--bucket", bucket or env.bucket, "-o", "json")
    assert r.returncode == 0, r.stderr
    return {b["name"]: b for b in json.loads(r.stdout)}


def test_bad_schedule_exits_2_and_installs_nothing(
    installed: Installed, source: Cluster, dev_env: Env
) -> None:
    r = run_cli("schedule", "create", "bad", "--schedule", "61 * * * *", *installed.flags)
    assert r.returncode == 2, r.stderr
    assert r.stderr.splitlines()[0] == (
        "kube-migrate: error: schedule '61 * * * *': minute '61': out of range 0-59"
    )
    r = run_cli("schedule", "create", "bad", "--schedule", "0 * * *", *installed.flags)
    assert r.returncode == 2 and "4 fields, not 5" in r.stderr
    with pytest.raises(Exception, match="not found"):
        source.get(_res(source, "serviceaccounts"), "kube-migrate-bad", installed.ns)
    assert not _jobs(source, installed.ns, "bad")
    crs = source.list(_res(source, "clusterroles"), label_selector="kube-migrate.io/schedule=bad")
    assert not list(crs)


def test_dry_run_prints_what_create_installed(installed: Installed, source: Cluster) -> None:
    r = run_cli(
        "schedule",
        "create",
        "shop",
        "--schedule",
        "* * * * *",
        *installed.flags,
        "--include-namespaces",
        installed.data,
        "--volumes",
        "none",
        "--dry-run",
        "-o",
        "yaml",
    )
    assert r.returncode == 0, r.stderr
    docs = list(yaml.safe_load_all(r.stdout))
    assert [d["kind"] for d in docs] == [
        "Namespace",
        "ServiceAccount",
        "ClusterRole",
        "ClusterRoleBinding",
        "CronJob",
    ]
    for d in docs[1:]:
        m = d["metadata"]
        live = source.get(
            source.discovery().for_kind(d["apiVersion"], d["kind"]), m["name"], m.get("namespace")
        )
        for key in ("spec", "rules", "roleRef", "subjects"):
            if key in d:
                want = d[key]
                if key == "spec":  # the server fills defaults in; ours must all be there
                    pod = want["jobTemplate"]["spec"]["template"]["spec"]
                    got = live[key]["jobTemplate"]["spec"]["template"]["spec"]
                    assert got["containers"][0]["args"] == pod["containers"][0]["args"]
                    assert got["hostNetwork"] is True  # the overrides are in both
                    assert live[key]["schedule"] == want["schedule"]
                    assert live[key]["concurrencyPolicy"] == "Forbid"
                else:
                    assert live[key] == want, key
    pod = docs[-1]["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    assert pod["containers"][0]["securityContext"]["readOnlyRootFilesystem"] is True
    assert "aws_secret" not in r.stdout and os.environ["AWS_SECRET_ACCESS_KEY"] not in r.stdout


def test_run_now_backs_up_at_once_with_velero_schedule_label(
    installed: Installed, source: Cluster, dev_env: Env
) -> None:
    t0 = time.monotonic()
    r = run_cli(
        "schedule", "run-now", "shop", "--kubeconfig", dev_env.source_kubeconfig, "-n", installed.ns
    )
    assert r.returncode == 0, r.stderr
    wait_job(source, installed.ns, r.stdout.strip())
    took = time.monotonic() - t0
    made = {n: b for n, b in _backups(installed).items() if b["schedule"] == "shop"}
    assert made, _backups(installed)
    name = max(made)
    assert name.startswith("shop-") and len(name) == len("shop-") + 14, name
    assert made[name]["phase"] == "Completed" and made[name]["items"] >= 3
    print(f"run-now to a completed backup: {took:.1f}s")


def test_ttl_gc_removes_the_expired_backup_and_no_other(
    installed: Installed, source: Cluster, dev_env: Env
) -> None:
    kc = ["--kubeconfig", dev_env.source_kubeconfig, "-n", installed.ns]
    # a bucket of its own: the other schedules' runs collect expired backups too
    bucket = f"{installed.bucket}-gc"
    r = run_cli("backup", "create", "manual", "--bucket", bucket, *kc[:2], "--ttl", "1h",
                "--include-namespaces", installed.data)  # fmt: skip
    assert r.returncode == 0, r.stderr

    def run(ttl: str) -> str:
        r = run_cli(
            "schedule",
            "create",
            "gc",
            "--schedule",
            "0 0 1 1 *",
            *installed.flags,
            "--bucket",
            bucket,
            "--ttl",
            ttl,
            "--include-namespaces",
            installed.data,
            "--volumes",
            "none",
        )
        assert r.returncode == 0, r.stderr
        r = run_cli("schedule", "run-now", "gc", *kc)
        assert r.returncode == 0, r.stderr
        wait_job(source, installed.ns, r.stdout.strip())
        return max(n for n, b in _backups(installed, bucket).items() if b["schedule"] == "gc")

    first = run("1s")  # kept by its own run's gc, expired a second later
    assert _backups(installed, bucket)[first]["expired"]
    second = run("1h")
    assert set(_backups(installed, bucket)) == {"manual", second}
    r = run_cli("schedule", "describe", "gc", *kc, "-o", "json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert [b["name"] for b in doc["backups"]] == [second]
    assert [j["outcome"] for j in doc["jobs"]] == ["Succeeded", "Succeeded"]
    assert all(j["manual"] for j in doc["jobs"])


def test_a_drill_on_a_schedule_restores_verifies_and_cleans_up(
    installed: Installed, source: Cluster, target: Cluster, dev_env: Env, tmp_path: Path
) -> None:
    """`schedule create --drill playbooks/disaster-recovery.yaml` (its scope and mapping
    pointed at this module's namespace): a CronJob in the test cluster (the target) whose
    pod restores the newest Completed backup of schedule `shop` — by Velero's label, not
    a newer `shop-test` one nor an unlabelled `shop-…` one — verifies and cleans up."""
    kc = ["--kubeconfig", dev_env.source_kubeconfig, "--bucket", installed.bucket]
    for name, label in (("shop-test-29991231000000", "shop-test"), ("shop-29990101000000", "")):
        labels = ["--labels", f"velero.io/schedule-name={label}"] if label else []
        r = run_cli("backup", "create", name, *kc, "--include-namespaces", installed.data,
                    *labels)  # fmt: skip
        assert r.returncode == 0, r.stderr
    newest = max(n for n, b in _backups(installed).items() if b["schedule"] == "shop")
    drill_ns = f"{installed.data}-drill"
    shipped = yaml.safe_load((ROOT / "playbooks" / "disaster-recovery.yaml").read_text())
    shipped["spec"]["scope"]["includeNamespaces"] = [installed.data]
    shipped["spec"]["restore"]["namespaceMappings"] = {installed.data: drill_ns}
    pb = tmp_path / "disaster-recovery.yaml"
    pb.write_text(yaml.safe_dump(shipped))
    # its namespace (with the bucket's credentials) on the target, which runs it
    env = prepare(target, dev_env, tmp_path, installed.bucket, dev_env.target_kubeconfig)
    try:
        r = run_cli("schedule", "create", "drill", "--schedule", "0 4 * * 0", *env.flags,
                    "--drill", str(pb))  # fmt: skip
        assert r.returncode == 0, r.stderr
        r = run_cli("schedule", "run-now", "drill", *env.flags[:4])
        assert r.returncode == 0, r.stderr
        job = wait_job(target, env.ns, r.stdout.strip())
        pods = list(target.list(_res(target, "pods"), env.ns,
                                label_selector=f"job-name={job['metadata']['name']}"))  # fmt: skip
        log = target.pod_log(env.ns, pods[0]["metadata"]["name"]).decode()
        # `shop` runs every minute, so a newer run may land while the drill starts
        chosen = re.search(r"schedule shop: its newest Completed backup is (\S+)", log)
        assert chosen, log[-3000:]
        made = {n for n, b in _backups(installed).items() if b["schedule"] == "shop"}
        assert chosen[1] in made and chosen[1] >= newest, (chosen[1], newest)
        assert "step 4/4: cleanup" in log and "exit 0" in log, log[-3000:]
        with pytest.raises(Exception, match="not found"):  # restored, verified, removed
            target.get(_res(target, "namespaces"), drill_ns)
    finally:
        tidy(target, dev_env, env, "drill")


def _token_cluster(source: Cluster, env: Env, ns: str, sa: str, tmp: Path) -> Cluster:
    path = _res(source, "serviceaccounts").path(ns, sa, "token")
    body = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": {}}
    token = source.request("POST", path, body=body)["status"]["token"]
    kc = yaml.safe_load(Path(env.source_kubeconfig).read_text())
    kc["users"] = [{"name": "sa", "user": {"token": token}}]
    kc["contexts"][0]["context"]["user"] = "sa"
    (tmp / "sa.kubeconfig").write_text(yaml.safe_dump(kc))
    return Cluster(ClusterRef(str(tmp / "sa.kubeconfig")), name="sa")


def _can(
    c: Cluster, verb: str, resource: str, ns: str | None, sub: str = "", group: str = ""
) -> bool:
    attrs = {"verb": verb, "resource": resource, "subresource": sub, "group": group}
    if ns:
        attrs["namespace"] = ns
    body = {
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SelfSubjectAccessReview",
        "spec": {"resourceAttributes": attrs},
    }
    out = c.create(_res(c, "selfsubjectaccessreviews.authorization.k8s.io"), body)
    return bool(out["status"]["allowed"])


def test_rbac_reads_and_nothing_more(
    installed: Installed, source: Cluster, dev_env: Env, tmp_path: Path
) -> None:
    sa = _token_cluster(source, dev_env, installed.ns, "kube-migrate-shop", tmp_path)
    d = installed.data
    assert _can(sa, "list", "secrets", d) and _can(sa, "watch", "deployments", d, group="apps")
    assert _can(sa, "get", "customresourcedefinitions", None, group="apiextensions.k8s.io")
    for verb, res, sub in (
        ("create", "configmaps", ""),
        ("delete", "secrets", ""),
        ("create", "pods", ""),
        ("get", "pods", "exec"),
        ("create", "pods", "exec"),
        ("get", "pods", "portforward"),
        ("patch", "deployments", "scale"),
    ):
        assert not _can(sa, verb, res, d, sub), (verb, res, sub)
    assert not _can(sa, "get", "nodes", None, "proxy")
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}}
    with pytest.raises(Forbidden):
        sa.create(_res(sa, "configmaps"), cm, d)

    # with volume data on: movers and hooks in the backed-up namespace, and only there
    r = run_cli(
        "schedule",
        "create",
        "vols",
        "--schedule",
        "@daily",
        "--paused",
        *installed.flags,
        "--include-namespaces",
        d,
        "--volumes",
        "all",
    )
    assert r.returncode == 0, r.stderr
    try:
        vs = _token_cluster(source, dev_env, installed.ns, "kube-migrate-vols", tmp_path)
        assert _can(vs, "create", "pods", d) and _can(vs, "create", "pods", d, "exec")
        assert _can(vs, "create", "volumesnapshots", d, group="snapshot.storage.k8s.io")
        assert not _can(vs, "create", "pods", "default")
        assert not _can(vs, "create", "pods", installed.ns, "exec")
        assert not _can(vs, "patch", "deployments", d, group="apps")  # no --quiesce
    finally:
        r = run_cli(
            "schedule",
            "delete",
            "vols",
            "--kubeconfig",
            dev_env.source_kubeconfig,
            "-n",
            installed.ns,
        )
    assert r.returncode == 0, r.stderr
    assert "RoleBinding/kube-migrate:schedule:" in r.stdout and "CronJob/vols" in r.stdout
    sel = "kube-migrate.io/schedule=vols"
    assert not list(source.list(_res(source, "clusterroles"), label_selector=sel))
    assert not list(source.list(_res(source, "rolebindings"), label_selector=sel))


def test_runs_on_schedule_and_not_when_paused(installed: Installed, source: Cluster) -> None:
    """Last: by now the minute after the fixture's install has (nearly) come."""

    def scheduled() -> list[dict[str, Any]]:
        jobs = _jobs(source, installed.ns, "shop")
        return [j for j in jobs if "manual" not in j["metadata"]["name"]]

    jobs = wait_for("a scheduled run", scheduled, 130 - (time.time() - installed.started))
    wait_job(source, installed.ns, jobs[0]["metadata"]["name"])
    assert time.time() - installed.started < 125  # within two minutes of `schedule create`
    made = [n for n, b in _backups(installed).items() if b["schedule"] == "shop"]
    assert len(made) >= 2  # run-now's and the scheduled one's
    # `idle` has the same schedule and was paused right after its install: never ran
    assert not _jobs(source, installed.ns, "idle")
    cron = source.get(_res(source, "cronjobs.batch"), "idle", installed.ns)
    assert cron["spec"]["suspend"] is True and not (cron.get("status") or {}).get("active")
