"""Verify's results: one per object (`equal`, `changed`, `missing`, `extra`), each change
as a field path with the source's and the target's value, and the report around them.

Values enter a result already made safe to print: Secret values (compared by hash) are
`<redacted>` unless --show-secrets=true, ConfigMap values and other long strings are
cut.  Every output format (table, JSON, Markdown, HTML, JUnit) reads these, so none of
them can print more than the others.
"""

from __future__ import annotations

import base64
import binascii
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from migrate.verify.normalize import Key
from migrate.verify.paths import format_path
from migrate.verify.policy import (
    CONFIGMAP_VALUE_CHARS,
    OTHER_VALUE_CHARS,
    REDACTED,
    SECRET_FIELDS,
    TRUNCATED_FIELDS,
)

STATUSES = ("missing", "extra", "changed", "equal")  # report order: worst first


class _Absent:
    """The field does not exist on that side."""

    def __repr__(self) -> str:
        return "<none>"


ABSENT: Any = _Absent()


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} chars)"


def _reveal(value: Any) -> Any:
    """--show-secrets=true: a Secret's base64 value, decoded when it is text."""
    if not isinstance(value, str):
        return value
    try:
        return base64.b64decode(value, validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return value


def shown(kind: str, path: Sequence[Any], value: Any, show_secrets: bool = False) -> Any:
    """value (found at path in an object of kind) as reports may print it."""
    if value is ABSENT:
        return value
    if isinstance(value, dict):
        return {k: shown(kind, [*path, k], v, show_secrets) for k, v in value.items()}
    if isinstance(value, list):
        return [shown(kind, [*path, i], v, show_secrets) for i, v in enumerate(value)]
    if kind == "Secret" and any(tuple(path[: len(f)]) == f for f in SECRET_FIELDS):
        if not show_secrets:
            return REDACTED
        return _reveal(value) if path[0] == "data" else value
    if isinstance(value, str):
        fields = TRUNCATED_FIELDS.get(kind, ())
        short = any(tuple(path[: len(f)]) == f for f in fields)
        return _cut(value, CONFIGMAP_VALUE_CHARS if short else OTHER_VALUE_CHARS)
    return value


@dataclass
class Change:
    path: str  # printable: spec.template.spec.containers[0].image, or count(Pod)
    old: Any  # the (transformed) source's value, or ABSENT
    new: Any  # the target's value, or ABSENT

    @property
    def op(self) -> str:
        if self.old is ABSENT:
            return "added"
        return "removed" if self.new is ABSENT else "changed"

    def as_dict(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"path": self.path, "op": self.op}
        if self.old is not ABSENT:
            doc["source"] = self.old
        if self.new is not ABSENT:
            doc["target"] = self.new
        return doc


def field_change(
    kind: str, path: Sequence[Any], old: Any, new: Any, show_secrets: bool = False
) -> Change:
    return Change(
        format_path(path),
        shown(kind, path, old, show_secrets),
        shown(kind, path, new, show_secrets),
    )


@dataclass
class ObjectResult:
    key: Key  # (group, kind, namespace, name) on the target
    resource: str  # resource.group
    status: str
    changes: list[Change] = field(default_factory=list)
    source: tuple[str | None, str] | None = None  # (namespace, name) on the source

    @property
    def group(self) -> str:
        return self.key[0]

    @property
    def kind(self) -> str:
        return self.key[1]

    @property
    def namespace(self) -> str | None:
        return self.key[2]

    @property
    def name(self) -> str:
        return self.key[3]

    def ref(self) -> str:
        return f"{self.namespace}/{self.name}" if self.namespace else self.name

    def as_dict(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "status": self.status,
            "group": self.group,
            "kind": self.kind,
            "resource": self.resource,
            "namespace": self.namespace,
            "name": self.name,
        }
        if self.source and self.source != (self.namespace, self.name):
            doc["sourceNamespace"], doc["sourceName"] = self.source
        doc["changes"] = [c.as_dict() for c in self.changes]
        return doc


@dataclass
class VerifyReport:
    source: dict[str, Any]  # cluster, server version, backup
    target: dict[str, Any]
    results: list[ObjectResult]
    not_compared: int = 0  # left to controllers (counted) or the target's own
    seconds: float = 0.0

    def counts(self) -> Counter[str]:
        return Counter(r.status for r in self.results)

    @property
    def drift(self) -> bool:
        return any(r.status != "equal" for r in self.results)

    @property
    def drifted(self) -> list[ObjectResult]:
        return [r for r in self.results if r.status != "equal"]

    def summary(self) -> dict[str, Any]:
        counts = self.counts()
        return {
            "objects": len(self.results),
            **{s: counts[s] for s in ("equal", "changed", "missing", "extra")},
            "notCompared": self.not_compared,
            "drift": self.drift,
            "seconds": round(self.seconds, 3),
        }

    def summary_line(self) -> str:
        c = self.counts()
        return (
            f"{len(self.results)} objects: {c['equal']} equal, {c['changed']} changed, "
            f"{c['missing']} missing, {c['extra']} extra"
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "apiVersion": "kube-migrate.io/v1",
            "kind": "VerifyReport",
            "source": self.source,
            "target": self.target,
            "summary": self.summary(),
            "objects": [r.as_dict() for r in self.results],
        }
