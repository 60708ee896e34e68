"""A JSON document of string lists ({key: [values]}), gzipped as the values come.

Velero's resource lists (a backup's `-resource-list.json.gz`, a restore's) name every
object: at 100k objects the names held as Python strings would be 10-20 MB of a run's
peak memory.  Here values wait in small batches and each batch becomes a gzip member of its
own; the document is the members concatenated (gzip readers, Go's and Python's, read
concatenated members as one stream).  The heap holds compressed bytes, ~3 KB a batch.
"""

from __future__ import annotations

import gzip
import threading
from typing import Any

import orjson

BATCH = 1000  # values compressed together (gzip level 1: JSON names compress ~8x)


def _member(data: bytes) -> bytes:
    return gzip.compress(data, compresslevel=1, mtime=0)


_COMMA = _member(b",")  # between two batches of one key


class GzipLists:
    """`add(key, value, part)`; `end_part(part)` once a part is complete (for every
    key); then `gzipped()`.  A key's values come out part by part (parts sorted, None
    first), each part's values in the order added.  Thread-safe."""

    def __init__(self, sort_keys: bool = False) -> None:
        self._sort_keys = sort_keys
        self._pending: dict[tuple[str, Any], list[str]] = {}
        self._members: dict[str, dict[Any, list[bytes]]] = {}  # key -> part -> members
        self._lock = threading.Lock()

    def add(self, key: str, value: str, part: Any = None) -> None:
        self.extend(key, [value], part)

    def extend(self, key: str, values: list[str], part: Any = None) -> None:
        with self._lock:
            batch = self._pending.setdefault((key, part), [])
            batch += values
            if len(batch) >= BATCH:
                self._flush(key, part)

    def end_part(self, part: Any = None) -> None:
        """Compress what waits in `part`: a finished part holds no strings."""
        with self._lock:
            for key, p in [k for k in self._pending if k[1] == part]:
                self._flush(key, p)

    def _flush(self, key: str, part: Any) -> None:
        batch = self._pending.pop((key, part))
        body = b",".join(orjson.dumps(v) for v in batch)
        self._members.setdefault(key, {}).setdefault(part, []).append(_member(body))

    def gzipped(self) -> bytes:
        with self._lock:
            for key, part in list(self._pending):
                self._flush(key, part)
            keys = sorted(self._members) if self._sort_keys else list(self._members)
            out = [_member(b"{")]
            for i, key in enumerate(keys):
                parts = self._members[key]
                out.append(_member((b"," if i else b"") + orjson.dumps(key) + b":["))
                ordered = sorted(parts, key=lambda p: "" if p is None else str(p))
                for j, member in enumerate(m for p in ordered for m in parts[p]):
                    out.append(_COMMA + member if j else member)
                out.append(_member(b"]"))
            out.append(_member(b"}"))
            return b"".join(out)
