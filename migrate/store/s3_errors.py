"""Turn botocore's exceptions into kube-migrate errors with a hint the user can act on.

botocore reports the same few situations (no such key, no such bucket, bad credentials,
endpoint unreachable) through many exception types and error codes, and its messages
assume the reader knows boto3.  Keeping the mapping in one place keeps every store
operation's errors alike, and keeps credentials (and endpoint userinfo) out of messages.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit, urlunsplit

from boto3.exceptions import S3UploadFailedError
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    CredentialRetrievalError,
    HTTPClientError,
    NoCredentialsError,
    PartialCredentialsError,
)
from botocore.exceptions import ConnectionError as BotoConnectionError

from migrate.errors import MigrateError, StoreError, StoreNotFound

__all__ = ["safe_endpoint", "translate"]

NOT_FOUND_CODES = frozenset({"NoSuchKey", "404", "NotFound"})
CREDENTIAL_CODES = frozenset(
    {
        "403",
        "AccessDenied",
        "AccountProblem",
        "AllAccessDisabled",
        "ExpiredToken",
        "Forbidden",
        "InvalidAccessKeyId",
        "InvalidSecurity",
        "InvalidToken",
        "SignatureDoesNotMatch",
        "TokenRefreshRequired",
    }
)

CREDENTIALS_HINT = (
    "check AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY (or --s3-profile) and that they may "
    "access this bucket"
)
NO_CREDENTIALS_HINT = "set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or --s3-profile"
ENDPOINT_HINT = (
    "check --s3-endpoint (or AWS_ENDPOINT_URL) and that the S3 server is up and reachable"
)
_USERINFO_RE = re.compile(r"//[^/@\s]+@")

NO_BUCKET_HINT = "create the bucket first (e.g. `mc mb` or `aws s3 mb`), or fix the bucket URL"
SSE_HINT = (
    "check --s3-sse/--s3-kms-key-id: the server must support server-side encryption (MinIO "
    "needs a KMS), and the KMS key must exist and be usable with these credentials"
)


def safe_endpoint(endpoint: str) -> str:
    """The endpoint URL without any user:password part, for messages."""
    try:
        parts = urlsplit(endpoint)
        netloc = parts.hostname or ""
        if parts.port is not None:
            netloc += f":{parts.port}"
    except ValueError:
        return "<invalid endpoint>"
    if not parts.scheme:
        return netloc or endpoint.rsplit("@", 1)[-1]
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def _scrub(text: str) -> str:
    """``text`` without any ``user:password@`` part of a URL in it."""
    return _USERINFO_RE.sub("//", text)


def translate(
    exc: Exception,
    *,
    action: str,
    where: str,
    bucket: str,
    endpoint: str | None,
    not_found: StoreNotFound,
) -> MigrateError:
    """The kube-migrate error for ``exc``, raised while doing ``action`` on ``where``.

    ``not_found`` is the error to use when the key does not exist, so that the store
    decides how a missing key is worded.
    """
    server = safe_endpoint(endpoint) if endpoint else "AWS S3"
    if isinstance(exc, S3UploadFailedError) and isinstance(exc.__cause__, Exception):
        exc = exc.__cause__
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        code = str(error.get("Code", "?"))
        message = _scrub(str(error.get("Message", "")).strip())
        detail = f"{code}: {message}" if message else code
        if code == "NoSuchBucket":
            return StoreNotFound(f"bucket {bucket!r} does not exist on {server}", NO_BUCKET_HINT)
        if code in NOT_FOUND_CODES:
            return not_found
        if "kms" in detail.lower() or "encryption" in detail.lower():
            return StoreError(f"cannot {action} {where} on {server}: {detail}", SSE_HINT)
        if code in CREDENTIAL_CODES:
            return StoreError(f"{server} refused to {action} {where} ({detail})", CREDENTIALS_HINT)
        if code in ("PreconditionFailed", "412"):
            return StoreError(f"{where} changed while it was being read", "retry the command")
        return StoreError(f"cannot {action} {where} on {server}: {detail}")
    if isinstance(exc, NoCredentialsError | PartialCredentialsError | CredentialRetrievalError):
        return StoreError(f"no usable AWS credentials to {action} {where}", NO_CREDENTIALS_HINT)
    if isinstance(exc, BotoConnectionError | HTTPClientError):
        return StoreError(
            f"cannot {action} {where}: connection to {server} failed ({type(exc).__name__})",
            ENDPOINT_HINT,
        )
    if isinstance(exc, BotoCoreError):
        return StoreError(f"cannot {action} {where} on {server}: {_scrub(str(exc))}")
    detail = _scrub(f"{type(exc).__name__}: {exc}")
    return StoreError(f"cannot {action} {where} on {server}: {detail}")
