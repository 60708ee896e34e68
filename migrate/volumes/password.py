"""The password of the bucket's kopia repositories (kopia encrypts every chunk with a key
derived from it: AES-256-GCM).

Velero uses one static password for every install, so anyone who can read the bucket can
read the data.  Here, with a backup encryption key (--encryption-key-file), the password is
derived from that key and the bucket's repository id (HMAC-SHA256): whoever holds the key
can restore, and nobody else.  Without one, a random password is made the first time a
bucket is used and kept in this machine's state directory (mode 0600, next to the run
journals): bucket access alone does not decrypt the data, and the file is readable only by
the user who took the backup.  A restore from another machine needs that file (or the key).

The repository id is a random name kept in the bucket (`kopia/kube-migrate-repository-id`):
a replica of the bucket carries it, so the target's view finds the same password.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path

from migrate.errors import StoreNotFound, UsageError
from migrate.statedir import state_root
from migrate.store import Store
from migrate.store.mover_access import KOPIA_DIR

CONTEXT = b"kube-migrate kopia repository password v1\0"


ID_KEY = f"{KOPIA_DIR}/kube-migrate-repository-id"


def repository_id(store: Store, *, create: bool) -> str:
    """The bucket's repository id, made (first writer wins) when `create`."""
    try:
        return store.get(ID_KEY).decode().strip()
    except StoreNotFound:
        if not create:
            raise StoreNotFound(
                f"{store.url}: no volume data here ({ID_KEY} is missing)",
                hint="was the backup taken with volume data, and has the bucket synced?",
            ) from None
    store.put(ID_KEY, (secrets.token_hex(16) + "\n").encode())
    return store.get(ID_KEY).decode().strip()


def repository_exists(store: Store, namespace: str) -> bool:
    """Whether the kopia repository of a source namespace was made already."""
    return next(iter(store.list(f"{KOPIA_DIR}/{namespace}/")), None) is not None


def password_file(repo_id: str, root: Path | None = None) -> Path:
    return (root or state_root()) / "repository-passwords" / repo_id


def repository_password(
    repo_id: str,
    key: bytes | None,
    *,
    create: bool,
    root: Path | None = None,
) -> str:
    """The password of the bucket's repositories: derived from `key` when given, else this
    machine's random one (made now only when `create`: a restore never invents one)."""
    if key is not None:
        return hmac.new(key, CONTEXT + repo_id.encode(), hashlib.sha256).hexdigest()
    path = password_file(repo_id, root)
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        if not create:
            raise UsageError(
                f"no password for the bucket's volume data on this machine (looked in {path})",
                hint="restore from the machine that took the backup, copy that file here, "
                "or take backups with --encryption-key-file",
            ) from None
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fresh = secrets.token_urlsafe(32)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(fresh + "\n")
    try:
        os.link(tmp, path)  # first writer wins; a racing second one reads the winner's
    except FileExistsError:
        pass
    finally:
        tmp.unlink()
    return path.read_text().strip()
