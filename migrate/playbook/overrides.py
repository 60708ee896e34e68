"""`--set PATH=VALUE`: change a playbook's spec from the command line, Helm-style.

PATH is relative to `spec` (`restore.replicas=1`, `scope.includeNamespaces=[a,b]`); a
literal dot in a key is written `\\.` (`restore.imageRegistryMappings.docker\\.io=...`).
VALUE is parsed as YAML, so `1` is an int, `true` a bool, `[a,b]` a list and `{a: b}` a
map; `null` removes the key; an empty VALUE is the empty string.  For a field the schema
types as a list, plain text is split at commas too: `scope.includeNamespaces=a,b` is
`[a, b]` (and `=a` is `[a]`).

Overrides are applied before validation, so a misspelt PATH is rejected by the schema
like a misspelt key in the file, and the error names the `--set` it came from.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import yaml

from migrate.errors import PlaybookError
from migrate.playbook.schema import schema_at
from migrate.playbook.source import Locator, Path_, dotted

_HINT = "write --set PATH=VALUE with PATH relative to spec, e.g. --set restore.replicas=1"


def split_path(text: str) -> list[str]:
    """'a.b\\.c.d' -> ['a', 'b.c', 'd']; empty segments are errors (caller reports)."""
    parts, cur, escaped = [], "", False
    for ch in text:
        if escaped:
            cur += ch
            escaped = False
        elif ch == "\\":
            escaped = True
        elif ch == ".":
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    parts.append(cur + ("\\" if escaped else ""))
    return parts


def parse_override(expr: str, file: str) -> tuple[Path_, Any, bool]:
    """'restore.replicas=1' -> (("spec", "restore", "replicas"), 1, delete?)."""
    raw_path, eq, raw_value = expr.partition("=")
    keys = split_path(raw_path.strip())
    if not eq or not all(k.strip() for k in keys):
        raise PlaybookError(f"{file}: --set {expr}: expected PATH=VALUE", hint=_HINT)
    path: Path_ = ("spec", *(k.strip() for k in keys))
    if raw_value.strip() == "":
        return path, "", False
    try:
        value = yaml.safe_load(raw_value)
    except yaml.YAMLError as e:
        problem = getattr(e, "problem", None) or "not valid YAML"
        raise PlaybookError(
            f"{file}: --set {expr}: {dotted(path)}: invalid value: {problem}",
            hint="quote the value for the shell, e.g. --set 'scope.includeNamespaces=[a, b]'",
        ) from None
    if isinstance(value, str) and _is_list(path):
        value = [part.strip() for part in value.split(",") if part.strip()]
    return path, value, value is None


def _is_list(path: Path_) -> bool:
    try:
        node = schema_at(*(str(k) for k in path))
    except (KeyError, TypeError):
        return False  # not a known field: validation reports it
    return node.get("type") == "array"


def apply_overrides(doc: Any, overrides: Iterable[str], loc: Locator) -> Any:
    """Apply each `--set` in order to `doc` (in place when it is a mapping)."""
    for expr in overrides:
        path, value, delete = parse_override(expr, loc.file)
        if not isinstance(doc, dict):
            raise loc.error((), "the playbook is not a mapping; --set needs one", hint=_HINT)
        node: dict[Any, Any] = doc
        for depth, key in enumerate(path[:-1]):
            child = node.get(key)
            if child is None:
                if delete:
                    break  # removing something that is not there: nothing to do
                child = node[key] = {}
            if not isinstance(child, dict):
                loc.overrides.append((path, expr))
                kind = "list" if isinstance(child, list) else "scalar"
                raise loc.error(
                    path,
                    f"{dotted(path[: depth + 1])} is a {kind}; --set cannot go inside it",
                    hint="set the whole value instead, e.g. --set 'steps=[preflight, backup]'",
                )
            node = child
        else:
            if delete:
                node.pop(path[-1], None)
            else:
                node[path[-1]] = value
        loc.overrides.append((path, expr))
    return doc
