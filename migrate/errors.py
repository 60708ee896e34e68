"""The project's error classes and the exit code each one means.

Every layer raises these (never a library's own exception) so that the CLI has one
handler: it prints ``kube-migrate: error: <message>`` and a hint on stderr, and exits
with the class's code.  Scripts and CI depend on the codes; the table lives here and
in the README, and nowhere else.
"""

from __future__ import annotations

# Exit codes, one per class of failure.  Verify's "drift found" is 1, like `kubectl diff`.
EXIT_OK = 0
EXIT_DRIFT = 1  # verify found differences between source and target
EXIT_USAGE = 2  # bad flags, bad input files, invalid playbook, bad kubeconfig/context
EXIT_PREFLIGHT = 3  # preflight found blocking problems (or warnings with --fail-on warning)
EXIT_ACCESS = 4  # a cluster or the bucket could not be reached, or refused us
EXIT_PARTIAL = 5  # the step ran, but some objects failed
EXIT_INTEGRITY = 6  # a backup is corrupted, truncated, or its checksums do not match
EXIT_TIMEOUT = 7  # a wait (sync, readiness) ran out of time
EXIT_INTERNAL = 70  # a bug in kube-migrate (EX_SOFTWARE); run with --debug for a traceback
EXIT_INTERRUPTED = 130  # Ctrl-C / SIGINT, or SIGTERM


class MigrateError(Exception):
    """Base of every error kube-migrate reports to the user."""

    exit_code = EXIT_INTERNAL
    default_hint = "run again with --debug for a traceback and report it"

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint if hint is not None else self.default_hint

    def __str__(self) -> str:
        return self.message


class UsageError(MigrateError):
    """The user's input is wrong: flags, files, names, syntax."""

    exit_code = EXIT_USAGE
    default_hint = "see --help"


class KubeconfigError(UsageError):
    """A kubeconfig file is missing or unreadable, or names no such context."""

    default_hint = "pass --kubeconfig FILE (and --context NAME), or set KUBECONFIG"


class PlaybookError(UsageError):
    """A playbook file does not validate."""

    default_hint = "see playbooks/README.md for the format"


class PreflightFailed(MigrateError):
    """Preflight found problems at or above the --fail-on severity."""

    exit_code = EXIT_PREFLIGHT
    default_hint = "read the report; each finding says how to fix it"


class DriftFound(MigrateError):
    """Verify found differences between source and target."""

    exit_code = EXIT_DRIFT
    default_hint = "read the diff; rerun restore with --existing-resource-policy update to repair"


class AccessError(MigrateError):
    """A cluster or bucket could not be reached or refused the request."""

    exit_code = EXIT_ACCESS
    default_hint = "check the address, credentials and network, then retry"


class ClusterError(AccessError):
    """The Kubernetes API failed a request (after retries, where retrying made sense)."""

    def __init__(
        self,
        message: str,
        hint: str | None = None,
        status: int | None = None,
        details: dict[str, object] | None = None,
    ) -> None:
        super().__init__(message, hint)
        self.status = status
        self.details = details or {}  # the API's Status object, when there was one


class ClusterUnreachable(ClusterError):
    """No connection to the API server."""

    default_hint = "is the API server up? check the server URL in the kubeconfig"


class Forbidden(ClusterError):
    """The API server rejected our credentials (401) or our permissions (403)."""

    default_hint = "check the credentials in the kubeconfig and the RBAC rules (see examples/rbac/)"


class NotFound(ClusterError):
    """The object or resource does not exist (HTTP 404)."""

    default_hint = "check the name, namespace and resource"


class AlreadyExists(ClusterError):
    """Creating an object that exists already (HTTP 409 AlreadyExists)."""

    default_hint = "choose an --existing-resource-policy, or delete the object"


class Conflict(ClusterError):
    """A write lost a race with another writer (HTTP 409 Conflict on resourceVersion)."""

    default_hint = "retry; another client changed the object meanwhile"


class Invalid(ClusterError):
    """The API server rejected the object's content (HTTP 400/422)."""

    default_hint = "the object does not validate on this cluster; see the message"


class StoreError(AccessError):
    """The bucket failed a request."""

    default_hint = "check the bucket URL, --s3-endpoint and the AWS credentials"


class StoreNotFound(StoreError):
    """A key or bucket does not exist."""

    default_hint = "check the bucket URL and the backup name (`kube-migrate backup get`)"


class StoreReadOnly(StoreError):
    """A write or delete was attempted on a store opened read-only."""

    default_hint = "the bucket is read-only for this run; drop --read-only-bucket to write"


class IntegrityError(MigrateError):
    """A backup's content is corrupted, truncated or fails its checksums."""

    exit_code = EXIT_INTEGRITY
    default_hint = "re-run the backup, or wait for the bucket replica to finish syncing"


class WaitTimeout(MigrateError):
    """A wait for a condition (sync, readiness) ran out of time."""

    exit_code = EXIT_TIMEOUT
    default_hint = "raise the timeout, or check why the condition is not reached"


class PartialFailure(MigrateError):
    """The step finished but some objects failed; the results list them."""

    exit_code = EXIT_PARTIAL
    default_hint = "see the per-object results; fix and rerun with --resume"


class Interrupted(MigrateError):
    """The user pressed Ctrl-C."""

    exit_code = EXIT_INTERRUPTED
    default_hint = "rerun with --resume to continue where it stopped"


# The table printed in the README and by `kube-migrate --help`: code -> meaning.
EXIT_CODES: dict[int, str] = {
    EXIT_OK: "success (verify: no drift)",
    EXIT_DRIFT: "verify found drift between source and target",
    EXIT_USAGE: "bad usage or input: flags, files, kubeconfig/context, playbook",
    EXIT_PREFLIGHT: "preflight found blocking problems",
    EXIT_ACCESS: "a cluster or the bucket is unreachable or refused access",
    EXIT_PARTIAL: "partial failure: some objects failed, see results",
    EXIT_INTEGRITY: "backup corrupted, truncated or checksum mismatch",
    EXIT_TIMEOUT: "a wait timed out (sync, readiness)",
    EXIT_INTERNAL: "internal error (a bug): rerun with --debug",
    EXIT_INTERRUPTED: "interrupted (Ctrl-C or SIGTERM)",
}
