"""Mover pods started ahead of time, idle (`kmmover standby`) until a copy is exec'd into
them.

A cut-over's downtime holds two movers per claim, one after the other: the source's
reads what changed since the pre-copy, the target's writes it.  As pods of their own,
each costs its scheduling, sandbox and mount at the start, and at the end the kubelet's
next look at its containers (its PLEG relist, up to a second) before the pod is seen to
have ended.  Standby pods are started before the source is held: the copy starts with
an exec into a running pod, whose repository caches are already warm, and it ends when
its exec stream closes.

While a `Standbys` set is open, run_mover takes a matching pod (same verb, namespace,
mounted claim, repository and settings) instead of creating one; each pod serves one
copy, and the set deletes them all when it closes.  A pod not ready in time is deleted
and its copy gets a pod of its own, as without a standby.  ReadWriteOncePod claims get
no standby: a second pod could not mount them beside the app, and would hold them
against the app's own pod after.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

from migrate.cluster import APIResource, Cluster
from migrate.cluster.podexec import warm_up
from migrate.errors import ClusterError, NotFound
from migrate.volumes.mover_pod import (
    DATA,
    MOVER_LABEL,
    MoverJob,
    MoverSettings,
    create_mover,
    pod_name,
)

log = logging.getLogger(__name__)
STANDBY_LABEL = "kube-migrate.io/standby"  # the run whose standby pod this is
READY_SECONDS = 60.0  # a standby not running (with its repository connected) by then is dropped
GONE_SECONDS = 60.0  # a discarded standby's wait until its pod (and what it ran) is gone
Key = tuple[str, str, str, str]  # verb, namespace, mounted claim, repository's namespace


def _key(job: MoverJob) -> Key:
    return (job.verb, job.namespace, job.mount or job.claim, job.repository or job.namespace)


class Standbys:
    """One cluster's standby pods for one run's copies."""

    def __init__(self, cluster: Cluster, cfg: MoverSettings, run: str) -> None:
        self.cluster, self.cfg, self.run = cluster, cfg, run
        self.pods: dict[Key, str] = {}  # ready and not taken
        self.started: list[tuple[str, str]] = []  # (namespace, pod): every pod made
        self.lock = threading.Lock()
        self.ready = self.used = 0

    def start(self, jobs: list[MoverJob]) -> int:
        """Create a standby per job and wait until they run; returns how many do."""
        waiting: dict[Key, tuple[str, str]] = {}
        for job in jobs:
            name = pod_name(job)
            job.labels = {**job.labels, STANDBY_LABEL: self.run}
            # connected (and for a backup, its "before" taken) as the verb would be
            args = ["standby", "--path", DATA, "--for", job.verb, *job.args]
            try:
                create_mover(self.cluster, job, self.cfg, name, args)
            except ClusterError as exc:
                log.warning("no standby mover for claim %s/%s: %s", job.namespace, job.claim, exc)
                continue
            self.started.append((job.namespace, name))
            waiting[_key(job)] = (job.namespace, name)
        deadline = time.monotonic() + READY_SECONDS
        while waiting and time.monotonic() < deadline:
            for key, (ns, name) in list(waiting.items()):
                if self._ready(ns, name):
                    self.pods[key] = name
                    del waiting[key]
            if waiting:
                time.sleep(0.2)
        for ns, name in waiting.values():
            log.warning("standby mover %s/%s not ready after %.0fs: its copy gets a pod of "
                        "its own", ns, name, READY_SECONDS)  # fmt: skip
            _delete(self.cluster, ns, name, grace_seconds=0)
        self.ready = len(self.pods)
        return self.ready

    def _pods(self) -> APIResource:
        pods = self.cluster.discovery().get("", "pods")
        assert pods is not None
        return pods

    def _ready(self, namespace: str, name: str) -> bool:
        """Running, and kmmover has said it stands by (its repository connected)."""
        try:
            pod = self.cluster.get(self._pods(), name, namespace)
            if (pod.get("status") or {}).get("phase") != "Running":
                return False
            return b'"kind":"standby"' in self.cluster.pod_log(namespace, name, tail_lines=5)
        except ClusterError:
            return False

    def take(self, job: MoverJob, cfg: MoverSettings) -> str:
        """The ready standby for `job` (removed from the set's offer), or ""."""
        if cfg != self.cfg:
            return ""
        with self.lock:
            pod = self.pods.pop(_key(job), "")
            self.used += bool(pod)
            return pod

    def close(self) -> None:
        """Delete every pod the set made, and its Secret (not waited for).  Gracefully:
        kmmover ends on SIGTERM at once, and the pod stays until its kubelet has unmounted
        the claim.  A pod removed at once (grace 0) takes with it the node's authorization
        to read the claim, which the app's new pod on that node needs a moment later; the
        kubelet then backs off for seconds."""
        with self.lock:
            self.pods.clear()
        for ns, name in self.started:
            try:
                _delete(self.cluster, ns, name)
            except ClusterError as exc:
                log.warning("standby mover %s/%s not deleted: %s", ns, name, exc)


def _delete(cluster: Cluster, namespace: str, name: str, grace_seconds: int | None = None) -> None:
    """A standby's pod, and its Secret (the env is in the container already; left to the
    garbage collector it would linger, and verify would see it on the target)."""
    disc = cluster.discovery()
    pods, secrets = disc.get("", "pods"), disc.get("", "secrets")
    assert pods is not None and secrets is not None
    cluster.delete(pods, name, namespace, grace_seconds=grace_seconds)
    cluster.delete(secrets, name, namespace)


_OPEN: dict[int, Standbys] = {}  # id(cluster) -> its open set
_OPEN_LOCK = threading.Lock()


@contextmanager
def standing_by(
    sides: list[tuple[Cluster, MoverSettings, list[MoverJob]]], run: str
) -> Iterator[list[Standbys]]:
    """Start standbys for each cluster's jobs (the clusters at once), offer them to
    run_mover while the block runs, delete them all at its end."""
    sets = [Standbys(c, cfg, run) for c, cfg, _jobs in sides]
    warm_up()  # the exec machinery imported now, not inside the downtime
    try:
        with ThreadPoolExecutor(max_workers=max(1, len(sets))) as pool:
            ready = list(pool.map(lambda s, side: s.start(side[2]), sets, sides))
        for s, n, (_c, _cfg, jobs) in zip(sets, ready, sides, strict=True):
            log.info("%s: %d of %d standby mover(s) ready", s.cluster.name, n, len(jobs))
        with _OPEN_LOCK:
            _OPEN.update({id(s.cluster): s for s in sets})
        yield sets
    finally:
        with _OPEN_LOCK:
            for s in sets:
                _OPEN.pop(id(s.cluster), None)
        for s in sets:
            s.close()


def take(cluster: Cluster, job: MoverJob, cfg: MoverSettings) -> str:
    """A ready standby pod for `job` on `cluster`, or "" (then the job makes its own)."""
    with _OPEN_LOCK:
        standbys = _OPEN.get(id(cluster))
    return standbys.take(job, cfg) if standbys is not None else ""


def discard(cluster: Cluster, namespace: str, pod: str) -> None:
    """Delete a standby whose exec did not end cleanly, and wait until it is gone: what
    it ran may still be writing, and the copy's next attempt writes the same claim."""
    _delete(cluster, namespace, pod, grace_seconds=1)
    _wait_gone(cluster, [(namespace, pod)])


def _wait_gone(cluster: Cluster, pods: list[tuple[str, str]]) -> None:
    """Until no pod of `pods` exists.  They were deleted with a grace period, so the API
    keeps each until its kubelet has seen every process in it end (with grace 0 the
    object goes at once, whatever still runs on the node)."""
    res = cluster.discovery().get("", "pods")
    assert res is not None
    deadline = time.monotonic() + GONE_SECONDS
    left = list(pods)
    while left and time.monotonic() < deadline:
        for ns, name in list(left):
            try:
                cluster.get(res, name, ns)
            except NotFound:
                left.remove((ns, name))
            except ClusterError as exc:
                log.debug("standby mover %s/%s: %s", ns, name, exc)
        if left:
            time.sleep(0.2)
    for ns, name in left:
        log.warning("standby mover %s/%s still there after %.0fs", ns, name, GONE_SECONDS)


def leftovers(cluster: Cluster, namespaces: list[str], run: str) -> int:
    """Delete the standby pods an interrupted cut-over of `run` left behind, and wait
    until they are gone (one may still run a copy the crash left)."""
    pods = cluster.discovery().get("", "pods")
    assert pods is not None
    found = []
    for ns in namespaces:
        selector = f"{MOVER_LABEL},{STANDBY_LABEL}={run}"
        for p in cluster.list(pods, ns, label_selector=selector):
            _delete(cluster, ns, p["metadata"]["name"], grace_seconds=1)
            found.append((ns, p["metadata"]["name"]))
    _wait_gone(cluster, found)
    return len(found)
