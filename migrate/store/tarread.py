"""Read the entries of a tar stream, fast.

`tarfile` in stream mode costs ~100 us per entry (a header goes through several layers
of pure-Python parsing and buffering): 20 s of a 100k-object restore, each object being
two entries.  Here a header is one 512-byte read and a few slices.  Handled: the
formats Go's archive/tar (Velero) and we write, and what GNU tar and Python's tarfile
write: ustar names with prefix, GNU long names (`L`), PAX extended headers (`x`, with
path and size records; global `g` headers are skipped).  Other entry types (links,
devices, directories) are skipped; a bad header checksum or a short read is an error.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import BinaryIO

BLOCK = 512
ZERO = bytes(BLOCK)
FILE_TYPES = (b"0", b"\0", b"7")  # regular, old-style regular, contiguous
SPACES_SUM = 8 * ord(" ")  # the checksum field counts as spaces


class TarFormatError(ValueError):
    """The stream is not a valid tar (bad header, truncated)."""


def _read(f: BinaryIO, n: int) -> bytes:
    data = f.read(n)
    while len(data) < n:  # a stream may return less than asked before its end
        more = f.read(n - len(data))
        if not more:
            raise TarFormatError(f"truncated: {n - len(data)} bytes missing")
        data += more
    return data


def _number(field: bytes) -> int:
    if field[:1] and field[0] & 0x80:  # GNU base-256 (sizes beyond 8 GiB)
        value = int.from_bytes(field[1:], "big")
        return value - (1 << (8 * len(field) - 8)) if field[0] & 0x40 else value
    text = field.split(b"\0", 1)[0].strip()
    try:
        return int(text, 8) if text else 0
    except ValueError:
        raise TarFormatError(f"bad number field {field!r}") from None


def _checked(header: bytes) -> None:
    stored = _number(header[148:156])
    unsigned = sum(header[:148]) + SPACES_SUM + sum(header[156:])
    if stored != unsigned:  # old tars summed signed bytes
        signed = unsigned - 256 * sum(1 for b in header[:148] + header[156:] if b > 127)
        if stored != signed:
            raise TarFormatError("bad header checksum")


def _pax(data: bytes) -> dict[str, str]:
    """Records `<len> <key>=<value>\\n` of a PAX extended header."""
    out, pos = {}, 0
    while pos < len(data) and data[pos] != 0:
        space = data.find(b" ", pos)
        if space < 0:
            raise TarFormatError("bad PAX record")
        length = int(data[pos:space])
        key, _, value = data[space + 1 : pos + length - 1].partition(b"=")
        out[key.decode()] = value.decode("utf-8", "surrogateescape")
        pos += length
    return out


def iter_files(f: BinaryIO) -> Iterator[tuple[str, bytes]]:
    """(path, content) of every regular file of an uncompressed tar stream `f`; returns
    at the end-of-archive blocks (or a clean end between entries, as tarfile does)."""
    long_name: str | None = None
    pax: dict[str, str] = {}
    while True:
        header = f.read(BLOCK)
        if len(header) < BLOCK:
            if not header:
                return
            header += _read(f, BLOCK - len(header))
        if header == ZERO:
            return
        _checked(header)
        kind = header[156:157]
        size = int(pax["size"]) if "size" in pax else _number(header[124:136])
        data = _read(f, size) if size else b""
        if size % BLOCK:
            _read(f, BLOCK - size % BLOCK)
        if kind == b"L":
            long_name = data.rstrip(b"\0").decode("utf-8", "surrogateescape")
            continue
        if kind == b"x":
            pax = _pax(data)
            continue
        if kind == b"g":
            continue
        name = header[:100].split(b"\0", 1)[0]
        if header[257:262] == b"ustar":
            prefix = header[345:500].split(b"\0", 1)[0]
            name = prefix + b"/" + name if prefix else name
        path = pax.get("path") or long_name or name.decode("utf-8", "surrogateescape")
        long_name, pax = None, {}
        if kind in FILE_TYPES:
            yield path, data
