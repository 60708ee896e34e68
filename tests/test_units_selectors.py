"""Pure parsing: durations, label selectors, backup scope and Velero item paths."""

from __future__ import annotations

from datetime import timedelta

import pytest

from migrate.cluster.selectors import Selector
from migrate.errors import UsageError
from migrate.store import layout
from migrate.transform.scope import Scope
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
