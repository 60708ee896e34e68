"""Tar headers for the backup tarball, built fast: the writing counterpart of tarread.py.

A backup writes two tar entries per object, and `tarfile` builds a header ~4x slower
than these functions, and would be most of a backup's CPU.  Kept apart from archive.py
(the streaming of the tarball into the bucket) because this is the tar format alone:
what a header holds, byte by byte.  Names longer than ustar holds are left to tarfile's
PAX headers by the caller.
"""

from __future__ import annotations


class Template:
    """The fixed part of every header (mode 0755, uid/gid 0, mtime, a regular file, ustar
    magic, the checksum field as spaces) cut around the variable fields, and the sum of
    its bytes (the checksum counts the fixed bytes once, then each variable field's)."""

    def __init__(self, mtime: int) -> None:
        h = bytearray(512)
        h[100:108] = b"0000755\0"
        h[108:116] = b"0000000\0"
        h[116:124] = b"0000000\0"
        h[136:148] = b"%011o\0" % mtime
        h[148:156] = b"        "
        h[156] = ord("0")
        h[257:265] = b"ustar\x0000"
        self.mtime = mtime
        self.sum = sum(h)
        # between name and size, size and checksum, checksum and prefix, after prefix
        self.parts = (bytes(h[100:124]), bytes(h[136:148]), bytes(h[156:345]), bytes(h[500:]))


_ZEROS = bytes(155)


def ustar_header(path: str, size: int, template: Template) -> bytes | None:
    """A POSIX ustar header for a regular file, or None if the name does not fit.

    tarfile builds headers ~6x slower than this, which is most of a backup's CPU; the
    checksum is the template's plus the sums of the few variable fields."""
    name = path.encode()
    prefix = b""
    if size >= 8**11:  # beyond ustar's 11 octal digits
        return None
    if len(name) > 100:
        cut = name.rfind(b"/", 0, 156)
        if cut <= 0 or len(name) - cut - 1 > 100:
            return None
        prefix, name = name[:cut], name[cut + 1 :]
    size_field = b"%011o\0" % size
    checksum = template.sum + sum(name) + sum(prefix) + sum(size_field)
    after_name, after_size, after_checksum, after_prefix = template.parts
    return b"".join(
        (
            name,
            _ZEROS[: 100 - len(name)],
            after_name,
            size_field,
            after_size,
            b"%06o\0 " % checksum,
            after_checksum,
            prefix,
            _ZEROS[len(prefix) :],
            after_prefix,
        )
    )
