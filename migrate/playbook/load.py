"""load_playbook(): file -> YAML with lines -> `--set` -> schema -> cross-field rules
-> paths resolved -> Playbook.  Every failure is one PlaybookError (exit 2).

Path fields (kubeconfigs, encryption key files, resourceModifiers, ignoreFields,
report.dir) may use `~`, `$VAR` and `${VAR}` (from `env`).  A relative path written in
the playbook is relative to the playbook's directory, so a playbook can be run from
anywhere; one given with `--set`, like report.dir, is relative to the current
directory, as command-line paths are.  They are stored absolute, so `--resume` does
not depend on the directory either.
"""

from __future__ import annotations

import copy
import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from migrate.playbook import rules
from migrate.playbook.model import Playbook
from migrate.playbook.overrides import apply_overrides
from migrate.playbook.schema import validate
from migrate.playbook.source import Locator, Path_, read_yaml

# The fields holding file-system paths, and whether a relative value in the file is
# relative to the playbook (inputs it reads) or to the current directory (outputs).
PATH_FIELDS: tuple[tuple[Path_, bool], ...] = (
    (("spec", "source", "kubeconfig"), True),
    (("spec", "target", "kubeconfig"), True),
    (("spec", "bucket", "encryptionKeyFile"), True),
    (("spec", "targetBucket", "encryptionKeyFile"), True),
    (("spec", "restore", "resourceModifiers"), True),
    (("spec", "verify", "ignoreFields"), True),
    (("spec", "report", "dir"), False),
)
_VAR = re.compile(r"\$(?:\{([A-Za-z_][A-Za-z0-9_]*)\}|([A-Za-z_][A-Za-z0-9_]*))")


def _get(doc: Any, path: Path_) -> Any:
    for key in path:
        if not isinstance(doc, dict) or key not in doc:
            return None
        doc = doc[key]
    return doc


def expand_path(value: str, env: Mapping[str, str], path: Path_, loc: Locator) -> str:
    """`~` and `$VAR`/`${VAR}` from env; an unset variable is an error naming the field."""

    def var(m: re.Match[str]) -> str:
        name = m.group(1) or m.group(2)
        if name not in env:
            raise loc.error(
                path, f"${name} is not set", hint=f"export {name}, or write the path out"
            )
        return env[name]

    out = _VAR.sub(var, value)
    if out == "~" or out.startswith("~/"):
        home = env.get("HOME") or os.path.expanduser("~")
        out = home + out[1:]
    return out


def resolve_paths(doc: dict[str, Any], loc: Locator, env: Mapping[str, str]) -> None:
    """Expand and absolutize the path fields of a validated document, in place."""
    here = Path(loc.file).resolve().parent
    for path, from_file in PATH_FIELDS:
        value = _get(doc, path)
        if not isinstance(value, str):
            continue
        expanded = expand_path(value, env, path, loc)
        base = here if from_file and loc.override_for(path) is None else Path.cwd()
        parent = _get(doc, path[:-1])
        if isinstance(parent, dict):  # always, for a value found at path
            parent[path[-1]] = os.path.normpath(base / expanded)  # an absolute one stays


def load_playbook(
    path: str | os.PathLike[str],
    overrides: Iterable[str] = (),
    env: Mapping[str, str] = os.environ,
) -> Playbook:
    """Read, override (`--set PATH=VALUE`, relative to spec), validate and type a playbook."""
    data, loc = read_yaml(path)
    overrides = tuple(overrides)
    apply_overrides(data, overrides, loc)
    validate(data, loc)
    rules.check(data, loc)
    resolve_paths(data, loc, env)
    return Playbook(path=str(path), document=data, overrides=overrides)


def playbook_from_document(
    document: Mapping[str, Any],
    path: str,
    overrides: Iterable[str] = (),
    source: str | None = None,
) -> Playbook:
    """Rebuild a Playbook from a journaled, already resolved document (for --resume),
    validating it again; `source` (e.g. the state.json) is what errors name."""
    doc = copy.deepcopy(dict(document))
    loc = Locator(source or path)
    validate(doc, loc)
    rules.check(doc, loc)
    return Playbook(path=path, document=doc, overrides=tuple(overrides))
