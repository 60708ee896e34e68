"""Workloads restored "held": present on the target but running nothing until released.

A live migration fills the target while the source keeps serving; the target's copies
of the apps must not start (two writers, one set of data).  Held, a Deployment or
StatefulSet has 0 replicas and a CronJob is suspended, and each keeps its intended value
in an annotation; `release` gives it back (the cut-over), `hold` takes it away again (a
roll-back).  A cut-over holds the source the same way, so the record travels with the
final increment; a scale-down of the source for a copy (`QUIESCED`) counts as well.
Verify compares the intended values, never the held or quiesced ones.
"""

from __future__ import annotations

import json
from typing import Any

HELD = "kube-migrate.io/held"  # on a held target workload: its intended value (JSON)
QUIESCED = "kube-migrate.io/quiesced-replicas"  # on a source workload scaled down for a copy
RECORDS = (QUIESCED,)  # other records of a workload's real replicas

# kind -> (the spec field that runs it, its held value, its default when unset)
HOLDS: dict[str, tuple[str, Any, Any]] = {
    "Deployment": ("replicas", 0, 1),
    "StatefulSet": ("replicas", 0, 1),
    "ReplicaSet": ("replicas", 0, 1),  # one without a Deployment (else restore skips it)
    "CronJob": ("suspend", True, False),
}


def _intended(obj: dict[str, Any]) -> Any:
    """The value the workload is meant to run with: the held or quiesced record, else
    its spec's."""
    field, _held, default = HOLDS[obj["kind"]]
    notes = (obj.get("metadata") or {}).get("annotations") or {}
    if HELD in notes:
        return json.loads(notes[HELD])
    for record in RECORDS:
        if field == "replicas" and str(notes.get(record, "")).isdigit():
            return int(notes[record])
    return (obj.get("spec") or {}).get(field, default)


def hold(obj: dict[str, Any]) -> dict[str, Any]:
    """Hold a workload about to be restored (in place); other kinds are returned as they
    are.  Its intended value goes into HELD; a source's QUIESCED record is dropped."""
    if obj.get("kind") not in HOLDS:
        return obj
    field, held, _default = HOLDS[obj["kind"]]
    intended = _intended(obj)
    notes = obj.setdefault("metadata", {}).setdefault("annotations", {})
    for record in RECORDS:
        notes.pop(record, None)
    notes[HELD] = json.dumps(intended)
    obj.setdefault("spec", {})[field] = held
    return obj


def release_patch(live: dict[str, Any]) -> dict[str, Any] | None:
    """A merge patch giving a held workload its intended value; None if not held."""
    notes = (live.get("metadata") or {}).get("annotations") or {}
    if live.get("kind") not in HOLDS or HELD not in notes:
        return None
    field = HOLDS[live["kind"]][0]
    return {"metadata": {"annotations": {HELD: None}}, "spec": {field: json.loads(notes[HELD])}}


def hold_patch(live: dict[str, Any]) -> dict[str, Any] | None:
    """A merge patch holding a released workload again (its current value recorded);
    None for other kinds and for one already held."""
    notes = (live.get("metadata") or {}).get("annotations") or {}
    if live.get("kind") not in HOLDS or HELD in notes:
        return None
    field, held, _default = HOLDS[live["kind"]]
    return {
        "metadata": {"annotations": {HELD: json.dumps(_intended(live))}},
        "spec": {field: held},
    }


def recorded(obj: dict[str, Any]) -> bool:
    """Whether a workload is held or stopped with its real value recorded."""
    notes = (obj.get("metadata") or {}).get("annotations") or {}
    return obj.get("kind") in HOLDS and any(k in notes for k in (HELD, *RECORDS))


def as_intended(obj: dict[str, Any]) -> dict[str, Any]:
    """The workload as it is meant to run (in place): the recorded value in its spec,
    the records dropped.  Verify compares both sides this way."""
    if not recorded(obj):
        return obj
    notes = obj["metadata"]["annotations"]
    obj.setdefault("spec", {})[HOLDS[obj["kind"]][0]] = _intended(obj)
    for k in (HELD, *RECORDS):
        notes.pop(k, None)
    if not notes:
        obj["metadata"].pop("annotations", None)
    return obj
