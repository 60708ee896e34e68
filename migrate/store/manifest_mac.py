"""Tamper evidence for an encrypted backup: our manifest carries an HMAC.

The tarball of an encrypted backup authenticates itself (AES-GCM, crypto.py), but the
manifest (``<name>-kube-migrate.json``: the sha256 and size of every file, the counts,
the source's facts) and ``velero-backup.json`` are plain JSON anyone with write access to
the bucket could edit.  With a key, the manifest is sealed::

    "authentication": {"algorithm": "HMAC-SHA256", "keyId": ..., "mac": <64 hex digits>}

    mac key = HKDF-SHA256(key, salt=none, info=MAC_INFO)   never the key of a tarball
    mac     = HMAC-SHA256(mac key, canonical JSON of the manifest without "authentication")

(canonical: keys sorted, no spaces, UTF-8), and a reader given the key checks it, and the
sha256 of velero-backup.json the manifest lists, before anything is read or written.  A
failed check is an IntegrityError (exit 6).

A backup made before manifests were sealed has no "authentication": with a key it is
refused too, since stripping the field is the easiest forgery there is; a user who trusts
the bucket accepts such a backup, with a warning, by setting ACCEPT_UNSEALED_ENV=1.
"""

from __future__ import annotations

import hmac
import json
import logging
import os
from collections.abc import Mapping
from hashlib import sha256
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from migrate.errors import IntegrityError
from migrate.store.encryption_key import EncryptionKey

__all__ = ["ACCEPT_UNSEALED_ENV", "FIELD", "check_manifest", "seal"]

log = logging.getLogger(__name__)

FIELD = "authentication"
ALGORITHM = "HMAC-SHA256"
MAC_INFO = b"kube-migrate manifest authentication v1"  # HKDF domain: not a tarball key
ACCEPT_UNSEALED_ENV = "KUBE_MIGRATE_ACCEPT_UNSEALED_MANIFEST"
_HINT = (
    "the backup was changed in the bucket after it was written (or the key is not its "
    "own): do not restore it; take a new backup, or restore from a copy you trust"
)


def _mac(doc: Mapping[str, Any], key: EncryptionKey) -> str:
    body = {k: v for k, v in doc.items() if k != FIELD}
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=MAC_INFO)
    return hmac.new(hkdf.derive(key.secret), canonical.encode(), "sha256").hexdigest()


def seal(doc: dict[str, Any], key: EncryptionKey) -> None:
    """Add the "authentication" field to the manifest `doc` (in place)."""
    doc[FIELD] = {"algorithm": ALGORITHM, "keyId": key.key_id, "mac": _mac(doc, key)}


def check_manifest(
    raw: Mapping[str, Any],
    key: EncryptionKey,
    backup: str,
    blobs: Mapping[str, bytes] | None = None,
) -> bool:
    """Raise IntegrityError unless the manifest `raw` is sealed with `key` and each of
    `blobs` (file name relative to the backup's folder -> its bytes, e.g.
    velero-backup.json) has the sha256 and size the manifest lists.  True when checked;
    False for an unsealed manifest accepted because ACCEPT_UNSEALED_ENV is set."""
    auth = raw.get(FIELD)
    if auth is None:
        if os.environ.get(ACCEPT_UNSEALED_ENV) == "1":
            log.warning(
                "backup %s: its manifest is not authenticated (made by an older "
                "kube-migrate); accepted because %s=1",
                backup,
                ACCEPT_UNSEALED_ENV,
            )
            return False
        raise IntegrityError(
            f"backup {backup}: its manifest carries no authentication code, so changes "
            "made to it in the bucket cannot be detected",
            hint="a backup made by an older kube-migrate has none: take a new backup, or "
            f"set {ACCEPT_UNSEALED_ENV}=1 if you trust the bucket",
        )
    mac = auth.get("mac") if isinstance(auth, dict) else None
    if not isinstance(mac, str) or auth.get("algorithm") != ALGORITHM:
        raise IntegrityError(f"backup {backup}: manifest authentication is malformed", _HINT)
    if not hmac.compare_digest(mac, _mac(raw, key)):
        raise IntegrityError(
            f"backup {backup}: the manifest fails authentication (altered in the bucket)", _HINT
        )
    files = raw.get("files") or {}
    for name, data in (blobs or {}).items():
        entry = files.get(name) if isinstance(files, dict) else None
        expect = (entry.get("size"), entry.get("sha256")) if isinstance(entry, dict) else None
        if expect != (len(data), sha256(data).hexdigest()):
            raise IntegrityError(
                f"backup {backup}: {name} does not match the authenticated manifest "
                "(altered in the bucket)",
                _HINT,
            )
    return True
