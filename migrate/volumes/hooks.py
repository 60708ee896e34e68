"""Consistency hooks around a pod's volume copies, in Velero's annotations: before the copy
`pre.hook.backup.velero.io/{container,command,on-error,timeout}` (flush and freeze a
database, say), after it `post.hook.backup.velero.io/...` (thaw), run in the pod's
container through the API's exec.  `on-error: Fail` (the default) fails the copies of that
pod's claims; `Continue` goes on with a warning.  A post hook runs whenever its pre hook
succeeded, even when a copy failed, so a frozen app is always thawed.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

from migrate.cluster import Cluster
from migrate.cluster.podexec import exec_in_pod
from migrate.errors import ClusterError, UsageError
from migrate.units import parse_duration

log = logging.getLogger(__name__)
PREFIX = {"pre": "pre.hook.backup.velero.io/", "post": "post.hook.backup.velero.io/"}
DEFAULT_TIMEOUT = 30.0  # Velero's


@dataclass(frozen=True)
class Hook:
    phase: str  # pre | post
    container: str
    command: list[str]
    on_error: str  # Fail | Continue
    timeout: float


def has_hooks(pod: dict[str, Any]) -> bool:
    """The pod names a pre or post hook command (well-formed or not)."""
    notes = (pod.get("metadata") or {}).get("annotations") or {}
    return any(p + "command" in notes for p in PREFIX.values())


def pod_hook(pod: dict[str, Any], phase: str) -> Hook | None:
    """The pod's hook of `phase` from its annotations, or None; UsageError when malformed."""
    notes = (pod.get("metadata") or {}).get("annotations") or {}
    pre = PREFIX[phase]
    raw = notes.get(pre + "command")
    if not raw:
        return None
    where = f"pod {pod['metadata'].get('namespace')}/{pod['metadata'].get('name')}"
    try:
        command = json.loads(raw) if raw.lstrip().startswith("[") else [raw]
    except json.JSONDecodeError as exc:
        raise UsageError(
            f"{where}: {pre}command is not a JSON list: {exc}",
            hint='write it as a JSON array, e.g. ["/bin/sh", "-c", "sync"]',
        ) from exc
    containers = [c.get("name", "") for c in (pod.get("spec") or {}).get("containers") or []]
    on_error = notes.get(pre + "on-error", "Fail")
    if on_error not in ("Fail", "Continue"):
        raise UsageError(f"{where}: {pre}on-error {on_error!r}", hint="use Fail or Continue")
    timeout = notes.get(pre + "timeout")
    return Hook(
        phase,
        notes.get(pre + "container") or (containers[0] if containers else ""),
        [str(c) for c in command],
        on_error,
        parse_duration(timeout, pre + "timeout").total_seconds() if timeout else DEFAULT_TIMEOUT,
    )


def run_hook(cluster: Cluster, namespace: str, pod: str, hook: Hook) -> str:
    """Run it; "" when it succeeded (or failed with on-error Continue), else why it failed."""
    where = f"{hook.phase} hook of pod {namespace}/{pod} (container {hook.container})"
    try:
        res = exec_in_pod(cluster, namespace, pod, hook.container, hook.command, hook.timeout)
        problem = (
            f"timed out after {hook.timeout:.0f}s"
            if res.exit_code == -1
            else (f"exit {res.exit_code}: {res.stderr.strip()[-300:]}" if res.exit_code else "")
        )
    except ClusterError as exc:
        problem = exc.message
    if not problem:
        log.info("%s: done", where)
        return ""
    if hook.on_error == "Continue":
        log.warning("%s failed (%s); on-error Continue: going on", where, problem)
        return ""
    return f"{where} failed: {problem}"
