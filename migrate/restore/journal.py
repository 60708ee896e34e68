"""The restore journal: one JSON line per finished object, appended as it happens.

`--resume` reads it back so a killed restore continues where it stopped; objects the
killed run created but had not journaled yet are recognised on the target by the
restore's label (see execute.Restorer._existing).
"""

from __future__ import annotations

import json
import os
import threading
from array import array
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
    """Every object's result by its place in the plan's ItemTable, in the order they
    happened (a later result for the same object replaces the earlier, in place).  The
    rows live in a spool file; the heap holds 12 bytes an object (at 100k objects the
    ObjectResults, uids included, were ~25 MB, and a dict of their refs ~8 MB)."""

    def __init__(self, spool: Spool | None = None) -> None:
        self._spool = spool or Spool()
        self._refs = array("Q")  # table index -> the row's ref (0: no result yet)
        self._order = array("I")  # table indices in the order their first result came
        self._lock = threading.Lock()

    def put(self, index: int, r: ObjectResult) -> None:
        ref = self._spool.put(orjson.dumps((r.key, r.gr, r.result, r.message, r.uid)))
        with self._lock:
            if index >= len(self._refs):
                self._refs.frombytes(bytes(8 * (index + 1 - len(self._refs))))
            if not self._refs[index]:
                self._order.append(index)
            self._refs[index] = ref

    def get(self, index: int) -> ObjectResult | None:
        ref = self._refs[index] if index < len(self._refs) else 0
        return self._load(ref) if ref else None

    def _load(self, ref: int) -> ObjectResult:
        key, gr, result, message, uid = orjson.loads(self._spool.get(ref))
        return ObjectResult(tuple(key), gr, result, message, uid)

    def __len__(self) -> int:
        return len(self._order)

    def __iter__(self) -> Iterator[ObjectResult]:
        with self._lock:
            order = array("I", self._order)
        for index in order:
            yield self._load(self._refs[index])

    def values(self) -> Iterator[ObjectResult]:
        return iter(self)

    def __contains__(self, r: object) -> bool:  # a Collection's (callers count and iterate)
        return isinstance(r, ObjectResult) and any(mine == r for mine in self)


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
