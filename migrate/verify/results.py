"""Verify's results: one per object (`equal`, `changed`, `missing`, `extra`), each change
as a field path with the source's and the target's value, and the report around them.

Values enter a result already made safe to print: Secret values (compared by hash) are
always `<redacted>` (not even their hash: a short password's sha256 is guessable),
ConfigMap values are their sha256 and size unless --show-values, and long strings are
cut.  Every output format (table, JSON, Markdown, HTML, JUnit) reads these, so none of
them can print more than the others.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from migrate.verify.normalize import Key
from migrate.verify.paths import format_path
from migrate.verify.policy import HIDDEN_FIELDS, OTHER_VALUE_CHARS, REDACTED, SECRET_FIELDS

STATUSES = ("missing", "extra", "changed", "equal")  # report order: worst first


class _Absent:
    """The field does not exist on that side."""

    def __repr__(self) -> str:
        return "<none>"


ABSENT: Any = _Absent()


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} chars)"


def hidden(value: Any) -> str:
    """A value as reports print it by default: sha256 (enough of it to tell two values
    apart) and size, never the text."""
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
    data = text.encode()
    return f"<sha256:{hashlib.sha256(data).hexdigest()[:16]}, {len(data)} bytes>"


def shown(kind: str, path: Sequence[Any], value: Any, show_values: bool = False) -> Any:
    """value (found at path in an object of kind) as reports may print it; show_values
    (--show-values) prints ConfigMap values, never Secret ones."""
    if value is ABSENT:
        return value
    if isinstance(value, dict):
        return {k: shown(kind, [*path, k], v, show_values) for k, v in value.items()}
    if isinstance(value, list):
        return [shown(kind, [*path, i], v, show_values) for i, v in enumerate(value)]
    if kind == "Secret" and any(tuple(path[: len(f)]) == f for f in SECRET_FIELDS):
        return REDACTED
    if not show_values and any(tuple(path[: len(f)]) == f for f in HIDDEN_FIELDS.get(kind, ())):
        return hidden(value)
    if isinstance(value, str):
        return _cut(value, OTHER_VALUE_CHARS)
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
    kind: str, path: Sequence[Any], old: Any, new: Any, show_values: bool = False
) -> Change:
    return Change(
        format_path(path),
        shown(kind, path, old, show_values),
        shown(kind, path, new, show_values),
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
    # what is wrong outside the compared objects (a CRD granted to a ServiceAccount in
    # scope, left out of the backup and missing on the target); not drift
    warnings: list[str] = field(default_factory=list)

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
            **({"warnings": list(self.warnings)} if self.warnings else {}),
        }

    def summary_line(self) -> str:
        c = self.counts()
        return (
            f"{len(self.results)} objects: {c['equal']} equal, {c['changed']} changed, "
            f"{c['missing']} missing, {c['extra']} extra"
        ) + "".join(f"; warning: {w}" for w in self.warnings)

    def as_dict(self) -> dict[str, Any]:
        return {
            "apiVersion": "kube-migrate.io/v1",
            "kind": "VerifyReport",
            "source": self.source,
            "target": self.target,
            "summary": self.summary(),
            "objects": [r.as_dict() for r in self.results],
        }
