"""Velero's bucket layout, spelled once: key names, tarball item paths, the Backup
object in velero-backup.json, the resource list and results sidecars, and our manifest
(backup_manifest.py, re-exported here).

Backup writes it, restore and preflight read it, sync checks it; keeping the format in
one module is what lets Velero read our backups and us restore Velero's.
Reference: ../shared/reference/velero-format.md, section 1.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from migrate.errors import IntegrityError, UsageError
from migrate.store.backup_manifest import MANIFEST_FORMAT, Manifest, manifest

# Our manifest (backup_manifest.py) stays readable here: `layout.Manifest`.
__all__ = [
    "FORMAT_VERSION",
    "MANIFEST_FORMAT",
    "RESTORABLE_PHASES",
    "RUN_LABEL",
    "SCHEDULE_LABEL",
    "TERMINAL_PHASES",
    "VELERO_TOP_DIRS",
    "VERSION_FILE",
    "BackupInfo",
    "BackupKeys",
    "ItemPath",
    "Manifest",
    "backup_object",
    "check_backup_name",
    "empty_result",
    "group_resource",
    "gunzip_json",
    "gzip_json",
    "item_paths",
    "manifest",
    "parse_item_path",
    "parse_time",
    "resource_list_key",
    "rfc3339",
    "sha256",
]

FORMAT_VERSION = "1.1.0"  # Velero's BackupFormatVersion; version dirs need >= 1.1.0
VERSION_FILE = "metadata/version"  # inside the tarball: FORMAT_VERSION + "\n"
# Phases after which velero-backup.json no longer changes, and those a restore accepts.
TERMINAL_PHASES = frozenset({"Completed", "PartiallyFailed", "Failed", "FailedValidation"})
RESTORABLE_PHASES = frozenset({"Completed", "PartiallyFailed"})
# Top-level folders Velero allows under a location's prefix (anything else makes the
# location unavailable): we never create others.
VELERO_TOP_DIRS = ("backups", "restores", "restic", "metadata", "plugins", "kopia")
# The label (on velero-backup.json) and manifest field naming the playbook run that made
# a backup: a run reuses or deletes only its own (migrate/pipeline/steps_move.py).
RUN_LABEL = "kube-migrate.io/run"
SCHEDULE_LABEL = "velero.io/schedule-name"  # Velero's: the schedule that made a backup
# The label (on velero-backup.json) naming an incremental backup's parent.
PARENT_LABEL = "kube-migrate.io/parent-backup"
_NAME = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")


def check_backup_name(name: str) -> str:
    """Backup names are Kubernetes object names that also fit a label value (<= 63)."""
    if not _NAME.match(name) or len(name) > 63:
        raise UsageError(
            f"invalid backup name {name!r}",
            hint="use lower-case letters, digits, '-' and '.', at most 63 characters",
        )
    return name


@dataclass(frozen=True)
class BackupKeys:
    """Keys of one backup's files, relative to the store's prefix."""

    name: str

    @property
    def dir(self) -> str:
        return f"backups/{self.name}/"

    @property
    def metadata(self) -> str:
        return f"{self.dir}velero-backup.json"

    @property
    def tarball(self) -> str:
        return f"{self.dir}{self.name}.tar.gz"

    @property
    def resource_list(self) -> str:
        return f"{self.dir}{self.name}-resource-list.json.gz"

    @property
    def logs(self) -> str:
        return f"{self.dir}{self.name}-logs.gz"

    @property
    def results(self) -> str:
        return f"{self.dir}{self.name}-results.gz"

    @property
    def pod_volume_backups(self) -> str:
        """Velero's record of the volume data copied (PodVolumeBackup objects)."""
        return f"{self.dir}{self.name}-podvolumebackups.json.gz"

    @property
    def volumes(self) -> str:
        """Ours: every claim in scope, whether its data moved and why not."""
        return f"{self.dir}{self.name}-kube-migrate-volumes.json.gz"

    @property
    def positions(self) -> str:
        """Ours: where each listed resource stood, each object's resourceVersion, and (in
        an incremental backup) its parent and what was deleted since."""
        return f"{self.dir}{self.name}-kube-migrate-positions.json.gz"

    @property
    def manifest(self) -> str:
        """Our own addition (checksums, source facts); Velero ignores unknown files."""
        return f"{self.dir}{self.name}-kube-migrate.json"


def group_resource(resource: str, group: str) -> str:
    """schema.GroupResource.String(): "configmaps", "deployments.apps"."""
    return f"{resource}.{group}" if group else resource


def item_paths(gr: str, version: str, namespace: str | None, name: str) -> tuple[str, str]:
    """The two paths Velero writes every item at: classic and <ver>-preferredversion."""
    scope = f"namespaces/{namespace}" if namespace else "cluster"
    return (
        f"resources/{gr}/{scope}/{name}.json",
        f"resources/{gr}/{version}-preferredversion/{scope}/{name}.json",
    )


@dataclass(frozen=True)
class ItemPath:
    group_resource: str
    version_dir: str | None  # None for the classic path
    namespace: str | None
    name: str


def parse_item_path(path: str) -> ItemPath | None:
    """resources/<gr>[/<verdir>]/(cluster|namespaces/<ns>)/<name>.json -> parts, else None."""
    parts = path.split("/")
    if len(parts) < 4 or parts[0] != "resources" or not parts[-1].endswith(".json"):
        return None
    gr, rest = parts[1], parts[2:]
    version_dir = None
    if rest[0] not in ("cluster", "namespaces"):
        version_dir, rest = rest[0], rest[1:]
    name = rest[-1][: -len(".json")]
    if rest[0] == "cluster" and len(rest) == 2:
        return ItemPath(gr, version_dir, None, name)
    if rest[0] == "namespaces" and len(rest) == 3:
        return ItemPath(gr, version_dir, rest[1], name)
    return None


def resource_list_key(api_version: str, kind: str) -> str:
    """Velero's resource-list key: "apps/v1/Deployment", "v1/ConfigMap"."""
    return f"{api_version}/{kind}"


def empty_result() -> dict[str, Any]:
    """Velero's Result: messages for velero itself, the cluster, and per namespace."""
    return {"velero": [], "cluster": [], "namespaces": {}}


def gzip_json(doc: Any) -> bytes:
    return gzip.compress(json.dumps(doc, separators=(",", ":")).encode(), mtime=0)


def gunzip_json(data: bytes, what: str) -> Any:
    try:
        return json.loads(gzip.decompress(data))
    except (OSError, EOFError, ValueError) as exc:
        raise IntegrityError(f"{what} is corrupted: {exc}") from exc


def rfc3339(ts: datetime) -> str:
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


@dataclass
class BackupInfo:
    """What velero-backup.json says about a backup (ours or Velero's)."""

    name: str
    phase: str
    spec: dict[str, Any] = field(default_factory=dict)
    started: datetime | None = None
    completed: datetime | None = None
    expiration: datetime | None = None
    items: int = 0
    errors: int = 0
    warnings: int = 0
    format_version: str = ""
    source_version: str = ""
    labels: dict[str, str] = field(default_factory=dict)
    raw: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def parse(cls, data: bytes, name: str) -> BackupInfo:
        try:
            doc = json.loads(data)
        except ValueError as exc:
            raise IntegrityError(f"backup {name}: velero-backup.json is not JSON: {exc}") from exc
        if not isinstance(doc, dict) or doc.get("kind") != "Backup":
            raise IntegrityError(f"backup {name}: velero-backup.json is not a velero.io Backup")
        status = doc.get("status") or {}
        meta = doc.get("metadata") or {}
        progress = status.get("progress") or {}
        annotations = meta.get("annotations") or {}
        return cls(
            name=meta.get("name") or name,
            phase=status.get("phase") or "New",
            spec=doc.get("spec") or {},
            started=parse_time(status.get("startTimestamp")),
            completed=parse_time(status.get("completionTimestamp")),
            expiration=parse_time(status.get("expiration")),
            items=int(progress.get("itemsBackedUp") or 0),
            errors=int(status.get("errors") or 0),
            warnings=int(status.get("warnings") or 0),
            format_version=status.get("formatVersion") or "1.0.0",
            source_version=annotations.get("velero.io/source-cluster-k8s-gitversion", ""),
            labels=meta.get("labels") or {},
            raw=doc,
        )

    def expired(self, now: datetime | None = None) -> bool:
        return self.expiration is not None and self.expiration <= (now or datetime.now(UTC))


def backup_object(
    name: str,
    *,
    spec: dict[str, Any],
    phase: str,
    started: datetime,
    completed: datetime | None,
    expiration: datetime | None,
    total: int,
    backed_up: int,
    errors: int,
    warnings: int,
    git_version: str,
    major: int,
    minor: int,
    labels: dict[str, str] | None = None,
    failure_reason: str = "",
) -> dict[str, Any]:
    """The velero.io/v1 Backup stored as velero-backup.json."""
    status: dict[str, Any] = {
        "version": 1,
        "formatVersion": FORMAT_VERSION,
        "phase": phase,
        "startTimestamp": rfc3339(started),
        "progress": {"totalItems": total, "itemsBackedUp": backed_up},
    }
    if expiration:
        status["expiration"] = rfc3339(expiration)
    if completed:
        status["completionTimestamp"] = rfc3339(completed)
    if errors:
        status["errors"] = errors
    if warnings:
        status["warnings"] = warnings
    if failure_reason:
        status["failureReason"] = failure_reason
    return {
        "apiVersion": "velero.io/v1",
        "kind": "Backup",
        "metadata": {
            "name": name,
            "namespace": "velero",
            "creationTimestamp": rfc3339(started),
            "labels": {"velero.io/storage-location": "default", **(labels or {})},
            "annotations": {
                "velero.io/source-cluster-k8s-gitversion": git_version,
                "velero.io/source-cluster-k8s-major-version": str(major),
                "velero.io/source-cluster-k8s-minor-version": str(minor),
                "kube-migrate.io/created-by": "kube-migrate",
            },
        },
        "spec": spec,
        "status": status,
    }


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
