"""Resource modifiers in Velero's format (`version: v1`, `resourceModifierRules`): per-rule
conditions (groupResource with wildcards, resourceNameRegex, original namespaces,
labelSelector, field matches) and patches (RFC 6902 JSON patch, RFC 7386 merge patch,
strategic merge patch).  The same file works with `velero restore create
--resource-modifier-configmap` and with us.  Reference: velero-format.md section 2.8.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

import jsonpatch
import yaml

from migrate.cluster.selectors import Selector
from migrate.errors import UsageError

HINT = "see Velero's resource modifiers format: version: v1, resourceModifierRules: [...]"
OPERATIONS = ("add", "remove", "replace", "move", "copy", "test")


def _yaml_problem(exc: yaml.YAMLError) -> str:
    """PyYAML's multi-line message as one line: where, and what."""
    mark = getattr(exc, "problem_mark", None)
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
    return where + str(getattr(exc, "problem", None) or "syntax error")


def _patch_value(raw: Any) -> Any:
    """Velero's rule: a string value is JSON when it is null, a bool, a number, an object
    or an array, else a plain string; a value in double quotes is the string inside them
    (`"\\"true\\""` is the string "true")."""
    if not isinstance(raw, str):
        return raw
    text = raw.strip()
    if len(text) >= 2 and text[0] == text[-1] == '"':
        return text[1:-1]
    if text in ("null", "true", "false") or text[:1] in ("{", "["):
        try:
            return json.loads(text)
        except ValueError:
            return raw
    try:
        return json.loads(text) if re.fullmatch(r"-?\d+(\.\d+)?([eE][-+]?\d+)?", text) else raw
    except ValueError:
        return raw


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch."""
    if not isinstance(patch, dict):
        return patch
    out = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = merge_patch(out.get(key), value)
    return out


def strategic_merge(target: Any, patch: Any) -> Any:
    """Strategic merge patch, for the common case: like a merge patch, except that lists
    of objects with a `name` (containers, volumes, env, ports) merge item by item."""
    if isinstance(patch, dict) and isinstance(target, dict):
        out = dict(target)
        for key, value in patch.items():
            if value is None:
                out.pop(key, None)
            else:
                out[key] = strategic_merge(target.get(key), value)
        return out
    named = isinstance(patch, list) and isinstance(target, list)
    if named and all(isinstance(i, dict) and "name" in i for i in patch + target):
        merged = {i["name"]: i for i in target}
        for item in patch:
            merged[item["name"]] = strategic_merge(merged.get(item["name"]), item)
        return list(merged.values())
    return patch


@dataclass
class Rule:
    group_resource: str
    name_regex: re.Pattern[str] | None = None
    namespaces: tuple[str, ...] = ()
    selector: Selector = field(default_factory=Selector)
    matches: tuple[tuple[str, Any], ...] = ()
    json_patches: list[dict[str, Any]] = field(default_factory=list)
    merge_patches: list[Any] = field(default_factory=list)
    strategic_patches: list[Any] = field(default_factory=list)
    where: str = ""  # "<file>: rule <n>", for errors

    def applies(self, gr: str, obj: dict[str, Any], original_ns: str | None) -> bool:
        pattern = self.group_resource
        if pattern not in ("*", "*.*") and not fnmatchcase(gr, pattern):
            return False
        meta = obj.get("metadata") or {}
        if self.name_regex and not self.name_regex.search(meta.get("name", "")):
            return False
        if self.namespaces and original_ns not in self.namespaces:
            return False
        if not self.selector.matches(meta.get("labels")):
            return False
        for path, value in self.matches:
            try:
                actual = jsonpatch.JsonPointer(path).resolve(obj)
            except (jsonpatch.JsonPointerException, KeyError, IndexError, TypeError):
                return False
            if actual != value and str(actual) != str(value):
                return False
        return True

    def apply(self, obj: dict[str, Any]) -> dict[str, Any]:
        if self.json_patches:
            try:
                obj = jsonpatch.apply_patch(obj, self.json_patches)
            except jsonpatch.JsonPatchTestFailed:
                return obj  # a failed `test` operation skips the rule, as in Velero
        for mp in self.merge_patches:
            obj = merge_patch(obj, mp)
        for sp in self.strategic_patches:
            obj = strategic_merge(obj, sp)
        return obj


@dataclass
class Modifiers:
    rules: list[Rule] = field(default_factory=list)

    def apply(self, gr: str, obj: dict[str, Any], original_ns: str | None) -> dict[str, Any]:
        for rule in self.rules:
            if rule.applies(gr, obj, original_ns):
                try:
                    obj = rule.apply(obj)
                except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException) as exc:
                    meta = obj.get("metadata") or {}
                    ns = meta.get("namespace")
                    ref = f"{meta.get('name')}{f' in namespace {ns}' if ns else ''}"
                    raise UsageError(
                        f"{rule.where + ': ' if rule.where else ''}resource modifier for "
                        f"{rule.group_resource} failed on {ref}: {exc}",
                        hint="check the patch paths exist in the object",
                    ) from exc
        return obj


def _patch_data(raw: Any, where: str) -> Any:
    text = raw.get("patchData") if isinstance(raw, dict) else None
    if not isinstance(text, str):
        raise UsageError(f"{where}: patchData must be a string (YAML or JSON)", hint=HINT)
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise UsageError(
            f"{where}: patchData is not YAML/JSON ({_yaml_problem(exc)})", hint=HINT
        ) from None


def _rule(raw: Any, where: str) -> Rule:
    if not isinstance(raw, dict) or not isinstance(raw.get("conditions"), dict):
        raise UsageError(f"{where}: every rule needs a `conditions` map", hint=HINT)
    cond = raw["conditions"]
    if not cond.get("groupResource"):
        raise UsageError(f"{where}: conditions.groupResource is required", hint="e.g. '*.apps'")
    try:
        regex = re.compile(cond["resourceNameRegex"]) if cond.get("resourceNameRegex") else None
    except re.error as exc:
        raise UsageError(
            f"{where}: bad resourceNameRegex {cond['resourceNameRegex']!r}: {exc}",
            hint="write a Go/Python regular expression, e.g. '^web-.*$'",
        ) from None
    namespaces = cond.get("namespaces") or []
    if not isinstance(namespaces, list):
        raise UsageError(f"{where}: conditions.namespaces must be a list of namespaces", hint=HINT)
    matches: list[tuple[str, Any]] = []
    for m in cond.get("matches") or []:
        if not isinstance(m, dict) or not m.get("path"):
            raise UsageError(f"{where}: every conditions.matches entry needs a path", hint=HINT)
        matches.append((str(m["path"]), _patch_value(m.get("value"))))
    patches = []
    for j, p in enumerate(raw.get("patches") or [], 1):
        op = p.get("operation") if isinstance(p, dict) else None
        path = p.get("path") if isinstance(p, dict) else None
        if op not in OPERATIONS or not path:
            raise UsageError(
                f"{where}: patch needs operation ({'/'.join(OPERATIONS)}) and path "
                f"(patch {j}: operation {op!r}, path {path!r})",
                hint='e.g. - operation: replace, path: /spec/replicas, value: "1" (RFC 6902)',
            )
        item = {"op": op, "path": p["path"]}
        if p.get("from"):
            item["from"] = p["from"]
        if op in ("add", "replace", "test"):
            item["value"] = _patch_value(p.get("value", ""))
        patches.append(item)
    rule = Rule(
        group_resource=str(cond["groupResource"]),
        name_regex=regex,
        namespaces=tuple(str(ns) for ns in namespaces),
        selector=Selector.from_object(cond.get("labelSelector")),
        matches=tuple(matches),
        json_patches=patches,
        merge_patches=[_patch_data(p, where) for p in raw.get("mergePatches") or []],
        strategic_patches=[_patch_data(p, where) for p in raw.get("strategicPatches") or []],
        where=where,
    )
    if not (rule.json_patches or rule.merge_patches or rule.strategic_patches):
        raise UsageError(
            f"{where}: the rule has no patches, mergePatches or strategicPatches", hint=HINT
        )
    return rule


def parse_modifiers(text: str, source: str = "resource modifiers") -> Modifiers:
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise UsageError(f"{source}: not YAML ({_yaml_problem(exc)})", hint=HINT) from None
    if not isinstance(doc, dict) or doc.get("version") != "v1":
        found = repr(doc.get("version")) if isinstance(doc, dict) else "none"
        raise UsageError(f"{source}: `version: v1` is required (found {found})", hint=HINT)
    rules = doc.get("resourceModifierRules")
    if not isinstance(rules, list) or not rules:
        raise UsageError(f"{source}: `resourceModifierRules` must be a non-empty list", hint=HINT)
    return Modifiers([_rule(r, f"{source}: rule {i + 1}") for i, r in enumerate(rules)])


def load_modifiers(path: str) -> Modifiers:
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise UsageError(
            f"cannot read --resource-modifiers {path}: {exc.strerror}",
            hint="give the path of a resource modifiers YAML file",
        ) from None
    return parse_modifiers(text, path)
