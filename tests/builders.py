"""Test builders: write backups into a store the way Velero (or kube-migrate) would,
without a cluster, and copy them between stores like a slow bucket replica; and the
manifests several tests create on the planes (a schemaless CustomResourceDefinition)."""

from __future__ import annotations

import gzip
import json
import os
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from migrate.store import Store, layout
from migrate.store.archive import TarballWriter


@dataclass(frozen=True)
class Item:
    group: str
    version: str
    resource: str
    kind: str
    namespace: str | None
    name: str

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    def obj(self) -> dict[str, Any]:
        meta: dict[str, Any] = {"name": self.name, "uid": f"uid-{self.name}"}
        if self.namespace:
            meta["namespace"] = self.namespace
        return {"apiVersion": self.api_version, "kind": self.kind, "metadata": meta}


ITEMS = (
    Item("", "v1", "namespaces", "Namespace", None, "app"),
    Item("", "v1", "namespaces", "Namespace", None, "other"),
    Item("apps", "v1", "deployments", "Deployment", "app", "web"),
    Item("", "v1", "configmaps", "ConfigMap", "app", "cfg"),
    Item("", "v1", "configmaps", "ConfigMap", "other", "cfg2"),
    Item("rbac.authorization.k8s.io", "v1", "clusterroles", "ClusterRole", None, "reader"),
)


@dataclass
class Built:
    """What was written: every key with its bytes, in the order they were written."""

    name: str
    keys: layout.BackupKeys
    files: dict[str, bytes] = field(default_factory=dict)

    @property
    def tarball_size(self) -> int:
        return len(self.files.get(self.keys.tarball, b""))


def _result(messages: dict[str, list[str]] | None) -> dict[str, Any]:
    out = layout.empty_result()
    for where, msgs in (messages or {}).items():
        if where in ("velero", "cluster"):
            out[where] = list(msgs)
        else:
            out["namespaces"][where] = list(msgs)
    return out


def _count(messages: dict[str, list[str]] | None) -> int:
    return sum(len(v) for v in (messages or {}).values())


def write_backup(
    store: Store,
    name: str,
    *,
    items: Iterable[Item] = ITEMS,
    phase: str = "Completed",
    started: datetime | None = None,
    ttl: timedelta = timedelta(hours=720),
    ours: bool = True,
    complete: bool = True,
    errors: dict[str, list[str]] | None = None,
    warnings: dict[str, list[str]] | None = None,
    spec: dict[str, Any] | None = None,
    padding: int = 0,
    git_version: str = "v1.30.14",
    failure_reason: str = "",
) -> Built:
    """A backup in the bucket layout.  ``ours`` adds our manifest and writes in
    create.py's order (velero-backup.json last); otherwise in Velero's order (logs,
    velero-backup.json, tarball, sidecars) with no kube-migrate annotation.
    ``complete=False`` stops before velero-backup.json (a killed backup).
    ``padding`` adds that many incompressible bytes to the tarball."""
    items = list(items)
    keys = layout.BackupKeys(name)
    built = Built(name, keys)
    started = started or datetime.now(UTC) - timedelta(minutes=5)
    full_spec = {"includedNamespaces": ["*"], "ttl": f"{int(ttl.total_seconds() // 3600)}h0m0s"}
    full_spec.update(spec or {})
    meta_doc = layout.backup_object(
        name,
        spec=full_spec,
        phase=phase,
        started=started,
        completed=started + timedelta(seconds=30) if phase in layout.TERMINAL_PHASES else None,
        expiration=started + ttl,
        total=len(items),
        backed_up=len(items),
        errors=_count(errors),
        warnings=_count(warnings),
        git_version=git_version,
        major=1,
        minor=int(git_version.split(".")[1]),
        failure_reason=failure_reason,
    )
    if not ours:
        del meta_doc["metadata"]["annotations"]["kube-migrate.io/created-by"]
    metadata = json.dumps(meta_doc, indent=2).encode()
    resource_list: dict[str, list[str]] = {}
    for it in items:
        ref = f"{it.namespace}/{it.name}" if it.namespace else it.name
        resource_list.setdefault(layout.resource_list_key(it.api_version, it.kind), []).append(ref)
    sidecars = {
        keys.resource_list: layout.gzip_json({k: sorted(v) for k, v in resource_list.items()}),
        keys.results: layout.gzip_json({"errors": _result(errors), "warnings": _result(warnings)}),
    }
    logs = gzip.compress(f"time=now level=info msg=backup {name} started\n".encode(), mtime=0)

    def put(key: str, data: bytes) -> None:
        store.put(key, data)
        built.files[key] = data

    if not ours:
        put(keys.logs, logs)
        if complete:
            put(keys.metadata, metadata)
    _write_tarball(store, built, items, padding)
    for key, blob in sidecars.items():
        put(key, blob)
    if not ours:
        return built
    put(keys.logs, logs)
    files = {k: (len(v), layout.sha256(v)) for k, v in built.files.items()}
    files[keys.metadata] = (len(metadata), layout.sha256(metadata))
    by_resource = Counter(layout.group_resource(it.resource, it.group) for it in items)
    by_ns = Counter(it.namespace for it in items if it.namespace)
    extra = {
        "scope": full_spec,
        "counts": {
            "name": name,
            "items": len(items),
            "byResource": dict(sorted(by_resource.items())),
            "byNamespace": dict(sorted(by_ns.items())),
        },
        "clusterIncluded": {"clusterroles.rbac.authorization.k8s.io": {"reader": "bound by rb"}},
        "skippedResources": {"events": "never backed up"},
    }
    put(keys.manifest, layout.manifest(name, files, keys.dir, {"gitVersion": git_version}, extra))
    if complete:
        put(keys.metadata, metadata)
    return built


def _write_tarball(store: Store, built: Built, items: list[Item], padding: int) -> None:
    with TarballWriter(store, built.keys.tarball) as tw:
        tw.add("metadata/version", b"1.1.0\n")
        for it in items:
            data = json.dumps(it.obj(), sort_keys=True).encode()
            gr = layout.group_resource(it.resource, it.group)
            for path in layout.item_paths(gr, it.version, it.namespace, it.name):
                tw.add(path, data)
        if padding:
            tw.add("padding.bin", os.urandom(padding))
    built.files[built.keys.tarball] = store.get(built.keys.tarball)


def corrupt(data: bytes) -> bytes:
    """Same size, different bytes (a flipped byte in the middle)."""
    mid = len(data) // 2
    return data[:mid] + bytes([data[mid] ^ 0xFF]) + data[mid + 1 :]


def copy_backup(
    src: Store,
    dst: Store,
    name: str,
    *,
    delay: float = 0.0,
    skip: Iterable[str] = (),
    damage: Iterable[str] = (),
) -> float:
    """Copy backups/<name>/ like a replica: file by file, velero-backup.json last,
    ``delay`` seconds before each.  ``skip``/``damage`` name files (relative to the
    folder) to leave out / corrupt.  Returns time.monotonic() right before the last put
    began (a reader may see that file before the put returns)."""
    keys = layout.BackupKeys(name)
    skipped, damaged = set(skip), set(damage)
    objs = sorted(src.list(keys.dir), key=lambda o: (o.key == keys.metadata, o.key))
    last = time.monotonic()
    for obj in objs:
        rel = obj.key.removeprefix(keys.dir)
        if rel in skipped:
            continue
        time.sleep(delay)
        data = src.get(obj.key)
        last = time.monotonic()
        dst.put(obj.key, corrupt(data) if rel in damaged else data)
    return last


def crd_manifest(
    group: str,
    plural: str,
    kind: str,
    versions: Sequence[str] = ("v1",),
    storage: str = "",
    status_subresource: bool = False,
) -> dict[str, Any]:
    """A namespaced CustomResourceDefinition whose versions take any object (no schema);
    `storage` defaults to the first version."""
    schema = {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}}
    stored = storage or versions[0]
    served = []
    for v in versions:
        version: dict[str, Any] = {"name": v, "served": True, "storage": v == stored}
        if status_subresource:
            version["subresources"] = {"status": {}}
        served.append({**version, "schema": schema})
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{group}"},
        "spec": {
            "group": group,
            "scope": "Namespaced",
            "names": {"plural": plural, "singular": kind.lower(), "kind": kind},
            "versions": served,
        },
    }
