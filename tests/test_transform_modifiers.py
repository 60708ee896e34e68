"""Pure tests of resource modifiers in Velero's format: parsing and its errors, rule
conditions, JSON / merge / strategic patches, and the order rules apply in."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from migrate.errors import EXIT_USAGE, UsageError
from migrate.transform.modifiers import (
    Modifiers,
    _patch_value,
    load_modifiers,
    merge_patch,
    parse_modifiers,
    strategic_merge,
)

LABEL_PATCH = {"mergePatches": [{"patchData": '{"metadata": {"labels": {"patched": "yes"}}}'}]}


def _text(*rules: Any, version: Any = "v1") -> str:
    doc: dict[str, Any] = {"resourceModifierRules": list(rules)}
    if version is not None:
        doc["version"] = version
    return yaml.safe_dump(doc, sort_keys=False)


def _rule(patches: dict[str, Any] | None = None, **conditions: Any) -> dict[str, Any]:
    conditions.setdefault("groupResource", "*")
    return {"conditions": conditions, **(LABEL_PATCH if patches is None else patches)}


def _mods(*rules: dict[str, Any]) -> Modifiers:
    return parse_modifiers(_text(*rules))


def _obj(
    kind: str = "PersistentVolumeClaim",
    name: str = "mysql-0",
    ns: str | None = "db",
    labels: dict[str, str] | None = None,
    spec: dict[str, Any] | None = None,
) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if ns:
        meta["namespace"] = ns
    if labels is not None:
        meta["labels"] = labels
    return {"apiVersion": "v1", "kind": kind, "metadata": meta, "spec": spec or {}}


def _patched(mods: Modifiers, obj: dict[str, Any], gr: str = "persistentvolumeclaims",
             ns: str | None = "db") -> bool:  # fmt: skip
    out = mods.apply(gr, copy.deepcopy(obj), ns)
    return (out["metadata"].get("labels") or {}).get("patched") == "yes"


# --------------------------------------------------------------------------- parse errors

GOOD = _rule()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (_text(GOOD, version=None), "`version: v1` is required"),
        (_text(GOOD, version="v2"), "`version: v1` is required"),
        (_text(GOOD, version=1), "`version: v1` is required"),
        ("- version: v1\n", "`version: v1` is required"),
        ("", "`version: v1` is required"),
        ("version: v1\n", "`resourceModifierRules` must be a non-empty list"),
        (_text(), "`resourceModifierRules` must be a non-empty list"),
        ("version: v1\nresourceModifierRules: {a: 1}\n",
         "`resourceModifierRules` must be a non-empty list"),
        ("version: v1\nresourceModifierRules: [\n", "not YAML"),
        ("version: v1\n\tbad: tab\n", "not YAML"),
    ],
)  # fmt: skip
def test_document_errors(text: str, message: str) -> None:
    with pytest.raises(UsageError) as info:
        parse_modifiers(text, "mods.yaml")
    assert info.value.message.startswith("mods.yaml: ")
    assert message in info.value.message
    assert info.value.exit_code == EXIT_USAGE


BAD_RULES: list[tuple[Any, str]] = [
    ("not a map", "every rule needs a `conditions` map"),
    ({"patches": [{"operation": "remove", "path": "/a"}]}, "every rule needs a `conditions` map"),
    ({"conditions": "pods", **LABEL_PATCH}, "every rule needs a `conditions` map"),
    ({"conditions": {"namespaces": ["a"]}, **LABEL_PATCH}, "conditions.groupResource is required"),
    ({"conditions": {"groupResource": ""}, **LABEL_PATCH}, "conditions.groupResource is required"),
    (_rule(resourceNameRegex="^mysql-(["), "bad resourceNameRegex"),
    (_rule(resourceNameRegex="*oops"), "bad resourceNameRegex"),
    (_rule({"patches": [{"operation": "upsert", "path": "/a"}]}), "patch needs operation"),
    (_rule({"patches": [{"path": "/a"}]}), "patch needs operation"),
    (_rule({"patches": [{"operation": "remove"}]}), "patch needs operation"),
    (_rule({"patches": [{"operation": "remove", "path": ""}]}), "patch needs operation"),
    (_rule({"patches": ["remove /a"]}), "patch needs operation"),
    (_rule({"patches": {"operation": "remove", "path": "/a"}}), "patch needs operation"),
    (_rule({}), "the rule has no patches, mergePatches or strategicPatches"),
    (_rule({"patches": [], "mergePatches": [], "strategicPatches": []}),
     "the rule has no patches, mergePatches or strategicPatches"),
    (_rule({"mergePatches": [{"patchData": {"metadata": {}}}]}), "patchData must be a string"),
    (_rule({"mergePatches": [{"data": "{}"}]}), "patchData must be a string"),
    (_rule({"mergePatches": ["{}"]}), "patchData must be a string"),
    (_rule({"strategicPatches": [{"patchData": 3}]}), "patchData must be a string"),
    (_rule({"mergePatches": [{"patchData": '{"a": [1,'}]}), "patchData is not YAML/JSON"),
    (_rule({"strategicPatches": [{"patchData": "a: [\n"}]}), "patchData is not YAML/JSON"),
    (_rule(matches=[{"value": "premium"}]), "matches entry needs a path"),
    (_rule(matches=["/spec/storageClassName"]), "matches entry needs a path"),
    (_rule(namespaces="foo"), "conditions.namespaces must be a list"),
]  # fmt: skip


@pytest.mark.parametrize("position", [1, 3])
@pytest.mark.parametrize(("bad", "message"), BAD_RULES)
def test_rule_errors_name_the_rule(bad: Any, message: str, position: int) -> None:
    rules = [GOOD] * (position - 1) + [bad] + [GOOD]
    with pytest.raises(UsageError) as info:
        parse_modifiers(_text(*rules), "mods.yaml")
    assert info.value.message.startswith(f"mods.yaml: rule {position}: ")
    assert message in info.value.message
    assert info.value.exit_code == EXIT_USAGE


def test_default_source_name_in_errors() -> None:
    with pytest.raises(UsageError, match=r"^resource modifiers: rule 1: "):
        parse_modifiers(_text({"conditions": {}}))


def test_valid_document_parses_every_part() -> None:
    text = """
version: v1
resourceModifierRules:
- conditions:
    groupResource: persistentvolumeclaims
    resourceNameRegex: "^mysql.*$"
    namespaces: [bar, foo]
    labelSelector: {matchLabels: {foo: bar}}
    matches: [{path: /spec/storageClassName, value: standard}]
  patches:
  - {operation: replace, path: /spec/storageClassName, value: "premium"}
  - {operation: remove, path: /metadata/labels/test}
  - {operation: copy, from: /spec/a, path: /spec/b}
  mergePatches:
  - patchData: '{"metadata":{"annotations":{"foo":null}}}'
  strategicPatches:
  - patchData: |
      spec:
        x: 1
- conditions: {groupResource: "*.apps"}
  mergePatches: [{patchData: "{}"}]
"""
    mods = parse_modifiers(text)
    assert len(mods.rules) == 2
    rule = mods.rules[0]
    assert rule.group_resource == "persistentvolumeclaims"
    assert rule.name_regex is not None
    assert rule.name_regex.pattern == "^mysql.*$"
    assert rule.namespaces == ("bar", "foo")
    assert rule.selector.matches({"foo": "bar"})
    assert not rule.selector.matches({"foo": "baz"})
    assert rule.matches == (("/spec/storageClassName", "standard"),)
    assert rule.json_patches == [
        {"op": "replace", "path": "/spec/storageClassName", "value": "premium"},
        {"op": "remove", "path": "/metadata/labels/test"},
        {"op": "copy", "path": "/spec/b", "from": "/spec/a"},
    ]
    assert rule.merge_patches == [{"metadata": {"annotations": {"foo": None}}}]
    assert rule.strategic_patches == [{"spec": {"x": 1}}]
    assert mods.rules[1].group_resource == "*.apps"
    assert mods.rules[1].json_patches == []


def test_json_document_is_accepted() -> None:
    doc = {"version": "v1", "resourceModifierRules": [_rule()]}
    assert len(parse_modifiers(json.dumps(doc)).rules) == 1


def test_load_modifiers_reads_a_file(tmp_path: Path) -> None:
    path = tmp_path / "mods.yaml"
    path.write_text(_text(_rule(), _rule()))
    assert len(load_modifiers(str(path)).rules) == 2


def test_load_modifiers_errors_name_the_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    with pytest.raises(UsageError, match=r"cannot read --resource-modifiers .*nope\.yaml"):
        load_modifiers(str(missing))
    bad = tmp_path / "bad.yaml"
    bad.write_text(_text({"conditions": {"groupResource": "pods"}}))
    with pytest.raises(UsageError, match=rf"^{bad}: rule 1: the rule has no patches"):
        load_modifiers(str(bad))


# --------------------------------------------------------------------------- value quoting


@pytest.mark.parametrize(
    ("raw", "value"),
    [
        ("premium", "premium"),
        ("3", 3),
        ("-2", -2),
        ("2.5", 2.5),
        ("1e3", 1000.0),
        ("true", True),
        ("false", False),
        ("null", None),
        ('{"a":1}', {"a": 1}),
        ('{"a": {"b": [1, "x"]}}', {"a": {"b": [1, "x"]}}),
        ('["a", 2]', ["a", 2]),
        ("[]", []),
        ("", ""),
        ("10.0.0.1", "10.0.0.1"),
        ("3a", "3a"),
        ("0755", "0755"),  # not a JSON number
        ("True", "True"),
        ("{not json", "{not json"),
        ("nginx:1.25", "nginx:1.25"),
        # Velero: a value in double quotes is a string, so booleans, numbers and null can
        # be set as strings.
        ('"true"', "true"),
        ('"3"', "3"),
        ('"null"', "null"),
        ('""', ""),
        # Values YAML already typed pass through.
        (3, 3),
        (True, True),
        (None, None),
        ({"a": 1}, {"a": 1}),
    ],
)
def test_patch_value_quoting(raw: Any, value: Any) -> None:
    out = _patch_value(raw)
    assert out == value
    assert type(out) is type(value)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("premium", "premium"),
        ("3", 3),
        ("true", True),
        ('{"a":1}', {"a": 1}),
        ("null", None),
        ('"8080"', "8080"),
    ],
)
def test_patch_value_reaches_the_object(value: str, expected: Any) -> None:
    mods = _mods(_rule({"patches": [{"operation": "add", "path": "/spec/v", "value": value}]}))
    out = mods.apply("pods", _obj(), "db")
    assert out["spec"]["v"] == expected
    assert type(out["spec"]["v"]) is type(expected)


def test_value_from_velero_docs_adds_a_container() -> None:
    text = r"""
version: v1
resourceModifierRules:
- conditions: {groupResource: deployments.apps, resourceNameRegex: "^test-.*$"}
  patches:
  - operation: add
    path: "/spec/template/spec/containers/0"
    value: "{\"name\": \"nginx\", \"image\": \"nginx:1.14.2\",
      \"ports\": [{\"containerPort\": 80}]}"
  - operation: copy
    from: "/spec/template/spec/containers/0"
    path: "/spec/template/spec/containers/1"
"""
    obj = _obj("Deployment", "test-web", spec={"template": {"spec": {"containers": [
        {"name": "app", "image": "app:1"}]}}})  # fmt: skip
    out = parse_modifiers(text).apply("deployments.apps", obj, "db")
    nginx = {"name": "nginx", "image": "nginx:1.14.2", "ports": [{"containerPort": 80}]}
    assert out["spec"]["template"]["spec"]["containers"] == [
        nginx,
        nginx,
        {"name": "app", "image": "app:1"},
    ]


# --------------------------------------------------------------------------- conditions


@pytest.mark.parametrize(
    ("pattern", "gr", "applies"),
    [
        ("*", "pods", True),
        ("*", "deployments.apps", True),
        ("*", "widgets.example.com", True),
        ("*.*", "deployments.apps", True),
        ("*.apps", "deployments.apps", True),
        ("*.apps", "statefulsets.apps", True),
        ("*.apps", "pods", False),
        ("*.apps", "cronjobs.batch", False),
        ("*.apps", "deployments.apps.example.com", False),
        ("deployments.apps", "deployments.apps", True),
        ("deployments.apps", "statefulsets.apps", False),
        ("deployments", "deployments.apps", False),
        ("persistentvolumeclaims", "persistentvolumeclaims", True),
        ("persistentvolumeclaims", "persistentvolumes", False),
        ("pods", "pods", True),
        ("pods", "podtemplates", False),
        ("Pods", "pods", False),  # case-sensitive, like Velero's glob
        ("*.example.com", "widgets.example.com", True),
    ],
)
def test_group_resource(pattern: str, gr: str, applies: bool) -> None:
    mods = _mods(_rule(groupResource=pattern))
    assert _patched(mods, _obj(), gr) is applies


@pytest.mark.parametrize(
    ("regex", "name", "applies"),
    [
        ("^mysql.*$", "mysql-0", True),
        ("^mysql.*$", "my-mysql", False),
        ("sql", "my-mysql-0", True),  # unanchored: searched like Go's MatchString
        ("^data-[0-9]+$", "data-12", True),
        ("^data-[0-9]+$", "data-12x", False),
        (".*", "anything", True),
    ],
)
def test_resource_name_regex(regex: str, name: str, applies: bool) -> None:
    mods = _mods(_rule(resourceNameRegex=regex))
    assert _patched(mods, _obj(name=name)) is applies


@pytest.mark.parametrize(
    ("obj_ns", "original_ns", "applies"),
    [
        ("foo", "foo", True),
        ("bar", "bar", True),
        ("other", "other", False),
        # The condition names the ORIGINAL namespace: the argument, not the object's.
        ("foo-restored", "foo", True),
        ("foo", "foo-copy", False),
    ],
)
def test_namespaces_match_the_original_namespace(
    obj_ns: str, original_ns: str, applies: bool
) -> None:
    mods = _mods(_rule(namespaces=["foo", "bar"]))
    assert _patched(mods, _obj(ns=obj_ns), ns=original_ns) is applies


@pytest.mark.parametrize("original_ns", ["foo", "other", None])
def test_no_namespaces_condition_matches_every_namespace(original_ns: str | None) -> None:
    assert _patched(_mods(_rule()), _obj(ns=original_ns), ns=original_ns)


@pytest.mark.parametrize(
    ("selector", "labels", "applies"),
    [
        ({"matchLabels": {"app": "web"}}, {"app": "web", "tier": "fe"}, True),
        ({"matchLabels": {"app": "web"}}, {"app": "db"}, False),
        ({"matchLabels": {"app": "web"}}, None, False),
        ({"matchLabels": {"app": "web", "tier": "fe"}}, {"app": "web"}, False),
        ({"matchExpressions": [{"key": "env", "operator": "In", "values": ["a", "b"]}]},
         {"env": "b"}, True),
        ({"matchExpressions": [{"key": "env", "operator": "In", "values": ["a", "b"]}]},
         {"env": "c"}, False),
        ({"matchExpressions": [{"key": "env", "operator": "NotIn", "values": ["prod"]}]},
         {"env": "dev"}, True),
        ({"matchExpressions": [{"key": "env", "operator": "NotIn", "values": ["prod"]}]},
         {"env": "prod"}, False),
        ({"matchExpressions": [{"key": "canary", "operator": "Exists"}]},
         {"canary": ""}, True),
        ({"matchExpressions": [{"key": "canary", "operator": "Exists"}]}, {}, False),
        ({"matchExpressions": [{"key": "legacy", "operator": "DoesNotExist"}]}, {}, True),
        ({"matchExpressions": [{"key": "legacy", "operator": "DoesNotExist"}]},
         {"legacy": "1"}, False),
        ({"matchLabels": {"app": "web"},
          "matchExpressions": [{"key": "env", "operator": "In", "values": ["prod"]}]},
         {"app": "web", "env": "prod"}, True),
        ({"matchLabels": {"app": "web"},
          "matchExpressions": [{"key": "env", "operator": "In", "values": ["prod"]}]},
         {"app": "web", "env": "dev"}, False),
        ({}, None, True),
    ],
)  # fmt: skip
def test_label_selector(
    selector: dict[str, Any], labels: dict[str, str] | None, applies: bool
) -> None:
    mods = _mods(_rule(labelSelector=selector))
    assert _patched(mods, _obj(labels=labels)) is applies


SPEC = {
    "storageClassName": "standard",
    "replicas": 3,
    "paused": True,
    "resources": {"requests": {"storage": "1Gi"}},
    "containers": [{"name": "a", "image": "nginx:1.25"}],
}


@pytest.mark.parametrize(
    ("matches", "applies"),
    [
        ([{"path": "/spec/storageClassName", "value": "standard"}], True),
        ([{"path": "/spec/storageClassName", "value": "premium"}], False),
        ([{"path": "/spec/missing", "value": "x"}], False),
        ([{"path": "/spec/missing/deeper", "value": "x"}], False),
        ([{"path": "/spec/containers/5/image", "value": "x"}], False),
        ([{"path": "/spec/storageClassName/x", "value": "x"}], False),
        ([{"path": "/spec/replicas", "value": "3"}], True),
        ([{"path": "/spec/replicas", "value": "4"}], False),
        ([{"path": "/spec/paused", "value": "true"}], True),
        ([{"path": "/spec/paused", "value": "false"}], False),
        ([{"path": "/spec/resources/requests/storage", "value": "1Gi"}], True),
        ([{"path": "/spec/containers/0/image", "value": "nginx:1.25"}], True),
        ([{"path": "/metadata/name", "value": "mysql-0"}], True),
        ([{"path": "/spec/resources", "value": '{"requests": {"storage": "1Gi"}}'}], True),
        ([{"path": "/spec/storageClassName", "value": "standard"},
          {"path": "/spec/replicas", "value": "3"}], True),
        ([{"path": "/spec/storageClassName", "value": "standard"},
          {"path": "/spec/replicas", "value": "2"}], False),
    ],
)  # fmt: skip
def test_matches(matches: list[dict[str, str]], applies: bool) -> None:
    mods = _mods(_rule(matches=matches))
    assert _patched(mods, _obj(spec=copy.deepcopy(SPEC))) is applies


def test_all_conditions_must_hold() -> None:
    mods = _mods(
        _rule(
            groupResource="persistentvolumeclaims",
            resourceNameRegex="^mysql",
            namespaces=["db"],
            labelSelector={"matchLabels": {"app": "mysql"}},
            matches=[{"path": "/spec/storageClassName", "value": "standard"}],
        )
    )
    good = _obj(labels={"app": "mysql"}, spec={"storageClassName": "standard"})
    assert _patched(mods, good)
    assert not _patched(mods, good, gr="persistentvolumes")
    assert not _patched(mods, _obj(name="pg-0", labels={"app": "mysql"},
                                   spec={"storageClassName": "standard"}))  # fmt: skip
    assert not _patched(mods, good, ns="web")
    assert not _patched(mods, _obj(labels={"app": "pg"}, spec={"storageClassName": "standard"}))
    assert not _patched(mods, _obj(labels={"app": "mysql"}, spec={"storageClassName": "gp3"}))


# --------------------------------------------------------------------------- JSON patches


def _json(*patches: dict[str, Any]) -> Modifiers:
    return _mods(_rule({"patches": list(patches)}))


PVC = {
    "apiVersion": "v1",
    "kind": "PersistentVolumeClaim",
    "metadata": {"name": "mysql-0", "namespace": "db", "labels": {"test": "1", "app": "m"}},
    "spec": {"storageClassName": "standard", "accessModes": ["ReadWriteOnce"]},
}


@pytest.mark.parametrize(
    ("patches", "check"),
    [
        ([{"operation": "replace", "path": "/spec/storageClassName", "value": "premium"}],
         {"/spec/storageClassName": "premium"}),
        ([{"operation": "remove", "path": "/metadata/labels/test"}],
         {"/metadata/labels": {"app": "m"}}),
        ([{"operation": "add", "path": "/metadata/annotations", "value": '{"a": "b"}'}],
         {"/metadata/annotations": {"a": "b"}}),
        ([{"operation": "add", "path": "/spec/accessModes/-", "value": "ReadOnlyMany"}],
         {"/spec/accessModes": ["ReadWriteOnce", "ReadOnlyMany"]}),
        ([{"operation": "add", "path": "/spec/accessModes/0", "value": "ReadOnlyMany"}],
         {"/spec/accessModes": ["ReadOnlyMany", "ReadWriteOnce"]}),
        ([{"operation": "move", "from": "/metadata/labels/test", "path": "/metadata/labels/moved"}],
         {"/metadata/labels": {"app": "m", "moved": "1"}}),
        ([{"operation": "copy", "from": "/spec/storageClassName", "path": "/metadata/labels/sc"}],
         {"/metadata/labels/sc": "standard", "/spec/storageClassName": "standard"}),
        # A later patch on the same path wins.
        ([{"operation": "replace", "path": "/spec/storageClassName", "value": "a"},
          {"operation": "replace", "path": "/spec/storageClassName", "value": "b"}],
         {"/spec/storageClassName": "b"}),
        # test passes: the following patches apply.
        ([{"operation": "test", "path": "/spec/storageClassName", "value": "standard"},
          {"operation": "replace", "path": "/spec/storageClassName", "value": "premium"}],
         {"/spec/storageClassName": "premium"}),
    ],
)  # fmt: skip
def test_json_patches(patches: list[dict[str, Any]], check: dict[str, Any]) -> None:
    out = _json(*patches).apply("persistentvolumeclaims", copy.deepcopy(PVC), "db")
    for pointer, expected in check.items():
        node: Any = out
        for part in pointer.strip("/").split("/"):
            node = node[int(part)] if isinstance(node, list) else node[part]
        assert node == expected, pointer


@pytest.mark.parametrize(
    "test_op",
    [
        {"operation": "test", "path": "/spec/storageClassName", "value": "premium"},
        {"operation": "test", "path": "/spec/volumeMode", "value": "Block"},
    ],
)
def test_failed_test_operation_skips_the_rule(test_op: dict[str, Any]) -> None:
    # Velero's documented "conditional patches using test operation": a failed test
    # leaves the object as it was (no error, no partial patch).
    mods = _json(
        {"operation": "replace", "path": "/metadata/labels/app", "value": "changed"},
        test_op,
        {"operation": "replace", "path": "/spec/storageClassName", "value": "standard-v2"},
    )
    out = mods.apply("persistentvolumeclaims", copy.deepcopy(PVC), "db")
    assert out == PVC


@pytest.mark.parametrize(
    "patch",
    [
        {"operation": "remove", "path": "/metadata/labels/nope"},
        {"operation": "replace", "path": "/spec/volumeMode", "value": "Block"},
        {"operation": "add", "path": "/spec/selector/matchLabels/a", "value": "b"},
        {"operation": "move", "from": "/spec/nope", "path": "/spec/x"},
        {"operation": "copy", "from": "/spec/nope", "path": "/spec/x"},
        {"operation": "add", "path": "/spec/accessModes/7", "value": "x"},
        {"operation": "add", "path": "/spec/storageClassName/x", "value": "x"},
        {"operation": "move", "path": "/spec/x"},  # move without from
        {"operation": "add", "path": "spec/x", "value": "x"},  # not a JSON pointer
    ],
)
def test_patch_on_a_missing_path_is_a_usage_error(patch: dict[str, Any]) -> None:
    mods = _json(patch)
    obj = copy.deepcopy(PVC)
    with pytest.raises(UsageError) as info:
        mods.apply("persistentvolumeclaims", obj, "db")
    assert "resource modifier for * failed on mysql-0" in info.value.message
    assert info.value.exit_code == EXIT_USAGE
    assert obj == PVC


def test_error_names_the_rule_group_resource() -> None:
    mods = _mods(
        _rule({"patches": [{"operation": "remove", "path": "/spec/nope"}]},
              groupResource="persistentvolumeclaims"),
    )  # fmt: skip
    with pytest.raises(UsageError, match=r"for persistentvolumeclaims failed on mysql-0"):
        mods.apply("persistentvolumeclaims", copy.deepcopy(PVC), "db")


def test_non_matching_rule_with_a_bad_path_is_not_applied() -> None:
    mods = _mods(_rule({"patches": [{"operation": "remove", "path": "/spec/nope"}]},
                       groupResource="pods"))  # fmt: skip
    assert mods.apply("persistentvolumeclaims", copy.deepcopy(PVC), "db") == PVC


# --------------------------------------------------------------------------- merge patches


@pytest.mark.parametrize(
    ("target", "patch", "result"),
    [  # RFC 7386, Appendix A
        ({"a": "b"}, {"a": "c"}, {"a": "c"}),
        ({"a": "b"}, {"b": "c"}, {"a": "b", "b": "c"}),
        ({"a": "b"}, {"a": None}, {}),
        ({"a": "b", "b": "c"}, {"a": None}, {"b": "c"}),
        ({"a": ["b"]}, {"a": "c"}, {"a": "c"}),
        ({"a": "c"}, {"a": ["b"]}, {"a": ["b"]}),
        ({"a": {"b": "c"}}, {"a": {"b": "d", "c": None}}, {"a": {"b": "d"}}),
        ({"a": [{"b": "c"}]}, {"a": [1]}, {"a": [1]}),
        (["a", "b"], ["c", "d"], ["c", "d"]),
        ({"a": "b"}, ["c"], ["c"]),
        ({"a": "foo"}, None, None),
        ({"a": "foo"}, "bar", "bar"),
        ({"e": None}, {"a": 1}, {"e": None, "a": 1}),
        ([1, 2], {"a": "b", "c": None}, {"a": "b"}),
        ({}, {"a": {"bb": {"ccc": None}}}, {"a": {"bb": {}}}),
    ],
)
def test_merge_patch_rfc7386(target: Any, patch: Any, result: Any) -> None:
    before = copy.deepcopy(target)
    assert merge_patch(target, patch) == result
    assert target == before


@pytest.mark.parametrize(
    "patch_data",
    [
        '{"metadata": {"annotations": {"drop": null, "add": "x"}},'
        ' "spec": {"storageClassName": "gp3"}}',
        "metadata:\n  annotations:\n    drop: null\n    add: x\nspec:\n  storageClassName: gp3\n",
    ],
    ids=["json", "yaml"],
)
def test_merge_patches(patch_data: str) -> None:
    obj = _obj(spec={"storageClassName": "gp2", "accessModes": ["ReadWriteOnce"]})
    obj["metadata"]["annotations"] = {"drop": "1", "keep": "2"}
    mods = _mods(_rule({"mergePatches": [{"patchData": patch_data}]}))
    out = mods.apply("persistentvolumeclaims", obj, "db")
    assert out["metadata"]["annotations"] == {"keep": "2", "add": "x"}
    assert out["spec"] == {"storageClassName": "gp3", "accessModes": ["ReadWriteOnce"]}
    assert obj["metadata"]["annotations"] == {"drop": "1", "keep": "2"}  # input untouched


def test_merge_patch_replaces_lists_whole() -> None:
    obj = _obj("Deployment", spec={"template": {"spec": {"containers": [
        {"name": "app", "image": "a:1"}, {"name": "side", "image": "s:1"}]}}})  # fmt: skip
    patch = '{"spec": {"template": {"spec": {"containers": [{"name": "app", "image": "a:2"}]}}}}'
    mods = _mods(_rule({"mergePatches": [{"patchData": patch}]}))
    out = mods.apply("deployments.apps", obj, "db")
    assert out["spec"]["template"]["spec"]["containers"] == [{"name": "app", "image": "a:2"}]


def test_merge_patches_apply_in_order() -> None:
    mods = _mods(_rule({"mergePatches": [{"patchData": '{"spec": {"v": 1, "w": 1}}'},
                                         {"patchData": '{"spec": {"v": 2}}'},
                                         {"patchData": '{"spec": {"w": null}}'}]}))  # fmt: skip
    assert mods.apply("pods", _obj(), "db")["spec"] == {"v": 2}


# --------------------------------------------------------------------------- strategic patches

DEPLOY_SPEC = {
    "replicas": 2,
    "template": {
        "spec": {
            "containers": [
                {"name": "app", "image": "app:1", "args": ["--a", "--b"],
                 "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]},
                {"name": "sidecar", "image": "envoy:1"},
            ],
            "volumes": [{"name": "data", "emptyDir": {}}],
        }
    },
}  # fmt: skip


def test_strategic_patch_merges_containers_by_name() -> None:
    patch = """
spec:
  template:
    spec:
      containers:
      - name: app
        image: app:2
        args: ["--c"]
        env:
        - {name: B, value: "22"}
        - {name: C, value: "3"}
      - name: debug
        image: busybox
"""
    obj = _obj("Deployment", "web", spec=copy.deepcopy(DEPLOY_SPEC))
    mods = _mods(_rule({"strategicPatches": [{"patchData": patch}]}))
    out = mods.apply("deployments.apps", obj, "db")
    pod = out["spec"]["template"]["spec"]
    assert pod["containers"] == [
        {"name": "app", "image": "app:2", "args": ["--c"],
         "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "22"},
                 {"name": "C", "value": "3"}]},
        {"name": "sidecar", "image": "envoy:1"},
        {"name": "debug", "image": "busybox"},
    ]  # fmt: skip
    assert pod["volumes"] == [{"name": "data", "emptyDir": {}}]
    assert out["spec"]["replicas"] == 2
    assert obj["spec"] == DEPLOY_SPEC  # input untouched


@pytest.mark.parametrize(
    ("target", "patch", "result"),
    [
        ({"a": 1, "b": 2}, {"b": None, "c": 3}, {"a": 1, "c": 3}),
        ({"a": {"x": 1, "y": 2}}, {"a": {"y": None}}, {"a": {"x": 1}}),
        ({"l": [1, 2]}, {"l": [3]}, {"l": [3]}),  # primitives: replaced
        ({"l": [{"k": 1}]}, {"l": [{"k": 2}]}, {"l": [{"k": 2}]}),  # no name: replaced
        ({"l": [{"name": "a", "v": 1}]}, {"l": [{"v": 2}]}, {"l": [{"v": 2}]}),
        ({"l": [{"name": "a", "v": 1}, {"name": "b", "v": 1}]},
         {"l": [{"name": "b", "v": 2, "w": None}]},
         {"l": [{"name": "a", "v": 1}, {"name": "b", "v": 2}]}),
        ({"l": [{"name": "a", "v": 1}]}, {"l": []}, {"l": [{"name": "a", "v": 1}]}),
        ({"x": "s"}, {"x": {"y": 1}}, {"x": {"y": 1}}),
    ],
)  # fmt: skip
def test_strategic_merge(target: Any, patch: Any, result: Any) -> None:
    before = copy.deepcopy(target)
    assert strategic_merge(target, patch) == result
    assert target == before


# --------------------------------------------------------------------------- rule order


def _set_label(value: str, **conditions: Any) -> dict[str, Any]:
    patch = {"patches": [{"operation": "add", "path": "/metadata/labels/v", "value": value}]}
    return _rule(patch, **conditions)


@pytest.mark.parametrize(("values", "final"), [(["one", "two"], "two"), (["two", "one"], "one"),
                                               (["a", "b", "c"], "c")])  # fmt: skip
def test_rules_apply_in_order(values: list[str], final: str) -> None:
    mods = _mods(*(_set_label(v) for v in values))
    out = mods.apply("pods", _obj(labels={}), "db")
    assert out["metadata"]["labels"]["v"] == final


def test_non_matching_rules_are_skipped_in_the_sequence() -> None:
    mods = _mods(
        _set_label("first"),
        _set_label("not-me", groupResource="deployments.apps"),
        _set_label("nor-me", namespaces=["other"]),
    )
    out = mods.apply("pods", _obj(labels={}), "db")
    assert out["metadata"]["labels"]["v"] == "first"


def test_later_rule_builds_on_earlier_rule() -> None:
    mods = _mods(
        _rule({"patches": [{"operation": "add", "path": "/spec/list", "value": "[]"}]}),
        _rule({"patches": [{"operation": "add", "path": "/spec/list/-", "value": "x"}]}),
        _rule({"mergePatches": [{"patchData": '{"spec": {"merged": true}}'}]}),
    )
    out = mods.apply("pods", _obj(), "db")
    assert out["spec"] == {"list": ["x"], "merged": True}


def test_one_rule_applies_json_then_merge_then_strategic() -> None:
    mods = _mods(
        _rule(
            {
                "patches": [{"operation": "add", "path": "/spec/v", "value": "json"}],
                "mergePatches": [{"patchData": '{"spec": {"v": "merge", "m": 1}}'}],
                "strategicPatches": [{"patchData": '{"spec": {"v": "strategic"}}'}],
            }
        )
    )
    assert mods.apply("pods", _obj(), "db")["spec"] == {"v": "strategic", "m": 1}


def test_empty_modifiers_return_the_object() -> None:
    obj = _obj()
    assert Modifiers().apply("pods", obj, "db") is obj
