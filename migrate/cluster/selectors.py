"""Kubernetes label selectors: parse kubectl's string form, convert to and from the
LabelSelector object (matchLabels/matchExpressions) and match labels client-side.

The string goes to the API server as `labelSelector=` when listing; the object form is
what Velero's Backup spec stores; client-side matching filters objects read from a
backup at restore time.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from migrate.errors import UsageError

_KEY = r"[A-Za-z0-9]([-A-Za-z0-9_./]*[A-Za-z0-9])?"
_VAL = r"([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?"
_SET = re.compile(rf"^\s*({_KEY})\s+(in|notin)\s+\(([^)]*)\)\s*$")
_EQ = re.compile(rf"^\s*({_KEY})\s*(==|=|!=)\s*({_VAL})\s*$")
_EXISTS = re.compile(rf"^\s*(!?)\s*({_KEY})\s*$")


@dataclass(frozen=True)
class Requirement:
    key: str
    operator: str  # In, NotIn, Exists, DoesNotExist
    values: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        if self.operator == "Exists":
            return self.key in labels
        if self.operator == "DoesNotExist":
            return self.key not in labels
        if self.operator == "In":
            return labels.get(self.key) in self.values
        return labels.get(self.key) not in self.values  # NotIn

    def __str__(self) -> str:
        if self.operator == "Exists":
            return self.key
        if self.operator == "DoesNotExist":
            return f"!{self.key}"
        if self.operator == "In" and len(self.values) == 1:
            return f"{self.key}={self.values[0]}"
        if self.operator == "NotIn" and len(self.values) == 1:
            return f"{self.key}!={self.values[0]}"
        op = "in" if self.operator == "In" else "notin"
        return f"{self.key} {op} ({','.join(self.values)})"


def _split(text: str) -> list[str]:
    """Split on commas that are not inside parentheses."""
    parts, depth, cur = [], 0, ""
    for ch in text:
        depth += {"(": 1, ")": -1}.get(ch, 0)
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    parts.append(cur)
    return [p for p in parts if p.strip()]


@dataclass(frozen=True)
class Selector:
    requirements: tuple[Requirement, ...] = ()

    @classmethod
    def parse(cls, text: str | None) -> Selector:
        """kubectl syntax: `a=b,c!=d,e in (f,g),h notin (i),j,!k`."""
        reqs = []
        for part in _split(text or ""):
            if m := _SET.match(part):
                values = tuple(v.strip() for v in m.group(4).split(",") if v.strip())
                op = "In" if m.group(3) == "in" else "NotIn"
                reqs.append(Requirement(m.group(1), op, values))
            elif m := _EQ.match(part):
                op = "NotIn" if m.group(3) == "!=" else "In"
                reqs.append(Requirement(m.group(1), op, (m.group(4),)))
            elif m := _EXISTS.match(part):
                reqs.append(Requirement(m.group(2), "DoesNotExist" if m.group(1) else "Exists"))
            else:
                raise UsageError(
                    f"invalid label selector {text!r} (at {part.strip()!r})",
                    hint="use kubectl syntax: app=web,tier!=db,env in (prod,test),!legacy",
                )
        return cls(tuple(reqs))

    @classmethod
    def from_object(cls, obj: Mapping[str, Any] | None) -> Selector:
        """From a LabelSelector object (Velero's spec.labelSelector)."""
        obj = obj or {}
        reqs = [Requirement(k, "In", (str(v),)) for k, v in (obj.get("matchLabels") or {}).items()]
        for e in obj.get("matchExpressions") or []:
            reqs.append(Requirement(e["key"], e["operator"], tuple(e.get("values") or ())))
        return cls(tuple(reqs))

    def to_object(self) -> dict[str, Any] | None:
        """To a LabelSelector object; None when empty (matches everything)."""
        if not self.requirements:
            return None
        labels = {
            r.key: r.values[0]
            for r in self.requirements
            if r.operator == "In" and len(r.values) == 1
        }
        exprs = [
            {
                "key": r.key,
                "operator": r.operator,
                **({"values": list(r.values)} if r.values else {}),
            }
            for r in self.requirements
            if not (r.operator == "In" and len(r.values) == 1)
        ]
        out: dict[str, Any] = {}
        if labels:
            out["matchLabels"] = labels
        if exprs:
            out["matchExpressions"] = exprs
        return out

    def matches(self, labels: Mapping[str, str] | None) -> bool:
        return all(r.matches(labels or {}) for r in self.requirements)

    def __str__(self) -> str:
        return ",".join(str(r) for r in self.requirements)

    def __bool__(self) -> bool:
        return bool(self.requirements)
