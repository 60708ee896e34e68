"""The restore journal: one JSON line per finished object, appended as it happens.

`--resume` reads it back so a killed restore continues where it stopped; objects the
killed run created but had not journaled yet are recognised on the target by the
restore's label (see execute.Restorer._existing).
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from migrate.errors import UsageError
from migrate.restore.spool import Spool


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


class ResultTable:
    """Every object's result by key, in the order they happened (a later result for the
    same key replaces the earlier, in place).  The rows live in a spool file, the heap
    holds one small int per object: at 100k objects the ObjectResults, uids included,
    were ~25 MB."""

    def __init__(self, spool: Spool | None = None) -> None:
        self._spool = spool or Spool()
        self._refs: dict[Any, int] = {}
        self._lock = threading.Lock()

    def __setitem__(self, key: Any, r: ObjectResult) -> None:
        ref = self._spool.put(orjson.dumps((r.key, r.gr, r.result, r.message, r.uid)))
        with self._lock:
            self._refs[key] = ref

    def get(self, key: Any) -> ObjectResult | None:
        ref = self._refs.get(key)
        return None if ref is None else self._load(ref)

    def _load(self, ref: int) -> ObjectResult:
        key, gr, result, message, uid = orjson.loads(self._spool.get(ref))
        return ObjectResult(tuple(key), gr, result, message, uid)

    def __len__(self) -> int:
        return len(self._refs)

    def __iter__(self) -> Iterator[ObjectResult]:
        for ref in list(self._refs.values()):
            yield self._load(ref)

    def values(self) -> Iterator[ObjectResult]:
        return iter(self)

    def __contains__(self, r: object) -> bool:
        return isinstance(r, ObjectResult) and self.get(r.key) == r


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
