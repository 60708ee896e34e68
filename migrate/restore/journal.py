"""The restore journal: one JSON line per finished object, appended as it happens to a
local file and copied to the bucket in batches (bucket_journal.py).

`--resume` reads it back (from either copy) so a killed restore continues where it
stopped, on this machine or another; objects the killed run created but had not
journaled yet are recognised on the target by the restore's label (see
execute.Restorer._existing).  Its header names the backup and the run it belongs to.
"""

from __future__ import annotations

import json
import threading
import time
from array import array
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from migrate.errors import UsageError
from migrate.restore.bucket_journal import SYNC_SECONDS, BucketJournal, prefix, read_header
from migrate.restore.spool import Spool
from migrate.statedir import state_root
from migrate.store import Store


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
    rows live in a spool file; the heap holds 12 bytes an object (at 100k objects,
    ObjectResults with their uids would take ~25 MB, and a dict of their refs ~8 MB)."""

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
    """This machine's state folder (migrate/statedir.py), read from the environment now."""
    return state_root()


class Journal:
    """The local journal file (`<state dir>/restores/<name>.journal.jsonl`: a header line,
    then one line per finished object), mirrored to the bucket in batches
    (bucket_journal.py) unless the bucket is read-only or absent.

    `header` says whose restore this is (restore, backup, run, target).  Resuming reads
    the local lines and the bucket's (either may be missing: another machine, or a
    read-only bucket) and refuses a journal of another backup, or, when `run` is given,
    of another run."""

    def __init__(
        self,
        name: str,
        resume: bool,
        directory: Path | None = None,
        *,
        store: Store | None = None,
        header: dict[str, Any] | None = None,
        run: str | None = None,
        before_write: Callable[[], None] | None = None,
    ) -> None:
        self.name = name
        self.path = (directory or state_dir() / "restores") / f"{name}.journal.jsonl"
        self._done: dict[Any, ObjectResult] = {}
        self._lock = threading.Lock()
        self._pending: list[str] = []
        self._last_sync = time.monotonic()
        writable = store is not None and not store.read_only
        self._bucket = BucketJournal(store, name) if store is not None and writable else None
        remote = read_header(store, name) if store is not None else None
        local = self.path.exists()
        if (local or remote) and not resume:
            where = self.path if local else f"{store.url if store else ''}/{prefix(name)}"
            raise UsageError(
                f"restore {name!r} has run before (journal {where})",
                hint="add --resume to continue it, or choose another restore name",
            )
        if resume and not (local or remote):
            raise UsageError(
                f"no journal for restore {name!r} to resume ({self.path}"
                + (f", {store.url}/{prefix(name)}" if store is not None else "")
                + ")",
                hint="give the name of a restore that was started (`kube-migrate restore get`)",
            )
        self.header: dict[str, Any] = dict(header or {})
        lines: list[str] = []
        if resume:
            if self._bucket is not None and remote is not None:
                lines += self._bucket.read_lines()
            elif store is not None and remote is not None:  # read-only: read, never write
                lines += BucketJournal(store, name).read_lines()
            if local:
                lines += self.path.read_text().splitlines()
            found = remote or self._local_header() or {}
            _check_owner(name, found, self.header, run)
            self.header = {**found, **{k: v for k, v in self.header.items() if k not in found}}
            for line in lines:
                self._load(line)
        if before_write is not None:  # every check passed: the restore's first write is next
            before_write()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = self.path.open("a", encoding="utf-8")
        if not local:  # a new journal, or one continued from the bucket on another machine
            self._file.write(json.dumps({"header": self.header}) + "\n")
            for r in self._done.values():
                self._file.write(json.dumps(r.as_dict()) + "\n")
            self._file.flush()
        if self._bucket is not None and remote is None:
            self._bucket.write_header(self.header)
        if self._bucket is not None and local and self._done:  # what only this machine had
            self._bucket.upload([json.dumps(r.as_dict()) for r in self._done.values()])

    def _local_header(self) -> dict[str, Any] | None:
        if not self.path.exists():
            return None
        with self.path.open(encoding="utf-8") as f:
            first = f.readline()
        try:
            head = json.loads(first).get("header")
        except (ValueError, AttributeError):
            return None
        return head if isinstance(head, dict) else None

    def _load(self, line: str) -> None:
        try:
            d = json.loads(line)
            if "header" in d:
                return
            key = (d["group"], d["kind"], d["namespace"] or None, d["name"])
        except (ValueError, KeyError, TypeError):
            return  # a line torn by the kill
        self._done[key] = ObjectResult(key, d["resource"], d["result"], d["message"], d["uid"])

    def done(self, key: Any) -> ObjectResult | None:
        return self._done.get(key)

    def record(self, result: ObjectResult) -> None:
        line = orjson.dumps(result.as_dict()).decode()  # (one per object: orjson's speed)
        with self._lock:
            self._file.write(line + "\n")
            self._file.flush()
            if self._bucket is not None:
                self._pending.append(line)
                if time.monotonic() - self._last_sync >= SYNC_SECONDS:
                    self._sync_locked()

    def sync(self) -> None:
        """Upload the lines finished since the last upload (a level's end, the close)."""
        with self._lock:
            self._sync_locked()

    def _sync_locked(self) -> None:
        self._last_sync = time.monotonic()
        if self._bucket is not None and self._pending:
            lines, self._pending = self._pending, []
            self._bucket.upload(lines)

    def close(self) -> None:
        try:
            self.sync()
        finally:
            self._file.close()


def _check_owner(name: str, found: dict[str, Any], wanted: dict[str, Any], run: str | None) -> None:
    """A resume continues this restore of this backup (of this run), never another's."""
    backup, other = found.get("backup"), wanted.get("backup")
    if backup and other and backup != other:
        raise UsageError(
            f"restore {name!r} restores backup {backup!r}, not {other!r}",
            hint=f"resume it with --from-backup {backup}, or start a new restore of {other}",
        )
    owner = found.get("run") or None
    if run is not None and found and owner != run:  # (a journal with no header: older)
        raise UsageError(
            f"restore {name!r} belongs to "
            + (f"run {owner!r}" if owner else "no run (a `restore create`)")
            + f", not to run {run!r}; it is not resumed or replayed",
            hint="give the run its own restore name (spec.restore.name), or leave it unset "
            "so that each run's restore is named after the run",
        )
