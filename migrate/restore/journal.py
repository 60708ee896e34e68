"""The restore journal: one JSON line per finished object, appended as it happens.

`--resume` reads it back so a killed restore continues where it stopped; objects the
killed run created but had not journaled yet are recognised on the target by the
restore's label (see execute.Restorer._existing).
"""

from __future__ import annotations

import json
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from migrate.errors import UsageError


@dataclass(frozen=True, slots=True)
class ObjectResult:
    key: Any  # (group, kind, namespace, name) on the target
    gr: str
    result: str  # created | updated | skipped | failed
    message: str = ""
    uid: str = ""

    def as_dict(self) -> dict[str, Any]:
        group, kind, ns, name = self.key
        return {
            "resource": self.gr,
            "kind": kind,
            "group": group,
            "namespace": ns or "",
            "name": name,
            "result": self.result,
            "message": self.message,
            "uid": self.uid,
        }


def state_dir() -> Path:
    base = os.environ.get("KUBE_MIGRATE_STATE_DIR") or os.path.join(
        os.environ.get("XDG_STATE_HOME") or os.path.expanduser("~/.local/state"), "kube-migrate"
    )
    return Path(base)


class Journal:
    def __init__(self, name: str, resume: bool, directory: Path | None = None) -> None:
        self.path = (directory or state_dir() / "restores") / f"{name}.journal.jsonl"
        self._done: dict[Any, ObjectResult] = {}
        self._lock = threading.Lock()
        if self.path.exists() and not resume:
            raise UsageError(
                f"restore {name!r} has run before (journal {self.path})",
                hint="add --resume to continue it, or choose another restore name",
            )
        if resume and not self.path.exists():
            raise UsageError(
                f"no journal for restore {name!r} to resume ({self.path})",
                hint="give the name of a restore that ran on this machine",
            )
        if resume:
            for line in self.path.read_text().splitlines():
                try:
                    d = json.loads(line)
                except ValueError:
                    continue  # a line torn by the kill
                key = (d["group"], d["kind"], d["namespace"] or None, d["name"])
                self._done[key] = ObjectResult(
                    key, d["resource"], d["result"], d["message"], d["uid"]
                )
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = self.path.open("a", encoding="utf-8")

    def done(self, key: Any) -> ObjectResult | None:
        return self._done.get(key)

    def record(self, result: ObjectResult) -> None:
        line = json.dumps(result.as_dict()) + "\n"
        with self._lock:
            self._file.write(line)
            self._file.flush()

    def close(self) -> None:
        self._file.close()
