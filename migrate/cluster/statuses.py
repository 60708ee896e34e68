"""What the API server's answers mean to us: the error class of each HTTP status, the
sharper hints some deserve, which failures are transient and how long to wait before
retrying them, and the server's version.  Data for `Cluster.request` (client.py)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson
from tenacity import RetryCallState
from tenacity.wait import wait_exponential_jitter

from migrate.errors import (
    AlreadyExists,
    ClusterError,
    Conflict,
    Forbidden,
    Invalid,
    NotFound,
)

# HTTP status -> error class.  409 is split by the Status reason (AlreadyExists vs Conflict).
STATUS_ERRORS: dict[int, type[ClusterError]] = {
    400: Invalid,  # malformed request or object
    401: Forbidden,  # credentials rejected
    403: Forbidden,  # RBAC denied
    404: NotFound,  # object, namespace or resource missing
    409: Conflict,  # AlreadyExists, or a stale resourceVersion
    422: Invalid,  # object failed validation
}
# Hints sharper than the class's own, where the status alone says what to fix.
STATUS_HINTS: dict[int, str] = {
    401: "the kubeconfig's credentials were refused (expired, revoked or wrong): renew the "
    "token or certificate of its user",
}
# Statuses worth retrying: the server asked us to slow down or failed transiently.
RETRYABLE_STATUS = frozenset({429, 500, 502, 503, 504})


@dataclass(frozen=True, order=True)
class ServerVersion:
    major: int
    minor: int
    git_version: str = ""

    @classmethod
    def parse(cls, doc: dict[str, Any]) -> ServerVersion:
        def num(text: str) -> int:
            digits = "".join(ch for ch in str(text) if ch.isdigit())
            return int(digits) if digits else 0

        return cls(
            num(doc.get("major", "0")), num(doc.get("minor", "0")), doc.get("gitVersion", "")
        )

    def __str__(self) -> str:
        return self.git_version or f"v{self.major}.{self.minor}"


class Transient(ClusterError):
    """A retryable failure; re-raised as its final class when retries run out."""

    def __init__(self, final: ClusterError, retry_after: float | None) -> None:
        super().__init__(final.message, final.hint, final.status)
        self.final = final
        self.retry_after = retry_after


def retry_wait(state: RetryCallState) -> float:
    exc = state.outcome.exception() if state.outcome else None
    retry_after = getattr(exc, "retry_after", None)
    if retry_after:
        return min(float(retry_after), 10.0)
    return float(wait_exponential_jitter(multiplier=0.2, max=5.0)(state))


def retry_after(resp: Any) -> float | None:
    """The seconds a response's Retry-After header asks for (None: no header, or a date)."""
    value = resp.headers.get("Retry-After")
    return float(value) if value and value.isdigit() else None


def error_for(what: str, resp: Any) -> ClusterError:
    """The error for a failed response (`what`: "<cluster>: <METHOD> <path>"); transient
    ones (429/5xx, but never a webhook's rejection) come as Transient."""
    try:
        status_doc = orjson.loads(resp.data)
    except (ValueError, TypeError):
        status_doc = {}
    detail = status_doc.get("message") or resp.reason or ""
    message = f"{what}: {resp.status} {detail}".rstrip()
    if resp.status in RETRYABLE_STATUS and "failed calling webhook" not in detail:
        return Transient(ClusterError(message, status=resp.status), retry_after(resp))
    cls = STATUS_ERRORS.get(resp.status, ClusterError)
    if resp.status == 409 and status_doc.get("reason") == "AlreadyExists":
        cls = AlreadyExists
    hint = STATUS_HINTS.get(resp.status)
    return cls(message, hint=hint, status=resp.status, details=status_doc)
