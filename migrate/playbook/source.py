"""Read a playbook's YAML and remember where every value came from.

Errors must name the file, the line and the field.  PyYAML's `safe_load` forgets
positions, so we compose the node tree once, construct the data from it, and record the
line of every key and list item under its path (("spec", "steps", 3) ...).  `--set`
overrides (see overrides.py) register themselves here too, so an error in an overridden
value names the `--set` instead of a line of the file.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from migrate.errors import PlaybookError

Path_ = tuple[str | int, ...]  # a location in the document: keys and list indexes

_PLAIN_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")


def dotted(path: Path_) -> str:
    """("spec", "steps", 3, "scale") -> "spec.steps[3].scale"; odd keys are quoted."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        elif _PLAIN_KEY.match(part):
            out += f".{part}" if out else part
        else:
            out += f"[{part!r}]"
    return out or "(document)"


@dataclass
class Locator:
    """Maps document paths to where they were written: a line of `file`, or a `--set`."""

    file: str
    lines: dict[Path_, int] = field(default_factory=dict)
    overrides: list[tuple[Path_, str]] = field(default_factory=list)  # (path, "--set a=b")

    def override_for(self, path: Path_) -> str | None:
        """The last `--set` that wrote `path` or one of its parents."""
        for opath, expr in reversed(self.overrides):
            if path[: len(opath)] == opath:
                return expr
        return None

    def line(self, path: Path_) -> int | None:
        """The line of `path`, else of its nearest parent written in the file."""
        for n in range(len(path), -1, -1):
            if path[:n] in self.lines:
                return self.lines[path[:n]]
        return None

    def where(self, path: Path_) -> str:
        """'file:12', or 'file: --set a.b=c' when an override wrote the value."""
        expr = self.override_for(path)
        if expr is not None:
            return f"{self.file}: --set {expr}"
        line = self.line(path)
        return f"{self.file}:{line}" if line is not None else self.file

    def error(self, path: Path_, message: str, hint: str | None = None) -> PlaybookError:
        """The one-line error: `<where>: <field>: <message>`."""
        return PlaybookError(f"{self.where(path)}: {dotted(path)}: {message}", hint=hint)


def _walk(
    loader: yaml.SafeLoader, node: yaml.Node, path: Path_, loc: Locator, done: set[int]
) -> None:
    """Record the line of every key and item below `node`.  A node reached again through
    an alias is not walked twice (its values keep the alias's line): no blow-up, no loop."""
    if id(node) in done:
        return
    done.add(id(node))
    if isinstance(node, yaml.MappingNode):
        seen: dict[str, int] = {}
        for key_node, value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue  # `<<: *anchor`: its keys keep the anchor's lines
            key = loader.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            if not isinstance(key, str):  # 1:, yes:, on: ... JSON keys are text
                written = str(getattr(key_node, "value", key))
                loc.lines[(*path, written)] = line
                raise loc.error(
                    (*path, written),
                    f"key {written!r} is not text",
                    hint="quote the key, e.g. 'on': ... (YAML reads yes/no/on/off as booleans)",
                )
            sub = (*path, key)
            if key in seen:
                loc.lines[sub] = line  # report the second one
                raise loc.error(
                    sub,
                    f"duplicate key (first on line {seen[key]})",
                    hint="YAML keeps only the last value; write each key once",
                )
            seen[key] = line
            loc.lines[sub] = line
            _walk(loader, value_node, sub, loc, done)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            loc.lines.setdefault((*path, i), item.start_mark.line + 1)
            _walk(loader, item, (*path, i), loc, done)


def parse_yaml(text: str, file: str) -> tuple[Any, Locator]:
    """YAML text -> (data, locator).  One document only; syntax errors name the line."""
    loc = Locator(file)
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            raise PlaybookError(
                f"{file}:1: (document): the file is empty",
                hint="start from one of the playbooks in playbooks/",
            )
        loc.lines[()] = node.start_mark.line + 1
        _walk(loader, node, (), loc, set())
        data = loader.construct_document(node)
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        line = f":{mark.line + 1}" if mark else ""
        problem = (e.problem or e.context or "syntax error").strip()
        raise PlaybookError(
            f"{file}{line}: (document): invalid YAML: {problem}",
            hint="check the indentation and quoting around that line (one document per file)",
        ) from None
    except yaml.YAMLError as e:
        raise PlaybookError(
            f"{file}: (document): invalid YAML: {e}", hint="check the file is YAML"
        ) from None
    finally:
        loader.dispose()
    return data, loc


def read_yaml(path: str | os.PathLike[str]) -> tuple[Any, Locator]:
    """Read and parse a playbook file; a missing or unreadable file is a PlaybookError."""
    file = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise PlaybookError(
            f"{file}: no such playbook file",
            hint="give the path of a playbook, e.g. playbooks/migrate-cluster.yaml",
        ) from None
    except (OSError, UnicodeDecodeError) as e:
        raise PlaybookError(
            f"{file}: cannot read the playbook: {e}", hint="check the path and permissions"
        ) from None
    return parse_yaml(text, file)
