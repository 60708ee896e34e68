"""Readiness of restored objects: CRDs Established, workloads available, Jobs complete.

Used by `--wait-ready`, and before webhooks/APIServices are created (their backends
must answer first, or they reject everything after them).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from typing import Any

from migrate.cluster import APIResource, Cluster
from migrate.errors import NotFound, WaitTimeout
from migrate.restore.source import Item
from migrate.transform.workloads import pod_spec

log = logging.getLogger(__name__)
WORKLOAD_KINDS = frozenset({"Deployment", "StatefulSet", "DaemonSet", "Job"})


def _condition(obj: dict[str, Any], ctype: str) -> bool:
    conds = (obj.get("status") or {}).get("conditions") or []
    return any(c.get("type") == ctype and c.get("status") == "True" for c in conds)


def workload_ready(obj: dict[str, Any]) -> tuple[bool, str]:
    """(ready, why not) for a Deployment, StatefulSet, DaemonSet or Job."""
    kind, spec, st = obj.get("kind"), obj.get("spec") or {}, obj.get("status") or {}
    gen_ok = st.get("observedGeneration", 0) >= (obj.get("metadata") or {}).get("generation", 0)
    if kind == "Job":
        done = _condition(obj, "Complete") or (
            st.get("succeeded", 0) >= (spec.get("completions") or 1)
        )
        return done, f"{st.get('succeeded', 0)}/{spec.get('completions') or 1} completions"
    if kind == "DaemonSet":
        want, have = st.get("desiredNumberScheduled", 0), st.get("numberAvailable", 0)
        return gen_ok and have >= want, f"{have}/{want} available"
    want = spec.get("replicas", 1)
    have = st.get("availableReplicas" if kind == "Deployment" else "readyReplicas", 0) or 0
    return gen_ok and have >= want, f"{have}/{want} ready"


def wait_ready(cluster: Cluster, items: list[Item], timeout: float, interval: float = 1.0) -> None:
    """Wait until every workload among items is ready; WaitTimeout names the laggards."""
    pending = {it.key: it for it in items if it.kind in WORKLOAD_KINDS}
    deadline = time.monotonic() + timeout
    why: dict[Any, str] = {}
    while pending:
        for key, it in list(pending.items()):
            res = cluster.discovery().for_kind(it.api_version, it.kind)
            if res is None:
                pending.pop(key)
                continue
            try:
                live = cluster.get(res, key[3], key[2])
            except NotFound:
                why[key] = "not found"
                continue
            ok, why[key] = workload_ready(live)
            if ok:
                pending.pop(key)
        if not pending:
            return
        if time.monotonic() > deadline:
            lagging = ", ".join(f"{k[1]} {k[2]}/{k[3]} ({why.get(k, '?')})" for k in pending)
            raise WaitTimeout(f"not ready after {timeout:.0f}s: {lagging}")
        time.sleep(interval)


def wait_crd_established(
    cluster: Cluster, res: APIResource, name: str, timeout: float = 60
) -> None:
    deadline = time.monotonic() + timeout
    while True:
        crd = cluster.get(res, name)
        if _condition(crd, "Established") and _condition(crd, "NamesAccepted"):
            return
        if time.monotonic() > deadline:
            raise WaitTimeout(f"CRD {name} not Established after {timeout:.0f}s")
        time.sleep(0.2)


def _services(it: Item) -> list[tuple[str, str]]:
    """(namespace, name) of the Services a webhook configuration or APIService calls."""
    if it.kind == "APIService":
        svc = (it.read_desired().get("spec") or {}).get("service")
        return [(svc["namespace"], svc["name"])] if svc else []
    out = []
    for hook in it.read_desired().get("webhooks") or []:
        svc = (hook.get("clientConfig") or {}).get("service")
        if svc:
            out.append((svc["namespace"], svc["name"]))
    return out


def backing_workloads(late: Item, items: Iterable[Item]) -> list[Item]:
    """The restored workloads whose pods a late object's Services select."""
    wanted = set(_services(late))
    selectors = [
        (it.target_ns, (it.read_desired().get("spec") or {}).get("selector") or {})
        for it in items
        if it.kind == "Service" and (it.target_ns, it.key[3]) in wanted
    ]
    out = []
    for it in items:
        if it.kind not in WORKLOAD_KINDS - {"Job"} or pod_spec(it.read_desired()) is None:
            continue
        tmpl = ((it.read_desired().get("spec") or {}).get("template") or {}).get("metadata") or {}
        labels = tmpl.get("labels") or {}
        for ns, sel in selectors:
            if sel and ns == it.target_ns and all(labels.get(k) == v for k, v in sel.items()):
                out.append(it)
                break
    return out
