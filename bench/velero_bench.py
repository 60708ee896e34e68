"""Velero's restore of our backup, timed: the peer our restore is compared with.

The server itself is hack/devenv/velero.py (the one tests/test_velero_compat.py runs);
here it only gets its location on the run's bucket prefix, is waited for until it has
synced our backup, and `velero restore create --from-backup ... --wait` is timed.
"""

from __future__ import annotations

import sys
import time
import uuid
from pathlib import Path
from typing import Any

from baselines import timed
from memory import ROOT  # bench/ is sys.path[0] when run as a script

from migrate.cluster import Cluster

if str(ROOT / "hack") not in sys.path:
    sys.path.insert(0, str(ROOT / "hack"))
from devenv.velero import Velero, VeleroError, home, velero_server


def velero_binary() -> Path:
    """The `velero` binary hack/build.sh velero builds (it may not be there)."""
    return home() / "velero"


UNTHROTTLED = ("--client-qps", "1000", "--client-burst", "2000")  # vs its 20 / 30


def measure_velero(
    dst: Cluster,
    e: dict[str, str],
    bucket: str,
    prefix: str,
    backup: str,
    mapping: str,
    server_args: tuple[str, ...] = (),
) -> dict[str, Any]:
    """Seconds until Velero lists `backup`, seconds of its restore with `mapping`
    (namespace-mappings), and the restore's phase.  `server_args`: extra flags of
    `velero server` (UNTHROTTLED lifts its client-side rate limit: compared with ours at
    --qps 0)."""
    try:
        with velero_server(
            dst,
            e["KUBE_MIGRATE_TARGET_KUBECONFIG"],
            bucket,
            prefix,
            env=e,
            sync_period="2s",
            cli_timeout=1800,
            server_args=server_args,
        ) as cli:
            return _restore(cli, backup, mapping)
    except VeleroError as err:
        raise SystemExit(str(err)) from err


def _restore(cli: Velero, backup: str, mapping: str) -> dict[str, Any]:
    t0 = time.monotonic()
    while backup not in cli("backup", "get"):
        if time.monotonic() - t0 > 180:
            raise SystemExit("Velero did not sync our backup")
        time.sleep(0.5)
    synced = time.monotonic() - t0
    name = f"vr-{uuid.uuid4().hex[:6]}"
    took, out = timed(
        lambda: cli(
            "restore",
            "create",
            name,
            "--from-backup",
            backup,
            "--namespace-mappings",
            mapping,
            "--wait",
        )
    )
    if "Completed" not in out and "PartiallyFailed" not in out:
        raise SystemExit(f"Velero restore did not complete: {out}")
    phase = "Completed" if "Completed" in out else "PartiallyFailed"
    return {"veleroSyncSeconds": synced, "veleroRestoreSeconds": took, "veleroPhase": phase}
