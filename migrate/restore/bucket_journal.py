"""The bucket's copy of a restore's journal, next to its results, so that `--resume`
works from another machine or pod than the one that started the restore.

Layout under `restores/<name>/journal/`: `header.json` (restore, backup, run, target,
started; written before the restore's first write, it also claims the name), then
numbered segments `000001.jsonl.gz`, each holding the journal lines finished since the
previous one.  The local journal is appended per object; the bucket gets a segment at
the end of every level of the plan, every SYNC_SECONDS while objects finish, and when
the restore stops (also on Ctrl-C / SIGTERM).  So the bucket copy lags by at most
SYNC_SECONDS (or a kill): an object created but not yet in it is still recognised on
resume by its `velero.io/restore-name` label (execute.Restorer._existing) and counted as
created once.  A read-only bucket gets nothing; the journal is then local only.
"""

from __future__ import annotations

import gzip
import json
import os
from typing import Any

from migrate.store import Store

SYNC_SECONDS = float(os.environ.get("KUBE_MIGRATE_JOURNAL_SYNC_SECONDS") or 10)


def prefix(name: str) -> str:
    return f"restores/{name}/journal/"


def header_key(name: str) -> str:
    return f"{prefix(name)}header.json"


def _segment_key(name: str, seq: int) -> str:
    return f"{prefix(name)}{seq:06d}.jsonl.gz"


def read_header(store: Store, name: str) -> dict[str, Any] | None:
    """The header of restore `name`'s journal in the bucket, or None."""
    key = header_key(name)
    if not store.exists(key):
        return None
    try:
        doc = json.loads(store.get(key))
    except ValueError:
        return None
    return doc if isinstance(doc, dict) else None


class BucketJournal:
    """Upload journal lines in batches (segments); read them all back."""

    def __init__(self, store: Store, name: str) -> None:
        self.store, self.name = store, name
        self.seq = 0

    def write_header(self, header: dict[str, Any]) -> None:
        self.store.put(header_key(self.name), json.dumps(header, indent=1).encode())

    def read_lines(self) -> list[str]:
        """Every line of every segment, in order; the next segment number is set after
        the last one found."""
        lines: list[str] = []
        keys = sorted(
            o.key for o in self.store.list(prefix(self.name)) if o.key.endswith(".jsonl.gz")
        )
        for key in keys:
            try:
                text = gzip.decompress(self.store.get(key)).decode()
            except (OSError, EOFError, UnicodeDecodeError):
                continue  # a torn segment: its objects are recognised by their label
            lines += [ln for ln in text.splitlines() if ln.strip()]
            seq = key.rsplit("/", 1)[1].split(".", 1)[0]
            if seq.isdigit():
                self.seq = max(self.seq, int(seq))
        return lines

    def upload(self, lines: list[str]) -> None:
        if not lines:
            return
        self.seq += 1
        blob = gzip.compress(("\n".join(lines) + "\n").encode(), mtime=0)
        self.store.put(_segment_key(self.name, self.seq), blob)
