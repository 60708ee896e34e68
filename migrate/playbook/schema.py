"""The playbook's JSON Schema (shipped as package data) and its errors, made readable.

jsonschema reports every problem it finds; the user gets one line: the first problem (a
`--set` value first, then in file order; among errors at one place, jsonschema's
`best_match`), placed at the file, line and field it concerns.  Two messages are
rewritten because jsonschema's own point at the parent object: an unknown key is reported
at the key itself, a missing one under the name it should have.  Schema nodes may carry
`x-what` (what a pattern-checked string is) and `x-hint` (how to fix it).
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import TYPE_CHECKING, Any

from migrate.errors import PlaybookError
from migrate.playbook.source import Locator, Path_

if TYPE_CHECKING:  # jsonschema (~0.05 s) is imported when a playbook is validated
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import ValidationError

API_VERSION = "kube-migrate.io/v1alpha1"
KIND = "Playbook"
DEFAULT_HINT = PlaybookError.default_hint  # playbooks/README.md: the format, field by field


@cache
def schema() -> dict[str, Any]:
    """The playbook schema (draft 2020-12), read once from the package."""
    text = resources.files("migrate.playbook").joinpath("schema.json").read_text("utf-8")
    loaded: dict[str, Any] = json.loads(text)
    return loaded


@cache
def validator() -> Draft202012Validator:
    from jsonschema import Draft202012Validator

    return Draft202012Validator(schema())


def _resolve(node: dict[str, Any]) -> dict[str, Any]:
    """Follow a local `$ref` (`#/$defs/x`), keeping the referring node's own keys."""
    ref = node.get("$ref")
    if not isinstance(ref, str) or not ref.startswith("#/$defs/"):
        return node
    target = _resolve(schema()["$defs"][ref.removeprefix("#/$defs/")])
    return {**target, **{k: v for k, v in node.items() if k != "$ref"}}


def schema_at(*keys: str) -> dict[str, Any]:
    """The schema of an object field, e.g. schema_at("spec", "backup", "ttl")."""
    node = schema()
    for key in keys:
        node = _resolve(node)["properties"][key]
    return _resolve(node)


def default(*keys: str) -> Any:
    """The schema's `default` for a field: the one place defaults are written down."""
    return schema_at(*keys)["default"]


def def_default(name: str, key: str) -> Any:
    """The `default` of a field of a `$defs` schema, e.g. def_default("scale", "replicas")."""
    return schema()["$defs"][name]["properties"][key]["default"]


def _schema_of(error: ValidationError) -> dict[str, Any]:
    return error.schema if isinstance(error.schema, dict) else {}


_TYPE_WORDS = {
    "string": "text",
    "integer": "a whole number",
    "boolean": "true or false",
    "array": "a list, e.g. [a, b]",
    "object": "a map, e.g. {key: value}",
    "null": "nothing",
}


def _hint(error: ValidationError) -> str:
    """The schema's x-hint, else one derived from the failed keyword."""
    sch = _schema_of(error)
    hint = sch.get("x-hint")
    if isinstance(hint, str):
        return hint
    value: Any = error.validator_value
    if error.validator == "type":
        types = value if isinstance(value, list) else [value]
        return "write " + " or ".join(_TYPE_WORDS.get(str(t), str(t)) for t in types)
    if error.validator == "minimum":
        return f"use a whole number of at least {value}"
    if error.validator in ("minLength", "minItems"):
        return "give a value, or leave the field out"
    if error.validator == "uniqueItems":
        return "list each item once"
    return DEFAULT_HINT


def _reported_at(error: ValidationError, loc: Locator) -> Path_:
    """The path an error is reported at: the offending key itself where there is one."""
    path: Path_ = tuple(error.absolute_path)
    instance: Any = error.instance
    if "propertyNames" in error.absolute_schema_path:
        return (*path, str(instance))  # jsonschema points at the parent object
    if error.validator == "additionalProperties" and isinstance(instance, dict):
        allowed = _schema_of(error).get("properties", {})
        extra = [k for k in instance if k not in allowed]
        return (*path, min(extra, key=lambda k: loc.line((*path, k)) or 1 << 30))
    if error.validator == "required" and isinstance(instance, dict):
        required: Any = error.validator_value
        return (*path, next(k for k in required if k not in instance))
    return path


def explain(error: ValidationError, loc: Locator) -> PlaybookError:
    """One jsonschema error -> the one-line PlaybookError."""
    path = _reported_at(error, loc)
    sch = _schema_of(error)
    instance: Any = error.instance
    if error.validator == "additionalProperties" and isinstance(instance, dict):
        allowed = sorted(sch.get("properties", {}))
        hint = f"allowed here: {', '.join(allowed)}" if allowed else _hint(error)
        return loc.error(path, "unknown field", hint=hint)
    if error.validator == "required" and isinstance(instance, dict):
        return loc.error(path, "is required but missing", hint=_hint(error))
    if error.validator == "pattern" and isinstance(sch.get("x-what"), str):
        return loc.error(path, f"{instance!r} is not a valid {sch['x-what']}", hint=_hint(error))
    if error.validator == "enum":
        expected: Any = error.validator_value
        names = (str(v).lower() if isinstance(v, bool) else str(v) for v in expected)
        allowed_values = ", ".join(dict.fromkeys(names))
        return loc.error(path, f"{instance!r} is not one of: {allowed_values}", hint=_hint(error))
    return loc.error(path, error.message, hint=_hint(error))


def validate(doc: Any, loc: Locator) -> None:
    """Raise a PlaybookError for the first problem: `--set` values first, then in file
    order; among errors on the same line, jsonschema's best_match (the most specific)."""
    from jsonschema.exceptions import best_match

    errors = list(validator().iter_errors(doc))
    if not errors:
        return

    def position(e: ValidationError) -> int:
        path = _reported_at(e, loc)
        return 0 if loc.override_for(path) is not None else (loc.line(path) or 1 << 30)

    first = min(position(e) for e in errors)
    best = best_match(e for e in errors if position(e) == first)
    assert best is not None  # at least one error has the first position
    err = explain(best, loc)
    if len(errors) > 1:
        n = len(errors) - 1
        err.hint = f"{err.hint} ({n} more error{'s' if n > 1 else ''} after this one)"
    raise err
