"""Pure parsing: durations, label selectors, backup scope and Velero item paths."""

from __future__ import annotations

from datetime import timedelta
from fnmatch import fnmatchcase

import pytest

from migrate.cluster.selectors import Selector
from migrate.errors import UsageError
from migrate.store import layout
from migrate.transform.scope import NameMatcher, Scope
from migrate.units import format_duration, parse_duration


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("720h0m0s", 720 * 3600), ("10m", 600), ("1h30m", 5400), ("90", 90), ("1.5h", 5400),
     ("250ms", 0.25), ("2s", 2)],
)  # fmt: skip
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text).total_seconds() == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "forever", "10x", "h", "1h 30m", "-5m", "5m3"])
def test_parse_duration_rejects(text: str) -> None:
    with pytest.raises(UsageError, match="invalid"):
        parse_duration(text)


def test_format_duration_is_gos() -> None:
    assert format_duration(timedelta(hours=720)) == "720h0m0s"
    assert format_duration(timedelta(minutes=90)) == "1h30m0s"
    assert format_duration(timedelta(seconds=42)) == "42s"


@pytest.mark.parametrize(
    ("text", "labels", "expected"),
    [
        ("app=web", {"app": "web"}, True),
        ("app=web", {"app": "db"}, False),
        ("app==web,tier!=db", {"app": "web", "tier": "fe"}, True),
        ("env in (prod, test)", {"env": "test"}, True),
        ("env notin (prod)", {"env": "prod"}, False),
        ("env notin (prod)", {}, True),
        ("legacy", {"legacy": ""}, True),
        ("!legacy", {"legacy": "x"}, False),
        ("app=web,env in (a,b),!old", {"app": "web", "env": "b"}, True),
        ("", {"x": "y"}, True),
    ],
)
def test_selector_matching(text: str, labels: dict[str, str], expected: bool) -> None:
    sel = Selector.parse(text)
    assert sel.matches(labels) is expected
    # the object form round-trips (what Velero's spec.labelSelector stores)
    assert Selector.from_object(sel.to_object()).matches(labels) is expected


@pytest.mark.parametrize("text", ["app=", "=web", "app in web", "a b", "app=(x)"])
def test_selector_rejects(text: str) -> None:
    if text == "app=":  # an empty value is legal in kubectl
        assert Selector.parse(text).matches({"app": ""})
        return
    with pytest.raises(UsageError, match="invalid label selector"):
        Selector.parse(text)


def test_selector_object_form() -> None:
    sel = Selector.parse("app=web,env in (a,b),!old")
    assert sel.to_object() == {
        "matchLabels": {"app": "web"},
        "matchExpressions": [
            {"key": "env", "operator": "In", "values": ["a", "b"]},
            {"key": "old", "operator": "DoesNotExist"},
        ],
    }
    assert str(sel) == "app=web,env in (a,b),!old"


PATTERNS = ["app", "app-*", "*-prod", "team-?", "[ab]x", "[!c]y", "a.b", "x+y", "(z)", "*"]
NAMES = ["app", "app-1", "apps", "web-prod", "prod", "team-1", "team-10", "ax", "bx", "cx"]
NAMES += ["dy", "cy", "a.b", "aXb", "x+y", "xxy", "(z)", "z", "", "APP", "app\nx"]


@pytest.mark.parametrize("count", [0, 1, 2, len(PATTERNS) - 1, len(PATTERNS)])
def test_name_matcher_is_fnmatchcase(count: int) -> None:
    """The compiled matcher answers as trying every pattern with fnmatchcase would."""
    for start in range(len(PATTERNS)):
        patterns = tuple((PATTERNS[start:] + PATTERNS[:start])[:count])
        match = NameMatcher(patterns)
        for name in NAMES:
            expected = any(fnmatchcase(name, p) for p in patterns)
            assert match(name) is expected, (patterns, name)


def test_scope_namespaces_by_name_and_glob() -> None:
    names = tuple(f"ns-{i:03d}" for i in range(100))
    scope = Scope(include_namespaces=(*names, "web-*"), exclude_namespaces=("ns-00?", "web-x"))
    assert scope.namespace_included("ns-050") and scope.namespace_included("web-a")
    assert not scope.namespace_included("ns-005") and not scope.namespace_included("web-x")
    assert not scope.namespace_included("ns-1000") and not scope.namespace_included("other")
    assert scope.explicit_namespaces() is None  # a glob: listed cluster-wide
    named = Scope(include_namespaces=names, exclude_namespaces=("ns-00?",))
    assert named.explicit_namespaces() == list(names[10:])
    assert Scope().explicit_namespaces() is None


def test_scope_velero_spec_round_trip() -> None:
    scope = Scope(
        include_namespaces=("shop",),
        exclude_resources=("secrets",),
        selector=Selector.parse("app=web"),
        include_cluster_resources="false",
    )
    spec = scope.velero_spec("24h0m0s")
    assert spec["includeClusterResources"] is False
    assert spec["labelSelector"] == {"matchLabels": {"app": "web"}}
    assert Scope.from_velero_spec(spec) == scope
    assert Scope().cluster_mode == "all"
    assert scope.cluster_mode == "none"
    assert Scope(include_namespaces=("a",)).cluster_mode == "deps"
    assert Scope(exclude_namespaces=("kube-*",)).namespace_included("shop")
    assert not Scope(exclude_namespaces=("kube-*",)).namespace_included("kube-system")
    with pytest.raises(UsageError):
        Scope(include_cluster_resources="maybe")


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("resources/pods/namespaces/ns/p.json", ("pods", None, "ns", "p")),
        ("resources/deployments.apps/v1-preferredversion/namespaces/ns/d.json",
         ("deployments.apps", "v1-preferredversion", "ns", "d")),
        ("resources/namespaces/cluster/ns.json", ("namespaces", None, None, "ns")),
        ("resources/x.y/v2/cluster/n.json", ("x.y", "v2", None, "n")),
        ("metadata/version", None),
        ("resources/pods/namespaces/p.json", None),
    ],
)  # fmt: skip
def test_item_paths(path: str, expected: tuple[str, str | None, str | None, str] | None) -> None:
    parsed = layout.parse_item_path(path)
    assert (
        None
        if parsed is None
        else (parsed.group_resource, parsed.version_dir, parsed.namespace, parsed.name)
    ) == expected
    if expected and expected[1] is None:
        classic, preferred = layout.item_paths(expected[0], "v1", expected[2], expected[3])
        assert classic == path and layout.parse_item_path(preferred) is not None
