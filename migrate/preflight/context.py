"""What every check reads: the objects the restore would create (planned by restore's
own planner, so preflight judges exactly what restore will do), the source facts, the
target view and the options that change the outcome (mappings, existing policy).

Planned objects are described by a Protocol rather than imported from restore: steps
do not import each other; the CLI hands restore's plan items over and they fit.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Protocol

from migrate.preflight.facts import SourceFacts
from migrate.preflight.findings import obj_ref
from migrate.preflight.target import TargetView
from migrate.transform.snapshot_method import SnapshotSupport
from migrate.transform.volumes import DEFAULT_PV_POLICY

BUILTIN_SUFFIXES = (".k8s.io", ".kubernetes.io")


class Planned(Protocol):
    """One object of the restore plan (restore.source.Item has this shape)."""

    gr: str
    skip: str | None  # why restore leaves it out
    namespace: str | None  # in the backup (before mapping)
    name: str  # in the backup

    def read_obj(self) -> dict[str, Any]:
        """As in the backup (a fresh copy each call)."""
        ...

    def read_desired(self) -> dict[str, Any]:
        """What restore would create (mapped, sanitized; a fresh copy each call)."""
        ...

    @property
    def kind(self) -> str: ...

    @property
    def target_ns(self) -> str | None: ...

    @property
    def key(self) -> tuple[str, str, str | None, str]: ...


@dataclass(frozen=True)
class PreflightOptions:
    existing_policy: str = "none"  # none | update | fail (restore's --existing-resource-policy)
    namespace_mappings: dict[str, str] = field(default_factory=dict)
    storage_class_mappings: dict[str, str] = field(default_factory=dict)
    parallelism: int = 8
    pv_policy: str = DEFAULT_PV_POLICY  # restore's --pv-policy (migrate.transform.volumes)
    volumes: str = "none"  # whose data the backup copies: all | annotated | none
    # from a backup: (source namespace, claim) -> bytes of its recorded data copy; None
    # for a live source (then `volumes` says what a backup would copy)
    data_bytes: dict[tuple[str, str], int] | None = None
    # a live source's snapshot support (None: unknown, or not asked) and --snapshot-volumes
    snapshot_support: SnapshotSupport | None = None
    snapshot_volumes: str = "auto"
    # the target is the source cluster: snapshotted claims can be cloned (a live source),
    # or (a backup) claims whose snapshot the backup kept are made from it
    same_cluster: bool = False
    # from a backup: (source namespace, claim) -> the VolumeSnapshot it kept (no data copy)
    kept: dict[tuple[str, str], str] = field(default_factory=dict)


def is_builtin_group(group: str) -> bool:
    """Kubernetes' own API groups ("" , apps, *.k8s.io); anything else is a CRD or an
    aggregated API."""
    return "." not in group or group.endswith(BUILTIN_SUFFIXES)


def api_parts(api_version: str) -> tuple[str, str]:
    group, _, version = api_version.rpartition("/")
    return group, version


@dataclass
class Context:
    source: SourceFacts
    target: TargetView
    items: list[Planned]
    options: PreflightOptions = field(default_factory=PreflightOptions)

    @cached_property
    def restorable(self) -> list[Planned]:
        return [it for it in self.items if it.skip is None and it.read_desired()]

    @cached_property
    def planned_keys(self) -> set[tuple[str, str | None, str]]:
        """(kind, namespace, name) of every object the restore creates."""
        return {(it.kind, it.key[2], it.key[3]) for it in self.restorable}

    def in_plan(self, kind: str, namespace: str | None, name: str) -> bool:
        return (kind, namespace, name) in self.planned_keys

    @cached_property
    def planned_crds(self) -> dict[tuple[str, str], dict[str, Any]]:
        """(group, kind) -> the CRD the restore creates for it."""
        out = {}
        for it in self.restorable:
            if it.kind == "CustomResourceDefinition":
                crd = it.read_desired()
                spec = crd.get("spec") or {}
                out[(spec.get("group", ""), (spec.get("names") or {}).get("kind", ""))] = crd
        return out

    @cached_property
    def planned_namespaces(self) -> dict[str, dict[str, str]]:
        """Namespaces the restore creates -> the labels they will carry."""
        return {
            it.key[3]: (it.read_desired().get("metadata") or {}).get("labels") or {}
            for it in self.restorable
            if it.kind == "Namespace"
        }

    def namespace_labels(self, ns: str) -> dict[str, str]:
        """The labels namespace `ns` will have on the target after the restore: its own
        if it exists there (merged with the backup's under policy update), else the
        restored Namespace's."""
        existing = self.target.namespace_labels()
        planned = self.planned_namespaces.get(ns, {})
        if ns in existing:
            labels = dict(existing[ns])
            if self.options.existing_policy == "update":
                labels.update(planned)
        else:
            labels = dict(planned)
        labels.setdefault("kubernetes.io/metadata.name", ns)
        return labels

    def ref(self, it: Planned) -> str:
        return obj_ref(it.kind, it.key[2], it.key[3])

    def by_kind(self, *kinds: str) -> Iterator[Planned]:
        return (it for it in self.restorable if it.kind in kinds)
