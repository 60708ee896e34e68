"""Parse and print the bucket URL that names where backups live.

Every command that touches the bucket takes one URL, either ``s3://bucket[/prefix]`` or
``file:///abs/dir``.  Parsing it once, here, gives the rest of the code a validated value
and gives the user one clear error (naming the bad value and the accepted forms) instead
of a failure deep inside boto3.
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass
from typing import Literal

from migrate.errors import UsageError

__all__ = ["BucketURL", "check_key", "check_prefix"]

_HINT = "use s3://BUCKET[/PREFIX] (S3 or MinIO) or file:///ABSOLUTE/DIR (a local directory)"

# S3 bucket naming rules: 3-63 chars of lowercase letters, digits, dots and hyphens,
# starting and ending with a letter or digit, no "..", and not shaped like an IP address.
_BUCKET_RE = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_IP_RE = re.compile(r"^\d{1,3}(\.\d{1,3}){3}$")


def _bad(text: str, why: str) -> UsageError:
    return UsageError(f"invalid bucket URL {text!r}: {why}", hint=_HINT)


def _bad_key(kind: str, key: str, why: str) -> UsageError:
    return UsageError(
        f"invalid store {kind} {key!r}: {why}",
        hint="keys are relative, '/'-separated paths without empty, '.' or '..' segments",
    )


def check_key(key: str) -> str:
    """Return ``key`` if it is a valid object key (relative, no ``..``), else raise UsageError."""
    if not key:
        raise _bad_key("key", key, "it is empty")
    if key.endswith("/"):
        raise _bad_key("key", key, "it ends with '/'")
    return check_prefix(key, kind="key")


def check_prefix(prefix: str, kind: str = "prefix") -> str:
    """Return ``prefix`` if it is a valid key prefix ("" and a trailing "/" allowed)."""
    if "\x00" in prefix or "\\" in prefix:
        raise _bad_key(kind, prefix, "it contains a NUL or backslash")
    if prefix.startswith("/"):
        raise _bad_key(kind, prefix, "it starts with '/'")
    body = prefix[:-1] if prefix.endswith("/") else prefix
    if body and any(part in ("", ".", "..") for part in body.split("/")):
        raise _bad_key(kind, prefix, "it has an empty, '.' or '..' segment")
    return prefix


@dataclass(frozen=True)
class BucketURL:
    """A validated bucket location.

    For ``s3``: ``bucket`` and ``prefix`` (no leading/trailing slash, may be "") are set
    and ``path`` is "".  For ``file``: ``path`` is the absolute, normalised directory and
    ``bucket``/``prefix`` are "".
    """

    scheme: Literal["s3", "file"]
    bucket: str = ""
    prefix: str = ""
    path: str = ""

    @classmethod
    def parse(cls, text: str) -> BucketURL:
        """Parse ``s3://bucket[/prefix]`` or ``file:///abs/dir``; raise UsageError otherwise."""
        value = text.strip()
        scheme, sep, rest = value.partition("://")
        if not sep:
            raise _bad(text, "it has no scheme")
        scheme = scheme.lower()
        if scheme == "s3":
            return cls._parse_s3(text, rest)
        if scheme == "file":
            return cls._parse_file(text, rest)
        raise _bad(text, f"unsupported scheme {scheme + '://'!r}")

    @classmethod
    def _parse_s3(cls, text: str, rest: str) -> BucketURL:
        if "?" in rest or "#" in rest:
            raise _bad(text, "query strings and fragments are not allowed")
        bucket, _, prefix = rest.partition("/")
        if not bucket:
            raise _bad(text, "the bucket name is missing")
        if not _BUCKET_RE.match(bucket) or ".." in bucket or _IP_RE.match(bucket):
            raise _bad(
                text,
                f"{bucket!r} is not a valid S3 bucket name "
                "(3-63 chars: lowercase letters, digits, '.', '-')",
            )
        prefix = prefix.strip("/")
        if prefix:
            parts = prefix.split("/")
            if any(part in ("", ".", "..") for part in parts) or "\\" in prefix:
                raise _bad(text, f"the prefix {prefix!r} has an empty, '.' or '..' segment")
        return cls(scheme="s3", bucket=bucket, prefix=prefix)

    @classmethod
    def _parse_file(cls, text: str, rest: str) -> BucketURL:
        host, slash, path = rest.partition("/")
        if host not in ("", "localhost"):
            raise _bad(text, "file URLs need an absolute path (three slashes: file:///dir)")
        if not slash:
            raise _bad(text, "the directory is missing")
        path = posixpath.normpath("/" + path)
        if path.startswith("//"):  # normpath keeps a leading "//"
            path = "/" + path.lstrip("/")
        if "\x00" in path:
            raise _bad(text, "the path contains a NUL byte")
        return cls(scheme="file", path=path)

    def __str__(self) -> str:
        if self.scheme == "s3":
            return f"s3://{self.bucket}/{self.prefix}" if self.prefix else f"s3://{self.bucket}"
        return f"file://{self.path}"

    def join(self, key: str) -> str:
        """The key's full location: the S3 object key within the bucket, or the file path."""
        if self.scheme == "s3":
            return f"{self.prefix}/{key}" if self.prefix and key else self.prefix or key
        if not key:
            return self.path
        return posixpath.join(self.path, key)

    def key_url(self, key: str) -> str:
        """The canonical URL of ``key`` under this location (for messages)."""
        if self.scheme == "s3":
            return f"s3://{self.bucket}/{self.join(key)}"
        return f"file://{self.join(key)}"
