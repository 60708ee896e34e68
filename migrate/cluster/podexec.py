"""Run a command in a container through the API server (`kubectl exec`), for the
consistency hooks of a backup (Velero's `pre/post.hook.backup.velero.io/*`) and the
verbs a standby mover pod runs (volumes/standby.py).

The exec protocol is a websocket (channel.k8s.io), which the kubernetes package speaks;
this is the one place outside kubeconfig parsing where it is used.  Output is captured
up to a bound (a hook's chatter never fills memory) and returned, never logged here:
the caller decides what of it a user sees.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from migrate.cluster.client import Cluster
from migrate.errors import ClusterError

OUTPUT_LIMIT = 64 * 1024


@dataclass(frozen=True)
class ExecResult:
    exit_code: int  # -1: it did not end within the timeout
    stdout: str
    stderr: str


def warm_up() -> None:
    """Import the exec machinery now (~0.8 s), not inside the first hook: a backup calls
    this before its first pre hook, so the app is not held while Python imports."""
    from kubernetes.client import CoreV1Api  # noqa: F401
    from kubernetes.stream import stream  # noqa: F401


def exec_in_pod(
    cluster: Cluster,
    namespace: str,
    pod: str,
    container: str,
    command: list[str],
    timeout: float,
    *,
    limit: int = OUTPUT_LIMIT,
    on_stdout: Callable[[str], None] | None = None,
    stop: threading.Event | None = None,
) -> ExecResult:
    """Run `command` in the container and wait up to `timeout` seconds for its end (or
    until `stop` is set); the last `limit` characters of each stream are kept, and each
    piece of stdout is also handed to `on_stdout` as it arrives."""
    from kubernetes.client import CoreV1Api
    from kubernetes.client.exceptions import ApiException
    from kubernetes.stream import stream

    api = CoreV1Api(cluster._api)
    try:
        ws: Any = stream(
            api.connect_get_namespaced_pod_exec,
            pod,
            namespace,
            container=container or None,
            command=command,
            stderr=True,
            stdin=False,
            stdout=True,
            tty=False,
            _preload_content=False,
        )
    except ApiException as exc:
        raise ClusterError(
            f"{cluster.name}: exec in pod {namespace}/{pod}: {exc.status} {exc.reason}",
            status=exc.status,
        ) from exc
    out: list[str] = []
    err: list[str] = []
    deadline = time.monotonic() + timeout
    try:
        while ws.is_open() and time.monotonic() < deadline:
            if stop is not None and stop.is_set():
                break
            ws.update(timeout=min(1.0, max(0.0, deadline - time.monotonic())))
            if ws.peek_stdout():
                piece = ws.read_stdout()
                out.append(piece)
                if on_stdout is not None:
                    on_stdout(piece)
            if ws.peek_stderr():
                err.append(ws.read_stderr())
        code = ws.returncode if not ws.is_open() else -1
    finally:
        ws.close()
    return ExecResult(
        -1 if code is None else int(code),
        "".join(out)[-limit:],
        "".join(err)[-limit:],
    )
