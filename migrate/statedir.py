"""Where kube-migrate keeps state on this machine: run journals (playbook/run_dirs.py)
and restore journals and results (restore/journal.py, restore/results.py) all live under
this one folder.  Its own module, importing nothing of ours, so that every layer can ask
without loading another (the playbook package costs ~0.2 s to import)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path


def state_root(env: Mapping[str, str] = os.environ) -> Path:
    """$KUBE_MIGRATE_STATE_DIR, else $XDG_STATE_HOME/kube-migrate, else ~/.local/state/..."""
    if env.get("KUBE_MIGRATE_STATE_DIR"):
        return Path(env["KUBE_MIGRATE_STATE_DIR"])
    xdg = env.get("XDG_STATE_HOME") or os.path.join(
        env.get("HOME") or os.path.expanduser("~"), ".local", "state"
    )
    return Path(xdg) / "kube-migrate"
