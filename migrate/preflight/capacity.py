"""Check 8 (informational): do the restored workloads fit?  The CPU and memory requests
of the pods the restore makes run (replicas x pod template), against the allocatable
capacity of the target's schedulable nodes.  It ignores what already runs there, so a
fit here is necessary, not sufficient.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from migrate.preflight.context import Context
from migrate.preflight.findings import Collect, Finding
from migrate.transform.workloads import pod_spec
from migrate.units import quantity


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
