"""Open a backup (ours or Velero's) for reading, with the checks restore, preflight and
verify all make before they act on it: it exists and is complete, its phase is
Completed or PartiallyFailed, its format version is 1.x, and the tarball matches our
manifest's sha256 (when there is a manifest).  An encrypted backup (our manifest says
so) needs the key it was made with: a missing or wrong key fails here, when the backup
is opened, before anything is read from its tarball or written anywhere; so does a
manifest (or velero-backup.json) altered after the backup was sealed (manifest_mac.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import orjson

from migrate.errors import IntegrityError, UsageError
from migrate.store import Store, layout
from migrate.store.archive import read_tarball
from migrate.store.crypto import Encryption, EncryptionKey, check_key
from migrate.store.manifest_mac import check_manifest

SUPPORTED_MAJOR = "1"  # Velero backup format 1.x


@dataclass
class BackupSource:
    info: layout.BackupInfo
    manifest: layout.Manifest | None
    store: Store
    key: EncryptionKey | None = None  # checked against the manifest's key id

    @property
    def server_version(self) -> str:
        if self.info.source_version:
            return self.info.source_version
        return str((self.manifest.source if self.manifest else {}).get("gitVersion", ""))

    def items(self) -> Iterator[tuple[layout.ItemPath, dict[str, Any]]]:
        """Every item (its tarball path, parsed, and the object), at the backup's preferred
        version; the sha256 of the whole tarball is checked after the last item."""
        keys = layout.BackupKeys(self.info.name)
        expect = None
        if self.manifest:
            expect = self.manifest.files.get(keys.tarball.removeprefix(keys.dir))
        sha = expect[1] if expect else None
        for path, data in read_tarball(self.store, keys.tarball, sha, self.key):
            if path == layout.VERSION_FILE:  # the tarball's own format version, as Velero's
                _check_format(self.info.name, data.decode(errors="replace").strip(), path)
                continue
            parsed = layout.parse_item_path(path)
            if parsed is None or parsed.version_dir is not None:
                continue  # the classic path holds the preferred version
            try:
                obj = orjson.loads(data)
            except ValueError as exc:
                raise IntegrityError(
                    f"backup {self.info.name}: {path} in {keys.tarball} is not JSON "
                    "(the tarball is corrupted)"
                ) from exc
            yield parsed, obj


def _check_format(name: str, version: str, where: str) -> None:
    if version.split(".", maxsplit=1)[0] != SUPPORTED_MAJOR:
        raise IntegrityError(
            f"backup {name} has format version {version!r} ({where}), this kube-migrate reads 1.x",
            hint="upgrade kube-migrate",
        )


def open_backup(store: Store, name: str, key: EncryptionKey | None = None) -> BackupSource:
    keys = layout.BackupKeys(layout.check_backup_name(name))
    if not store.exists(keys.metadata):
        raise UsageError(
            f"backup {name!r} not found (or not complete) in {store.url}",
            hint="`kube-migrate backup get --bucket ...` lists the backups",
        )
    metadata = store.get(keys.metadata)
    info = layout.BackupInfo.parse(metadata, name)
    if info.phase not in layout.RESTORABLE_PHASES:
        raise UsageError(
            f"backup {name} is {info.phase}; only Completed or PartiallyFailed backups are "
            "restored or verified against",
            hint="run a new backup",
        )
    _check_format(name, info.format_version, "velero-backup.json")
    manifest = None
    if store.exists(keys.manifest):
        manifest = layout.Manifest.parse(store.get(keys.manifest), name)
    check_key(Encryption.from_manifest(manifest.raw, name) if manifest else None, key, name)
    if key is not None and manifest is not None:
        check_manifest(manifest.raw, key, name, {keys.metadata.removeprefix(keys.dir): metadata})
    return BackupSource(info, manifest, store, key)
