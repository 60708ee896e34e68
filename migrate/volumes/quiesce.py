"""`--quiesce scale-down`: stop the workloads whose claims are copied (replicas 0), copy,
then give them their replicas back; a copy of a stopped app is consistent without hooks.

Every scale-down is recorded (`record`, the run journal) before it happens and cleared
only after the workload has its replicas back, so a crash between the two never leaves the
source stopped without a trace: `kube-migrate run --resume` scales the recorded workloads
back first (`restore_replicas`).  `backup create`, which has no run journal, records on
the workloads themselves (`AnnotationRecord`: an annotation holding the replicas to give
back, so any machine's next `backup create --quiesce scale-down` finds and heals it).
Only Deployments and StatefulSets (the owners of the
pods, through their ReplicaSet for a Deployment) are scaled; a bare pod is copied live.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from typing import Any

from migrate.cluster import Cluster
from migrate.errors import NotFound, WaitTimeout
from migrate.transform.hold import QUIESCED

log = logging.getLogger(__name__)
Record = Callable[[list[dict[str, Any]]], None]  # the workloads scaled down and not yet up
SCALED_KINDS = {"Deployment": "deployments", "StatefulSet": "statefulsets"}
ANNOTATION = QUIESCED  # on a workload kube-migrate scaled to 0 for a copy


def owner_of(cluster: Cluster, pod: dict[str, Any]) -> tuple[str, str, str] | None:
    """(kind, namespace, name) of the Deployment or StatefulSet running the pod."""
    ns = pod["metadata"]["namespace"]
    for ref in pod["metadata"].get("ownerReferences") or []:
        if ref.get("kind") == "StatefulSet":
            return ("StatefulSet", ns, ref["name"])
        if ref.get("kind") == "ReplicaSet":
            res = cluster.discovery().get("apps", "replicasets")
            assert res is not None
            try:
                rs = cluster.get(res, ref["name"], ns)
            except NotFound:
                return None
            for up in rs["metadata"].get("ownerReferences") or []:
                if up.get("kind") == "Deployment":
                    return ("Deployment", ns, up["name"])
    return None


def _scale(cluster: Cluster, kind: str, ns: str, name: str, replicas: int) -> None:
    res = cluster.discovery().get("apps", SCALED_KINDS[kind])
    assert res is not None
    cluster.patch(res, name, {"spec": {"replicas": replicas}}, ns, sub="scale")


def scale_down(
    cluster: Cluster,
    owners: Iterable[tuple[str, str, str]],
    pods: Iterable[tuple[str, str]],
    record: Record,
    timeout: float = 300.0,
) -> list[dict[str, Any]]:
    """Record, then scale each owner to 0 and wait until `pods` (namespace, name) are gone;
    returns the records (with the replicas to give back)."""
    done: list[dict[str, Any]] = []
    for kind, ns, name in sorted(set(owners)):
        res = cluster.discovery().get("apps", SCALED_KINDS[kind])
        assert res is not None
        replicas = int((cluster.get(res, name, ns).get("spec") or {}).get("replicas", 1))
        done.append({"kind": kind, "namespace": ns, "name": name, "replicas": replicas})
        record(list(done))  # before the write: a crash from here on leaves a trace
        _scale(cluster, kind, ns, name, 0)
        log.info("quiesce: %s %s/%s scaled 0 (from %d)", kind, ns, name, replicas)
    pod_res = cluster.discovery().get("", "pods")
    assert pod_res is not None
    deadline = time.monotonic() + timeout
    for ns, name in pods:
        while True:
            try:
                cluster.get(pod_res, name, ns)
            except NotFound:
                break
            if time.monotonic() > deadline:
                raise WaitTimeout(f"quiesce: pod {ns}/{name} still there after {timeout:.0f}s")
            time.sleep(0.5)
    return done


def restore_replicas(cluster: Cluster, scaled: list[dict[str, Any]], record: Record) -> None:
    """Give every recorded workload its replicas back, then clear the record."""
    for w in scaled:
        try:
            _scale(cluster, w["kind"], w["namespace"], w["name"], int(w["replicas"]))
        except NotFound:
            log.warning("quiesce: %s %s/%s is gone", w["kind"], w["namespace"], w["name"])
            continue
        log.info(
            "quiesce: %s %s/%s back to %s", w["kind"], w["namespace"], w["name"], w["replicas"]
        )
    record([])


class AnnotationRecord:
    """A Record kept on the workloads: each workload in the list carries ANNOTATION (its
    replicas to give back) from before its scale-down until it has them again."""

    def __init__(self, cluster: Cluster, marked: Iterable[dict[str, Any]] = ()) -> None:
        self.cluster = cluster
        self.marked = {_key(w): w for w in marked}

    def __call__(self, scaled: list[dict[str, Any]]) -> None:
        now = {_key(w): w for w in scaled}
        for key, w in now.items():
            if key not in self.marked:
                self._annotate(w, str(w["replicas"]))
        for key, w in self.marked.items():
            if key not in now:
                self._annotate(w, None)
        self.marked = now

    def _annotate(self, w: dict[str, Any], value: str | None) -> None:
        res = self.cluster.discovery().get("apps", SCALED_KINDS[w["kind"]])
        assert res is not None
        body = {"metadata": {"annotations": {ANNOTATION: value}}}
        try:
            self.cluster.patch(res, w["name"], body, w["namespace"])
        except NotFound:
            log.warning("quiesce: %s %s/%s is gone", w["kind"], w["namespace"], w["name"])


def left_scaled(cluster: Cluster, namespaces: list[str] | None) -> list[dict[str, Any]]:
    """The workloads of `namespaces` (None: all) an interrupted `backup create` left
    scaled down."""
    out = []
    for kind, plural in SCALED_KINDS.items():
        res = cluster.discovery().get("apps", plural)
        assert res is not None
        for ns in [None] if namespaces is None else namespaces:
            for obj in cluster.list(res, ns):
                meta = obj["metadata"]
                value = (meta.get("annotations") or {}).get(ANNOTATION)
                if value is not None and value.isdigit():
                    out.append({"kind": kind, "namespace": meta["namespace"],
                                "name": meta["name"], "replicas": int(value)})  # fmt: skip
    return out


def _key(w: dict[str, Any]) -> tuple[str, str, str]:
    return (w["kind"], w["namespace"], w["name"])
