"""Field paths inside an object: find them (with "*" wildcards), read, delete, and print.

The normalization tables and `--ignore-fields` name fields by path; reports print each
changed field as one readable path (`spec.template.spec.containers[0].image`,
`metadata.labels["app.kubernetes.io/name"]`) so a person can find it with kubectl.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from typing import Any

from migrate.errors import UsageError

Key = str | int
_PLAIN = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")
_MISSING = object()  # get() without a default raises
_NOT_THERE = object()


def expand(obj: Any, pattern: Sequence[str]) -> Iterator[tuple[Key, ...]]:
    """Every concrete path in obj that matches pattern ("*" = any key or list index)."""
    if not pattern:
        yield ()
        return
    head, rest = pattern[0], pattern[1:]
    if isinstance(obj, dict):
        keys: list[Key] = list(obj) if head == "*" else ([head] if head in obj else [])
    elif isinstance(obj, list):
        if head == "*":
            keys = list(range(len(obj)))
        else:
            keys = [int(head)] if head.isdigit() and int(head) < len(obj) else []
    else:
        return
    for key in keys:
        for tail in expand(obj[key], rest):
            yield (key, *tail)


def get(obj: Any, path: Sequence[Key], default: Any = _MISSING) -> Any:
    """The value at path, or default (raises KeyError without one)."""
    node = obj
    for key in path:
        inside = (
            key in node
            if isinstance(node, dict)
            else (isinstance(node, list) and isinstance(key, int) and 0 <= key < len(node))
        )
        if inside:
            node = node[key]
        elif default is _MISSING:
            raise KeyError(path)
        else:
            return default
    return node


def has(obj: Any, path: Sequence[Key]) -> bool:
    return get(obj, path, _NOT_THERE) is not _NOT_THERE


def delete(obj: Any, path: Sequence[Key]) -> None:
    """Remove the value at path; maps left empty by the removal go too (so an object
    whose only label was removed compares equal to one that never had labels)."""
    parents: list[Any] = []
    node = obj
    for key in path[:-1]:
        if isinstance(node, dict):
            child = node.get(key)
        elif isinstance(node, list) and isinstance(key, int) and 0 <= key < len(node):
            child = node[key]
        else:
            return
        if child is None:
            return
        parents.append(node)
        node = child
    if isinstance(node, dict):
        if path[-1] not in node:
            return
        del node[path[-1]]
    elif isinstance(node, list) and isinstance(path[-1], int) and path[-1] < len(node):
        node.pop(path[-1])
    parents.append(node)
    for depth in range(len(path) - 1, 0, -1):
        if parents[depth] != {} or not isinstance(parents[depth - 1], dict):
            break  # list items stay, even empty: removing them would shift the others
        del parents[depth - 1][path[depth - 1]]


def delete_matching(obj: Any, pattern: Sequence[str]) -> None:
    if "*" not in pattern:
        delete(obj, pattern)
        return
    found = list(expand(obj, pattern))
    if len(found) > 1:  # deepest and last first: deleting keeps the other indexes valid
        found.sort(key=lambda p: [(1, 0, k) if isinstance(k, str) else (0, k, "") for k in p])
        found.reverse()
    for path in found:
        delete(obj, path)


def drop_nulls(value: Any) -> None:
    """Remove null map values in place: `x: null` and no `x` mean the same to the API."""
    if isinstance(value, dict):
        if None in value.values():
            for key in [k for k, v in value.items() if v is None]:
                del value[key]
        children: Any = value.values()
    elif isinstance(value, list):
        children = value
    else:
        return
    for v in children:
        kind = type(v)  # (not isinstance: this runs on every value of every object)
        if kind is dict or kind is list:
            drop_nulls(v)


def format_path(path: Sequence[Key]) -> str:
    """["spec", "containers", 0, "image"] -> 'spec.containers[0].image'."""
    out = ""
    for key in path:
        if isinstance(key, int):
            out += f"[{key}]"
        elif _PLAIN.match(key):
            out += f".{key}" if out else key
        else:
            out += '["' + key.replace("\\", "\\\\").replace('"', '\\"') + '"]'
    return out


def parse_pointer(text: str, where: str = "path") -> tuple[str, ...]:
    """An RFC 6901 JSON pointer ("/metadata/labels/app.kubernetes.io~1name"), with "*"
    allowed as a segment, -> path tuple."""
    if not text.startswith("/"):
        raise UsageError(f"{where}: {text!r} is not a JSON pointer", hint="start it with '/'")
    parts = text[1:].split("/")
    return tuple(p.replace("~1", "/").replace("~0", "~") for p in parts)
