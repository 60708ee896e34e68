"""Our manifest, `<name>-kube-migrate.json`: what kube-migrate adds to Velero's layout.

Size and sha256 of every file of a backup, the source cluster's facts, and our backup
facts (counts, grants, encryption).  Kept apart from layout.py, which spells Velero's own
format: this file is ours alone (Velero ignores it), and it is the one a key seals
(manifest_mac.py).  layout.py re-exports its names: readers use `layout.Manifest`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from migrate.errors import IntegrityError
from migrate.store.encryption_key import EncryptionKey
from migrate.store.manifest_mac import seal

MANIFEST_FORMAT = "kube-migrate.io/v1"


def manifest(
    name: str,
    files: dict[str, tuple[int, str]],
    backup_dir: str,
    source: dict[str, Any],
    extra: dict[str, Any],
    key: EncryptionKey | None = None,
) -> bytes:
    """Our manifest: size + sha256 of every file of the backup (keys relative to its
    folder; of the stored bytes, so encrypted ones for an encrypted tarball), the source
    cluster's version and served APIs, and backup facts (in `extra`; `encryption` says
    which files are encrypted, how, and with which key id: migrate.store.crypto).  With
    the backup's `key`, sealed with an HMAC (migrate.store.manifest_mac)."""
    doc = {
        "apiVersion": MANIFEST_FORMAT,
        "kind": "BackupManifest",
        "name": name,
        "files": {
            k.removeprefix(backup_dir): {"size": size, "sha256": digest}
            for k, (size, digest) in sorted(files.items())
        },
        "source": source,
        **extra,
    }
    if key is not None:
        seal(doc, key)
    return json.dumps(doc, indent=1).encode()


@dataclass
class Manifest:
    name: str
    files: dict[str, tuple[int, str]]  # relative key -> (size, sha256)
    source: dict[str, Any]
    raw: dict[str, Any]

    @classmethod
    def parse(cls, data: bytes, name: str) -> Manifest:
        try:
            doc = json.loads(data)
            files = {k: (int(v["size"]), str(v["sha256"])) for k, v in doc["files"].items()}
        except (ValueError, KeyError, TypeError) as exc:
            raise IntegrityError(f"backup {name}: manifest is corrupted: {exc}") from exc
        if doc.get("apiVersion") != MANIFEST_FORMAT:
            raise IntegrityError(
                f"backup {name}: unknown manifest format {doc.get('apiVersion')!r}",
                hint="upgrade kube-migrate to read this backup",
            )
        return cls(name, files, doc.get("source") or {}, doc)
