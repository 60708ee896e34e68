"""What preflight knows about the source side, read from a backup in the bucket: the
source's Kubernetes version and the group/versions it served for each kind.

Our backups carry it all in the manifest (source.gitVersion, groupVersions, resources);
Velero's carry the version in velero-backup.json annotations and the backed-up
group/version/kinds in the resource list.  A live source is read the same way, from
the backup preflight takes of it into a temporary folder, so both modes see one truth.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from migrate.store import Store, layout

VELERO_PREFIX = "velero.io/source-cluster-k8s-"


@dataclass
class SourceFacts:
    origin: str  # "cluster" or "backup"
    name: str  # the cluster's address, or the backup's name
    git_version: str = ""
    major: int = 0
    minor: int = 0
    # (group, kind) -> versions the source served (manifest) or backed up (Velero), preferred
    # first.  `complete` says whether this is the source's full discovery.
    served: dict[tuple[str, str], tuple[str, ...]] = field(default_factory=dict)
    complete: bool = False
    errors: list[str] = field(default_factory=list)  # what the backup could not read
    written_by: str = ""  # "kube-migrate" or "Velero"
    # CRDs RBAC grants to the ServiceAccounts in scope, as backup recorded them
    # (migrate.backup.grants): {"crds": {name: {status, grantedBy, leftOut}}, "wildcards": ...}
    grants: dict[str, Any] = field(default_factory=dict)

    @property
    def known_version(self) -> bool:
        return self.major > 0

    def header(self) -> dict[str, Any]:
        return {
            "origin": self.origin,
            "name": self.name,
            "version": self.git_version or None,
            "minor": f"{self.major}.{self.minor}" if self.known_version else None,
            "backupWrittenBy": self.written_by or None,
        }


def _int(text: Any) -> int:
    digits = "".join(ch for ch in str(text or "") if ch.isdigit())
    return int(digits) if digits else 0


def _messages(result: dict[str, Any]) -> list[str]:
    out = [f"velero: {m}" for m in result.get("velero") or []]
    out += [f"cluster: {m}" for m in result.get("cluster") or []]
    for ns, msgs in sorted((result.get("namespaces") or {}).items()):
        out += [f"{ns}: {m}" for m in msgs]
    return out


def read_source_facts(store: Store, name: str, origin: str = "backup") -> SourceFacts:
    """Facts about the source of backup `name` (which must exist and be complete)."""
    keys = layout.BackupKeys(layout.check_backup_name(name))
    info = layout.BackupInfo.parse(store.get(keys.metadata), name)
    notes = (info.raw.get("metadata") or {}).get("annotations") or {}
    facts = SourceFacts(
        origin,
        name,
        git_version=notes.get(f"{VELERO_PREFIX}gitversion", ""),
        major=_int(notes.get(f"{VELERO_PREFIX}major-version")),
        minor=_int(notes.get(f"{VELERO_PREFIX}minor-version")),
        written_by="kube-migrate" if "kube-migrate.io/created-by" in notes else "Velero",
    )
    source: dict[str, Any] = {}
    if store.exists(keys.manifest):
        manifest = layout.Manifest.parse(store.get(keys.manifest), name)
        source = manifest.source
        facts.grants = dict(manifest.raw.get("grants") or {})
    for res in source.get("resources") or []:
        versions = tuple(res.get("versions") or [res.get("version", "")])
        facts.served[(res.get("group", ""), res.get("kind", ""))] = versions
    facts.complete = bool(facts.served)
    if not facts.complete and store.exists(keys.resource_list):
        listed = layout.gunzip_json(store.get(keys.resource_list), f"backup {name} resource list")
        for key in listed if isinstance(listed, dict) else {}:
            api_version, _, kind = str(key).rpartition("/")
            group = api_version.rpartition("/")[0]
            have = facts.served.get((group, kind), ())
            facts.served[(group, kind)] = (*have, api_version.rpartition("/")[2])
    if source.get("gitVersion") and not facts.git_version:
        facts.git_version = str(source["gitVersion"])
    if not facts.known_version and facts.git_version:
        parts = facts.git_version.lstrip("v").split(".")
        facts.major, facts.minor = _int(parts[0]), _int(parts[1] if len(parts) > 1 else "")
    if store.exists(keys.results):
        results = layout.gunzip_json(store.get(keys.results), f"backup {name} results")
        facts.errors = _messages((results or {}).get("errors") or {})
    return facts
