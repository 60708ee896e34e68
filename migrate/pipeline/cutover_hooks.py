"""A cut-over's hooks: the user's own step once the target is ready (switch DNS, a load
balancer, a feature flag), as a command on this machine or as a Job in the target cluster.

A Job hook is for what only the cluster can reach (an in-cluster DNS controller, a
service mesh's API) and for in-cluster runs, where "this machine" is a pod. Both kinds
learn the same facts from variables: the run, the target's namespaces, the downtime (a
command also the target's kubeconfig and context; a Job's pod has its own identity).
A hook that fails or outlasts its timeout fails the cut-over, which then rolls back; a
Job hook's failed pod's last log lines are in the error, and its Job stays for an hour
(ttlSecondsAfterFinished) for `kubectl logs`.
"""

from __future__ import annotations

import copy
import os
import subprocess
import time
from typing import Any

from migrate.cluster import Cluster
from migrate.errors import MigrateError, NotFound, PartialFailure
from migrate.playbook.live import CutoverHook

LABEL = "kube-migrate.io/cutover-hook"
TTL = 3600  # seconds a finished hook Job stays, for its logs


def run_hooks(
    hooks: tuple[CutoverHook, ...],
    target: Cluster,
    facts: dict[str, str],
    local: dict[str, str],
    namespace: str,
) -> list[dict[str, Any]]:
    """Run `hooks` in order; one row each (name, exit code or Job, seconds). `facts`: the
    variables every hook gets; `local`: those only a command gets (kubeconfig paths);
    `namespace`: a Job's when its hook names none (the scope's first, on the target)."""
    ran = []
    for hook in hooks:
        start = time.monotonic()
        if hook.job is not None:
            row = _job(hook, target, facts, str(hook.job.get("namespace") or namespace))
        else:
            row = _command(hook, {**os.environ, **facts, **local})
        ran.append({"hook": hook.name, **row, "seconds": round(time.monotonic() - start, 2)})
    return ran


def _command(hook: CutoverHook, env: dict[str, str]) -> dict[str, Any]:
    try:
        proc = subprocess.run(
            list(hook.command), capture_output=True, text=True, timeout=hook.timeout,
            check=False, env=env,
        )  # fmt: skip
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise PartialFailure(f"cut-over hook {hook.name}: {exc}") from None
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or [""]
        raise PartialFailure(f"cut-over hook {hook.name} exited {proc.returncode}: {tail[0][:200]}")
    return {"exitCode": 0}


def job_manifest(hook: CutoverHook, facts: dict[str, str], name: str, ns: str) -> dict[str, Any]:
    """The hook's Job: the user's spec, with the facts in every container's environment,
    no retries unless the spec asks for them, and a TTL."""
    assert hook.job is not None
    spec = copy.deepcopy(dict(hook.job["spec"]))
    spec.setdefault("backoffLimit", 0)
    spec.setdefault("ttlSecondsAfterFinished", TTL)
    pod = spec["template"].setdefault("spec", {})
    pod.setdefault("restartPolicy", "Never")
    for c in pod.get("containers", []) + pod.get("initContainers", []):
        c["env"] = [*(c.get("env") or []), *({"name": k, "value": v} for k, v in facts.items())]
    labels = {LABEL: hook.name, "app.kubernetes.io/managed-by": "kube-migrate"}
    meta = spec["template"].setdefault("metadata", {})
    meta["labels"] = {**(meta.get("labels") or {}), **labels}
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name, "namespace": ns, "labels": labels},
        "spec": spec,
    }


def _job(hook: CutoverHook, target: Cluster, facts: dict[str, str], ns: str) -> dict[str, Any]:
    run = facts["KUBE_MIGRATE_RUN"]
    name = f"{hook.name}-{run}"[:52].rstrip("-") + f"-{int(time.time()) % 100000}"
    disc = target.discovery()
    jobs, pods = disc.resolve("jobs.batch"), disc.resolve("pods")
    try:
        target.create(jobs, job_manifest(hook, facts, name, ns), ns)
    except MigrateError as exc:
        raise PartialFailure(f"cut-over hook {hook.name}: cannot create its Job: {exc}") from None
    deadline = time.monotonic() + hook.timeout
    while time.monotonic() < deadline:
        try:
            status = target.get(jobs, name, ns).get("status") or {}
        except NotFound:
            raise PartialFailure(f"cut-over hook {hook.name}: Job {ns}/{name} vanished") from None
        kinds = {c["type"] for c in status.get("conditions") or [] if c.get("status") == "True"}
        if "Complete" in kinds or "SuccessCriteriaMet" in kinds:
            return {"job": f"{ns}/{name}", "exitCode": 0}
        if "Failed" in kinds or "FailureTarget" in kinds:
            why = _last_line(target, pods, ns, name)
            raise PartialFailure(f"cut-over hook {hook.name}: Job {ns}/{name} failed: {why}")
        time.sleep(0.5)
    target.delete(jobs, name, ns, propagation="Background")  # it would run on, unwatched
    raise PartialFailure(
        f"cut-over hook {hook.name}: Job {ns}/{name} not done after {hook.timeout:g}s (deleted)"
    )


def _last_line(target: Cluster, pods: Any, ns: str, job: str) -> str:
    """The last log lines of the Job's newest pod (its reason for failing, mostly)."""
    try:
        listed = sorted(
            target.list(pods, ns, label_selector=f"job-name={job}"),
            key=lambda p: p["metadata"]["creationTimestamp"],
        )
        if not listed:
            return "no pod"
        text = target.pod_log(ns, listed[-1]["metadata"]["name"]).decode(errors="replace")
        # the last few: stdout and stderr reach the log by separate pipes, in either order
        return " | ".join(text.strip().splitlines()[-3:])[-300:] or "(empty log)"
    except MigrateError as exc:
        return f"(its log: {exc.message})"
