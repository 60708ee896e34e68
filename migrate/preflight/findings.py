"""What preflight reports: findings (severity, check, objects, message, fix) gathered
into one Report with a header of facts about both sides.

Every check returns Findings and nothing else, so the renderers, the exit code and the
tests all read one structure; a check never prints or decides the exit code itself.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

SEVERITIES = ("error", "warning", "info")  # most severe first
RANK = {name: i for i, name in enumerate(SEVERITIES)}

# Check id -> the title a report prints above its findings, in report order.
CHECKS: dict[str, str] = {
    "version": "Kubernetes versions",
    "api": "API compatibility",
    "removed-api": "Removed and deprecated APIs",
    "crd-version": "CRD versions",
    "reference": "References that must exist on the target",
    "collision": "Objects that already exist on the target",
    "volume": "Volume data",
    "webhook": "Admission webhooks on the target",
    "grant": "CRDs granted to the ServiceAccounts in scope",
    "clone": "Namespace-mapped clones",
    "pod-security": "Pod Security admission",
    "permission": "Permissions",
    "capacity": "Capacity",
    "source": "Source side",
}


@dataclass(frozen=True)
class Finding:
    severity: str  # error | warning | info
    check: str  # a key of CHECKS
    message: str
    fix: str = ""
    objects: tuple[str, ...] = ()  # "Kind ns/name" or "Kind name"

    def as_dict(self) -> dict[str, Any]:
        return {
            "severity": self.severity,
            "check": self.check,
            "objects": list(self.objects),
            "message": self.message,
            "fix": self.fix,
        }


def obj_ref(kind: str, namespace: str | None, name: str) -> str:
    """How an object is named in a finding: "Deployment shop/web", "StorageClass fast"."""
    return f"{kind} {namespace}/{name}" if namespace else f"{kind} {name}"


@dataclass
class Report:
    source: dict[str, Any]  # origin, version, ...
    target: dict[str, Any]
    settings: dict[str, Any] = field(default_factory=dict)  # policy, mappings, counts
    findings: list[Finding] = field(default_factory=list)

    def add(self, findings: list[Finding]) -> None:
        self.findings.extend(findings)

    def sorted_findings(self) -> list[Finding]:
        order = {check: i for i, check in enumerate(CHECKS)}
        return sorted(
            self.findings,
            key=lambda f: (order.get(f.check, len(order)), RANK[f.severity], f.message),
        )

    def counts(self) -> dict[str, int]:
        tally = Counter(f.severity for f in self.findings)
        return {sev: tally.get(sev, 0) for sev in SEVERITIES}

    def by_check(self) -> dict[str, list[Finding]]:
        out: dict[str, list[Finding]] = {}
        for f in self.sorted_findings():
            out.setdefault(f.check, []).append(f)
        return out

    def reaches(self, level: str) -> list[Finding]:
        """The findings at `level` or more severe (what --fail-on counts)."""
        return [f for f in self.findings if RANK[f.severity] <= RANK[level]]

    def as_dict(self) -> dict[str, Any]:
        return {
            "apiVersion": "kube-migrate.io/v1",
            "kind": "PreflightReport",
            "source": self.source,
            "target": self.target,
            "settings": self.settings,
            "counts": self.counts(),
            "findings": [f.as_dict() for f in self.sorted_findings()],
        }


class Collect:
    """Gathers one check's findings, merging those with the same severity, message and
    fix into one finding that lists every object (1000 custom resources at a removed
    version are one finding, not 1000)."""

    def __init__(self, check: str) -> None:
        self.check = check
        self._objects: dict[tuple[str, str, str], list[str]] = {}

    def add(self, severity: str, message: str, fix: str = "", obj: str | None = None) -> None:
        objs = self._objects.setdefault((severity, message, fix), [])
        if obj and obj not in objs:
            objs.append(obj)

    def findings(self) -> list[Finding]:
        return [
            Finding(sev, self.check, msg, fix, tuple(sorted(objs)))
            for (sev, msg, fix), objs in self._objects.items()
        ]
