"""`--ignore-fields FILE`: the user's own normalization rules, in Argo CD's
`ignoreDifferences` shape, so teams can reuse what they already wrote:

    ignoreDifferences:            # or the list alone
    - group: apps                 # optional; "" is the core group
      kind: Deployment            # optional
      name: web-*                 # optional, glob
      namespace: shop             # optional, glob, as named on the target
      jsonPointers:               # RFC 6901; "*" matches any key or list item
      - /spec/replicas
      - /metadata/annotations/example.com~1touched-by
"""

from __future__ import annotations

from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

import yaml

from migrate.errors import UsageError
from migrate.verify.paths import parse_pointer


@dataclass(frozen=True)
class UserIgnore:
    paths: tuple[tuple[str, ...], ...]
    group: str | None = None
    kind: str | None = None
    name: str | None = None
    namespace: str | None = None

    def matches(self, group: str, kind: str, namespace: str | None, name: str) -> bool:
        return (
            (self.group is None or self.group == group)
            and (self.kind is None or self.kind == kind)
            and (self.name is None or fnmatchcase(name, self.name))
            and (self.namespace is None or fnmatchcase(namespace or "", self.namespace))
        )


def _optional(raw: dict[str, Any], key: str, where: str) -> str | None:
    value = raw.get(key)
    if value is not None and not isinstance(value, str):
        raise UsageError(f"{where}: `{key}` must be a string")
    return value


def parse_ignore_rules(text: str, source: str = "--ignore-fields") -> list[UserIgnore]:
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise UsageError(f"{source}: not YAML: {exc}") from exc
    if isinstance(doc, dict):
        doc = doc.get("ignoreDifferences")
    if not isinstance(doc, list):
        raise UsageError(
            f"{source}: expected a list of rules (or `ignoreDifferences:` with one)",
            hint="each rule: group, kind, name, namespace (all optional) and jsonPointers",
        )
    rules = []
    for n, raw in enumerate(doc, 1):
        where = f"{source}: rule {n}"
        if not isinstance(raw, dict):
            raise UsageError(f"{where}: must be a map")
        unknown = set(raw) - {"group", "kind", "name", "namespace", "jsonPointers"}
        if unknown:
            raise UsageError(
                f"{where}: unknown keys {sorted(unknown)}",
                hint="allowed: group, kind, name, namespace, jsonPointers",
            )
        pointers = raw.get("jsonPointers")
        if not isinstance(pointers, list) or not pointers:
            raise UsageError(f"{where}: `jsonPointers` must be a non-empty list")
        rules.append(
            UserIgnore(
                paths=tuple(parse_pointer(str(p), where) for p in pointers),
                group=_optional(raw, "group", where),
                kind=_optional(raw, "kind", where),
                name=_optional(raw, "name", where),
                namespace=_optional(raw, "namespace", where),
            )
        )
    return rules


def load_ignore_rules(path: str) -> list[UserIgnore]:
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise UsageError(f"cannot read --ignore-fields {path}: {exc.strerror}") from exc
    return parse_ignore_rules(text, path)
