"""The key of `--encryption-key-file`: reading it from its file, and its public id.

Kept apart from crypto.py (the encrypted stream) because far more code holds a key than
encrypts: options, playbooks, restore and verify pass an EncryptionKey along, and need
neither the AEAD nor the `cryptography` package to do so.  crypto.py re-exports these
names.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import dataclass, field

from migrate.errors import UsageError

KEY_HINT = (
    "the key file holds 32 random bytes (or 64 hex digits, or their base64); "
    "create one with `head -c32 /dev/urandom > backup.key && chmod 600 backup.key`"
)


@dataclass(frozen=True)
class EncryptionKey:
    """A 32-byte AES-256 key and its public id (never printed: repr hides it)."""

    secret: bytes = field(repr=False)
    source: str = ""  # the file it came from, for messages

    @property
    def id_bytes(self) -> bytes:
        return hashlib.sha256(self.secret).digest()[:4]

    @property
    def key_id(self) -> str:
        return self.id_bytes.hex()


def parse_key(data: bytes, what: str) -> EncryptionKey:
    """32 raw bytes, or text: 64 hex digits or base64 of 32 bytes (whitespace ignored)."""
    if len(data) == 32:
        return EncryptionKey(data, what)
    text = b"".join(data.split())
    key = b""
    if len(text) == 64:
        try:
            key = bytes.fromhex(text.decode("ascii"))
        except (UnicodeDecodeError, ValueError):
            key = b""
    if not key:
        try:
            key = base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError):
            key = b""
    if len(key) != 32:
        raise UsageError(
            f"{what} is not an AES-256 key: {len(data)} bytes, neither 32 raw bytes nor "
            "64 hex digits nor base64 of 32 bytes",
            hint=KEY_HINT,
        )
    return EncryptionKey(key, what)


def load_key(path: str) -> EncryptionKey:
    """The key in file `path` (UsageError naming the file if it is missing or not a key)."""
    what = f"--encryption-key-file {path}"
    try:
        with open(path, "rb") as f:
            data = f.read(4097)
    except OSError as exc:
        raise UsageError(f"{what}: {exc.strerror or exc}", hint=KEY_HINT) from exc
    return parse_key(data, what)


def wrong_key(what: str, found: str, key: EncryptionKey) -> UsageError:
    return UsageError(
        f"{what} was encrypted with key id {found}; {key.source or 'the key given'} "
        f"has key id {key.key_id}",
        hint="pass the key file the backup was made with (key id = first 8 hex digits of "
        "sha256 of the 32 key bytes)",
    )
