"""Restore's data level: once a level of the restore graph has created claims, a mover pod
writes each claim's data into it, before the next level creates the workloads that use
it.  No init container is injected into the user's pods (Velero's `restore-wait` breaks
under runAsNonRoot), and the workloads start on complete data.

With a WaitForFirstConsumer class the mover is the claim's first consumer, so it is placed
as the workload that will use the claim would be (its nodeSelector, affinity and
tolerations): the volume is provisioned where that workload can run.  Before any write,
`check_sizes` refuses a restore whose target claims are smaller than their data.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from typing import Any

from migrate.cluster import Cluster
from migrate.errors import PartialFailure
from migrate.transform.workloads import template_claims
from migrate.units import human_bytes, quantity
from migrate.volumes.mover import MoverFailed, run_mover
from migrate.volumes.mover_pod import MoverJob, MoverSettings
from migrate.volumes.progress import ClaimBytes
from migrate.volumes.records import VolumeCopy

log = logging.getLogger(__name__)
CLAIM = "PersistentVolumeClaim"


@dataclass
class PlannedClaim:
    """A claim restore will create: where (after mapping), and its requested size."""

    source_ns: str
    name: str
    target_ns: str
    request: str
    volume: str = ""  # the PV it is bound to as created ("": a fresh, empty volume)


@dataclass
class Placement:
    """The scheduling constraints of the workload that will mount a claim."""

    node_selector: dict[str, str] = field(default_factory=dict)
    affinity: dict[str, Any] = field(default_factory=dict)
    tolerations: list[dict[str, Any]] = field(default_factory=list)


def placements(
    workloads: Iterable[tuple[str, dict[str, Any], dict[str, Any]]],
) -> dict[tuple[str, str], Placement]:
    """(target namespace, claim) -> placement, from (namespace, object, pod spec) of every
    workload restore creates; a StatefulSet's template claims are `<tpl>-<set>-<i>`."""
    out: dict[tuple[str, str], Placement] = {}
    for ns, obj, spec in workloads:
        p = Placement(
            dict(spec.get("nodeSelector") or {}),
            dict(spec.get("affinity") or {}),
            list(spec.get("tolerations") or []),
        )
        for vol in spec.get("volumes") or []:
            claim = (vol.get("persistentVolumeClaim") or {}).get("claimName")
            if claim:
                out.setdefault((ns, claim), p)
        for claim in template_claims(obj):
            out.setdefault((ns, claim), p)
    return out


def check_sizes(claims: Iterable[PlannedClaim], copies: dict[tuple[str, str], VolumeCopy]) -> None:
    """Refuse (exit 5, before anything is written) claims smaller than their data."""
    small = []
    for c in claims:
        v = copies.get((c.source_ns, c.name))
        if v is None or not v.snapshot or c.volume:
            continue
        if c.request and quantity(c.request) < v.total_bytes:
            small.append(
                f"{c.target_ns}/{c.name} asks for {c.request} but its data is "
                f"{human_bytes(v.total_bytes)}"
            )
    if small:
        raise PartialFailure(
            "target claims too small for their data: " + "; ".join(small),
            hint="raise the sizes (--pvc-size-mappings NS/CLAIM:SIZE, or a resource modifier); "
            "nothing was written",
        )


@dataclass
class DataLevel:
    """Called after each level of the restore: fills the claims that level created."""

    cluster: Cluster
    copies: dict[tuple[str, str], VolumeCopy]  # (source namespace, claim) -> its data
    where: dict[tuple[str, str], Placement]
    settings: MoverSettings
    parallelism: int = 8
    attempts: int = 2
    # opens the data's own progress task (bytes): events.task on a run's sink, a CLI bar
    open_task: Callable[[str], AbstractContextManager[Callable[[str, int], None]]] | None = None
    results: list[dict[str, Any]] = field(default_factory=list)
    on_done: Callable[[PlannedClaim, dict[str, Any]], None] = lambda _c, _r: None
    # (source namespace, claim) of claims that hold an earlier copy already: the mover
    # writes only what differs (an increment of a live migration)
    delta: set[tuple[str, str]] = field(default_factory=set)
    verify: bool = False  # ... and then checks the claim against the copy
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _tell: Callable[[str, int], None] = lambda _e, _n: None
    _bytes: ClaimBytes = field(default_factory=lambda: ClaimBytes(lambda _e, _n: None))

    def __call__(self, created: list[PlannedClaim]) -> None:
        todo = []
        for c in created:
            v = self.copies.get((c.source_ns, c.name))
            if v is None or not v.snapshot:
                continue
            if c.volume:  # never write into a volume that existed before (the source's?)
                log.warning(
                    "claim %s/%s keeps volume %s (--pv-policy retain-as-is): its data is "
                    "not written over", c.target_ns, c.name, c.volume,
                )  # fmt: skip
                continue
            todo.append(c)
        if not todo:
            return
        title = f"volume data of {len(todo)} claim(s)"
        with self.open_task(title) if self.open_task else nullcontext(None) as task:
            self._tell = task or self._tell
            self._bytes = ClaimBytes(self._tell)
            self._tell("total", len(todo))
            for c in todo:
                total = self.copies[(c.source_ns, c.name)].total_bytes
                self._bytes.expect((c.target_ns, c.name), total)
            with ThreadPoolExecutor(max_workers=max(1, self.parallelism)) as pool:
                errors = [e for e in pool.map(self._one, todo) if e]
        if errors:
            raise PartialFailure(
                f"the data of {len(errors)} claim(s) was not restored: " + "; ".join(errors),
                hint="the workloads that use them were not created; fix and rerun",
            )

    def _delta_args(self, delta: bool, v: VolumeCopy) -> list[str]:
        if not delta:
            return []
        manifest = ["--manifest-snapshot", v.manifest_snapshot] if v.manifest_snapshot else []
        return ["--delta", *(["--verify"] if self.verify else []), *manifest]

    def _one(self, c: PlannedClaim) -> str:
        v = self.copies[(c.source_ns, c.name)]
        p = self.where.get((c.target_ns, c.name), Placement())
        delta = (c.source_ns, c.name) in self.delta
        job = MoverJob(
            "restore",
            c.target_ns,
            c.name,
            ["--snapshot", v.snapshot, *self._delta_args(delta, v)],
            tolerations=p.tolerations,
            node_selector=p.node_selector,
            affinity=p.affinity,
            repository=c.source_ns,
            watch=self._bytes.watcher((c.target_ns, c.name)),
        )
        try:
            result = run_mover(self.cluster, job, self.settings, self.attempts)
        except MoverFailed as exc:
            return f"{c.target_ns}/{c.name}: {exc.message}"
        row: dict[str, Any] = {
            "claim": f"{c.target_ns}/{c.name}",
            "snapshot": v.snapshot,
            "bytes": int(result.get("bytes") or 0),
            "files": int(result.get("files") or 0),
            "seconds": round(float(result.get("seconds") or 0), 2),
            **({"delta": True, "removed": int(result.get("removed") or 0)} if delta else {}),
            **({"differences": int(result.get("differences") or 0),
                "diffs": result.get("diffs") or []} if result.get("verified") else {}),
        }  # fmt: skip
        log.info("claim %s: data restored (%s)", row["claim"], human_bytes(row["bytes"]))
        with self._lock:
            self.results.append(row)
        self.on_done(c, row)
        self._bytes.finish((c.target_ns, c.name), v.total_bytes)
        self._tell("done", 1)
        return ""
