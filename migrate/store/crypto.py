"""Client-side encryption of a backup's tarball (`--encryption-key-file`): the bucket
then holds no plaintext object data.  Our extension to Velero's format: Velero cannot
read an encrypted backup.

Streaming, so memory stays flat for a backup of any size: the gzip stream is cut into
segments of SEGMENT_BYTES, each sealed on its own with AES-256-GCM (the "STREAM"
construction of Hoang, Reyhanitabar, Rogaway and Vizár, as in Tink's streaming AEAD).
A reader releases a segment's plaintext only after its tag checked out, and finds a
tampered, reordered, truncated or extended stream, or a wrong key, as an error.

On-bucket format of ``<name>.tar.gz`` when encrypted (integers big-endian)::

    header   40 bytes  MAGIC (8) | segment size u32 | key id (4) | salt (16) | nonce prefix (8)
    segment  n times   AES-256-GCM(file key, nonce, plaintext segment, aad) = ciphertext | tag (16)

    file key = HKDF-SHA256(key, salt, info=INFO)        a fresh key per file: no nonce reuse
    nonce    = nonce prefix | segment counter u32       counter 0, 1, 2 ... (order is sealed)
    aad      = header | final flag (1 byte: 1 on the last segment, else 0) | file name
    key id   = the first 4 bytes of SHA-256(key)        shown as 8 hex digits, never the key

Every segment holds exactly the segment size in plaintext except the last (which may
be shorter, even empty); the file name (``<name>.tar.gz``) binds the stream to its
backup.  The key is 32 bytes, kept in a file (raw, 64 hex digits, or base64).  Our
manifest (``<name>-kube-migrate.json``) says ``encryption: {algorithm, keyId, ...}``;
its size and sha256 of the tarball are those of the stored (encrypted) bytes.
"""

from __future__ import annotations

import io
import os
import struct
from dataclasses import dataclass
from typing import Any, Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from migrate.errors import IntegrityError, UsageError
from migrate.store.encryption_key import KEY_HINT, EncryptionKey, load_key, parse_key, wrong_key

# The key's names (encryption_key.py) stay importable from here.
__all__ = [
    "ALGORITHM",
    "KEY_HINT",
    "MAGIC",
    "SEGMENT_BYTES",
    "DecryptingReader",
    "EncryptingWriter",
    "Encryption",
    "EncryptionKey",
    "check_key",
    "load_key",
    "parse_key",
    "wrong_key",
]

ALGORITHM = "AES-256-GCM-STREAM-HKDF-SHA256"  # what the manifest calls this format
MAGIC = b"KMENC\x00v1"
INFO = b"kube-migrate backup encryption v1"
SEGMENT_BYTES = 1 << 20  # plaintext per segment: 1 MiB
MAX_SEGMENT_BYTES = 64 << 20  # a reader refuses headers asking for more (memory bound)
TAG_BYTES = 16
HEADER = struct.Struct(">8sI4s16s8s")  # magic, segment size, key id, salt, nonce prefix


class Readable(Protocol):
    def read(self, size: int = -1, /) -> bytes | None: ...


class Writable(Protocol):
    def write(self, data: bytes, /) -> int | None: ...


def _file_key(key: EncryptionKey, salt: bytes) -> AESGCM:
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=INFO)
    return AESGCM(hkdf.derive(key.secret))


def _nonce(prefix: bytes, counter: int) -> bytes:
    if counter >= 1 << 32:
        raise IntegrityError("encrypted stream has more than 2^32 segments")
    return prefix + counter.to_bytes(4, "big")


class EncryptingWriter(io.RawIOBase):
    """Seals what is written into `raw`, a segment at a time; finish() seals the last."""

    def __init__(
        self, raw: Writable, key: EncryptionKey, name: str, segment_bytes: int = SEGMENT_BYTES
    ) -> None:
        self._raw = raw
        salt, prefix = os.urandom(16), os.urandom(8)
        self._header = HEADER.pack(MAGIC, segment_bytes, key.id_bytes, salt, prefix)
        self._aead = _file_key(key, salt)
        self._prefix = prefix
        self._name = name.encode()
        self._segment = segment_bytes
        self._buf = bytearray(segment_bytes)  # the segment being filled, reused
        self._fill = 0
        self._counter = 0
        self._raw.write(self._header)

    def writable(self) -> bool:
        return True

    def _seal(self, data: bytes | bytearray | memoryview, final: bool) -> None:
        aad = self._header + (b"\x01" if final else b"\x00") + self._name
        self._raw.write(self._aead.encrypt(_nonce(self._prefix, self._counter), data, aad))
        self._counter += 1

    def write(self, data: Any) -> int:
        mv = memoryview(data).cast("B")
        pos = 0
        while pos < len(mv):
            if self._fill == self._segment:  # full, and more follows: not the last
                self._seal(self._buf, final=False)
                self._fill = 0
            take = min(self._segment - self._fill, len(mv) - pos)
            self._buf[self._fill : self._fill + take] = mv[pos : pos + take]
            self._fill += take
            pos += take
        return len(mv)

    def finish(self) -> None:
        """Seal what is buffered as the final segment (it may be empty)."""
        with memoryview(self._buf) as view:
            self._seal(view[: self._fill], final=True)
        self._fill = 0


class DecryptingReader(io.RawIOBase):
    """The plaintext of an encrypted stream, each segment released once authenticated.

    Reading to EOF proves the stream is complete (the last segment carries the final
    flag); a bad tag, a missing or extra segment is an IntegrityError, a stream sealed
    with another key a UsageError naming both key ids."""

    def __init__(self, raw: Readable, key: EncryptionKey, name: str, what: str) -> None:
        self._raw = raw
        self._key = key
        self._name = name.encode()
        self._what = what
        self._aead: AESGCM | None = None
        self._header = b""
        self._prefix = b""
        self._chunk = 0
        self._next: bytes | None = None  # the ciphertext segment read ahead
        self._plain = memoryview(b"")
        self._counter = 0
        self._done = False

    def readable(self) -> bool:
        return True

    def _read_exact(self, n: int) -> bytes:
        parts, got = [], 0
        while got < n:
            data = self._raw.read(n - got)
            if not data:
                break
            parts.append(data)
            got += len(data)
        return b"".join(parts)

    def _start(self) -> None:
        header = self._read_exact(HEADER.size)
        if len(header) < HEADER.size or not header.startswith(MAGIC):
            raise IntegrityError(f"{self._what} is not encrypted by kube-migrate (no header)")
        _, segment, key_id, salt, prefix = HEADER.unpack(header)
        if key_id != self._key.id_bytes:
            raise wrong_key(self._what, key_id.hex(), self._key)
        if not 0 < segment <= MAX_SEGMENT_BYTES:
            raise IntegrityError(f"{self._what}: encryption header is corrupted")
        self._header, self._prefix, self._chunk = header, prefix, segment + TAG_BYTES
        self._aead = _file_key(self._key, salt)
        self._next = self._read_exact(self._chunk)

    def _advance(self) -> None:
        """Authenticate and decrypt the next segment into self._plain."""
        if self._aead is None:
            self._start()
        assert self._aead is not None and self._next is not None
        current = self._next
        # a short segment is the last; a full one is, if nothing follows it
        self._next = self._read_exact(self._chunk) if len(current) == self._chunk else b""
        final = not self._next
        if len(current) < TAG_BYTES:
            raise IntegrityError(f"{self._what} is truncated (segment {self._counter})")
        aad = self._header + (b"\x01" if final else b"\x00") + self._name
        try:
            plain = self._aead.decrypt(_nonce(self._prefix, self._counter), current, aad)
        except InvalidTag:
            raise IntegrityError(
                f"{self._what}: segment {self._counter} fails authentication: the encrypted "
                "tarball was truncated, reordered or altered",
            ) from None
        self._counter += 1
        self._done = final
        self._plain = memoryview(plain)

    def readinto(self, buf: Any) -> int:
        while not self._plain:
            if self._done:
                return 0
            self._advance()
        n = min(len(buf), len(self._plain))
        buf[:n] = self._plain[:n]
        self._plain = self._plain[n:]
        return n


@dataclass(frozen=True)
class Encryption:
    """What our manifest says about a backup's encryption."""

    algorithm: str
    key_id: str
    files: tuple[str, ...]  # relative to the backup's folder

    def as_dict(self) -> dict[str, Any]:
        return {
            "algorithm": self.algorithm,
            "keyId": self.key_id,
            "segmentBytes": SEGMENT_BYTES,
            "files": list(self.files),
        }

    @classmethod
    def for_key(cls, key: EncryptionKey, files: tuple[str, ...]) -> Encryption:
        return cls(ALGORITHM, key.key_id, files)

    @classmethod
    def from_manifest(cls, raw: dict[str, Any], backup: str) -> Encryption | None:
        doc = raw.get("encryption")
        if not doc:
            return None
        if not isinstance(doc, dict) or doc.get("algorithm") != ALGORITHM:
            algorithm = doc.get("algorithm") if isinstance(doc, dict) else doc
            raise IntegrityError(
                f"backup {backup} is encrypted with {algorithm!r}, which this kube-migrate "
                "cannot read",
                hint="upgrade kube-migrate",
            )
        return cls(ALGORITHM, str(doc.get("keyId", "")), tuple(doc.get("files") or ()))


def check_key(enc: Encryption | None, key: EncryptionKey | None, backup: str) -> None:
    """Before anything is read or written: the key the backup needs is the one given."""
    if enc is not None and key is None:
        raise UsageError(
            f"backup {backup} is encrypted (key id {enc.key_id}); pass --encryption-key-file",
            hint="give the key file the backup was made with (spec.bucket.encryptionKeyFile "
            "in a playbook)",
        )
    if enc is None and key is not None:
        raise UsageError(
            f"backup {backup} is not encrypted, but an encryption key was given",
            hint="drop --encryption-key-file (or spec.bucket.encryptionKeyFile) for this backup",
        )
    if enc is not None and key is not None and enc.key_id != key.key_id:
        raise wrong_key(f"backup {backup}", enc.key_id, key)
