"""Check 8 (informational): do the restored workloads fit?  The CPU and memory requests
of the pods the restore makes run (replicas x pod template), against the allocatable
capacity of the target's schedulable nodes.  It ignores what already runs there, so a
fit here is necessary, not sufficient.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from migrate.preflight.context import Context
from migrate.preflight.findings import Collect, Finding
from migrate.transform.workloads import pod_spec

_QUANTITY = re.compile(r"^([+-]?[0-9.]+(?:[eE][+-]?[0-9]+)?)([a-zA-Z]*)$")
SUFFIXES: dict[str, float] = {
    "": 1, "n": 1e-9, "u": 1e-6, "m": 1e-3, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12,
    "P": 1e15, "E": 1e18, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50,
    "Ei": 2**60,
}  # fmt: skip


def quantity(text: Any) -> float:
    """A Kubernetes resource quantity ("250m", "1.5Gi", "2e3") as a number; 0 if bad."""
    m = _QUANTITY.match(str(text).strip())
    if not m or m.group(2) not in SUFFIXES:
        return 0.0
    return float(m.group(1)) * SUFFIXES[m.group(2)]


def _spec_int(obj: dict[str, Any], *path: str, default: int = 1) -> int:
    node: Any = obj
    for key in path:
        node = node.get(key) if isinstance(node, dict) else None
    return int(node) if isinstance(node, int) else default


# Kind -> how many pods of its template run at once (nodes: schedulable target nodes).
PODS_PER_OBJECT: dict[str, Callable[[dict[str, Any], int], int]] = {
    "Pod": lambda o, n: 1,
    "Deployment": lambda o, n: _spec_int(o, "spec", "replicas"),
    "StatefulSet": lambda o, n: _spec_int(o, "spec", "replicas"),
    "ReplicaSet": lambda o, n: _spec_int(o, "spec", "replicas"),
    "ReplicationController": lambda o, n: _spec_int(o, "spec", "replicas"),
    "DaemonSet": lambda o, n: n,
    "Job": lambda o, n: _spec_int(o, "spec", "parallelism"),
    "CronJob": lambda o, n: _spec_int(o, "spec", "jobTemplate", "spec", "parallelism"),
}


def pod_requests(spec: dict[str, Any]) -> dict[str, float]:
    """Effective requests of one pod: max(sum of containers, largest init container)."""
    out = {}
    for res in ("cpu", "memory"):

        def req(c: dict[str, Any], r: str = res) -> float:
            return quantity(((c.get("resources") or {}).get("requests") or {}).get(r, 0))

        main = sum(req(c) for c in spec.get("containers") or [])
        init = max((req(c) for c in spec.get("initContainers") or []), default=0.0)
        out[res] = max(main, init)
    return out


def _fmt(res: str, value: float) -> str:
    if res == "cpu":
        return f"{value:g} CPU"
    return f"{value / 2**30:.1f}Gi memory" if value >= 2**30 else f"{value / 2**20:.0f}Mi memory"


def check_capacity(ctx: Context) -> list[Finding]:
    c = Collect("capacity")
    nodes = ctx.target.objects("nodes")
    if nodes is None:
        return []
    ready = [n for n in nodes if not (n.get("spec") or {}).get("unschedulable")]
    alloc = {
        res: sum(quantity(((n.get("status") or {}).get("allocatable") or {}).get(res, 0))
                 for n in ready)
        for res in ("cpu", "memory")
    }  # fmt: skip
    wanted = {"cpu": 0.0, "memory": 0.0}
    pods = 0
    for it in ctx.restorable:
        spec = pod_spec(it.read_desired())
        count = PODS_PER_OBJECT.get(it.kind)
        if spec is None or count is None:
            continue
        n = count(it.read_desired(), len(ready))
        pods += n
        for res, value in pod_requests(spec).items():
            wanted[res] += n * value
    if not pods:
        return []
    need = " and ".join(_fmt(r, v) for r, v in wanted.items())
    have = " and ".join(_fmt(r, v) for r, v in alloc.items())
    short = [r for r in wanted if wanted[r] > alloc[r]]
    c.add(
        "warning" if short else "info",
        f"{pods} pods in scope request {need}; the target's {len(ready)} schedulable nodes "
        f"have {have} allocatable (before what already runs there)"
        + (f": not enough {' and '.join(short)}" if short else ""),
        "add nodes to the target, or lower replicas (--replicas) / requests" if short else "",
    )
    return c.findings()
