"""Start detached processes with their logs in files, and stop exactly those (by pid,
checked against the recorded executable so a recycled pid is never killed)."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Any


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start(
    name: str, argv: list[str], log: Path, env: dict[str, str] | None = None
) -> dict[str, Any]:
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            argv,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            env={**os.environ, **(env or {})},
        )
    return {"name": name, "pid": proc.pid, "exe": os.path.realpath(argv[0]), "log": str(log)}


def alive(p: dict[str, Any]) -> bool:
    try:
        exe = os.path.realpath(f"/proc/{p['pid']}/exe")
        stat = Path(f"/proc/{p['pid']}/stat").read_text()
    except OSError:
        return False
    zombie = stat.rsplit(")", 1)[-1].split()[0] == "Z"
    return exe == p["exe"] and not zombie


def stop(procs: list[dict[str, Any]], timeout: float = 15.0) -> None:
    """SIGTERM each live recorded process (reverse start order), SIGKILL stragglers."""
    live = [p for p in reversed(procs) if alive(p)]
    for p in live:
        with contextlib.suppress(ProcessLookupError):
            os.kill(p["pid"], signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(alive(p) for p in live):
        time.sleep(0.1)
    for p in live:
        if alive(p):
            with contextlib.suppress(ProcessLookupError):
                os.kill(p["pid"], signal.SIGKILL)


def tail(path: str, lines: int = 15) -> str:
    try:
        return "\n".join(Path(path).read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""
