"""`backup describe` and `backup logs`: one backup's status, counts, scope, errors and
warnings (read from Velero's sidecar files and our manifest), and its run log.  Works on
our backups and Velero's alike; a missing or damaged sidecar is a problem listed in the
description, not a failure of the command."""

from __future__ import annotations

import gzip
from collections import Counter
from datetime import UTC, datetime
from typing import Any

from migrate.backup.catalog import (
    _SPEC_FILTERS,
    MADE_BY_US,
    MADE_BY_VELERO,
    _check_name,
    _Folder,
    _not_found,
    _read_folder,
    _ts,
)
from migrate.errors import IntegrityError, StoreNotFound, UsageError
from migrate.store import Store, layout
from migrate.store.crypto import Encryption, EncryptionKey, check_key
from migrate.store.manifest_mac import check_manifest


def _sidecar(store: Store, folder: _Folder, key: str, problems: list[str]) -> dict[str, Any]:
    """A gzip-JSON sidecar as a dict; {} if absent, a note in ``problems`` if unreadable."""
    if key not in folder.files:
        return {}
    what = key.removeprefix(folder.keys.dir)
    try:
        doc = layout.gunzip_json(store.get(key), what)
    except (IntegrityError, StoreNotFound) as exc:
        problems.append(str(exc))
        return {}
    if not isinstance(doc, dict):
        problems.append(f"{what} is not a JSON object")
        return {}
    return doc


def _count_messages(result: Any) -> int:
    if not isinstance(result, dict):
        return 0
    return (
        len(result.get("velero") or [])
        + len(result.get("cluster") or [])
        + sum(len(v or []) for v in (result.get("namespaces") or {}).values())
    )


def _counts_from_resource_list(resources: dict[str, list[str]]) -> dict[str, Any]:
    by_ns: Counter[str] = Counter()
    for names in resources.values():
        by_ns.update(n.split("/", 1)[0] for n in names if "/" in n)
    return {
        "items": sum(map(len, resources.values())),
        "byResource": {k: len(v) for k, v in sorted(resources.items())},
        "byNamespace": dict(sorted(by_ns.items())),
    }


def _manifest(store: Store, folder: _Folder, problems: list[str]) -> layout.Manifest | None:
    if not folder.ours:
        return None
    try:
        return layout.Manifest.parse(store.get(folder.keys.manifest), folder.name)
    except (IntegrityError, StoreNotFound) as exc:
        problems.append(str(exc))
        return None


def _volumes(store: Store, folder: _Folder) -> list[dict[str, Any]] | None:
    """Each claim's data as the backup copied it (or why not): migrate/volumes' record."""
    key = folder.keys.volumes
    if key not in folder.files:
        return None
    docs = layout.gunzip_json(store.get(key), key)
    return [
        {
            "claim": f"{d.get('namespace')}/{d.get('claim')}",
            "bytes": d.get("total_bytes", 0),
            "files": d.get("files", 0),
            "uploadedBytes": d.get("incremental_bytes", 0),
            "seconds": d.get("seconds", 0),
            **({"notCopied": d["skip"]} if d.get("skip") else {"snapshot": d.get("snapshot")}),
            **_method(d),
        }
        for d in docs
        if isinstance(d, dict)
    ]


def _method(d: dict[str, Any]) -> dict[str, Any]:
    """How a copied claim was read (Velero's backupMethod words) and how long its app
    was held by hooks; a kept VolumeSnapshot."""
    if d.get("skip") or not d.get("method"):
        return {}
    out: dict[str, Any] = {"method": d["method"], "frozenSeconds": d.get("frozen_seconds", 0)}
    if d.get("cut_seconds"):
        out["snapshotCutSeconds"] = d["cut_seconds"]
    if d.get("live_reason") and d["method"] != "CSISnapshot":
        out["whyLive"] = d["live_reason"]
    if d.get("kept_snapshot"):
        out["keptSnapshot"] = d["kept_snapshot"]
    return out


def describe(
    store: Store, name: str, details: bool = False, key: EncryptionKey | None = None
) -> dict[str, Any]:
    """Everything known about one backup; ``details`` adds messages and the resource list.

    What describe shows is never encrypted (names, counts, messages); ``key``, when given,
    is checked against the key id of an encrypted backup (UsageError if it is not it),
    and the manifest's authentication with it (IntegrityError if it was altered)."""
    folder = _read_folder(store, name)
    if folder is None:
        raise _not_found(store, name)
    problems = [folder.problem] if folder.problem else []
    info, now = folder.info, datetime.now(UTC)
    tarball = folder.files.get(folder.keys.tarball)
    status = (info.raw.get("status") or {}) if info else {}
    out: dict[str, Any] = {
        "name": name,
        "phase": folder.phase,
        "madeBy": MADE_BY_US if folder.ours else MADE_BY_VELERO,
        "started": _ts(info.started) if info else None,
        "completed": _ts(info.completed) if info else None,
        "ttl": info.spec.get("ttl") if info else None,
        "expiration": _ts(info.expiration) if info else None,
        "expired": info.expired(now) if info else False,
        "sourceVersion": info.source_version if info else "",
        "formatVersion": info.format_version if info else "",
        "items": info.items if info else 0,
        "tarballBytes": tarball.size if tarball else 0,
        "filters": {k: info.spec[k] for k in _SPEC_FILTERS if k in info.spec} if info else {},
    }
    out.update(
        {why: status[why] for why in ("failureReason", "validationErrors") if status.get(why)}
    )
    manifest = _manifest(store, folder, problems)
    resources = {
        str(k): [str(i) for i in (v or [])]
        for k, v in _sidecar(store, folder, folder.keys.resource_list, problems).items()
    }
    counts = (manifest.raw.get("counts") if manifest else None) or None
    if isinstance(counts, dict):
        out["counts"] = {
            "from": "manifest",
            "items": counts.get("items", 0),
            "byResource": counts.get("byResource") or {},
            "byNamespace": counts.get("byNamespace") or {},
        }
    else:
        out["counts"] = {"from": "resource-list", **_counts_from_resource_list(resources)}
    results = _sidecar(store, folder, folder.keys.results, problems) or None
    if results is not None:
        out["errors"] = _count_messages(results.get("errors"))
        out["warnings"] = _count_messages(results.get("warnings"))
    else:
        out["errors"] = info.errors if info else 0
        out["warnings"] = info.warnings if info else 0
    encryption = Encryption.from_manifest(manifest.raw, name) if manifest else None
    authenticated = False
    if key is not None:
        check_key(encryption, key, name)
        if manifest is not None:  # what describe shows must be what the backup wrote
            meta = folder.keys.metadata
            blobs = {meta.removeprefix(folder.keys.dir): store.get(meta)} if info else {}
            authenticated = check_manifest(manifest.raw, key, name, blobs)
    if manifest is not None:
        out["encryption"] = encryption.as_dict() if encryption else None
        if encryption is not None and key is not None:
            out["encryption"]["keyMatches"] = True
            out["encryption"]["manifestAuthenticated"] = authenticated
        out["clusterIncluded"] = manifest.raw.get("clusterIncluded") or {}
        out["skippedResources"] = manifest.raw.get("skippedResources") or {}
        # CRDs granted to ServiceAccounts in scope; an increment's chain and how it was read
        out.update({k: manifest.raw[k] for k in ("grants", "incremental") if manifest.raw.get(k)})
    if (volumes := _volumes(store, folder)) is not None:
        out["volumes"] = volumes
    if details:
        if results is not None:
            out["errorMessages"] = results.get("errors") or layout.empty_result()
            out["warningMessages"] = results.get("warnings") or layout.empty_result()
        out["resources"] = resources
        out["files"] = {k.removeprefix(folder.keys.dir): o.size for k, o in folder.files.items()}
    return {**out, "problems": problems} if problems else out


def logs(store: Store, name: str) -> str:
    """The backup's log (``<name>-logs.gz``), as text."""
    keys = _check_name(name)
    try:
        data = store.get(keys.logs)
    except StoreNotFound:
        if next(iter(store.list(keys.dir)), None) is None:
            raise _not_found(store, name) from None
        raise UsageError(
            f"backup {name!r} has no logs in {store.url}",
            hint="Velero writes the logs best-effort; an interrupted backup may have none",
        ) from None
    try:
        return gzip.decompress(data).decode("utf-8", errors="replace")
    except (OSError, EOFError) as exc:
        raise IntegrityError(f"{store.url.key_url(keys.logs)} is corrupted: {exc}") from exc
