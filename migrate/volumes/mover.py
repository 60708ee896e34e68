"""Run one mover pod to completion: kopia (driven by `kmmover`, mover/) copying one
claim's files between the claim and the bucket, or checking them.

Why a short-lived pod per claim and not Velero's node-agent: the pod mounts the claim
itself (read-only when it only reads), so it needs no privileged DaemonSet, no hostPath
of /var/lib/kubelet and no knowledge of the kubelet's directory layout; it lives as long
as the copy.  The bucket credentials and the repository password travel in a Secret
owned by the pod (deleted with it, by us or by the garbage collector if we die), never in
the pod spec, a log or a report.  The pod prints JSON lines (mover/main.go says which);
the last one is the result, parsed here, never scraped from human text.  A copy that a
standby pod waits for (volumes/standby.py: a cut-over's, started before its downtime) is
exec'd into that pod instead, and its output read from the exec stream.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import orjson

from migrate.cluster import Cluster
from migrate.cluster.podexec import exec_in_pod
from migrate.errors import (
    ClusterError,
    IntegrityError,
    MigrateError,
    PartialFailure,
    UsageError,
    WaitTimeout,
)
from migrate.volumes import standby
from migrate.volumes.mover_pod import (
    MOVER_LABEL,
    MoverJob,
    MoverSettings,
    command,
    create_mover,
    pod_name,
)

log = logging.getLogger(__name__)

UNSCHEDULABLE_SECONDS = 90.0  # a mover the scheduler cannot place fails after this
WATCH_SECONDS = 2.0  # a running mover's log tail is read this often for its progress
# A mover's pod is looked at this often at most (from 0.2 s, growing): its end is seen
# within half a second, which a cut-over's downtime counts (2 s let a 4-second mover
# be seen at 6).
POLL_MAX_SECONDS = 0.5
RESULT_LIMIT = 16 << 20  # a mover's stdout kept from an exec: its result line ends it
# A waiting container's reasons that do not cure themselves -> (seconds they may last, hint).
# A kubelet under load reports CreateContainerConfigError ("failed to sync secret cache")
# for a Secret made just before the pod: that one gets time.
IMAGE_HINT = ("push the mover image to a registry the nodes pull from and pass --mover-image "
              "(README, 'Volume data')")  # fmt: skip
STUCK: dict[str, tuple[float, str]] = {
    "ErrImagePull": (0.0, IMAGE_HINT),
    "ImagePullBackOff": (0.0, IMAGE_HINT),
    "InvalidImageName": (0.0, IMAGE_HINT),
    "CreateContainerConfigError": (
        60.0,
        "the mover's Secret did not reach the node: see `kubectl describe pod` of the mover",
    ),
}
# kmmover's error reasons -> (error class, hint)
REASONS: dict[str, tuple[type[MigrateError], str]] = {
    "wrong-password": (
        IntegrityError,
        "the repository password does not open this bucket's kopia repository: use the "
        "encryption key (or the machine) the backup was taken with",
    ),
    "repository-missing": (IntegrityError, "the backup's volume data is not in this bucket"),
    "snapshot-missing": (IntegrityError, "the backup's volume data is not in this bucket"),
    "no-space": (PartialFailure, "the target claim is smaller than the data: raise its size"),
}


class MoverFailed(PartialFailure):
    """A mover pod ended without a result (killed, evicted, OOM): worth one more try."""

    default_hint = "see the mover's log above; rerun with --resume"


def run_mover(
    cluster: Cluster, job: MoverJob, cfg: MoverSettings, attempts: int = 1
) -> dict[str, Any]:
    """Run the job's pod to the end and return its result line; a pod that ends without
    one (MoverFailed: killed, evicted) is run again, up to `attempts` pods in all."""
    for attempt in range(1, attempts + 1):
        try:
            pod = standby.take(cluster, job, cfg) if attempt == 1 else ""
            if pod:
                try:
                    return _in_standby(cluster, job, cfg, pod)
                except ClusterError as exc:  # the exec did not start: a pod of its own
                    log.warning("claim %s/%s: standby pod %s: %s; starting a mover pod",
                                job.namespace, job.claim, pod, exc)  # fmt: skip
            return _run_once(cluster, job, cfg)
        except MoverFailed as exc:
            if attempt == attempts:
                raise
            log.warning("claim %s/%s: %s; trying again", job.namespace, job.claim, exc.message)
    raise AssertionError("attempts < 1")


def _run_once(cluster: Cluster, job: MoverJob, cfg: MoverSettings) -> dict[str, Any]:
    """One mover pod, to its result line; the pod and its Secret are deleted whatever
    happens."""
    disc = cluster.discovery()
    pods, secrets_res = disc.get("", "pods"), disc.get("", "secrets")
    assert pods is not None and secrets_res is not None
    name = pod_name(job)
    create_mover(cluster, job, cfg, name)
    try:
        try:
            phase = _wait(cluster, pods, job, name, cfg.timeout)
            return _result(job, phase == "Succeeded", _log(cluster, job, name), phase)
        finally:
            cluster.delete(pods, name, job.namespace)
    finally:
        cluster.delete(secrets_res, name, job.namespace)


def _in_standby(cluster: Cluster, job: MoverJob, cfg: MoverSettings, pod: str) -> dict[str, Any]:
    """The job's verb exec'd in a standby pod (volumes/standby.py), to its result line;
    the pod is the standby set's to delete."""
    where = f"{job.verb} of claim {job.namespace}/{job.claim} in standby pod {pod}"
    pending = [""]

    def progress(piece: str) -> None:  # whole lines only: a piece may end mid-line
        text = pending[0] + piece
        *lines, pending[0] = text.split("\n")
        if job.watch is None:
            return
        _latest_progress(job, "\n".join(lines).encode())

    start = time.monotonic()
    try:
        res = exec_in_pod(
            cluster, job.namespace, pod, "mover", ["kmmover", *command(job)], cfg.timeout,
            limit=RESULT_LIMIT, on_stdout=progress, stop=job.stop,
        )  # fmt: skip
    except BaseException:
        standby.discard(cluster, job.namespace, pod)
        raise
    if res.exit_code == -1:  # what it ran may still run: its pod goes before anything else
        standby.discard(cluster, job.namespace, pod)
        if job.stop is not None and job.stop.is_set():
            raise PartialFailure(f"{where}: interrupted")
        if time.monotonic() - start >= cfg.timeout:
            raise WaitTimeout(f"{where}: not done after {cfg.timeout:.0f}s")
        raise MoverFailed(f"{where}: the exec stream ended without an exit status")
    if res.stderr:
        log.debug("%s: stderr: %s", where, res.stderr[-2000:])
    return _result(job, res.exit_code == 0, res.stdout.encode(), f"exit {res.exit_code}")


def _unschedulable(status: dict[str, Any]) -> str:
    for cond in status.get("conditions") or []:
        if cond.get("type") == "PodScheduled" and cond.get("reason") == "Unschedulable":
            return str(cond.get("message") or "unschedulable")
    return ""


def _wait(cluster: Cluster, pods: Any, job: MoverJob, name: str, timeout: float) -> str:
    start = time.monotonic()
    deadline, pause, watched = start + timeout, 0.2, start
    since: dict[str, float] = {}  # a waiting reason of STUCK -> when first seen
    where = f"mover pod {job.namespace}/{name} ({job.verb} of claim {job.claim})"
    while True:
        try:
            pod = cluster.get(pods, name, job.namespace)
        except ClusterError as exc:
            raise MoverFailed(f"{where}: {exc}") from exc
        status = pod.get("status") or {}
        phase = str(status.get("phase") or "Pending")
        if phase in ("Succeeded", "Failed"):
            return phase
        if phase == "Running" and job.watch and time.monotonic() - watched >= WATCH_SECONDS:
            watched = time.monotonic()
            _watch(cluster, job, name)
        for cs in status.get("containerStatuses") or []:
            waiting = (cs.get("state") or {}).get("waiting") or {}
            reason = str(waiting.get("reason") or "")
            if reason in STUCK:
                grace, hint = STUCK[reason]
                if time.monotonic() - since.setdefault(reason, time.monotonic()) >= grace:
                    message = f"{where}: {reason}: {waiting.get('message', '')}".rstrip(": ")
                    raise UsageError(message, hint=hint)
        why = _unschedulable(status)
        if why and time.monotonic() - start > UNSCHEDULABLE_SECONDS:
            raise PartialFailure(
                f"{where}: no node can run it after {UNSCHEDULABLE_SECONDS:.0f}s: {why}",
                hint="the mover goes where the claim's pod (or its workload) can run; check "
                "the node's taints and the volume's node affinity",
            )
        if time.monotonic() > deadline:
            raise WaitTimeout(f"{where}: not done after {timeout:.0f}s (phase {phase})")
        if job.stop is not None and job.stop.is_set():
            raise PartialFailure(f"{where}: interrupted")
        time.sleep(pause)
        pause = min(pause * 1.5, POLL_MAX_SECONDS)


def _watch(cluster: Cluster, job: MoverJob, name: str) -> None:
    """Hand the mover's latest progress line to job.watch (nothing when unreadable)."""
    assert job.watch is not None
    try:
        tail = cluster.pod_log(job.namespace, name, tail_lines=3)
    except ClusterError:
        return
    _latest_progress(job, tail)


def _latest_progress(job: MoverJob, output: bytes) -> None:
    """Hand the last progress line of a mover's `output` to job.watch (none: nothing)."""
    assert job.watch is not None
    lines = [doc for doc in parse_lines(output) if doc.get("kind") == "progress"]
    if lines:
        job.watch(lines[-1])


def _log(cluster: Cluster, job: MoverJob, name: str) -> bytes:
    try:
        return cluster.pod_log(job.namespace, name)
    except ClusterError as exc:
        where = f"{job.verb} of claim {job.namespace}/{job.claim}"
        raise MoverFailed(f"{where}: the mover's log is unreadable: {exc}") from exc


def _result(job: MoverJob, succeeded: bool, output: bytes, how: str) -> dict[str, Any]:
    """The result line of a mover's output; its error line raised as its class."""
    where = f"{job.verb} of claim {job.namespace}/{job.claim}"
    lines = parse_lines(output)
    last = lines[-1] if lines else {}
    if last.get("kind") == "result" and succeeded:
        return last
    if last.get("kind") == "error":
        reason, message = str(last.get("reason")), str(last.get("message", ""))
        cls, hint = REASONS.get(reason, (MoverFailed, "see the message; rerun with --resume"))
        raise cls(f"{where}: {reason}: {message}", hint=hint)
    raise MoverFailed(f"{where}: the mover ended ({how}) without a result")


def delete_movers(cluster: Cluster, namespace: str, selector: str) -> int:
    """Delete the mover pods (and so their Secrets) an interrupted run left behind."""
    pods = cluster.discovery().get("", "pods")
    assert pods is not None
    found = list(cluster.list(pods, namespace, label_selector=f"{MOVER_LABEL},{selector}"))
    for p in found:
        log.info("deleting mover pod %s/%s of an interrupted run", namespace, p["metadata"]["name"])
        cluster.delete(pods, p["metadata"]["name"], namespace)
    return len(found)


def parse_lines(text: bytes) -> list[dict[str, Any]]:
    """kmmover's JSON lines; anything else (a runtime's own message) is skipped."""
    out = []
    for line in text.splitlines():
        if line.startswith(b"{"):
            try:
                doc = orjson.loads(line)
            except orjson.JSONDecodeError:
                continue
            if isinstance(doc, dict):
                out.append(doc)
    return out
