"""The removed/deprecated API table (deprecations.yaml, shipped in the package) and the
question preflight asks of it: is this apiVersion/kind gone or going on the target?

The knowledge is data so that a new Kubernetes release is a YAML edit with a comment,
never new code.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from importlib import resources

import yaml

from migrate.errors import MigrateError

DATA_FILE = "deprecations.yaml"


def parse_minor(text: str | None) -> tuple[int, int] | None:
    """ "1.22" / "v1.22.0" -> (1, 22); None/"" -> None."""
    if not text:
        return None
    parts = str(text).lstrip("v").split(".")
    return int(parts[0]), int(parts[1]) if len(parts) > 1 else 0


@dataclass(frozen=True)
class Deprecation:
    api: str
    kind: str
    deprecated: tuple[int, int] | None
    removed: tuple[int, int] | None
    replacement: str | None
    available: tuple[int, int] | None
    note: str

    def status(self, target: tuple[int, int]) -> str | None:
        """'removed', 'deprecated' or None, for a cluster at version `target`."""
        if self.removed and target >= self.removed:
            return "removed"
        if self.deprecated and target >= self.deprecated:
            return "deprecated"
        return None

    def describe(self) -> str:
        def v(ver: tuple[int, int] | None) -> str:
            return f"v{ver[0]}.{ver[1]}" if ver else "?"

        parts = [f"{self.api} {self.kind}"]
        if self.deprecated:
            parts.append(f"deprecated in {v(self.deprecated)}")
        if self.removed:
            parts.append(f"removed in {v(self.removed)}")
        return ", ".join(parts)

    def advice(self) -> str:
        if not self.replacement:
            return f"{self.api} {self.kind} has no replacement API: {self.note}".rstrip(": ")
        since = (
            f" (served since v{self.available[0]}.{self.available[1]})" if self.available else ""
        )
        note = f"; {self.note}" if self.note else ""
        return f"use {self.replacement}{since}{note}"


@cache
def table() -> dict[tuple[str, str], Deprecation]:
    """(apiVersion, kind) -> Deprecation, from the packaged data file."""
    try:
        text = resources.files(__package__).joinpath(DATA_FILE).read_text()
        doc = yaml.safe_load(text)
        out = {}
        for entry in doc["apis"]:
            for kind in entry["kinds"]:
                out[(entry["api"], kind)] = Deprecation(
                    api=entry["api"],
                    kind=kind,
                    deprecated=parse_minor(entry.get("deprecated")),
                    removed=parse_minor(entry.get("removed")),
                    replacement=entry.get("replacement"),
                    available=parse_minor(entry.get("available")),
                    note=entry.get("note") or "",
                )
    except (OSError, yaml.YAMLError, KeyError, TypeError, ValueError) as exc:
        raise MigrateError(f"the packaged {DATA_FILE} is unreadable: {exc}") from exc
    return out


def lookup(api_version: str, kind: str) -> Deprecation | None:
    return table().get((api_version, kind))
