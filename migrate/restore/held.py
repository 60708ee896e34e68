"""Hold and release the workloads of some namespaces on a live cluster (transform/hold.py
says what holding is).  A cut-over holds the source (and waits until its pods are gone,
so nothing writes any more), releases the target, and on failure does the reverse.

Each patch sets the spec field and the record in one write, so a crash never leaves a
stopped workload without the value to give back.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from migrate.cluster import APIResource, Cluster
from migrate.cluster.selectors import Selector
from migrate.errors import NotFound, WaitTimeout
from migrate.restore.ready import workload_ready
from migrate.transform.hold import HELD, hold_patch, release_patch

log = logging.getLogger(__name__)
RESOURCES = {  # kind -> (group, resource): the held kinds' API names
    "Deployment": ("apps", "deployments"),
    "StatefulSet": ("apps", "statefulsets"),
    "ReplicaSet": ("apps", "replicasets"),
    "CronJob": ("batch", "cronjobs"),
}


@dataclass(frozen=True)
class Workload:
    kind: str
    namespace: str
    name: str
    selector: str  # its pods' label selector ("" for a CronJob)

    def label(self) -> str:
        return f"{self.kind} {self.namespace}/{self.name}"


def _workloads(c: Cluster, namespaces: list[str]) -> list[tuple[APIResource, dict[str, Any]]]:
    out = []
    disc = c.discovery()
    for kind, (group, resource) in RESOURCES.items():
        res = disc.get(group, resource)
        if res is None:
            continue
        for ns in namespaces:
            for obj in c.list(res, ns):
                owners = obj["metadata"].get("ownerReferences") or []
                if kind == "ReplicaSet" and owners:
                    continue  # a Deployment's: held through the Deployment
                out.append((res, obj))
    return out


def _workload(obj: dict[str, Any]) -> Workload:
    meta = obj["metadata"]
    selector = ""
    if obj["kind"] != "CronJob":
        selector = str(Selector.from_object((obj.get("spec") or {}).get("selector")))
    return Workload(obj["kind"], meta["namespace"], meta["name"], selector)


def _patch_all(
    c: Cluster,
    namespaces: list[str],
    patch_of: Callable[[dict[str, Any]], dict[str, Any] | None],
    done_as: str,
) -> list[Workload]:
    """Patch every workload of `namespaces` patch_of has a patch for; returns them."""
    done = []
    for res, obj in _workloads(c, namespaces):
        patch = patch_of(obj)
        if patch is None:
            continue
        try:
            c.patch(res, obj["metadata"]["name"], patch, obj["metadata"]["namespace"])
        except NotFound:
            continue
        done.append(_workload(obj))
        log.info("%s %s", done_as, done[-1].label())
    return done


def hold_all(c: Cluster, namespaces: list[str]) -> list[Workload]:
    """Hold every workload of `namespaces` that is not held yet; returns those held now."""
    return _patch_all(c, namespaces, hold_patch, "held")


def release_all(c: Cluster, namespaces: list[str]) -> list[Workload]:
    """Give every held workload of `namespaces` its recorded value; returns them."""
    return _patch_all(c, namespaces, release_patch, "released")


def held(c: Cluster, namespaces: list[str]) -> list[Workload]:
    """The workloads of `namespaces` that are held now."""
    return [
        _workload(obj)
        for _res, obj in _workloads(c, namespaces)
        if HELD in ((obj["metadata"].get("annotations")) or {})
    ]


def stopped(pod: dict[str, Any]) -> bool:
    """A pod none of whose containers runs any more: ended, or being deleted with every
    container terminated (the kubelet tears its volumes down after: nothing writes)."""
    status = pod.get("status") or {}
    if status.get("phase") in ("Succeeded", "Failed"):
        return True
    if not (pod.get("metadata") or {}).get("deletionTimestamp"):
        return False
    return all(
        "terminated" in (cs.get("state") or {}) for cs in status.get("containerStatuses") or []
    )


def wait_stopped(c: Cluster, workloads: list[Workload], timeout: float) -> float:
    """Wait until no container of a pod of `workloads` runs any more; returns the
    monotonic time the last one stopped."""
    pods = c.discovery().get("", "pods")
    assert pods is not None
    deadline = time.monotonic() + timeout
    for w in workloads:
        if not w.selector:
            continue
        while True:
            left = [
                p["metadata"]["name"]
                for p in c.list(pods, w.namespace, label_selector=w.selector)
                if not stopped(p)
            ]
            if not left:
                break
            if time.monotonic() > deadline:
                raise WaitTimeout(
                    f"{w.label()} still has {len(left)} pod(s) running after {timeout:.0f}s: "
                    + ", ".join(sorted(left)[:3]),
                    hint="a pod that ignores SIGTERM runs its full grace period; "
                    "raise the timeout or shorten terminationGracePeriodSeconds",
                )
            time.sleep(0.1)
    return time.monotonic()


def wait_started(c: Cluster, workloads: list[Workload], timeout: float) -> float:
    """Wait until every released Deployment/StatefulSet/ReplicaSet is ready; returns the
    monotonic time the last one was."""
    deadline = time.monotonic() + timeout
    disc = c.discovery()
    for w in workloads:
        if w.kind == "CronJob":
            continue
        res = disc.get(*RESOURCES[w.kind])
        assert res is not None
        while True:
            try:
                ok, why = workload_ready(c.get(res, w.name, w.namespace))
            except NotFound:
                ok, why = False, "not found"
            if ok:
                break
            if time.monotonic() > deadline:
                raise WaitTimeout(f"{w.label()} not ready after {timeout:.0f}s: {why}")
            time.sleep(0.1)  # a cut-over's downtime ends when this sees it
    return time.monotonic()
