"""Poll the target's view of the bucket until a backup is complete and intact.

"Complete" is stricter than Velero's visibility rule (a terminal phase in
velero-backup.json and a tarball that exists): for our backups every file the manifest
lists must be present with the recorded size *and* sha256, velero-backup.json included,
and every blob of the volume data's kopia repositories it lists with its size,
because a replica may show the marker before the tarball has finished copying, or a
tarball of the right size but the wrong bytes.  Hashes that match are cached by (key,
size, etag, last-modified), so a large tarball is read once, not once per poll; a
mismatch is not cached, so a copy damaged in transit (or being rewritten) is read again
at the next poll.
A mismatch never ends the wait with success, nor at once with an error: a replica may
still overwrite a stale or partial copy, so the wait goes on until the timeout, whose
error names every missing and mismatched file.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tenacity import RetryCallState, Retrying, retry_if_result, stop_after_delay, wait_fixed

from migrate.cluster import Cluster
from migrate.errors import (
    IntegrityError,
    NotFound,
    StoreError,
    StoreNotFound,
    UsageError,
    WaitTimeout,
)
from migrate.store import ObjectInfo, Store, layout

log = logging.getLogger(__name__)

FAILED_PHASES = frozenset({"Failed", "FailedValidation"})
CREATED_BY = "kube-migrate.io/created-by"
_CHUNK = 1 << 20
_SHOWN = 8  # files named in one message before "and N more"

# (key, size, etag, last-modified) -> sha256 of the object's content, when it matched.
Verified = dict[tuple[str, int, str, str], str]


@dataclass
class SyncState:
    """One look at the backup on the target side."""

    name: str
    done: bool = False
    phase: str = ""
    missing: list[str] = field(default_factory=list)  # keys relative to the backup folder
    mismatched: list[str] = field(default_factory=list)  # "<file>: <what differs>"
    message: str = ""
    polls: int = 0
    elapsed: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "done": self.done,
            "phase": self.phase,
            "missing": self.missing,
            "mismatched": self.mismatched,
            "message": self.message,
            "polls": self.polls,
            "elapsedSeconds": round(self.elapsed, 3),
        }

    def problems(self) -> str:
        """The missing and mismatched files, in one line."""
        parts = []
        if self.missing:
            parts.append("missing " + _names(self.missing))
        if self.mismatched:
            parts.append("mismatched " + _names(self.mismatched))
        return "; ".join(parts) or self.message


def _names(items: list[str]) -> str:
    shown = ", ".join(items[:_SHOWN])
    return shown + (f" and {len(items) - _SHOWN} more" if len(items) > _SHOWN else "")


def _sha256(store: Store, obj: ObjectInfo, expected: str, verified: Verified) -> str:
    """The sha256 of ``obj``'s content; remembered only if it is the ``expected`` one."""
    ident = (obj.key, obj.size, obj.etag, obj.last_modified.isoformat())
    cached = verified.get(ident)
    if cached is not None:
        return cached
    digest = hashlib.sha256()
    with store.open(obj.key) as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    actual = digest.hexdigest()
    if actual == expected:
        verified[ident] = actual
    return actual


def _get(store: Store, key: str) -> bytes | None:
    try:
        return store.get(key)
    except StoreNotFound:
        return None


def _mismatch(rel: str, what: str, expected: Any, actual: Any) -> str:
    return f"{rel}: {what} {actual}, expected {expected}"


def check(store: Store, name: str, verified: Verified) -> SyncState:
    """Whether ``backups/<name>/`` in ``store`` is complete; what is missing if not."""
    keys = layout.BackupKeys(name)
    state = SyncState(name)
    meta = _get(store, keys.metadata)
    info: layout.BackupInfo | None = None
    if meta is None:
        state.missing.append("velero-backup.json")
    else:
        try:
            info = layout.BackupInfo.parse(meta, name)
            state.phase = info.phase
        except IntegrityError as exc:
            state.mismatched.append(f"velero-backup.json: {exc.message}")
    raw_manifest = _get(store, keys.manifest)
    annotations = ((info.raw.get("metadata") or {}).get("annotations") or {}) if info else {}
    ours = raw_manifest is not None or CREATED_BY in annotations
    if raw_manifest is None:
        if ours:
            state.missing.append(keys.manifest.removeprefix(keys.dir))
        elif info is not None and not store.exists(keys.tarball):
            state.missing.append(keys.tarball.removeprefix(keys.dir))
    else:
        try:
            manifest = layout.Manifest.parse(raw_manifest, name)
        except IntegrityError as exc:
            state.mismatched.append(f"{keys.manifest.removeprefix(keys.dir)}: {exc.message}")
        else:
            _check_files(store, keys, manifest, meta, verified, state)
            _check_blobs(store, manifest.raw.get("volumeBlobs") or {}, state)
    if state.missing or state.mismatched:
        state.message = state.problems()
    elif info is None:
        state.message = "velero-backup.json is not readable yet"
    elif info.phase in FAILED_PHASES:
        state.message = f"backup {name} is {info.phase} on the source"
    elif info.phase not in layout.TERMINAL_PHASES:
        state.message = f"backup {name} is still {info.phase}"
    elif ours:
        state.done = True
        state.message = "every file of the manifest is present, sizes and sha256 match"
    else:
        state.done = True
        state.message = (
            "Velero backup (no kube-migrate manifest): phase is final and the tarball "
            "exists; contents not checksummed"
        )
    return state


def _check_files(
    store: Store,
    keys: layout.BackupKeys,
    manifest: layout.Manifest,
    meta: bytes | None,
    verified: Verified,
    state: SyncState,
) -> None:
    present = {o.key: o for o in store.list(keys.dir)}
    for rel, (size, sha) in sorted(manifest.files.items()):
        key = keys.dir + rel
        if key == keys.metadata:
            if meta is not None and (len(meta), layout.sha256(meta)) != (size, sha):
                actual = f"{len(meta)} bytes sha256 {layout.sha256(meta)[:12]}"
                state.mismatched.append(
                    _mismatch(rel, "is", f"{size} bytes sha256 {sha[:12]}", actual)
                )
            continue
        obj = present.get(key)
        if obj is None:
            state.missing.append(rel)
        elif obj.size != size:
            state.mismatched.append(_mismatch(rel, "size", size, obj.size))
        else:
            actual = _sha256(store, obj, sha, verified)
            if actual != sha:
                state.mismatched.append(_mismatch(rel, "sha256", sha[:12], actual[:12]))


def _check_blobs(store: Store, blobs: dict[str, int], state: SyncState) -> None:
    """The volume data's repository blobs (kopia/<namespace>/...) the manifest lists:
    present with their sizes (kopia names a blob by its content's hash, so a blob of the
    right name and size is the right one)."""
    folders = sorted({key.rsplit("/", 1)[0] + "/" for key in blobs})
    present = {o.key: o.size for folder in folders for o in store.list(folder)}
    for key, size in sorted(blobs.items()):
        if key not in present:
            state.missing.append(f"(volume data) {key}")
        elif present[key] != size:
            state.mismatched.append(_mismatch(f"(volume data) {key}", "size", size, present[key]))


def wait_for_sync(
    store: Store,
    name: str,
    timeout: float,
    interval: float,
    on_poll: Callable[[SyncState], None] | None = None,
) -> SyncState:
    """Poll until :func:`check` says done; WaitTimeout naming what is still wrong.

    Bucket errors are retried until the timeout (the replica may be briefly down); a
    backup that Failed on the source fails at once with IntegrityError.
    """
    if not name or "/" in name or name in (".", ".."):
        raise UsageError(f"invalid backup name {name!r}")
    verified: Verified = {}
    start = time.monotonic()
    polls = 0

    def poll() -> SyncState:
        nonlocal polls
        polls += 1
        try:
            state = check(store, name, verified)
        except StoreError as exc:
            state = SyncState(name, message=f"bucket error: {exc.message}")
            log.warning("sync %s: %s (retrying)", name, exc.message)
        state.polls, state.elapsed = polls, time.monotonic() - start
        if on_poll is not None:
            on_poll(state)
        if state.phase in FAILED_PHASES:
            raise IntegrityError(
                f"backup {name} failed on the source: phase {state.phase}"
                + _failure_reason(store, name),
                hint="look at `kube-migrate backup describe` and the backup's logs, "
                "then run the backup again",
            )
        return state

    def last(retry_state: RetryCallState) -> SyncState:
        assert retry_state.outcome is not None
        result: SyncState = retry_state.outcome.result()
        return result

    retrying = Retrying(
        stop=stop_after_delay(timeout),
        wait=wait_fixed(interval),
        retry=retry_if_result(lambda s: not s.done),
        retry_error_callback=last,
    )
    state: SyncState = retrying(poll)
    if not state.done:
        raise WaitTimeout(
            f"backup {name} not in sync in {store.url} after {timeout:g}s: {state.problems()}",
            hint="the bucket replica may still be copying: raise --timeout, or check the "
            "replication; mismatched files mean the copy differs from the source",
        )
    return state


def _failure_reason(store: Store, name: str) -> str:
    try:
        info = layout.BackupInfo.parse(store.get(layout.BackupKeys(name).metadata), name)
    except (StoreError, IntegrityError):
        return ""
    reason = (info.raw.get("status") or {}).get("failureReason")
    return f" ({reason})" if reason else ""


def wait_for_velero_sync(
    cluster: Cluster, namespace: str, name: str, timeout: float, interval: float
) -> dict[str, Any]:
    """Poll the target cluster until Velero has synced Backup ``name`` into ``namespace``."""
    res = cluster.discovery().get("velero.io", "backups")
    if res is None:
        raise UsageError(
            f"{cluster.name} does not serve backups.velero.io",
            hint="is Velero installed on the target?",
        )

    def poll() -> dict[str, Any] | None:
        try:
            return cluster.get(res, name, namespace)
        except NotFound:
            log.info("velero sync: backup %s not yet in %s/%s", name, cluster.name, namespace)
            return None

    retrying = Retrying(
        stop=stop_after_delay(timeout),
        wait=wait_fixed(interval),
        retry=retry_if_result(lambda obj: obj is None),
        retry_error_callback=lambda _: None,
    )
    obj: dict[str, Any] | None = retrying(poll)
    if obj is None:
        raise WaitTimeout(
            f"Velero on {cluster.name} did not sync backup {name} into namespace "
            f"{namespace} within {timeout:g}s",
            hint="Velero lists the bucket every --backup-sync-period (default 1m); check that "
            "the target BackupStorageLocation is Available and uses the same bucket and prefix",
        )
    return obj
